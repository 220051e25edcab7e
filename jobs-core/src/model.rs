//! The data every store keeps and every caller reads: job ids, states, rows,
//! history events, server records. No behaviour lives here.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::UniqueKey;
use crate::limits::{LimitKey, QueueLimits};
use crate::retry::Backoff;

/// A point in time, in UTC. Stores compare these against their own clock
/// (the database clock for PostgreSQL), never against the application's.
pub type Timestamp = DateTime<Utc>;

/// The id of a stored job. Ids are assigned by the store and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The identity of one server start. Fresh on every start, never derived from
/// the host name alone, so a restarted process never inherits another's leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerId(pub Uuid);

impl ServerId {
    /// A new random identity.
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for ServerId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a job is in its life.
///
/// ```text
/// awaiting -> (its parent ended) -> enqueued
/// scheduled -> enqueued -> processing -> succeeded
///     ^                        |     \-> failed     (attempts exhausted; retryable by hand)
///     \------ retry ----------/      \-> cancelled  (by a user, or a job that asked for it)
/// any unfinished state -> deleted | cancelled (by a user)
/// ```
///
/// A `scheduled` job whose time has come is runnable without first passing
/// through `enqueued`: claiming takes both. An `awaiting` job is a
/// continuation ([`Request::after`](crate::Request::after)) whose parent has
/// not ended yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// A continuation waiting for its parent job to end.
    Awaiting,
    /// Waiting for its run time (a delayed job, or a retry after backoff).
    Scheduled,
    /// Ready to run now.
    Enqueued,
    /// Leased by a server and running.
    Processing,
    /// Finished without error.
    Succeeded,
    /// Every attempt failed, or the job asked not to be retried. Kept with its errors.
    Failed,
    /// Cancelled by a user or by the job itself.
    Cancelled,
    /// Deleted by a user before it finished.
    Deleted,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 8] = [
        JobState::Awaiting,
        JobState::Scheduled,
        JobState::Enqueued,
        JobState::Processing,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Deleted,
    ];

    /// The stored, lowercase name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Awaiting => "awaiting",
            JobState::Scheduled => "scheduled",
            JobState::Enqueued => "enqueued",
            JobState::Processing => "processing",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Deleted => "deleted",
        }
    }

    /// Whether the job will never run again unless a user retries it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled | JobState::Deleted
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown state name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown job state `{0}`")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// When a new job becomes runnable. Relative times are added to the store's
/// clock, so hosts with drifting clocks agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunAt {
    /// As soon as a server is free.
    #[default]
    Now,
    /// After this delay, measured on the store's clock.
    After(Duration),
    /// At this instant (runs at once if it is in the past).
    At(Timestamp),
}

/// A job to insert: what `Request::enqueue` hands to the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NewJob {
    /// The job's stored name (`Job::NAME`).
    pub name: String,
    /// The serialized arguments, a JSON object with one field per argument.
    pub args: serde_json::Value,
    /// The queue it waits in.
    pub queue: String,
    /// Higher runs first within a queue.
    pub priority: i16,
    /// How many attempts before the job is `failed`.
    pub max_attempts: i32,
    /// When it becomes runnable.
    pub run_at: RunAt,
    /// Set when a recurring schedule enqueued it: the schedule's id and the tick's instant.
    pub recurring: Option<RecurringOrigin>,
    /// The limit of each attempt, when the enqueue set one; `None` leaves
    /// it to the job type's options on the server that runs it.
    pub timeout: Option<Duration>,
    /// The delay between attempts, when the enqueue set one; `None` leaves
    /// it to the job type's options on the server that runs it.
    pub backoff: Option<Backoff>,
    /// The trace context of the span that enqueued it, which its runs
    /// continue. Set by the enqueue itself (with the `opentelemetry`
    /// feature), not by the caller.
    pub trace_context: Option<TraceContext>,
    /// Its unique key, if it is unique (see [`Unique`](crate::Unique)): the
    /// store inserts it only if no job holds the key, and otherwise returns
    /// the holder's id as a duplicate.
    pub unique: Option<UniqueKey>,
    /// The job it continues, if it is a continuation: it is `awaiting` until
    /// that job ends (see [`After`]).
    pub after: Option<After>,
    /// Its key limit, if it has one (see [`KeyLimit`](crate::KeyLimit)): the
    /// claim leaves it waiting while as many jobs with its key run.
    pub limit_key: Option<LimitKey>,
}

