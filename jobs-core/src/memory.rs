//! `MemoryStore`: the embedded default store. It keeps everything in the
//! process's memory, behind one mutex, and is **not durable**: jobs are lost
//! when the process exits. It serves the quickstart, users' tests, and as the
//! reference implementation of the [`Store`] contract (it passes the same
//! conformance suite as the PostgreSQL store).
//!
//! # The clock
//!
//! The store reads time as `start_wall + (tokio::time::Instant::now() -
//! start_instant)`, both captured when the store is created. On a normal
//! runtime that is the wall clock. On a paused tokio clock
//! (`tokio::time::pause()`, `#[tokio::test(start_paused = true)]`) the store's
//! time moves with tokio's: delays, backoff, leases and retention elapse as
//! soon as the runtime auto-advances, so tests of retries and schedules run in
//! no real time. The clock never goes backwards, even when the store is
//! created on one runtime and used on another.
//!
//! # Cost
//!
//! Runnable jobs are indexed by queue, priority and run time, so a claim skips
//! jobs that are not due priority by priority instead of scanning them;
//! leases and finished jobs are indexed by time for the rescuer and retention;
//! counts are kept up to date on every transition. The mutex is never held
//! across an `.await` (no method awaits while holding it).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{
    JobDetail, JobEvent, JobId, JobRow, JobState, NewJob, QueueStateCount, RecurringOrigin, RunAt,
    ServerId, ServerInfo, Timestamp,
};
use crate::recurring::RecurringRow;
use crate::store::{
    CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams, CronListParams,
    CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams, JobCancelParams,
    JobClaimParams, JobCompleteManyParams, JobCountParams, JobDeleteParams, JobGetParams,
    JobInsertManyParams, JobListParams, JobOutcome, JobProgressManyParams, JobPruneParams,
    JobRetryParams, JobSignal, LeaseRenewManyParams, LeaseRescueParams, LeaseStatus,
    ServerHeartbeatParams, ServerListParams, ServerRemoveParams, Store, StoreError, StoreErrorKind,
    StoreResult,
};

/// An in-memory [`Store`], for the quickstart, for development and for tests.
///
/// **Not durable**: jobs, their history and server records live in this
/// process's memory and are lost when it exits. Use the PostgreSQL store in
/// production.
///
/// Cloning is cheap and every clone shares the same jobs, so a `Jobs` client
/// and a `Server` can be given clones of one store. All methods are safe to
/// call concurrently; a claim is atomic, so a job is never given to two
/// claimers at once.
///
/// # The clock
///
/// The store reads time as `start_wall + (tokio::time::Instant::now() -
/// start_instant)`, both captured when the store is created. On a normal
/// runtime that is the wall clock. On a paused tokio clock
/// (`tokio::time::pause()`, `#[tokio::test(start_paused = true)]`) the
/// store's time moves with tokio's, so delays, backoff, leases and retention
/// elapse as soon as the runtime auto-advances, and tests of retries and
/// schedules take no real time. The clock never goes backwards.
///
/// ```
/// # async fn demo() {
/// use jobs_core::MemoryStore;
/// let store = MemoryStore::new();
/// let jobs = jobs_core::Jobs::new(store.clone());
/// # let _ = jobs;
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Clock,
    state: Mutex<State>,
    signal: JobSignal,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            clock: Clock::new(),
            state: Mutex::new(State::default()),
            signal: JobSignal::new(),
        }
    }
}

