//! The `Store` trait: where jobs live. Core knows no SQL; a store knows nothing
//! of how jobs are run. Every store passes the conformance suite
//! (`jobs_core::conformance_tests!`).
//!
//! Calls are batch-shaped (claim many, complete many, insert many) because the
//! cost of a job is dominated by round trips to the store. Each call takes one
//! `#[non_exhaustive]` params struct with a constructor, so a new field breaks
//! no caller.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::model::{
    Claim, JobDetail, JobId, JobRow, JobState, NewJob, QueueStateCount, ServerId, ServerInfo,
    Timestamp,
};
use crate::recurring::{RecurringDef, RecurringRow};

/// A boxed, sendable future: what the object-safe [`DynStore`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// What kind of failure a store call met. The server acts on it: `Unavailable`
/// is retried with backoff forever, the others are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store could not be reached or the call timed out; worth retrying.
    Unavailable,
    /// The job is not in a state that allows the call (retrying a running job, say).
    Conflict,
    /// No such job.
    NotFound,
    /// The input was refused (arguments too large, a bad identifier); not worth retrying.
    Invalid,
    /// Anything else.
    Other,
}

/// An error from a store, with a kind that says whether retrying is worthwhile.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// An error of this kind with this message.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }

    /// `NotFound` for a job id.
    pub fn job_not_found(id: JobId) -> Self {
        Self::new(StoreErrorKind::NotFound, format!("job {id} does not exist"))
    }
}

/// Raised by a store when new jobs may be runnable, so idle servers wake at
/// once instead of waiting for their next poll. A counter in a watch channel:
/// a wake-up that lands between a claim and the wait is not lost.
#[derive(Clone)]
pub struct JobSignal {
    sender: Arc<watch::Sender<u64>>,
}

impl JobSignal {
    /// A new signal nobody has raised yet.
    pub fn new() -> Self {
        Self {
            sender: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Wakes every subscriber.
    pub fn notify(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves after the next `notify`.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}

impl Default for JobSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for JobSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSignal").finish_non_exhaustive()
    }
}

macro_rules! params {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }
        impl $name {
            /// The params, field by field.
            #[allow(clippy::too_many_arguments, clippy::new_without_default)]
            pub fn new($($field: $ty),*) -> Self { Self { $($field),* } }
        }
    };
}

params!(
    /// Insert jobs, all or none.
    JobInsertManyParams {
        /// The jobs, in order; their ids come back in the same order.
        jobs: Vec<NewJob>,
    }
);

params!(
    /// Claim up to `limit` runnable jobs (`enqueued`, or `scheduled` whose time
    /// has come) in one step: earlier queues in `queues` first, then higher
    /// priority, then earlier run time, then lower id. Each claimed job becomes
    /// `processing` with `attempt + 1`, a new claim token and a lease.
    JobClaimParams {
        /// The claiming server.
        server_id: ServerId,
        /// The queues to take from, in order of preference.
        queues: Vec<String>,
        /// The stored names this server can run; other jobs are left for servers that can.
        names: Vec<String>,
        /// At most this many jobs.
        limit: u32,
        /// How long the lease lasts before it must be renewed.
        lease: Duration,
    }
);

/// How an attempt ended, as the server reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobOutcome {
    /// It succeeded: `succeeded`.
    Succeeded,
    /// It failed and will be tried again after `after`: `scheduled`.
    Retry {
        /// The attempt's error.
        error: String,
        /// The backoff before the next attempt.
        after: Duration,
    },
    /// It failed for good: `failed`.
    Failed {
        /// The attempt's error.
        error: String,
    },
    /// The job asked to run again later; the attempt is not counted: `scheduled`.
    Snooze {
        /// When to run it again.
        after: Duration,
    },
    /// Cancelled by a user or by the job: `cancelled`.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// Handed back unfinished (graceful shutdown): runnable again at once,
    /// the attempt not counted: `enqueued`.
    Released {
        /// Why.
        reason: String,
    },
}