impl NewJob {
    /// A job with the default queue, priority 0, the default attempts, to run now.
    pub fn new(name: impl Into<String>, args: serde_json::Value) -> Self {
        Self {
            name: name.into(),
            args,
            queue: crate::DEFAULT_QUEUE.to_owned(),
            priority: 0,
            max_attempts: crate::DEFAULT_MAX_ATTEMPTS,
            run_at: RunAt::Now,
            recurring: None,
            timeout: None,
            backoff: None,
            trace_context: None,
            unique: None,
            after: None,
            limit_key: None,
        }
    }
}

/// A continuation's parent and when it runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct After {
    /// The job it waits for.
    pub parent: JobId,
    /// Which ends of the parent release it.
    pub on: ContinueOn,
    /// The argument that takes the parent's output, for a continuation fed
    /// by it (`after_output_of`): set from the parent's output when it is
    /// released, and only on the parent's success.
    pub input: Option<String>,
}

impl After {
    /// After `parent`, on the ends `on` says, with its own arguments.
    pub fn new(parent: JobId, on: ContinueOn) -> Self {
        Self {
            parent,
            on,
            input: None,
        }
    }

    /// After `parent` succeeds, with its argument `input` set to the
    /// parent's output.
    pub fn output_into(parent: JobId, input: impl Into<String>) -> Self {
        Self {
            parent,
            on: ContinueOn::Success,
            input: Some(input.into()),
        }
    }

    /// The arguments a continuation released by a parent whose output is
    /// `output` runs with: `args`, or for one fed by the output, `args` with
    /// its input argument set to it (`null` for none).
    pub fn released_args(
        &self,
        args: &serde_json::Value,
        output: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        match &self.input {
            None => args.clone(),
            Some(input) => {
                let mut map = args.as_object().cloned().unwrap_or_default();
                map.insert(
                    input.clone(),
                    output.cloned().unwrap_or(serde_json::Value::Null),
                );
                serde_json::Value::Object(map)
            }
        }
    }

    /// What a store does with a new continuation whose parent is in
    /// `state`: it waits (`true`), runs at once (`false`), or is refused
    /// with a `Conflict`, since it could never run.
    pub fn waits_for(&self, state: JobState) -> crate::StoreResult<bool> {
        if !state.is_finished() {
            return Ok(true);
        }
        if self.on.releases(state) {
            return Ok(false);
        }
        Err(crate::StoreError::new(
            crate::StoreErrorKind::Conflict,
            format!(
                "job {} has already ended {state}, so a continuation on its success would never run; \
                 use `after_any_end` to run it whatever the end",
                self.parent
            ),
        ))
    }

    /// The reason a store records for a continuation on success cancelled
    /// because job `parent` ended in `state` instead.
    pub fn cancel_reason(parent: JobId, state: JobState) -> String {
        format!("job {parent} ended {state}; this job was to run only after it succeeded")
    }
}

/// Which ends of its parent release a continuation.
///
/// | parent ends | `Success` | `AnyEnd` |
/// | --- | --- | --- |
/// | `succeeded` | runs | runs |
/// | `failed` (for good), `cancelled`, `deleted` | cancelled, naming the parent | runs |
///
/// Added to a parent that has already ended, a continuation runs at once,
/// or is refused (`Conflict`) when it could never run: on `Success` of a
/// parent that failed, was cancelled or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContinueOn {
    /// Only if the parent succeeded.
    Success,
    /// Whenever the parent ends: succeeded, failed for good, cancelled or deleted.
    AnyEnd,
}

impl ContinueOn {
    /// The stored name: `success` or `any_end`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContinueOn::Success => "success",
            ContinueOn::AnyEnd => "any_end",
        }
    }

    /// Whether a parent that ended in `state` releases the continuation
    /// (`false`: it is cancelled).
    pub fn releases(self, state: JobState) -> bool {
        match self {
            ContinueOn::Success => state == JobState::Succeeded,
            ContinueOn::AnyEnd => state.is_finished(),
        }
    }
}

impl FromStr for ContinueOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "success" => Ok(ContinueOn::Success),
            "any_end" => Ok(ContinueOn::AnyEnd),
            other => Err(format!("unknown continuation condition `{other}`")),
        }
    }
}

