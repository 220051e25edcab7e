//! What `#[job]` builds on: the [`Job`] trait, the typed [`Request`], the
//! injected [`State`] and [`JobContext`], the outcomes a job can ask for
//! ([`Snooze`], [`Permanent`]) and the registration every job submits to
//! `inventory`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::model::{Claim, JobId, NewJob, RunAt, Timestamp};
use crate::retry::Backoff;
use crate::store::BoxFuture;

/// The error a job returns: anything that converts into a boxed error,
/// `anyhow::Error` included.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The queue a job goes to unless told otherwise.
pub const DEFAULT_QUEUE: &str = "default";

/// A job type. `#[job]` implements it on the type it generates; the type's
/// fields are the job's arguments, serialized as a JSON object.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The stored name: the function's name unless `#[job(name = "...")]` pins it.
    const NAME: &'static str;

    /// Defaults from the attribute: queue, priority, attempts, backoff, timeout.
    fn options() -> JobOptions {
        JobOptions::default()
    }
}

/// Per job-type defaults, from the `#[job(...)]` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobOptions {
    /// The queue (default `"default"`).
    pub queue: &'static str,
    /// Higher runs first within a queue (default 0).
    pub priority: i16,
    /// Attempts before the job is `failed` (default [`crate::DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: i32,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// An attempt running longer than this is cancelled and fails with
    /// "timed out after ..." (default: none).
    pub timeout: Option<Duration>,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            queue: DEFAULT_QUEUE,
            priority: 0,
            max_attempts: crate::DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::default(),
            timeout: None,
        }
    }
}

impl JobOptions {
    /// Sets the queue.
    pub const fn queue(mut self, queue: &'static str) -> Self {
        self.queue = queue;
        self
    }
    /// Sets the priority.
    pub const fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }
    /// Sets the attempts.
    pub const fn max_attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = max_attempts;
        self
    }
    /// Sets the backoff.
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
    /// Sets the timeout.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A job ready to be enqueued: its arguments and the options of this one
/// enqueue. `SendMail::new(9)` builds one; `.enqueue(&jobs)` stores it. The
/// same value is what batch enqueue, recurring jobs and transactional
/// enqueue take.
#[must_use = "a request does nothing until it is enqueued"]
#[derive(Debug, Clone)]
pub struct Request<J> {
    args: J,
    queue: Option<String>,
    priority: Option<i16>,
    max_attempts: Option<i32>,
    run_at: RunAt,
}

impl<J: Job> Request<J> {
    /// A request with the job type's defaults, to run now.
    pub fn new(args: J) -> Self {
        Self {
            args,
            queue: None,
            priority: None,
            max_attempts: None,
            run_at: RunAt::Now,
        }
    }

    /// The arguments.
    pub fn args(&self) -> &J {
        &self.args
    }

    /// Runs it in this queue instead of the job type's.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Higher runs first within a queue.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Allows this many attempts (at least 1) instead of the job type's.
    pub fn max_attempts(mut self, max_attempts: u16) -> Self {
        self.max_attempts = Some(i32::from(max_attempts.max(1)));
        self
    }

    /// Runs it after this delay, measured on the store's clock.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = RunAt::After(delay);
        self
    }

    /// Runs it at this instant (at once if it has passed).
    pub fn run_at(mut self, at: Timestamp) -> Self {
        self.run_at = RunAt::At(at);
        self
    }

    /// Serializes the request into what a store inserts.
    pub fn into_new_job(self) -> Result<NewJob> {
        let options = J::options();
        let args = serde_json::to_value(&self.args).map_err(|source| Error::Serialize {
            job: J::NAME,
            source,
        })?;
        Ok(NewJob {
            name: J::NAME.to_owned(),
            args,
            queue: self.queue.unwrap_or_else(|| options.queue.to_owned()),
            priority: self.priority.unwrap_or(options.priority),
            max_attempts: self.max_attempts.unwrap_or(options.max_attempts),
            run_at: self.run_at,
            recurring: None,
        })
    }

    /// Stores the job; returns its id once it is durable.
    pub async fn enqueue(self, jobs: &crate::Jobs) -> Result<JobId> {
        jobs.enqueue(self).await
    }
}

/// A shared resource given to the server once (`Server::builder(..).state(pool)`)
/// and asked for by type in a job's parameters, axum-style: `db: State<PgPool>`.
/// Never stored with the job. The macro recognises it by the name `State`, so
/// import it under that name.
#[derive(Debug, Clone, Copy, Default)]
pub struct State<T>(pub T);