/// One attempt's end, fenced by its claim.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobCompletion {
    /// The attempt.
    pub claim: Claim,
    /// How it ended.
    pub outcome: JobOutcome,
}

impl JobCompletion {
    /// A completion.
    pub fn new(claim: Claim, outcome: JobOutcome) -> Self {
        Self { claim, outcome }
    }
}

params!(
    /// Record how attempts ended. A completion whose claim is no longer
    /// current (the job was rescued and claimed again, or cancelled) changes
    /// nothing.
    JobCompleteManyParams {
        /// The server reporting.
        server_id: ServerId,
        /// The completions.
        completions: Vec<JobCompletion>,
    }
);

params!(
    /// Extend the leases of running attempts.
    LeaseRenewManyParams {
        /// The server holding them.
        server_id: ServerId,
        /// The attempts.
        claims: Vec<Claim>,
        /// The new lease, from now on the store's clock.
        lease: Duration,
    }
);

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseStatus {
    /// Still ours, renewed.
    Held,
    /// Still ours and renewed, but a user asked to cancel the job.
    CancelRequested,
    /// No longer ours (rescued, claimed again, finished): the attempt must stop
    /// and its result will be ignored.
    Lost,
}

params!(
    /// Record the progress running attempts reported. An update whose claim
    /// is no longer current changes nothing.
    JobProgressManyParams {
        /// The server reporting.
        server_id: ServerId,
        /// Each attempt's claim and its latest progress.
        updates: Vec<(Claim, serde_json::Value)>,
    }
);

params!(
    /// Make the jobs of dead servers runnable again: every `processing` job
    /// whose lease ran out is retried (`scheduled` now, the error saying the
    /// lease expired), or `failed` when it has no attempts left, or
    /// `cancelled` when a user had asked to cancel it.
    LeaseRescueParams {
        /// At most this many jobs per call.
        limit: u32,
    }
);

params!(
    /// Read one job with its history.
    JobGetParams {
        /// The job.
        id: JobId,
    }
);

params!(
    /// List jobs, newest first, filtered and paged by id.
    JobListParams {
        /// Only jobs in this state.
        state: Option<JobState>,
        /// Only jobs in this queue.
        queue: Option<String>,
        /// Only jobs with ids below this one (the next page after it).
        before: Option<JobId>,
        /// At most this many.
        limit: u32,
    }
);

params!(
    /// Count jobs by queue and state. Pairs with no jobs are left out.
    JobCountParams {}
);

params!(
    /// Run a finished job again (`failed`, `cancelled` or `deleted`): it
    /// becomes `enqueued` with its attempts reset. Its history is kept.
    JobRetryParams {
        /// The job.
        id: JobId,
    }
);

params!(
    /// Cancel a job that has not finished. A waiting job is `cancelled` at
    /// once; a running one is asked to stop (its server sees the request when
    /// it renews the lease).
    JobCancelParams {
        /// The job.
        id: JobId,
        /// Why, kept in its history.
        reason: String,
    }
);

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The job was waiting and is now `cancelled`.
    Cancelled,
    /// The job is running; its server was asked to stop it.
    Requested,
}

params!(
    /// Delete a job that is not running: it becomes `deleted` (kept until
    /// retention removes it).
    JobDeleteParams {
        /// The job.
        id: JobId,
    }
);

params!(
    /// Remove finished jobs and their history, at most `limit` per call.
    JobPruneParams {
        /// Remove `succeeded` jobs finished before this age.
        succeeded_older_than: Duration,
        /// Remove `deleted` and `cancelled` jobs finished before this age.
        deleted_older_than: Duration,
        /// Remove `failed` jobs finished before this age.
        failed_older_than: Duration,
        /// At most this many jobs per call.
        limit: u32,
    }
);

params!(
    /// Record that a server is alive (insert or update its record).
    ServerHeartbeatParams {
        /// The server; `heartbeat_at` is set by the store.
        info: ServerInfo,
    }
);