/// What an insert did with one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Inserted {
    /// The job's id: the new job's, or for a duplicate the id of the job
    /// holding its unique key.
    pub id: JobId,
    /// Whether nothing was stored because another job holds the unique key
    /// (an earlier job, or an earlier one of the same batch).
    pub duplicate: bool,
}

impl Inserted {
    /// A job stored under `id`.
    pub fn new(id: JobId) -> Self {
        Self {
            id,
            duplicate: false,
        }
    }

    /// A duplicate of the job `id`, which holds the key.
    pub fn duplicate_of(id: JobId) -> Self {
        Self {
            id,
            duplicate: true,
        }
    }
}

/// The trace context of the span that enqueued a job, as a W3C Trace Context
/// propagator writes it (`traceparent`, and `tracestate` when there is one),
/// stored with the job so that each of its runs continues that trace, in any
/// process. Written and read with the `opentelemetry` feature; without it
/// jobs carry none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceContext(std::collections::BTreeMap<String, String>);

impl TraceContext {
    /// A context of these header fields (names lowercase).
    pub fn new(fields: std::collections::BTreeMap<String, String>) -> Self {
        Self(fields)
    }

    /// The value of a field (`traceparent`, say).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// Every field, by name.
    pub fn fields(&self) -> &std::collections::BTreeMap<String, String> {
        &self.0
    }

    /// Sets a field.
    pub fn insert(&mut self, field: impl Into<String>, value: impl Into<String>) {
        self.0.insert(field.into(), value.into());
    }

    /// Whether it has no field.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The recurring schedule and tick a job was enqueued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecurringOrigin {
    /// The recurring job's id (`add_or_update`'s first argument).
    pub id: String,
    /// The instant of the tick this run stands for.
    pub scheduled_for: Timestamp,
}

impl RecurringOrigin {
    /// The origin of a run of recurring job `id` for the tick `scheduled_for`.
    pub fn new(id: String, scheduled_for: Timestamp) -> Self {
        Self { id, scheduled_for }
    }
}

/// The fence of one claimed attempt: a job id and the token its claim was
/// given. Every write about a running attempt names its claim, and the store
/// ignores a write whose claim is no longer current, so a stale server's late
/// completion changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The claimed job.
    pub job_id: JobId,
    /// Increases on every claim of this job; only the latest claim is current.
    pub token: i64,
}

/// A stored job, as a store returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobRow {
    /// The job's id.
    pub id: JobId,
    /// The stored name of its job type.
    pub name: String,
    /// The queue it waits in.
    pub queue: String,
    /// Its arguments, as stored.
    pub args: serde_json::Value,
    /// Its current state.
    pub state: JobState,
    /// Higher runs first.
    pub priority: i16,
    /// How many attempts have started (0 before the first claim).
    pub attempt: i32,
    /// How many attempts are allowed.
    pub max_attempts: i32,
    /// When it is, or was, runnable.
    pub run_at: Timestamp,
    /// When it was inserted.
    pub created_at: Timestamp,
    /// When it reached a finished state.
    pub finished_at: Option<Timestamp>,
    /// Store machinery, not for applications: the current claim's token
    /// (see [`Claim`]), 0 before the first claim. Stores fence an attempt's
    /// writes with it; it says nothing about the job a user would act on.
    pub claim_token: i64,
    /// The server holding it, while `processing`.
    pub server_id: Option<ServerId>,
    /// Store machinery, not for applications: when the current lease runs
    /// out, while `processing`. Servers renew it while the attempt runs; one
    /// that lapsed is rescued by another server.
    pub lease_expires_at: Option<Timestamp>,
    /// Whether a user asked to cancel it while it runs.
    pub cancel_requested: bool,
    /// The error of the latest failed attempt.
    pub last_error: Option<String>,
    /// The recurring schedule and tick that enqueued it, if any.
    pub recurring: Option<RecurringOrigin>,
    /// What the running (or last) attempt reported of its progress, as
    /// `JobContext::set_progress` wrote it: `{"percent": 40, "message": "..."}`.
    /// Cleared when the job is claimed again.
    pub progress: Option<serde_json::Value>,
    /// Since when the running (or last) attempt was stuck: past its timeout, asked to
    /// stop, and still not returned (a job that blocks its thread cannot be
    /// stopped; see [`JobOptions::timeout`](crate::JobOptions::timeout)). Its server
    /// keeps its lease and its slot until it returns. Cleared when the job
    /// is claimed again.
    pub stuck_since: Option<Timestamp>,
    /// The attempt limit its enqueue set, if any (see [`NewJob::timeout`]).
    pub timeout: Option<Duration>,
    /// The backoff its enqueue set, if any (see [`NewJob::backoff`]).
    pub backoff: Option<Backoff>,
    /// The trace context of its enqueue, if any (see [`NewJob::trace_context`]).
    pub trace_context: Option<TraceContext>,
    /// Its unique key as stored (with the period's number, if it has a
    /// period), if it is unique; see [`UniqueKey::key`].
    pub unique_key: Option<String>,
    /// What it returned when it succeeded (the `T` of its `Result<T, E>`,
    /// as JSON), if anything; kept as long as the job. Read it typed with
    /// [`Jobs::output`](crate::Jobs::output).
    pub output: Option<serde_json::Value>,
    /// The job it continues, if it is a continuation (see [`NewJob::after`]).
    pub after: Option<After>,
    /// The batch it is a member of, if any (see [`NewBatch`](crate::NewBatch)).
    pub batch: Option<crate::BatchId>,
    /// Its key limit, if it has one (see [`NewJob::limit_key`]).
    pub limit_key: Option<LimitKey>,
}

