//! What each [`Store`](super::Store) operation takes and answers.
//!
//! Each operation takes one `#[non_exhaustive]` params struct, so a new field
//! breaks no caller (River's `*Params`). A constructor takes only what has no
//! sensible default, and only when each argument's type says its role (a
//! `JobId`, a `ServerId`, a `Vec<Claim>`); everything else is set by name with
//! a method, and stays at its documented default otherwise:
//!
//! ```
//! # use jobs_core::{JobClaimParams, ServerId};
//! # use std::time::Duration;
//! let claim = JobClaimParams::new(ServerId::new())
//!     .queues(["mail", "default"])
//!     .names(["send_invoice"])
//!     .limit(16)
//!     .lease(Duration::from_secs(30));
//! # let _ = claim;
//! ```

use std::time::Duration;

use crate::model::{Claim, JobId, JobState, NewJob, ServerId, ServerInfo, Timestamp};
use crate::recurring::{RecurringDef, RecurringRow};
use crate::DEFAULT_QUEUE;

/// How many jobs a maintenance call (rescue, prune, due recurring jobs)
/// handles at most, unless told otherwise.
pub const MAINTENANCE_BATCH: u32 = 1000;

/// Insert jobs, all or none.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobInsertManyParams {
    /// The jobs, in order; their ids come back in the same order.
    pub jobs: Vec<NewJob>,
}

impl JobInsertManyParams {
    /// Insert these jobs.
    pub fn new(jobs: Vec<NewJob>) -> Self {
        Self { jobs }
    }
}

/// Claim up to `limit` runnable jobs (`enqueued`, or `scheduled` whose time
/// has come) in one step: earlier queues in `queues` first, then higher
/// priority, then earlier run time, then lower id. Each claimed job becomes
/// `processing` with `attempt + 1`, a new claim token and a lease.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobClaimParams {
    /// The claiming server.
    pub server_id: ServerId,
    /// The queues to take from, in order of preference (default `["default"]`).
    pub queues: Vec<String>,
    /// The stored names this server can run; other jobs are left for servers
    /// that can (default: none, so set it).
    pub names: Vec<String>,
    /// At most this many jobs (default 1).
    pub limit: u32,
    /// How long the lease lasts before it must be renewed (default 30 s).
    pub lease: Duration,
}

impl JobClaimParams {
    /// A claim by this server, with the defaults above.
    pub fn new(server_id: ServerId) -> Self {
        Self {
            server_id,
            queues: vec![DEFAULT_QUEUE.to_owned()],
            names: Vec::new(),
            limit: 1,
            lease: Duration::from_secs(30),
        }
    }

    /// The queues to take from, in order of preference.
    pub fn queues<Q: Into<String>>(mut self, queues: impl IntoIterator<Item = Q>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// The stored names this server can run.
    pub fn names<N: Into<String>>(mut self, names: impl IntoIterator<Item = N>) -> Self {
        self.names = names.into_iter().map(Into::into).collect();
        self
    }

    /// At most this many jobs.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// How long the lease lasts before it must be renewed.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }
}

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
    /// This attempt ended this way.
    pub fn new(claim: Claim, outcome: JobOutcome) -> Self {
        Self { claim, outcome }
    }
}

/// Record how attempts ended. A completion whose claim is no longer current
/// (the job was rescued and claimed again, or cancelled) changes nothing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobCompleteManyParams {
    /// The server reporting.
    pub server_id: ServerId,
    /// The completions.
    pub completions: Vec<JobCompletion>,
}

impl JobCompleteManyParams {
    /// This server reports these completions.
    pub fn new(server_id: ServerId, completions: Vec<JobCompletion>) -> Self {
        Self {
            server_id,
            completions,
        }
    }
}

/// Extend the leases of running attempts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseRenewManyParams {
    /// The server holding them.
    pub server_id: ServerId,
    /// The attempts.
    pub claims: Vec<Claim>,
    /// The new lease, from now on the store's clock.
    pub lease: Duration,
}