params!(
    /// List known servers, most recently started first.
    ServerListParams {}
);

params!(
    /// Forget a server (at shutdown) and servers whose heartbeat is older than
    /// `stale_after`.
    ServerRemoveParams {
        /// The server to remove, if any.
        id: Option<ServerId>,
        /// Also remove servers silent for longer than this.
        stale_after: Duration,
    }
);

params!(
    /// Insert a recurring job, or update the one with the same id. A changed
    /// schedule or time zone resets `next_run_at` to `None` (the next scheduler
    /// pass computes it from the store's clock); other changes keep it, and a
    /// call with an unchanged definition changes nothing. Any change bumps the
    /// entry's revision. Pausing is kept.
    CronUpsertParams {
        /// The definition.
        def: RecurringDef,
    }
);

params!(
    /// Remove a recurring job (its past runs stay).
    CronRemoveParams {
        /// Its id.
        id: String,
    }
);

params!(
    /// Pause or resume a recurring job (bumping its revision when that changes
    /// it). Resuming resets `next_run_at` to `None`, so ticks passed while
    /// paused are not run. `NotFound` if there is none.
    CronPauseParams {
        /// Its id.
        id: String,
        /// Paused or not.
        paused: bool,
    }
);

params!(
    /// List every recurring job, by id, with the state and latest error of
    /// its latest run.
    CronListParams {}
);

params!(
    /// The recurring jobs to fire now: not paused, and `next_run_at` unset or
    /// at or before the store's clock.
    CronDueParams {
        /// At most this many.
        limit: u32,
    }
);

/// What [`Store::cron_due`] found, and the store's clock when it looked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CronDue {
    /// The store's clock.
    pub now: Timestamp,
    /// The due entries.
    pub due: Vec<RecurringRow>,
}

impl CronDue {
    /// A result.
    pub fn new(now: Timestamp, due: Vec<RecurringRow>) -> Self {
        Self { now, due }
    }
}

/// Fire a recurring job, atomically and at most once per tick: only if it
/// is not paused, its `next_run_at` still equals `expected_next_run_at` and
/// (when given) its revision still equals `expected_revision` (a
/// compare-and-set), insert `jobs` (unless `skip_if_running` and a job of this
/// recurring id is scheduled, enqueued or processing: then record the skip
/// and insert nothing), record the latest tick and job, and set `next_run_at`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CronFireParams {
    /// The recurring job.
    pub id: String,
    /// The `next_run_at` the caller read; the fire is lost if it changed.
    pub expected_next_run_at: Option<Timestamp>,
    /// The revision the caller planned from; the fire is lost if the entry
    /// was changed, paused or resumed since. `None` skips this check.
    pub expected_revision: Option<i64>,
    /// The new `next_run_at`.
    pub next_run_at: Timestamp,
    /// The runs to insert (their `recurring` origin set).
    pub jobs: Vec<NewJob>,
    /// Skip the runs while an earlier run is unfinished.
    pub skip_if_running: bool,
}

impl CronFireParams {
    /// The params, without a revision check.
    pub fn new(
        id: String,
        expected_next_run_at: Option<Timestamp>,
        next_run_at: Timestamp,
        jobs: Vec<NewJob>,
        skip_if_running: bool,
    ) -> Self {
        Self {
            id,
            expected_next_run_at,
            expected_revision: None,
            next_run_at,
            jobs,
            skip_if_running,
        }
    }

    /// Also requires the entry's revision to be unchanged.
    pub fn expected_revision(mut self, revision: i64) -> Self {
        self.expected_revision = Some(revision);
        self
    }
}

/// What a fire did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CronFireOutcome {
    /// `next_run_at` moved on and these jobs were inserted (maybe none).
    Fired(Vec<JobId>),
    /// `next_run_at` moved on; the runs were skipped because an earlier run is unfinished.
    SkippedRunning,
    /// Another server fired it first, or it was changed or removed: nothing changed.
    Lost,
}