impl JobRow {
    /// A row as a store reads it back: the given fields, and for the others
    /// a job that was never claimed (priority 0, attempt 0 of the default
    /// attempts, runnable at `created_at`). Stores set the remaining public
    /// fields from their columns.
    pub fn new(
        id: JobId,
        name: String,
        queue: String,
        args: serde_json::Value,
        state: JobState,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id,
            name,
            queue,
            args,
            state,
            priority: 0,
            attempt: 0,
            max_attempts: crate::DEFAULT_MAX_ATTEMPTS,
            run_at: created_at,
            created_at,
            finished_at: None,
            claim_token: 0,
            server_id: None,
            lease_expires_at: None,
            cancel_requested: false,
            last_error: None,
            recurring: None,
            progress: None,
            stuck_since: None,
            timeout: None,
            backoff: None,
            trace_context: None,
            unique_key: None,
            output: None,
            after: None,
            batch: None,
            limit_key: None,
        }
    }

    /// The fence of the current attempt.
    pub fn claim(&self) -> Claim {
        Claim {
            job_id: self.id,
            token: self.claim_token,
        }
    }
}

/// A page of listed jobs (`Store::job_list`, `Jobs::list_page`): the jobs,
/// newest first, and, for a scan bounded by `JobListParams::scan`, where it
/// stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobPage {
    /// The jobs that matched, newest first, at most the page size.
    pub jobs: Vec<JobRow>,
    /// The oldest job examined, when the scan ended at its bound before the
    /// page was full: jobs older than it were not examined, and the search
    /// continues with it as `before`. `None` when the page is full (the next
    /// page is before its last job), when nothing older is left to examine,
    /// or without a bound. It may be set when nothing older exists either
    /// (the scan stopped on the last job exactly).
    pub scanned_to: Option<JobId>,
}

impl JobPage {
    /// A page; stores use this to build what they return.
    pub fn new(jobs: Vec<JobRow>, scanned_to: Option<JobId>) -> Self {
        Self { jobs, scanned_to }
    }
}

/// One transition in a job's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobEvent {
    /// When it happened, on the store's clock.
    pub at: Timestamp,
    /// The state the job entered.
    pub state: JobState,
    /// The attempt number at the time.
    pub attempt: i32,
    /// The server that made the transition, if a server made it.
    pub server_id: Option<ServerId>,
    /// The error or reason, for failures, retries, cancellations and rescues.
    pub error: Option<String>,
}

impl JobEvent {
    /// An event; stores use this to build rows they read back.
    pub fn new(
        at: Timestamp,
        state: JobState,
        attempt: i32,
        server_id: Option<ServerId>,
        error: Option<String>,
    ) -> Self {
        Self {
            at,
            state,
            attempt,
            server_id,
            error,
        }
    }
}

/// A job with its whole history, oldest event first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobDetail {
    /// The job.
    pub job: JobRow,
    /// Every transition it went through.
    pub history: Vec<JobEvent>,
}

