//! What `#[job]` builds on: the [`Job`] trait and its [`JobOptions`], the
//! [`JobArg`] bound on arguments, and, by concern, the typed [`Request`]
//! (`request.rs`), the per-attempt [`JobContext`] (`context.rs`), the injected
//! [`State`] and the [`Inject`] machinery (`inject.rs`), the outcomes a job can
//! ask for ([`Snooze`], [`Permanent`], [`IntoJobResult`]: `outcome.rs`), the
//! registration every job submits to `inventory` (`registry.rs`) and the
//! helpers the generated code calls (`codegen.rs`).

mod codegen;
mod context;
mod inject;
mod outcome;
mod registry;
mod request;
mod unique;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::retry::Backoff;

pub use codegen::{
    args_map, injector, job_arg, job_result, ArgUse, CheckField, Injector, OutputOf,
    SerializeField, TakeField,
};
pub use context::JobContext;
pub use inject::{Inject, Invocation, Requirement, Resources, State};
pub use outcome::{IntoJobResult, Permanent, Snooze};
pub(crate) use registry::duplicate_names;
pub use registry::{registered_jobs, JobRegistration};
pub use request::{OnOutput, Request};
pub(crate) use unique::args_key;
pub use unique::{HeldAfter, Unique, UniqueKey};

/// The error a job returns: anything that converts into a boxed error,
/// `anyhow::Error` included.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How one run of a job ended, as its registration returns it: its output
/// as JSON (`None` when it has none), or its error.
pub type RunResult = Result<Option<serde_json::Value>, BoxError>;

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

    /// Checks that `stored`, what these arguments serialized into, decodes
    /// back into this type. Every enqueue calls it before storing the job, so
    /// arguments whose stored form can never be run (an `f64::NAN`, which
    /// JSON stores as `null`; a type whose `Serialize` and `Deserialize`
    /// disagree) are refused at the call, naming the job, instead of failing
    /// every attempt later.
    ///
    /// The default decodes the whole value and drops it. `#[job]` decodes
    /// each argument where it lies in `stored` (nothing is cloned but what
    /// the argument owns, a `String`'s text say), and its errors name the
    /// argument.
    fn check_stored(stored: &serde_json::Value) -> Result<(), serde_json::Error> {
        Self::deserialize(stored).map(drop)
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
    /// "timed out after ..." (default: none). The job sees the cancel
    /// through its context ([`JobContext::cancelled`](crate::JobContext::cancelled))
    /// and is dropped at its next `.await` after the server's cancel grace.
    /// A job that blocks its thread instead cannot be stopped: it is reported
    /// stuck (a warning, a history event, `JobRow::stuck_since`), keeps its
    /// slot and its renewed lease, and when it returns its attempt timed out,
    /// whatever it returned. Put blocking work in `tokio::task::spawn_blocking`.
    pub timeout: Option<Duration>,
    /// Whether, and by what, jobs of this type are unique (default: not;
    /// see [`Unique`]).
    pub unique: Option<Unique>,
    /// How many jobs of this type with the same key may run at once
    /// (default: no limit; see [`KeyLimit`](crate::KeyLimit)).
    pub key_limit: Option<crate::KeyLimit>,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            queue: DEFAULT_QUEUE,
            priority: 0,
            max_attempts: crate::DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::default(),
            timeout: None,
            unique: None,
            key_limit: None,
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
    /// Makes the job unique (see [`Unique`]).
    pub const fn unique(mut self, unique: Unique) -> Self {
        self.unique = Some(unique);
        self
    }

    /// Limits how many jobs of this type with the same key run at once (see
    /// [`KeyLimit`](crate::KeyLimit)).
    pub const fn key_limit(mut self, limit: crate::KeyLimit) -> Self {
        self.key_limit = Some(limit);
        self
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

/// Marks the types a job can return as its output (the `T` of
/// `Result<T, E>`): stored with the job as JSON when it succeeds, so they
/// must serialize, deserialize into an owned value, and move between threads.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a job's output",
    label = "a job's output is serialized into the store",
    note = "the `T` of a job's `Result<T, E>` must be `Serialize + DeserializeOwned + Send + 'static`: a value or an id, not a borrowed value, a connection, a handle or a closure",
    note = "return `Result<(), E>` to store no output"
)]
pub trait JobOutput: Serialize + DeserializeOwned + Send + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> JobOutput for T {}

/// A job that can run on another job's output: implemented by `#[job]`
/// for a job with exactly one stored argument, of type `T`, which
/// [`INPUT`](Self::INPUT) names. What `after_output_of` requires, so that a
/// continuation fed by a parent's output is checked by the compiler: the
/// parent's output type must be the continuation's argument type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run on the output of that job, which is `{T}`",
    label = "the job before it returns `{T}`",
    note = "a job fed by another's output takes that output as its one stored argument, of the same type: give `{Self}` one argument of type `{T}`, or change what the job before it returns"
)]
pub trait TakesOutput<T> {
    /// The argument's stored name.
    const INPUT: &'static str;
}

/// The type of a job's output: implemented by `#[job]` for every job, as
/// the `T` of its `Result<T, E>` (`()` when it returns none). Read a stored
/// output back with [`Jobs::output`](crate::Jobs::output).
pub trait Produces {
    /// The output.
    type Output;
}