params!(
    /// Enqueue a run of a recurring job now, off schedule, without moving its
    /// schedule; the run's tick is the store's clock. `NotFound` if there is none.
    CronTriggerParams {
        /// Its id.
        id: String,
    }
);

/// Where jobs live. Implemented by `jobs_core::MemoryStore` and
/// `jobs_postgres::PgStore`; every implementation passes the conformance
/// suite (`jobs_core::conformance_tests!`).
///
/// Times given as durations are measured on the store's own clock (the
/// database clock for PostgreSQL), so servers on hosts with drifting clocks agree.
pub trait Store: Send + Sync + 'static {
    /// Insert jobs; their ids in the same order. All or none.
    fn job_insert_many(
        &self,
        p: JobInsertManyParams,
    ) -> impl Future<Output = StoreResult<Vec<JobId>>> + Send;

    /// Claim runnable jobs (see [`JobClaimParams`]).
    fn job_claim(&self, p: JobClaimParams)
        -> impl Future<Output = StoreResult<Vec<JobRow>>> + Send;

    /// Record how attempts ended; for each completion, whether it was applied
    /// (`false`: its claim was stale and nothing changed).
    fn job_complete_many(
        &self,
        p: JobCompleteManyParams,
    ) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;

    /// Renew leases; the status of each claim, in the same order.
    fn lease_renew_many(
        &self,
        p: LeaseRenewManyParams,
    ) -> impl Future<Output = StoreResult<Vec<LeaseStatus>>> + Send;

    /// Record running attempts' progress; for each update, whether it was
    /// applied (`false`: its claim was stale).
    fn job_progress_many(
        &self,
        p: JobProgressManyParams,
    ) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;

    /// Make jobs with expired leases runnable again; the ids rescued.
    fn lease_rescue(
        &self,
        p: LeaseRescueParams,
    ) -> impl Future<Output = StoreResult<Vec<JobId>>> + Send;

    /// One job with its history, or `None`.
    fn job_get(
        &self,
        p: JobGetParams,
    ) -> impl Future<Output = StoreResult<Option<JobDetail>>> + Send;

    /// A page of jobs, newest first.
    fn job_list(&self, p: JobListParams) -> impl Future<Output = StoreResult<Vec<JobRow>>> + Send;

    /// Counts by queue and state.
    fn job_count(
        &self,
        p: JobCountParams,
    ) -> impl Future<Output = StoreResult<Vec<QueueStateCount>>> + Send;

    /// Retry a `failed`, `cancelled` or `deleted` job by hand. `NotFound`, or
    /// `Conflict` in any other state.
    fn job_retry(&self, p: JobRetryParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// Cancel an unfinished job. `NotFound`, or `Conflict` if it has finished.
    fn job_cancel(
        &self,
        p: JobCancelParams,
    ) -> impl Future<Output = StoreResult<CancelOutcome>> + Send;

    /// Delete a job that is not running. `NotFound`, or `Conflict` if it is running.
    fn job_delete(&self, p: JobDeleteParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// Remove old finished jobs; how many were removed.
    fn job_prune(&self, p: JobPruneParams) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Insert or refresh a server's record.
    fn server_heartbeat(
        &self,
        p: ServerHeartbeatParams,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The known servers.
    fn server_list(
        &self,
        p: ServerListParams,
    ) -> impl Future<Output = StoreResult<Vec<ServerInfo>>> + Send;

    /// Forget a stopped server and stale ones; how many were removed.
    fn server_remove(&self, p: ServerRemoveParams)
        -> impl Future<Output = StoreResult<u64>> + Send;

    /// Insert or update a recurring job.
    fn cron_upsert(&self, p: CronUpsertParams) -> impl Future<Output = StoreResult<()>> + Send {
        let _ = p;
        async { Err(unsupported("recurring jobs")) }
    }

    /// Remove a recurring job; whether it existed.
    fn cron_remove(&self, p: CronRemoveParams) -> impl Future<Output = StoreResult<bool>> + Send {
        let _ = p;
        async { Err(unsupported("recurring jobs")) }
    }

    /// Pause or resume a recurring job.
    fn cron_pause(&self, p: CronPauseParams) -> impl Future<Output = StoreResult<()>> + Send {
        let _ = p;
        async { Err(unsupported("recurring jobs")) }
    }

    /// Every recurring job.
    fn cron_list(
        &self,
        p: CronListParams,
    ) -> impl Future<Output = StoreResult<Vec<RecurringRow>>> + Send {
        let _ = p;
        async { Err(unsupported("recurring jobs")) }
    }

    /// The recurring jobs due now, with the store's clock.
    fn cron_due(&self, p: CronDueParams) -> impl Future<Output = StoreResult<CronDue>> + Send {
        let _ = p;
        async { Err(unsupported("recurring jobs")) }
    }

    /// Fire a recurring job once for a tick (see [`CronFireParams`]).
    fn cron_fire(
        &self,
        p: CronFireParams,
    ) -> impl Future<Output = StoreResult<CronFireOutcome>> + Send {
        let _ = p;
        async { Err(unsupported("recurring jobs")) }
    }

    /// Enqueue a run of a recurring job now.
    fn cron_trigger(
        &self,
        p: CronTriggerParams,
    ) -> impl Future<Output = StoreResult<JobId>> + Send {
        let _ = p;
        async { Err(unsupported("recurring jobs")) }
    }

    /// The signal this store raises when jobs may have become runnable, if it
    /// has one. Servers always poll as well; the signal only makes them faster.
    fn job_signal(&self) -> Option<JobSignal> {
        None
    }
}

/// The object-safe face of [`Store`], implemented for every `Store`, so that
/// `Jobs` and `Server` hold any store without a type parameter. One box per
/// call, not per job: the calls are batch-shaped.
pub trait DynStore: Send + Sync + 'static {
    /// See [`Store::job_insert_many`].
    fn job_insert_many(&self, p: JobInsertManyParams) -> BoxFuture<'_, StoreResult<Vec<JobId>>>;
    /// See [`Store::job_claim`].
    fn job_claim(&self, p: JobClaimParams) -> BoxFuture<'_, StoreResult<Vec<JobRow>>>;
    /// See [`Store::job_complete_many`].
    fn job_complete_many(&self, p: JobCompleteManyParams) -> BoxFuture<'_, StoreResult<Vec<bool>>>;
    /// See [`Store::lease_renew_many`].
    fn lease_renew_many(
        &self,
        p: LeaseRenewManyParams,
    ) -> BoxFuture<'_, StoreResult<Vec<LeaseStatus>>>;
    /// See [`Store::job_progress_many`].
    fn job_progress_many(&self, p: JobProgressManyParams) -> BoxFuture<'_, StoreResult<Vec<bool>>>;
    /// See [`Store::lease_rescue`].
    fn lease_rescue(&self, p: LeaseRescueParams) -> BoxFuture<'_, StoreResult<Vec<JobId>>>;
    /// See [`Store::job_get`].
    fn job_get(&self, p: JobGetParams) -> BoxFuture<'_, StoreResult<Option<JobDetail>>>;
    /// See [`Store::job_list`].
    fn job_list(&self, p: JobListParams) -> BoxFuture<'_, StoreResult<Vec<JobRow>>>;
    /// See [`Store::job_count`].
    fn job_count(&self, p: JobCountParams) -> BoxFuture<'_, StoreResult<Vec<QueueStateCount>>>;
    /// See [`Store::job_retry`].
    fn job_retry(&self, p: JobRetryParams) -> BoxFuture<'_, StoreResult<()>>;
    /// See [`Store::job_cancel`].
    fn job_cancel(&self, p: JobCancelParams) -> BoxFuture<'_, StoreResult<CancelOutcome>>;
    /// See [`Store::job_delete`].
    fn job_delete(&self, p: JobDeleteParams) -> BoxFuture<'_, StoreResult<()>>;
    /// See [`Store::job_prune`].
    fn job_prune(&self, p: JobPruneParams) -> BoxFuture<'_, StoreResult<u64>>;
    /// See [`Store::server_heartbeat`].
    fn server_heartbeat(&self, p: ServerHeartbeatParams) -> BoxFuture<'_, StoreResult<()>>;
    /// See [`Store::server_list`].
    fn server_list(&self, p: ServerListParams) -> BoxFuture<'_, StoreResult<Vec<ServerInfo>>>;
    /// See [`Store::server_remove`].
    fn server_remove(&self, p: ServerRemoveParams) -> BoxFuture<'_, StoreResult<u64>>;
    /// See [`Store::cron_upsert`].
    fn cron_upsert(&self, p: CronUpsertParams) -> BoxFuture<'_, StoreResult<()>>;
    /// See [`Store::cron_remove`].
    fn cron_remove(&self, p: CronRemoveParams) -> BoxFuture<'_, StoreResult<bool>>;
    /// See [`Store::cron_pause`].
    fn cron_pause(&self, p: CronPauseParams) -> BoxFuture<'_, StoreResult<()>>;
    /// See [`Store::cron_list`].
    fn cron_list(&self, p: CronListParams) -> BoxFuture<'_, StoreResult<Vec<RecurringRow>>>;
    /// See [`Store::cron_due`].
    fn cron_due(&self, p: CronDueParams) -> BoxFuture<'_, StoreResult<CronDue>>;
    /// See [`Store::cron_fire`].
    fn cron_fire(&self, p: CronFireParams) -> BoxFuture<'_, StoreResult<CronFireOutcome>>;
    /// See [`Store::cron_trigger`].
    fn cron_trigger(&self, p: CronTriggerParams) -> BoxFuture<'_, StoreResult<JobId>>;
    /// See [`Store::job_signal`].
    fn job_signal(&self) -> Option<JobSignal>;
}

fn unsupported(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Other,
        format!("this store does not support {what}"),
    )
}