impl JobDetail {
    /// A job with its history.
    pub fn new(job: JobRow, history: Vec<JobEvent>) -> Self {
        Self { job, history }
    }
}

/// How many jobs are in one state in one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueStateCount {
    /// The queue.
    pub queue: String,
    /// The state.
    pub state: JobState,
    /// How many jobs.
    pub count: i64,
}

impl QueueStateCount {
    /// A count.
    pub fn new(queue: String, state: JobState, count: i64) -> Self {
        Self {
            queue,
            state,
            count,
        }
    }
}

/// How many jobs ended in one minute, succeeded or failed for good (see
/// [`Jobs::throughput`](crate::Jobs::throughput)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ThroughputMinute {
    /// The minute's start.
    pub minute: Timestamp,
    /// Jobs that succeeded in it.
    pub succeeded: i64,
    /// Jobs that failed for good in it.
    pub failed: i64,
}

impl ThroughputMinute {
    /// The counts of the minute starting at `minute`.
    pub fn new(minute: Timestamp, succeeded: i64, failed: i64) -> Self {
        Self {
            minute,
            succeeded,
            failed,
        }
    }
}

/// A queue the store knows, whether it is paused, and how long its oldest
/// due job has waited (see [`Jobs::queues`](crate::Jobs::queues)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueInfo {
    /// The queue's name.
    pub queue: String,
    /// Whether it is paused: its jobs wait, and no server claims them.
    pub paused: bool,
    /// Since when, if it is paused.
    pub paused_at: Option<Timestamp>,
    /// The run time of its oldest due job (`enqueued`, or `scheduled` whose
    /// time has come), on the store's clock: since when its longest-waiting
    /// runnable job has waited for a server. `None` if no job of it is due.
    pub oldest_due: Option<Timestamp>,
    /// Its cluster-wide limits (none unless set with
    /// [`Queues::set_limits`](crate::Queues::set_limits)).
    pub limits: QueueLimits,
}

impl QueueInfo {
    /// The queue `queue`, paused since `paused_at` if that is `Some`, with
    /// no due job.
    pub fn new(queue: String, paused_at: Option<Timestamp>) -> Self {
        Self {
            queue,
            paused: paused_at.is_some(),
            paused_at,
            oldest_due: None,
            limits: QueueLimits::none(),
        }
    }

    /// The same queue, with the limits `limits`.
    pub fn limits(mut self, limits: QueueLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same queue, its oldest due job due since `oldest_due`.
    pub fn oldest_due(mut self, oldest_due: Option<Timestamp>) -> Self {
        self.oldest_due = oldest_due;
        self
    }
}

/// Why due jobs wait with no server to run them (see [`StrandedJobs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StrandedReason {
    /// No live server serves the queue: start one with the queue in its
    /// `queues`, or move the jobs to a served queue.
    NoServerForQueue,
    /// Live servers serve the queue, but none of them registers the job's
    /// name: the job was renamed (pin the old name with
    /// `#[job(name = "...")]`), its code is not deployed yet, or another
    /// service enqueued it for a server that is not running.
    NoServerKnowsName,
}

impl StrandedReason {
    /// A short description, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StrandedReason::NoServerForQueue => "no live server serves the queue",
            StrandedReason::NoServerKnowsName => {
                "no live server serving the queue registers the job's name"
            }
        }
    }
}

impl fmt::Display for StrandedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Jobs of one queue and name that are due (runnable now and not claimed)
/// but that no live server can take: they wait until a server that serves
/// the queue and registers the name starts. A server never discards a job it
/// does not know (another server may know it), so these wait forever unless
/// someone acts: see [`StrandedReason`] for what to do, or cancel or delete
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StrandedJobs {
    /// The queue they wait in.
    pub queue: String,
    /// Their stored job name.
    pub name: String,
    /// Why no live server can take them.
    pub reason: StrandedReason,
    /// How many are due.
    pub count: i64,
    /// When the oldest of them became due (its run time).
    pub oldest_due: Timestamp,
}

impl StrandedJobs {
    /// A group; stores use this to build what they read back.
    pub fn new(
        queue: String,
        name: String,
        reason: StrandedReason,
        count: i64,
        oldest_due: Timestamp,
    ) -> Self {
        Self {
            queue,
            name,
            reason,
            count,
            oldest_due,
        }
    }
}