impl MemoryStore {
    /// An empty store whose clock starts now (see [the clock](MemoryStore#the-clock)).
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the state, with the store's current time, under the lock.
    /// Never called across an `.await`.
    fn with_state<R>(&self, f: impl FnOnce(&mut State, Timestamp) -> R) -> R {
        let mut state = self.lock();
        let now = state.now(&self.inner.clock);
        f(&mut state, now)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written:
        // every transition is computed before it is applied.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes idle servers if a call made jobs runnable.
    fn wake(&self, runnable: bool) {
        if runnable {
            self.inner.signal.notify();
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("jobs", &state.jobs.len())
            .field("servers", &state.servers.len())
            .finish_non_exhaustive()
    }
}

/// The store's clock: wall time at creation plus tokio time elapsed since.
#[derive(Debug)]
struct Clock {
    start_wall: Timestamp,
    start_instant: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Self {
            start_wall: Utc::now(),
            start_instant: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> Timestamp {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.start_instant);
        plus(self.start_wall, elapsed)
    }
}

/// `t + d`, saturating at the end of time (a huge delay means "never").
fn plus(t: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating at the beginning of time (a huge age means "nothing is that old").
fn minus(t: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A job and its history.
#[derive(Debug)]
struct StoredJob {
    row: JobRow,
    history: Vec<JobEvent>,
}

impl StoredJob {
    /// Appends an event for the state the job is now in.
    fn record(&mut self, at: Timestamp, server_id: Option<ServerId>, error: Option<String>) {
        self.history.push(JobEvent::new(
            at,
            self.row.state,
            self.row.attempt,
            server_id,
            error,
        ));
    }

    /// Ends the current attempt's hold on the job.
    fn release_lease(&mut self) {
        self.row.server_id = None;
        self.row.lease_expires_at = None;
        self.row.cancel_requested = false;
    }
}

/// Waiting jobs of one queue in claim order: priority descending, then run
/// time, then id.
type WaitingKey = (Reverse<i16>, Timestamp, JobId);

/// Secondary indexes, kept in step with the jobs by [`State::update`].
#[derive(Debug, Default)]
struct Index {
    /// `enqueued` and `scheduled` jobs, by queue, in claim order.
    waiting: HashMap<String, BTreeSet<WaitingKey>>,
    /// `processing` jobs by lease expiry.
    leases: BTreeSet<(Timestamp, JobId)>,
    /// Finished jobs by the time they finished.
    finished: BTreeSet<(Timestamp, JobId)>,
    /// Every job by state, for listing.
    by_state: HashMap<JobState, BTreeSet<JobId>>,
    /// Non-zero counts by queue and state.
    counts: HashMap<(String, JobState), i64>,
}

impl Index {
    fn add(&mut self, row: &JobRow) {
        match row.state {
            JobState::Enqueued | JobState::Scheduled => {
                self.waiting.entry(row.queue.clone()).or_default().insert((
                    Reverse(row.priority),
                    row.run_at,
                    row.id,
                ));
            }
            JobState::Processing => {
                if let Some(expires) = row.lease_expires_at {
                    self.leases.insert((expires, row.id));
                }
            }
            _ => {}
        }
        if row.state.is_finished() {
            if let Some(finished) = row.finished_at {
                self.finished.insert((finished, row.id));
            }
        }
        self.by_state.entry(row.state).or_default().insert(row.id);
        *self
            .counts
            .entry((row.queue.clone(), row.state))
            .or_default() += 1;
    }

    fn remove(&mut self, row: &JobRow) {
        match row.state {
            JobState::Enqueued | JobState::Scheduled => {
                if let Some(set) = self.waiting.get_mut(&row.queue) {
                    set.remove(&(Reverse(row.priority), row.run_at, row.id));
                    if set.is_empty() {
                        self.waiting.remove(&row.queue);
                    }
                }
            }
            JobState::Processing => {
                if let Some(expires) = row.lease_expires_at {
                    self.leases.remove(&(expires, row.id));
                }
            }
            _ => {}
        }
        if let Some(finished) = row.finished_at {
            self.finished.remove(&(finished, row.id));
        }
        if let Some(set) = self.by_state.get_mut(&row.state) {
            set.remove(&row.id);
        }
        let key = (row.queue.clone(), row.state);
        if let Some(count) = self.counts.get_mut(&key) {
            *count -= 1;
            if *count <= 0 {
                self.counts.remove(&key);
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// The latest time handed out, so the clock never goes backwards.
    last_now: Option<Timestamp>,
    /// The last id given to a job.
    last_id: i64,
    jobs: BTreeMap<JobId, StoredJob>,
    index: Index,
    servers: HashMap<ServerId, ServerInfo>,
    /// Recurring jobs by id.
    recurring: BTreeMap<String, RecurringRow>,
}

impl State {
    fn now(&mut self, clock: &Clock) -> Timestamp {
        let now = match self.last_now {
            Some(last) => clock.now().max(last),
            None => clock.now(),
        };
        self.last_now = Some(now);
        now
    }

    /// Changes a job, keeping the indexes in step.
    fn update<R>(&mut self, id: JobId, f: impl FnOnce(&mut StoredJob) -> R) -> Option<R> {
        let job = self.jobs.get_mut(&id)?;
        self.index.remove(&job.row);
        let result = f(job);
        self.index.add(&job.row);
        Some(result)
    }

    fn get(&self, id: JobId) -> StoreResult<&StoredJob> {
        self.jobs
            .get(&id)
            .ok_or_else(|| StoreError::job_not_found(id))
    }

    fn insert_many(&mut self, now: Timestamp, p: JobInsertManyParams) -> Vec<JobId> {
        let mut ids = Vec::with_capacity(p.jobs.len());
        for new in p.jobs {
            let run_at = match new.run_at {
                RunAt::After(delay) => plus(now, delay),
                RunAt::At(at) => at,
                // `RunAt` is non-exhaustive only for other crates; anything
                // unknown here is "now".
                _ => now,
            };
            let state = if run_at > now {
                JobState::Scheduled
            } else {
                JobState::Enqueued
            };
            self.last_id += 1;
            let id = JobId(self.last_id);
            let mut job = StoredJob {
                row: JobRow {
                    id,
                    name: new.name,
                    queue: new.queue,
                    args: new.args,
                    state,
                    priority: new.priority,
                    attempt: 0,
                    max_attempts: new.max_attempts,
                    run_at,
                    created_at: now,
                    finished_at: None,
                    claim_token: 0,
                    server_id: None,
                    lease_expires_at: None,
                    cancel_requested: false,
                    last_error: None,
                    recurring: new.recurring,
                    progress: None,
                },
                history: Vec::new(),
            };
            job.record(now, None, None);
            self.index.add(&job.row);
            self.jobs.insert(id, job);
            ids.push(id);
        }
        ids
    }

    /// The ids of up to `limit` runnable jobs, in claim order.
    fn pick(&self, now: Timestamp, p: &JobClaimParams) -> Vec<JobId> {
        let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
        let names: HashSet<&str> = p.names.iter().map(String::as_str).collect();
        let mut seen_queues = HashSet::new();
        let mut picked = Vec::new();
        for queue in &p.queues {
            if picked.len() >= limit {
                break;
            }
            if !seen_queues.insert(queue.as_str()) {
                continue;
            }
            let Some(waiting) = self.index.waiting.get(queue) else {
                continue;
            };
            let mut from = Bound::Unbounded;
            'priorities: loop {
                let mut next_priority = None;
                for &(Reverse(priority), run_at, id) in waiting.range((from, Bound::Unbounded)) {
                    if run_at > now {
                        // Within one priority jobs are in run-time order, so
                        // nothing else at this priority is due: go to the next.
                        next_priority = priority.checked_sub(1);
                        if next_priority.is_none() {
                            break 'priorities;
                        }
                        break;
                    }
                    if names.contains(self.jobs[&id].row.name.as_str()) {
                        picked.push(id);
                        if picked.len() >= limit {
                            break 'priorities;
                        }
                    }
                }
                match next_priority {
                    Some(lower) => {
                        from = Bound::Included((
                            Reverse(lower),
                            DateTime::<Utc>::MIN_UTC,
                            JobId(i64::MIN),
                        ));
                    }
                    None => break,
                }
            }
        }
        picked
    }

    fn claim(&mut self, now: Timestamp, p: JobClaimParams) -> Vec<JobRow> {
        let ids = self.pick(now, &p);
        let lease_expires_at = plus(now, p.lease);
        ids.into_iter()
            .filter_map(|id| {
                self.update(id, |job| {
                    let row = &mut job.row;
                    row.state = JobState::Processing;
                    row.attempt = row.attempt.saturating_add(1);
                    row.claim_token += 1;
                    row.server_id = Some(p.server_id);
                    row.lease_expires_at = Some(lease_expires_at);
                    row.cancel_requested = false;
                    row.progress = None;
                    job.record(now, Some(p.server_id), None);
                    job.row.clone()
                })
            })
            .collect()
    }

    /// Whether `claim` is the current attempt of a running job.
    fn holds(&self, job_id: JobId, token: i64) -> bool {
        self.jobs.get(&job_id).is_some_and(|job| {
            job.row.state == JobState::Processing && job.row.claim_token == token
        })
    }

    /// Applies the completions; whether each applied, and whether any made a
    /// job runnable now.
    fn complete_many(&mut self, now: Timestamp, p: JobCompleteManyParams) -> (Vec<bool>, bool) {
        let server = Some(p.server_id);
        let mut runnable = false;
        let applied = p
            .completions
            .into_iter()
            .map(|completion| {
                let claim = completion.claim;
                if !self.holds(claim.job_id, claim.token) {
                    return false;
                }
                self.update(claim.job_id, |job| {
                    let cancel_requested = job.row.cancel_requested;
                    job.release_lease();
                    let row = &mut job.row;
                    let error = match completion.outcome {
                        JobOutcome::Succeeded => {
                            row.state = JobState::Succeeded;
                            row.finished_at = Some(now);
                            None
                        }
                        JobOutcome::Retry { error, after } => {
                            row.state = JobState::Scheduled;
                            row.run_at = plus(now, after);
                            row.last_error = Some(error.clone());
                            runnable |= row.run_at <= now;
                            Some(error)
                        }
                        JobOutcome::Failed { error } => {
                            row.state = JobState::Failed;
                            row.finished_at = Some(now);
                            row.last_error = Some(error.clone());
                            Some(error)
                        }
                        JobOutcome::Snooze { after } => {
                            row.state = JobState::Scheduled;
                            row.run_at = plus(now, after);
                            row.attempt = (row.attempt - 1).max(0);
                            runnable |= row.run_at <= now;
                            None
                        }
                        JobOutcome::Cancelled { reason } => {
                            row.state = JobState::Cancelled;
                            row.finished_at = Some(now);
                            Some(reason)
                        }
                        // A cancel requested meanwhile outlives the
                        // hand-back, as it outlives a rescue.
                        JobOutcome::Released { reason } if cancel_requested => {
                            row.state = JobState::Cancelled;
                            row.finished_at = Some(now);
                            Some(format!("cancelled by a user; {reason}"))
                        }
                        JobOutcome::Released { reason } => {
                            row.state = JobState::Enqueued;
                            row.run_at = now;
                            row.attempt = (row.attempt - 1).max(0);
                            runnable = true;
                            Some(reason)
                        }
                        // `JobOutcome` is non-exhaustive only for other
                        // crates; a new outcome must be handled above.
                        #[allow(unreachable_patterns)]
                        other => unreachable!("unhandled outcome {other:?}"),
                    };
                    job.record(now, server, error);
                })
                .is_some()
            })
            .collect();
        (applied, runnable)
    }

    fn lease_renew_many(&mut self, now: Timestamp, p: LeaseRenewManyParams) -> Vec<LeaseStatus> {
        let expires = plus(now, p.lease);
        p.claims
            .into_iter()
            .map(|claim| {
                if !self.holds(claim.job_id, claim.token) {
                    return LeaseStatus::Lost;
                }
                self.update(claim.job_id, |job| {
                    job.row.lease_expires_at = Some(expires);
                    if job.row.cancel_requested {
                        LeaseStatus::CancelRequested
                    } else {
                        LeaseStatus::Held
                    }
                })
                .unwrap_or(LeaseStatus::Lost)
            })
            .collect()
    }

    fn job_progress_many(&mut self, p: JobProgressManyParams) -> Vec<bool> {
        p.updates
            .into_iter()
            .map(|(claim, progress)| {
                self.holds(claim.job_id, claim.token)
                    && self
                        .update(claim.job_id, |job| job.row.progress = Some(progress))
                        .is_some()
            })
            .collect()
    }

    /// Rescues expired leases; the ids, and whether any job became runnable.
    fn lease_rescue(&mut self, now: Timestamp, p: LeaseRescueParams) -> (Vec<JobId>, bool) {
        let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
        let expired: Vec<JobId> = self
            .index
            .leases
            .iter()
            .take_while(|(expires, _)| *expires < now)
            .take(limit)
            .map(|&(_, id)| id)
            .collect();
        let mut runnable = false;
        for &id in &expired {
            self.update(id, |job| {
                let server = job
                    .row
                    .server_id
                    .map_or_else(|| "unknown".to_owned(), |s| s.to_string());
                let error = format!(
                    "lease expired: server {server} stopped renewing it (attempt {})",
                    job.row.attempt
                );
                let cancel_requested = job.row.cancel_requested;
                job.release_lease();
                let row = &mut job.row;
                if cancel_requested {
                    // The user's cancel outlives the server that was asked to carry it out.
                    row.state = JobState::Cancelled;
                    row.finished_at = Some(now);
                } else if row.attempt >= row.max_attempts {
                    row.state = JobState::Failed;
                    row.finished_at = Some(now);
                } else {
                    row.state = JobState::Scheduled;
                    row.run_at = now;
                    runnable = true;
                }
                row.last_error = Some(error.clone());
                job.record(now, None, Some(error));
            });
        }
        (expired, runnable)
    }

    fn job_list(&self, p: &JobListParams) -> Vec<JobRow> {
        let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
        let upper = p.before.map_or(Bound::Unbounded, Bound::Excluded);
        let matches_queue = |row: &JobRow| p.queue.as_ref().is_none_or(|q| *q == row.queue);
        match p.state {
            Some(state) => {
                let Some(ids) = self.index.by_state.get(&state) else {
                    return Vec::new();
                };
                ids.range((Bound::Unbounded, upper))
                    .rev()
                    .map(|id| &self.jobs[id].row)
                    .filter(|row| matches_queue(row))
                    .take(limit)
                    .cloned()
                    .collect()
            }
            None => self
                .jobs
                .range((Bound::Unbounded, upper))
                .rev()
                .map(|(_, job)| &job.row)
                .filter(|row| matches_queue(row))
                .take(limit)
                .cloned()
                .collect(),
        }
    }

    fn job_count(&self) -> Vec<QueueStateCount> {
        let mut counts: Vec<QueueStateCount> = self
            .index
            .counts
            .iter()
            .filter(|(_, &count)| count > 0)
            .map(|((queue, state), &count)| QueueStateCount::new(queue.clone(), *state, count))
            .collect();
        let order = |state: JobState| JobState::ALL.iter().position(|s| *s == state);
        counts.sort_by(|a, b| {
            a.queue
                .cmp(&b.queue)
                .then_with(|| order(a.state).cmp(&order(b.state)))
        });
        counts
    }

    fn job_retry(&mut self, now: Timestamp, id: JobId) -> StoreResult<()> {
        let state = self.get(id)?.row.state;
        if !matches!(
            state,
            JobState::Failed | JobState::Cancelled | JobState::Deleted
        ) {
            return Err(StoreError::new(
                StoreErrorKind::Conflict,
                format!(
                    "job {id} is {state}; only failed, cancelled or deleted jobs can be retried"
                ),
            ));
        }
        self.update(id, |job| {
            let row = &mut job.row;
            row.state = JobState::Enqueued;
            row.attempt = 0;
            row.run_at = now;
            row.finished_at = None;
            job.release_lease();
            job.record(now, None, None);
        });
        Ok(())
    }

    fn job_cancel(&mut self, now: Timestamp, p: JobCancelParams) -> StoreResult<CancelOutcome> {
        let id = p.id;
        match self.get(id)?.row.state {
            JobState::Scheduled | JobState::Enqueued => {
                self.update(id, |job| {
                    job.row.state = JobState::Cancelled;
                    job.row.finished_at = Some(now);
                    job.record(now, None, Some(p.reason));
                });
                Ok(CancelOutcome::Cancelled)
            }
            JobState::Processing => {
                self.update(id, |job| job.row.cancel_requested = true);
                Ok(CancelOutcome::Requested)
            }
            state => Err(StoreError::new(
                StoreErrorKind::Conflict,
                format!("job {id} is {state} and cannot be cancelled"),
            )),
        }
    }

    fn job_delete(&mut self, now: Timestamp, id: JobId) -> StoreResult<()> {
        match self.get(id)?.row.state {
            JobState::Processing => Err(StoreError::new(
                StoreErrorKind::Conflict,
                format!("job {id} is running and cannot be deleted; cancel it first"),
            )),
            JobState::Deleted => Ok(()),
            _ => {
                self.update(id, |job| {
                    job.row.state = JobState::Deleted;
                    job.row.finished_at = Some(now);
                    job.record(now, None, None);
                });
                Ok(())
            }
        }
    }

    fn job_prune(&mut self, now: Timestamp, p: JobPruneParams) -> u64 {
        let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
        let cutoff = |state: JobState| match state {
            JobState::Succeeded => Some(minus(now, p.retention.succeeded)),
            JobState::Deleted | JobState::Cancelled => Some(minus(now, p.retention.deleted)),
            JobState::Failed => Some(minus(now, p.retention.failed)),
            _ => None,
        };
        let latest = [
            p.retention.succeeded,
            p.retention.deleted,
            p.retention.failed,
        ]
        .into_iter()
        .map(|age| minus(now, age))
        .max()
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let doomed: Vec<JobId> = self
            .index
            .finished
            .iter()
            .take_while(|(finished, _)| *finished <= latest)
            .filter(|&&(finished, id)| {
                cutoff(self.jobs[&id].row.state).is_some_and(|cutoff| finished <= cutoff)
            })
            .take(limit)
            .map(|&(_, id)| id)
            .collect();
        for id in &doomed {
            if let Some(job) = self.jobs.remove(id) {
                self.index.remove(&job.row);
            }
        }
        doomed.len() as u64
    }

    /// A recurring row with its latest run's state and error filled in.
    fn recurring_view(&self, row: &RecurringRow) -> RecurringRow {
        let mut row = row.clone();
        let last = row.last_job_id.and_then(|id| self.jobs.get(&id));
        row.last_job_state = last.map(|job| job.row.state);
        row.last_error = last.and_then(|job| job.row.last_error.clone());
        row
    }

    fn recurring_mut(&mut self, id: &str) -> StoreResult<&mut RecurringRow> {
        self.recurring.get_mut(id).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::NotFound,
                format!("recurring job `{id}` does not exist"),
            )
        })
    }

    /// Whether a run of this recurring job is waiting or running.
    fn recurring_unfinished(&self, id: &str) -> bool {
        [
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
        ]
        .iter()
        .filter_map(|state| self.index.by_state.get(state))
        .flatten()
        .any(|job| {
            self.jobs[job]
                .row
                .recurring
                .as_ref()
                .is_some_and(|origin| origin.id == id)
        })
    }

    fn cron_upsert(&mut self, p: CronUpsertParams) {
        let def = p.def;
        match self.recurring.get_mut(&def.id) {
            Some(row) => {
                if row.def.schedule != def.schedule || row.def.time_zone != def.time_zone {
                    row.next_run_at = None;
                }
                if row.def != def {
                    row.revision += 1;
                    row.def = def;
                }
            }
            None => {
                self.recurring
                    .insert(def.id.clone(), RecurringRow::new(def, false, None));
            }
        }
    }

    fn cron_fire(&mut self, now: Timestamp, p: CronFireParams) -> (CronFireOutcome, bool) {
        match self.recurring.get(&p.id) {
            Some(row)
                if !row.paused
                    && row.next_run_at == p.expected_next_run_at
                    && p.expected_revision.is_none_or(|r| r == row.revision) => {}
            _ => return (CronFireOutcome::Lost, false),
        }
        if p.skip_if_running && !p.jobs.is_empty() && self.recurring_unfinished(&p.id) {
            let row = self.recurring.get_mut(&p.id).expect("checked above");
            row.next_run_at = Some(p.next_run_at);
            row.last_skipped = Some((now, "an earlier run is unfinished".to_owned()));
            return (CronFireOutcome::SkippedRunning, false);
        }
        let tick = p
            .jobs
            .last()
            .and_then(|job| job.recurring.as_ref())
            .map(|origin| origin.scheduled_for);
        let ids = self.insert_many(now, JobInsertManyParams::new(p.jobs));
        let row = self.recurring.get_mut(&p.id).expect("checked above");
        row.next_run_at = Some(p.next_run_at);
        if let Some(&last) = ids.last() {
            row.last_job_id = Some(last);
            row.last_run_at = tick.or(Some(now));
        }
        let runnable = !ids.is_empty();
        (CronFireOutcome::Fired(ids), runnable)
    }

    fn cron_trigger(&mut self, now: Timestamp, id: &str) -> StoreResult<JobId> {
        let mut job: NewJob = self.recurring_mut(id)?.def.job.clone();
        job.run_at = RunAt::Now;
        job.recurring = Some(RecurringOrigin {
            id: id.to_owned(),
            scheduled_for: now,
        });
        let job_id = self.insert_many(now, JobInsertManyParams::new(vec![job]))[0];
        let row = self.recurring_mut(id)?;
        row.last_job_id = Some(job_id);
        row.last_run_at = Some(now);
        Ok(job_id)
    }
}

impl Store for MemoryStore {
    async fn job_insert_many(&self, p: JobInsertManyParams) -> StoreResult<Vec<JobId>> {
        let ids = self.with_state(|state, now| state.insert_many(now, p));
        // Delayed jobs wake servers too: they recompute their next poll.
        self.wake(!ids.is_empty());
        Ok(ids)
    }

    async fn job_claim(&self, p: JobClaimParams) -> StoreResult<Vec<JobRow>> {
        Ok(self.with_state(|state, now| state.claim(now, p)))
    }

    async fn job_complete_many(&self, p: JobCompleteManyParams) -> StoreResult<Vec<bool>> {
        let (applied, runnable) = self.with_state(|state, now| state.complete_many(now, p));
        self.wake(runnable);
        Ok(applied)
    }

    async fn lease_renew_many(&self, p: LeaseRenewManyParams) -> StoreResult<Vec<LeaseStatus>> {
        Ok(self.with_state(|state, now| state.lease_renew_many(now, p)))
    }

    async fn job_progress_many(&self, p: JobProgressManyParams) -> StoreResult<Vec<bool>> {
        Ok(self.lock().job_progress_many(p))
    }

    async fn lease_rescue(&self, p: LeaseRescueParams) -> StoreResult<Vec<JobId>> {
        let (ids, runnable) = self.with_state(|state, now| state.lease_rescue(now, p));
        self.wake(runnable);
        Ok(ids)
    }

    async fn job_get(&self, p: JobGetParams) -> StoreResult<Option<JobDetail>> {
        let state = self.lock();
        Ok(state
            .jobs
            .get(&p.id)
            .map(|job| JobDetail::new(job.row.clone(), job.history.clone())))
    }

    async fn job_list(&self, p: JobListParams) -> StoreResult<Vec<JobRow>> {
        Ok(self.lock().job_list(&p))
    }

    async fn job_count(&self, _p: JobCountParams) -> StoreResult<Vec<QueueStateCount>> {
        Ok(self.lock().job_count())
    }

    async fn job_retry(&self, p: JobRetryParams) -> StoreResult<()> {
        self.with_state(|state, now| state.job_retry(now, p.id))?;
        self.wake(true);
        Ok(())
    }

    async fn job_cancel(&self, p: JobCancelParams) -> StoreResult<CancelOutcome> {
        self.with_state(|state, now| state.job_cancel(now, p))
    }

    async fn job_delete(&self, p: JobDeleteParams) -> StoreResult<()> {
        self.with_state(|state, now| state.job_delete(now, p.id))
    }

    async fn job_prune(&self, p: JobPruneParams) -> StoreResult<u64> {
        Ok(self.with_state(|state, now| state.job_prune(now, p)))
    }

    async fn server_heartbeat(&self, p: ServerHeartbeatParams) -> StoreResult<()> {
        self.with_state(|state, now| {
            let mut info = p.info;
            info.heartbeat_at = now;
            state.servers.insert(info.id, info);
        });
        Ok(())
    }

    async fn server_list(&self, _p: ServerListParams) -> StoreResult<Vec<ServerInfo>> {
        let mut servers: Vec<ServerInfo> = self.lock().servers.values().cloned().collect();
        servers.sort_by(|a, b| {
            b.started_at
                .cmp(&a.started_at)
                .then_with(|| a.id.0.cmp(&b.id.0))
        });
        Ok(servers)
    }

    async fn server_remove(&self, p: ServerRemoveParams) -> StoreResult<u64> {
        Ok(self.with_state(|state, now| {
            let stale_before = minus(now, p.stale_after);
            let before = state.servers.len();
            state
                .servers
                .retain(|id, info| Some(*id) != p.id && info.heartbeat_at >= stale_before);
            (before - state.servers.len()) as u64
        }))
    }

    async fn cron_upsert(&self, p: CronUpsertParams) -> StoreResult<()> {
        self.lock().cron_upsert(p);
        Ok(())
    }

    async fn cron_remove(&self, p: CronRemoveParams) -> StoreResult<bool> {
        Ok(self.lock().recurring.remove(&p.id).is_some())
    }

    async fn cron_pause(&self, p: CronPauseParams) -> StoreResult<()> {
        let mut state = self.lock();
        let row = state.recurring_mut(&p.id)?;
        if row.paused && !p.paused {
            // Ticks passed while paused are not run.
            row.next_run_at = None;
        }
        if row.paused != p.paused {
            row.revision += 1;
        }
        row.paused = p.paused;
        Ok(())
    }

    async fn cron_list(&self, _p: CronListParams) -> StoreResult<Vec<RecurringRow>> {
        let state = self.lock();
        Ok(state
            .recurring
            .values()
            .map(|row| state.recurring_view(row))
            .collect())
    }

    async fn cron_due(&self, p: CronDueParams) -> StoreResult<CronDue> {
        Ok(self.with_state(|state, now| {
            let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
            let due = state
                .recurring
                .values()
                .filter(|row| !row.paused && row.next_run_at.is_none_or(|next| next <= now))
                .take(limit)
                .map(|row| state.recurring_view(row))
                .collect();
            CronDue::new(now, due)
        }))
    }

    async fn cron_fire(&self, p: CronFireParams) -> StoreResult<CronFireOutcome> {
        let (outcome, runnable) = self.with_state(|state, now| state.cron_fire(now, p));
        self.wake(runnable);
        Ok(outcome)
    }

    async fn cron_trigger(&self, p: CronTriggerParams) -> StoreResult<JobId> {
        let id = self.with_state(|state, now| state.cron_trigger(now, &p.id))?;
        self.wake(true);
        Ok(id)
    }

    fn job_signal(&self) -> Option<JobSignal> {
        Some(self.inner.signal.clone())
    }
}

#[cfg(test)]
mod tests {
    //! What the conformance suite cannot check on every store: the paused
    //! clock, the claim index, and edge cases of time arithmetic.

    use super::*;
    use crate::model::{Claim, NewJob};
    use crate::store::JobCompletion;

    fn claim_params(server: ServerId, limit: u32, lease: Duration) -> JobClaimParams {
        JobClaimParams::new(
            server,
            vec!["default".to_owned()],
            vec!["job".to_owned()],
            limit,
            lease,
        )
    }

    async fn insert(store: &MemoryStore, job: NewJob) -> JobId {
        store
            .job_insert_many(JobInsertManyParams::new(vec![job]))
            .await
            .unwrap()[0]
    }

    fn job(run_at: RunAt) -> NewJob {
        let mut job = NewJob::new("job", serde_json::json!({}));
        job.run_at = run_at;
        job
    }

    async fn row(store: &MemoryStore, id: JobId) -> JobRow {
        store
            .job_get(JobGetParams::new(id))
            .await
            .unwrap()
            .unwrap()
            .job
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_paused_tokio_time() {
        let store = MemoryStore::new();
        let id = insert(&store, job(RunAt::After(Duration::from_secs(3600)))).await;
        let server = ServerId::new();
        let claimed = store
            .job_claim(claim_params(server, 10, Duration::from_secs(30)))
            .await
            .unwrap();
        assert!(claimed.is_empty(), "an hour has not passed");

        // On a paused clock this returns at once.
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(started.elapsed() < Duration::from_secs(5));

        let claimed = store
            .job_claim(claim_params(server, 10, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, id);
        let created = claimed[0].created_at;
        let lease = claimed[0].lease_expires_at.unwrap();
        assert!(lease - created >= chrono::Duration::seconds(3630));
    }

    #[tokio::test(start_paused = true)]
    async fn leases_expire_and_backoff_elapses_on_paused_clock() {
        let store = MemoryStore::new();
        let id = insert(&store, job(RunAt::Now)).await;
        let server = ServerId::new();
        let lease = Duration::from_secs(30);
        let claimed = store
            .job_claim(claim_params(server, 1, lease))
            .await
            .unwrap();
        assert!(store
            .lease_rescue(LeaseRescueParams::new(10))
            .await
            .unwrap()
            .is_empty());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(
            store
                .lease_rescue(LeaseRescueParams::new(10))
                .await
                .unwrap(),
            vec![id]
        );
        let again = store
            .job_claim(claim_params(server, 1, lease))
            .await
            .unwrap();
        assert_eq!(again[0].attempt, 2);
        assert!(again[0].claim_token > claimed[0].claim_token);

        let applied = store
            .job_complete_many(JobCompleteManyParams::new(
                server,
                vec![JobCompletion::new(
                    again[0].claim(),
                    JobOutcome::Retry {
                        error: "boom".into(),
                        after: Duration::from_secs(600),
                    },
                )],
            ))
            .await
            .unwrap();
        assert_eq!(applied, vec![true]);
        assert!(store
            .job_claim(claim_params(server, 1, lease))
            .await
            .unwrap()
            .is_empty());
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(
            store
                .job_claim(claim_params(server, 1, lease))
                .await
                .unwrap()[0]
                .attempt,
            3
        );
    }

    #[test]
    fn clock_works_outside_a_runtime_and_never_goes_back() {
        let store = MemoryStore::new();
        let mut state = store.lock();
        let a = state.now(&store.inner.clock);
        let b = state.now(&store.inner.clock);
        assert!(b >= a);
        state.last_now = Some(a + chrono::Duration::hours(1));
        assert_eq!(
            state.now(&store.inner.clock),
            a + chrono::Duration::hours(1)
        );
    }

    #[tokio::test]
    async fn huge_durations_saturate_instead_of_panicking() {
        let store = MemoryStore::new();
        let id = insert(&store, job(RunAt::After(Duration::MAX))).await;
        assert_eq!(row(&store, id).await.state, JobState::Scheduled);
        let server = ServerId::new();
        let other = insert(&store, job(RunAt::Now)).await;
        let claimed = store
            .job_claim(claim_params(server, 10, Duration::MAX))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, other);
        assert_eq!(claimed[0].lease_expires_at, Some(DateTime::<Utc>::MAX_UTC));
        let pruned = store
            .job_prune(JobPruneParams::new(
                Duration::MAX,
                Duration::MAX,
                Duration::MAX,
                100,
            ))
            .await
            .unwrap();
        assert_eq!(pruned, 0);
    }

    #[tokio::test]
    async fn claim_skips_future_jobs_of_every_priority() {
        let store = MemoryStore::new();
        let mut ids = Vec::new();
        for priority in [i16::MAX, 3, 0, i16::MIN] {
            let mut later = job(RunAt::After(Duration::from_secs(3600)));
            later.priority = priority;
            insert(&store, later).await;
            let mut now = job(RunAt::Now);
            now.priority = priority;
            ids.push(insert(&store, now).await);
        }
        let claimed = store
            .job_claim(claim_params(ServerId::new(), 100, Duration::from_secs(30)))
            .await
            .unwrap();
        let claimed: Vec<JobId> = claimed.iter().map(|row| row.id).collect();
        assert_eq!(claimed, ids);
    }

    #[tokio::test]
    async fn indexes_stay_consistent_through_every_transition() {
        let store = MemoryStore::new();
        let server = ServerId::new();
        let lease = Duration::from_secs(30);
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.push(insert(&store, job(RunAt::Now)).await);
        }
        let claimed = store
            .job_claim(claim_params(server, 6, lease))
            .await
            .unwrap();
        let outcomes = [
            JobOutcome::Succeeded,
            JobOutcome::Failed { error: "e".into() },
            JobOutcome::Cancelled { reason: "r".into() },
            JobOutcome::Released { reason: "r".into() },
            JobOutcome::Snooze {
                after: Duration::ZERO,
            },
            JobOutcome::Retry {
                error: "e".into(),
                after: Duration::ZERO,
            },
        ];
        let completions = claimed
            .iter()
            .zip(outcomes)
            .map(|(row, outcome)| JobCompletion::new(row.claim(), outcome))
            .collect();
        store
            .job_complete_many(JobCompleteManyParams::new(server, completions))
            .await
            .unwrap();
        store
            .job_delete(JobDeleteParams::new(ids[0]))
            .await
            .unwrap();
        store.job_retry(JobRetryParams::new(ids[1])).await.unwrap();

        let state = store.lock();
        let mut rebuilt = Index::default();
        for job in state.jobs.values() {
            rebuilt.add(&job.row);
        }
        assert_eq!(rebuilt.waiting, state.index.waiting);
        assert_eq!(rebuilt.leases, state.index.leases);
        assert_eq!(rebuilt.finished, state.index.finished);
        assert_eq!(rebuilt.counts, state.index.counts);
        for (job_state, ids) in &state.index.by_state {
            assert_eq!(
                rebuilt.by_state.get(job_state).cloned().unwrap_or_default(),
                *ids
            );
        }
    }

    #[tokio::test]
    async fn stale_claim_is_lost_for_a_missing_job() {
        let store = MemoryStore::new();
        let statuses = store
            .lease_renew_many(LeaseRenewManyParams::new(
                ServerId::new(),
                vec![Claim {
                    job_id: JobId(42),
                    token: 1,
                }],
                Duration::from_secs(1),
            ))
            .await
            .unwrap();
        assert_eq!(statuses, vec![LeaseStatus::Lost]);
    }

    #[tokio::test]
    async fn recurring_jobs_fire_once_per_tick_and_skip_while_running() {
        use crate::recurring::{RecurringDef, RecurringOptions};
        use crate::Cron;

        let store = MemoryStore::new();
        let def = RecurringDef::new(
            "nightly".to_owned(),
            &Cron::daily(),
            job(RunAt::Now),
            RecurringOptions::new(),
        );
        store
            .cron_upsert(CronUpsertParams::new(def.clone()))
            .await
            .unwrap();
        let due = store.cron_due(CronDueParams::new(10)).await.unwrap();
        assert_eq!(
            due.due.len(),
            1,
            "a new entry is due to get its next_run_at"
        );
        let tick = due.now;
        let run = |expected: Option<Timestamp>| {
            let mut run = job(RunAt::Now);
            run.recurring = Some(RecurringOrigin {
                id: "nightly".to_owned(),
                scheduled_for: tick,
            });
            CronFireParams::new("nightly".to_owned(), expected, tick, vec![run], true)
        };
        let fired = store.cron_fire(run(None)).await.unwrap();
        let CronFireOutcome::Fired(ids) = fired else {
            panic!("expected a fire, got {fired:?}")
        };
        assert_eq!(ids.len(), 1);
        assert_eq!(
            store.cron_fire(run(None)).await.unwrap(),
            CronFireOutcome::Lost,
            "the same tick fires once"
        );
        assert_eq!(
            store.cron_fire(run(Some(tick))).await.unwrap(),
            CronFireOutcome::SkippedRunning,
            "the first run is still enqueued"
        );
        let list = store.cron_list(CronListParams::new()).await.unwrap();
        assert_eq!(list[0].last_job_id, Some(ids[0]));
        assert_eq!(list[0].last_job_state, Some(JobState::Enqueued));
        assert!(list[0].last_skipped.is_some());

        // An unchanged definition keeps next_run_at; pause and resume reset it.
        store.cron_upsert(CronUpsertParams::new(def)).await.unwrap();
        let list = store.cron_list(CronListParams::new()).await.unwrap();
        assert_eq!(list[0].next_run_at, Some(tick));
        let pause = |paused| CronPauseParams::new("nightly".to_owned(), paused);
        store.cron_pause(pause(true)).await.unwrap();
        assert!(store
            .cron_due(CronDueParams::new(10))
            .await
            .unwrap()
            .due
            .is_empty());
        store.cron_pause(pause(false)).await.unwrap();
        let list = store.cron_list(CronListParams::new()).await.unwrap();
        assert_eq!(list[0].next_run_at, None);

        let triggered = store
            .cron_trigger(CronTriggerParams::new("nightly".to_owned()))
            .await
            .unwrap();
        let row = row(&store, triggered).await;
        assert_eq!(row.recurring.unwrap().id, "nightly");
        assert!(store
            .cron_remove(CronRemoveParams::new("nightly".to_owned()))
            .await
            .unwrap());
        assert_eq!(
            store
                .cron_trigger(CronTriggerParams::new("nightly".to_owned()))
                .await
                .unwrap_err()
                .kind(),
            StoreErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn clones_share_jobs_and_signal() {
        let store = MemoryStore::new();
        let clone = store.clone();
        let mut rx = clone.job_signal().unwrap().subscribe();
        rx.mark_unchanged();
        let id = insert(&store, job(RunAt::Now)).await;
        assert!(rx.has_changed().unwrap());
        assert_eq!(row(&clone, id).await.state, JobState::Enqueued);
        assert!(format!("{store:?}").contains("jobs: 1"));
    }
}