macro_rules! forward {
    ($($method:ident($params:ty) -> $out:ty;)*) => {
        impl<S: Store> DynStore for S {
            $(fn $method(&self, p: $params) -> BoxFuture<'_, StoreResult<$out>> {
                Box::pin(Store::$method(self, p))
            })*
            fn job_signal(&self) -> Option<JobSignal> {
                Store::job_signal(self)
            }
        }
    };
}

forward! {
    job_insert_many(JobInsertManyParams) -> Vec<JobId>;
    job_claim(JobClaimParams) -> Vec<JobRow>;
    job_complete_many(JobCompleteManyParams) -> Vec<bool>;
    lease_renew_many(LeaseRenewManyParams) -> Vec<LeaseStatus>;
    job_progress_many(JobProgressManyParams) -> Vec<bool>;
    lease_rescue(LeaseRescueParams) -> Vec<JobId>;
    job_get(JobGetParams) -> Option<JobDetail>;
    job_list(JobListParams) -> Vec<JobRow>;
    job_count(JobCountParams) -> Vec<QueueStateCount>;
    job_retry(JobRetryParams) -> ();
    job_cancel(JobCancelParams) -> CancelOutcome;
    job_delete(JobDeleteParams) -> ();
    job_prune(JobPruneParams) -> u64;
    server_heartbeat(ServerHeartbeatParams) -> ();
    server_list(ServerListParams) -> Vec<ServerInfo>;
    server_remove(ServerRemoveParams) -> u64;
    cron_upsert(CronUpsertParams) -> ();
    cron_remove(CronRemoveParams) -> bool;
    cron_pause(CronPauseParams) -> ();
    cron_list(CronListParams) -> Vec<RecurringRow>;
    cron_due(CronDueParams) -> CronDue;
    cron_fire(CronFireParams) -> CronFireOutcome;
    cron_trigger(CronTriggerParams) -> JobId;
}