impl LeaseRenewManyParams {
    /// This server renews these claims for `lease` from now.
    pub fn new(server_id: ServerId, claims: Vec<Claim>, lease: Duration) -> Self {
        Self {
            server_id,
            claims,
            lease,
        }
    }
}

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

/// Record the progress running attempts reported. An update whose claim is
/// no longer current changes nothing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobProgressManyParams {
    /// The server reporting.
    pub server_id: ServerId,
    /// Each attempt's claim and its latest progress.
    pub updates: Vec<(Claim, serde_json::Value)>,
}

impl JobProgressManyParams {
    /// This server reports these updates.
    pub fn new(server_id: ServerId, updates: Vec<(Claim, serde_json::Value)>) -> Self {
        Self { server_id, updates }
    }
}

/// Make the jobs of dead servers runnable again: every `processing` job whose
/// lease ran out is retried (`scheduled` now, the error saying the lease
/// expired), or `failed` when it has no attempts left, or `cancelled` when a
/// user had asked to cancel it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseRescueParams {
    /// At most this many jobs per call (default [`MAINTENANCE_BATCH`]).
    pub limit: u32,
}

impl Default for LeaseRescueParams {
    fn default() -> Self {
        Self {
            limit: MAINTENANCE_BATCH,
        }
    }
}

impl LeaseRescueParams {
    /// A rescue of at most [`MAINTENANCE_BATCH`] jobs.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many jobs.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// Read one job with its history.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobGetParams {
    /// The job.
    pub id: JobId,
}

impl JobGetParams {
    /// Read this job.
    pub fn new(id: JobId) -> Self {
        Self { id }
    }
}

/// List jobs, newest first, filtered and paged by id. `Jobs::list` takes it
/// under the name `ListJobs`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobListParams {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// Only jobs with ids below this one (the next page after it).
    pub before: Option<JobId>,
    /// At most this many (default 50).
    pub limit: u32,
}

impl Default for JobListParams {
    fn default() -> Self {
        Self {
            state: None,
            queue: None,
            before: None,
            limit: 50,
        }
    }
}

impl JobListParams {
    /// The first page of all jobs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this state.
    pub fn state(mut self, state: JobState) -> Self {
        self.state = Some(state);
        self
    }

    /// Only this queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// The page after this id (pass the last id of the previous page).
    pub fn before(mut self, id: JobId) -> Self {
        self.before = Some(id);
        self
    }

    /// Page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// Count jobs by queue and state. Pairs with no jobs are left out.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct JobCountParams {}

impl JobCountParams {
    /// Count every queue and state.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Run a finished job again (`failed`, `cancelled` or `deleted`): it becomes
/// `enqueued` with its attempts reset. Its history is kept.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobRetryParams {
    /// The job.
    pub id: JobId,
}

impl JobRetryParams {
    /// Retry this job.
    pub fn new(id: JobId) -> Self {
        Self { id }
    }
}

/// Cancel a job that has not finished. A waiting job is `cancelled` at once;
/// a running one is asked to stop (its server sees the request when it
/// renews the lease).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobCancelParams {
    /// The job.
    pub id: JobId,
    /// Why, kept in its history (default "cancelled by a user").
    pub reason: String,
}

impl JobCancelParams {
    /// Cancel this job.
    pub fn new(id: JobId) -> Self {
        Self {
            id,
            reason: "cancelled by a user".to_owned(),
        }
    }

    /// Why, kept in its history.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The job was waiting and is now `cancelled`.
    Cancelled,
    /// The job is running; its server was asked to stop it.
    Requested,
}

/// Delete a job that is not running: it becomes `deleted` (kept until
/// retention removes it).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobDeleteParams {
    /// The job.
    pub id: JobId,
}

impl JobDeleteParams {
    /// Delete this job.
    pub fn new(id: JobId) -> Self {
        Self { id }
    }
}