impl<T> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for State<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// The shared resources a server was given, by type.
#[derive(Default, Clone)]
pub struct Resources {
    by_type: HashMap<TypeId, (&'static str, Arc<dyn Any + Send + Sync>)>,
}

impl Resources {
    /// Adds a resource, replacing one of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.by_type.insert(
            TypeId::of::<T>(),
            (std::any::type_name::<T>(), Arc::new(value)),
        );
    }

    /// A clone of the resource of type `T`, if there is one.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref::<T>())
            .cloned()
    }

    /// Whether a resource of this type is present.
    pub fn contains(&self, type_id: TypeId) -> bool {
        self.by_type.contains_key(&type_id)
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.by_type.values().map(|(name, _)| name))
            .finish()
    }
}

/// The per-run context a job can ask for as a parameter: which job and
/// attempt this is, and the cancellation that a timeout, a user's cancel or
/// a shutdown raises. A job that runs long should watch [`JobContext::cancelled`].
#[derive(Debug, Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    id: JobId,
    claim_token: i64,
    name: String,
    queue: String,
    attempt: i32,
    max_attempts: i32,
    scheduled_for: Option<Timestamp>,
    cancellation: CancellationToken,
    progress: ProgressSlot,
}

/// The latest progress an attempt reported, waiting for the server to write it.
#[derive(Debug, Default)]
pub(crate) struct ProgressSlot {
    latest: std::sync::Mutex<Option<serde_json::Value>>,
}

impl ProgressSlot {
    fn set(&self, value: serde_json::Value) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// The progress reported since the last call, if any.
    pub(crate) fn take(&self) -> Option<serde_json::Value> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl JobContext {
    /// A context; the server builds one per attempt.
    pub fn new(
        claim: Claim,
        name: String,
        queue: String,
        attempt: i32,
        max_attempts: i32,
        scheduled_for: Option<Timestamp>,
        cancellation: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                id: claim.job_id,
                claim_token: claim.token,
                name,
                queue,
                attempt,
                max_attempts,
                scheduled_for,
                cancellation,
                progress: ProgressSlot::default(),
            }),
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.inner.id
    }
    /// The claim of this attempt: what a store's writes about the attempt
    /// are fenced by (PostgreSQL's `complete_in` takes it from here).
    pub fn claim(&self) -> Claim {
        Claim {
            job_id: self.inner.id,
            token: self.inner.claim_token,
        }
    }
    /// The job's stored name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    /// The queue it was claimed from.
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }
    /// This attempt's number, from 1.
    pub fn attempt(&self) -> i32 {
        self.inner.attempt
    }
    /// How many attempts the job has.
    pub fn max_attempts(&self) -> i32 {
        self.inner.max_attempts
    }
    /// For a run of a recurring job: the tick it stands for.
    pub fn scheduled_for(&self) -> Option<Timestamp> {
        self.inner.scheduled_for
    }
    /// Whether the attempt has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancellation.is_cancelled()
    }
    /// Resolves when the attempt is asked to stop (timeout, cancel, shutdown).
    pub async fn cancelled(&self) {
        self.inner.cancellation.cancelled().await
    }
    /// Reports how far the attempt has come, in percent (capped at 100), for
    /// `Jobs::get` and the dashboard. Cheap to call often: the server writes
    /// the latest value about once a second, fenced by this attempt's claim.
    pub fn set_progress(&self, percent: u8) {
        self.inner
            .progress
            .set(serde_json::json!({ "percent": percent.min(100) }));
    }

    /// [`JobContext::set_progress`] with a line saying what is going on.
    pub fn set_progress_with(&self, percent: u8, message: impl Into<String>) {
        self.inner.progress.set(serde_json::json!({
            "percent": percent.min(100),
            "message": message.into(),
        }));
    }

    pub(crate) fn progress_updates(&self) -> Option<serde_json::Value> {
        self.inner.progress.take()
    }

    /// The token behind [`JobContext::cancelled`], to hand to other code.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.inner.cancellation
    }
}

/// Returned (as the error) by a job that wants to run again later, without
/// using up an attempt: `return Err(Snooze::after(Duration::from_secs(30)).into())`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snooze {
    /// How long to wait.
    pub after: Duration,
}

impl Snooze {
    /// Run again after this delay.
    pub fn after(after: Duration) -> Self {
        Self { after }
    }
}

impl fmt::Display for Snooze {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snoozed for {:?}", self.after)
    }
}

impl std::error::Error for Snooze {}

/// Returned (as the error) by a job whose failure will not go away by
/// retrying: the job is `failed` at once, whatever attempts it has left.
#[derive(Debug)]
pub struct Permanent(pub BoxError);

impl Permanent {
    /// Wraps the error that makes retrying pointless.
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self(error.into())
    }
}

impl fmt::Display for Permanent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Permanent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What a server hands to a job's generated runner for one attempt.
#[derive(Debug)]
pub struct Invocation {
    /// The stored arguments.
    pub args: serde_json::Value,
    /// The attempt's context.
    pub context: JobContext,
    /// The server's shared resources.
    pub resources: Arc<Resources>,
}