/// The `stale_after` of a record that names none: ten heartbeats at the
/// default interval, what a server with default settings writes (and what
/// PostgreSQL assumes of records written before the column existed).
const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(100);

/// A running server, as its heartbeats describe it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ServerInfo {
    /// The identity of this start.
    pub id: ServerId,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The queues it serves, in the order it claims them.
    pub queues: Vec<String>,
    /// How many jobs it runs at once.
    pub concurrency: u32,
    /// The stored names of the jobs it can run.
    pub job_names: Vec<String>,
    /// How many attempts it was running at its latest heartbeat.
    pub running: u32,
    /// How many jobs it held claimed ahead of a free slot at its latest
    /// heartbeat: `processing` in the store, leased and renewed, but not
    /// started (see `ServerBuilder::prefetch`).
    pub claimed_ahead: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// Its latest heartbeat (set by the store).
    pub heartbeat_at: Timestamp,
    /// How long after its latest heartbeat the server counts itself dead,
    /// written with each heartbeat: ten heartbeat intervals, at least a
    /// minute (the age past which servers remove each other's records).
    /// Readers judge a server stale by its own figure, since servers
    /// sharing a store may beat at different intervals.
    pub stale_after: Duration,
}

impl ServerInfo {
    /// The record of server `id`, started at `started_at`, with nothing else
    /// known yet; `heartbeat_at` is overwritten by the store on each heartbeat.
    pub fn new(id: ServerId, started_at: Timestamp) -> Self {
        Self {
            id,
            host: String::new(),
            pid: 0,
            queues: Vec::new(),
            concurrency: 0,
            job_names: Vec::new(),
            running: 0,
            claimed_ahead: 0,
            started_at,
            heartbeat_at: started_at,
            stale_after: DEFAULT_STALE_AFTER,
        }
    }

    /// Whether the server is stale at `now`: silent for longer than its
    /// `stale_after`, so it stopped or cannot reach the store.
    pub fn is_stale_at(&self, now: Timestamp) -> bool {
        (now - self.heartbeat_at)
            .to_std()
            .is_ok_and(|silent| silent > self.stale_after)
    }

    /// The host it runs on.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Its process id.
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = pid;
        self
    }

    /// The queues it serves, in the order it claims them.
    pub fn queues(mut self, queues: Vec<String>) -> Self {
        self.queues = queues;
        self
    }

    /// How many jobs it runs at once.
    pub fn concurrency(mut self, concurrency: u32) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// The stored names of the jobs it can run.
    pub fn job_names(mut self, names: Vec<String>) -> Self {
        self.job_names = names;
        self
    }

    /// How many attempts it runs.
    pub fn running(mut self, running: u32) -> Self {
        self.running = running;
        self
    }

    /// How many jobs it holds claimed ahead of a free slot.
    pub fn claimed_ahead(mut self, claimed_ahead: u32) -> Self {
        self.claimed_ahead = claimed_ahead;
        self
    }

    /// How long after its latest heartbeat it counts itself dead.
    pub fn stale_after(mut self, stale_after: Duration) -> Self {
        self.stale_after = stale_after;
        self
    }
}

/// The known servers and, summed over them, what they hold, as of each
/// one's latest heartbeat (so up to a heartbeat interval old): what
/// [`Jobs::server_summary`](crate::Jobs::server_summary) returns.
///
/// The store's `processing` count covers the jobs running, the jobs claimed
/// ahead, and for a moment the jobs whose outcome is being written; jobs of
/// a server that died stay `processing` until their leases run out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ServerSummary {
    /// Every known server, most recently started first.
    pub servers: Vec<ServerInfo>,
    /// Attempts running, over all servers.
    pub running: u64,
    /// Jobs claimed ahead of a free slot, over all servers.
    pub claimed_ahead: u64,
    /// Slots, over all servers: how many jobs they can run at once.
    pub concurrency: u64,
}

impl ServerSummary {
    /// The summary of these servers.
    pub fn new(servers: Vec<ServerInfo>) -> Self {
        let sum = |f: fn(&ServerInfo) -> u32| servers.iter().map(|s| u64::from(f(s))).sum();
        Self {
            running: sum(|s| s.running),
            claimed_ahead: sum(|s| s.claimed_ahead),
            concurrency: sum(|s| s.concurrency),
            servers,
        }
    }
}