/// How long finished jobs are kept before they are pruned, by how they
/// ended. The server's pruner removes them in bounded batches.
///
/// ```
/// # use jobs_core::Retention;
/// # use std::time::Duration;
/// const DAY: Duration = Duration::from_secs(24 * 3600);
/// let keep_failures_longer = Retention::default().failed(30 * DAY);
/// assert_eq!(keep_failures_longer.succeeded, DAY);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// `succeeded` jobs (default 24 h).
    pub succeeded: Duration,
    /// `deleted` and `cancelled` jobs (default 24 h).
    pub deleted: Duration,
    /// `failed` jobs (default 7 days).
    pub failed: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        Self {
            succeeded: DAY,
            deleted: DAY,
            failed: DAY * 7,
        }
    }
}

impl Retention {
    /// Keeps `succeeded` jobs this long.
    pub fn succeeded(mut self, age: Duration) -> Self {
        self.succeeded = age;
        self
    }

    /// Keeps `deleted` and `cancelled` jobs this long.
    pub fn deleted(mut self, age: Duration) -> Self {
        self.deleted = age;
        self
    }

    /// Keeps `failed` jobs this long.
    pub fn failed(mut self, age: Duration) -> Self {
        self.failed = age;
        self
    }
}

/// Remove finished jobs older than their [`Retention`], and their history,
/// at most `limit` per call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobPruneParams {
    /// How long each kind of finished job is kept.
    pub retention: Retention,
    /// At most this many jobs per call (default [`MAINTENANCE_BATCH`]).
    pub limit: u32,
}

impl JobPruneParams {
    /// Prune what is past this retention.
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            limit: MAINTENANCE_BATCH,
        }
    }

    /// At most this many jobs per call.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// Record that a server is alive (insert or update its record).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerHeartbeatParams {
    /// The server; `heartbeat_at` is set by the store.
    pub info: ServerInfo,
}

impl ServerHeartbeatParams {
    /// A heartbeat of this server.
    pub fn new(info: ServerInfo) -> Self {
        Self { info }
    }
}

/// List known servers, most recently started first.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerListParams {}

impl ServerListParams {
    /// Every known server.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Forget servers whose heartbeat is older than `stale_after`, and the one
/// named by `id` (a server at its shutdown).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerRemoveParams {
    /// Also remove this server, whatever its heartbeat.
    pub id: Option<ServerId>,
    /// Remove servers silent for longer than this.
    pub stale_after: Duration,
}

impl ServerRemoveParams {
    /// Remove the servers silent for longer than `stale_after`.
    pub fn silent_for(stale_after: Duration) -> Self {
        Self {
            id: None,
            stale_after,
        }
    }

    /// Also remove this server (at its shutdown).
    pub fn and_server(mut self, id: ServerId) -> Self {
        self.id = Some(id);
        self
    }
}

/// Insert a recurring job, or update the one with the same id. A changed
/// schedule or time zone resets `next_run_at` to `None` (the next scheduler
/// pass computes it from the store's clock); other changes keep it, and a
/// call with an unchanged definition changes nothing. Any change bumps the
/// entry's revision. Pausing is kept.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CronUpsertParams {
    /// The definition.
    pub def: RecurringDef,
}

impl CronUpsertParams {
    /// Insert or update this definition.
    pub fn new(def: RecurringDef) -> Self {
        Self { def }
    }
}

/// Remove a recurring job (its past runs stay).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CronRemoveParams {
    /// Its id.
    pub id: String,
}

impl CronRemoveParams {
    /// Remove the recurring job `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// Pause or resume a recurring job (bumping its revision when that changes
/// it). Resuming resets `next_run_at` to `None`, so ticks passed while paused
/// are not run. `NotFound` if there is none.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CronPauseParams {
    /// Its id.
    pub id: String,
    /// Paused or not.
    pub paused: bool,
}