impl Invocation {
    /// Deserializes the arguments; the error names the job and quotes serde.
    pub fn args<T: DeserializeOwned>(&self, job: &'static str) -> Result<T, BoxError> {
        T::deserialize(&self.args)
            .map_err(|source| Box::new(Error::Deserialize { job, source }) as BoxError)
    }
}

/// A resource a job needs, checked at server start.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    /// The resource's type.
    pub type_id: TypeId,
    /// Its name, for the error.
    pub type_name: &'static str,
}

/// A parameter the server provides rather than the store: [`State<T>`] and
/// [`JobContext`]. Hidden machinery of `#[job]`.
pub trait Inject: Sized {
    /// The resource that must be present at server start, if any.
    fn requirement() -> Option<Requirement>;
    /// Takes the value out of the attempt's invocation.
    fn inject(invocation: &Invocation) -> Result<Self, BoxError>;
}

impl<T: Clone + Send + Sync + 'static> Inject for State<T> {
    fn requirement() -> Option<Requirement> {
        Some(Requirement {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        })
    }
    fn inject(invocation: &Invocation) -> Result<Self, BoxError> {
        invocation.resources.get::<T>().map(State).ok_or_else(|| {
            format!(
                "the server has no `{}`; give it with `Server::builder(..).state(..)`",
                std::any::type_name::<T>()
            )
            .into()
        })
    }
}

impl Inject for JobContext {
    fn requirement() -> Option<Requirement> {
        None
    }
    fn inject(invocation: &Invocation) -> Result<Self, BoxError> {
        Ok(invocation.context.clone())
    }
}

/// What a job function may return: `()` or `Result<(), E>` with an error
/// that converts into [`BoxError`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a return type `#[job]` accepts",
    label = "a job returns `()` or `Result<(), E>`",
    note = "the error type must convert into `Box<dyn std::error::Error + Send + Sync>`, as `anyhow::Error` and every `std::error::Error + Send + Sync + 'static` do"
)]
pub trait IntoJobResult {
    /// The outcome as the server sees it.
    fn into_job_result(self) -> Result<(), BoxError>;
}

impl IntoJobResult for () {
    fn into_job_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError> + 'static> IntoJobResult for Result<(), E> {
    fn into_job_result(self) -> Result<(), BoxError> {
        self.map_err(into_box_error)
    }
}

/// Boxes a job's error so that the server can downcast a [`Snooze`] or a
/// [`Permanent`] in it. `anyhow::Error` boxes itself around the original
/// error, which would hide them, so those two are taken out of it first.
fn into_box_error<E: Into<BoxError> + 'static>(error: E) -> BoxError {
    let error: Box<dyn Any> = Box::new(error);
    match error.downcast::<anyhow::Error>() {
        Ok(error) => match error.downcast::<Snooze>() {
            Ok(snooze) => Box::new(snooze),
            Err(error) => match error.downcast::<Permanent>() {
                Ok(permanent) => Box::new(permanent),
                Err(error) => error.into(),
            },
        },
        Err(error) => match error.downcast::<E>() {
            Ok(error) => (*error).into(),
            Err(_) => unreachable!("the box holds an `E`"),
        },
    }
}

/// Marks the types that can be job arguments: stored as JSON, so they must
/// serialize, deserialize into an owned value, and move between threads.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job argument",
    label = "job arguments are serialized into the store",
    note = "a job argument must be `Serialize + DeserializeOwned + Send + 'static`: a value or an id, not a borrowed value, a connection, a handle or a closure",
    note = "pass an id or a plain value, and take shared resources (a pool, a client) as `State<T>` given to the server with `Server::builder(..).state(..)`"
)]
pub trait JobArg: Serialize + DeserializeOwned + Send + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> JobArg for T {}

/// A registered job type, submitted to `inventory` by `#[job]`.
#[derive(Debug)]
pub struct JobRegistration {
    /// The stored name.
    pub name: &'static str,
    /// The generated type's path, for errors.
    pub type_name: &'static str,
    /// Where the function is defined (`file:line`), for errors.
    pub location: &'static str,
    /// The attribute's defaults.
    pub options: fn() -> JobOptions,
    /// The resources its parameters ask for.
    pub requirements: fn() -> Vec<Requirement>,
    /// Runs one attempt.
    pub run: fn(Invocation) -> BoxFuture<'static, Result<(), BoxError>>,
}

inventory::collect!(JobRegistration);

/// Every job registered in this program.
pub fn registered_jobs() -> impl Iterator<Item = &'static JobRegistration> {
    inventory::iter::<JobRegistration>.into_iter()
}
