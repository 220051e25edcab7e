//! Params and answers of the `cron_*` operations: recurring jobs.

use super::MAINTENANCE_BATCH;
use crate::model::{JobId, NewJob, Timestamp};
use crate::recurring::{RecurringDef, RecurringRow};

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

/// What [`Store::cron_due`](crate::Store::cron_due) found, and the store's
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
    /// The trace context the run continues (see [`NewJob::trace_context`](crate::NewJob::trace_context)).
    pub trace_context: Option<crate::model::TraceContext>,
}

impl CronTriggerParams {
    /// Trigger the recurring job `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            trace_context: None,
        }
    }

    /// The run continues this trace.
    pub fn trace_context(mut self, context: Option<crate::model::TraceContext>) -> Self {
        self.trace_context = context;
        self
    }
}