impl CronPauseParams {
    /// Pause the recurring job `id`.
    pub fn pause(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            paused: true,
        }
    }

    /// Resume the recurring job `id`.
    pub fn resume(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            paused: false,
        }
    }
}

/// List every recurring job, by id, with the state and latest error of its
/// latest run.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CronListParams {}

impl CronListParams {
    /// Every recurring job.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The recurring jobs to fire now: not paused, and `next_run_at` unset or at
/// or before the store's clock.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CronDueParams {
    /// At most this many (default [`MAINTENANCE_BATCH`]).
    pub limit: u32,
}

impl Default for CronDueParams {
    fn default() -> Self {
        Self {
            limit: MAINTENANCE_BATCH,
        }
    }
}

impl CronDueParams {
    /// At most [`MAINTENANCE_BATCH`] due entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// What [`Store::cron_due`](super::Store::cron_due) found, and the store's
/// clock when it looked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CronDue {
    /// The store's clock.
    pub now: Timestamp,
    /// The due entries.
    pub due: Vec<RecurringRow>,
}

impl CronDue {
    /// These entries were due at `now`.
    pub fn new(now: Timestamp, due: Vec<RecurringRow>) -> Self {
        Self { now, due }
    }
}

/// Fire a recurring job, atomically and at most once per tick: only if it is
/// not paused, its `next_run_at` still equals `expected_next_run_at` and
/// (when given) its revision still equals `expected_revision` (a
/// compare-and-set), insert `jobs` (unless `skip_if_running` and a job of
/// this recurring id is scheduled, enqueued or processing: then record the
/// skip and insert nothing), record the latest tick and job, and set
/// `next_run_at`.
///
/// ```
/// # use jobs_core::{CronFireParams, Timestamp};
/// # let (read, next): (Option<Timestamp>, Timestamp) = (None, chrono::Utc::now());
/// // Move "nightly" from the tick it was read at to the next, inserting no job:
/// let fire = CronFireParams::new("nightly", read, next).expected_revision(3);
/// # let _ = fire;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CronFireParams {
    /// The recurring job.
    pub id: String,
    /// The `next_run_at` the caller read; the fire is lost if it changed.
    pub expected_next_run_at: Option<Timestamp>,
    /// The revision the caller planned from; the fire is lost if the entry
    /// was changed, paused or resumed since. `None` (the default) skips this check.
    pub expected_revision: Option<i64>,
    /// The new `next_run_at`.
    pub next_run_at: Timestamp,
    /// The runs to insert, their `recurring` origin set (default none).
    pub jobs: Vec<NewJob>,
    /// Skip the runs while an earlier run is unfinished (default `false`).
    pub skip_if_running: bool,
}

impl CronFireParams {
    /// Move `id` from the `next_run_at` the caller read to `next_run_at`,
    /// inserting nothing unless [`CronFireParams::jobs`] says what.
    pub fn new(
        id: impl Into<String>,
        expected_next_run_at: Option<Timestamp>,
        next_run_at: Timestamp,
    ) -> Self {
        Self {
            id: id.into(),
            expected_next_run_at,
            expected_revision: None,
            next_run_at,
            jobs: Vec::new(),
            skip_if_running: false,
        }
    }

    /// Also requires the entry's revision to be unchanged.
    pub fn expected_revision(mut self, revision: i64) -> Self {
        self.expected_revision = Some(revision);
        self
    }

    /// The runs to insert.
    pub fn jobs(mut self, jobs: Vec<NewJob>) -> Self {
        self.jobs = jobs;
        self
    }

    /// Skips the runs while an earlier run is unfinished.
    pub fn skip_if_running(mut self, skip: bool) -> Self {
        self.skip_if_running = skip;
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

/// Enqueue a run of a recurring job now, off schedule, without moving its
/// schedule; the run's tick is the store's clock. `NotFound` if there is none.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CronTriggerParams {
    /// Its id.
    pub id: String,
}

impl CronTriggerParams {
    /// Trigger the recurring job `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}
