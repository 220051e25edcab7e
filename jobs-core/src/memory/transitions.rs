//! The state changes of jobs: insert, claim, complete, renew a lease, record
//! progress, rescue, and a user's retry, cancel and delete; and pruning.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use chrono::{DateTime, Utc};

use super::clock::{minus, plus};
use super::tables::{StoredJob, Tables};
use crate::limits::{QueueLimits, RateWindow};
use crate::model::{
    After, ContinueOn, Inserted, JobId, JobRow, JobState, NewJob, RunAt, Timestamp,
};
use crate::store::{
    CancelOutcome, JobActMatchingParams, JobActOutcome, JobAction, JobCancelParams, JobClaimParams,
    JobCompleteManyParams, JobInsertManyParams, JobOutcome, JobProgressManyParams, JobPruneParams,
    LeaseRenewManyParams, LeaseReportStuckParams, LeaseRescueParams, LeaseStatus, StoreError,
    StoreErrorKind, StoreResult,
};

/// A continuation's parent that does not exist.
fn parent_not_found(after: &After) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotFound,
        format!(
            "job {} does not exist, so nothing can run after it",
            after.parent
        ),
    )
}

impl Tables {
    pub(super) fn insert_many(
        &mut self,
        now: Timestamp,
        p: JobInsertManyParams,
    ) -> StoreResult<Vec<Inserted>> {
        // All or none: every continuation's parent and key limit is
        // checked first.
        let mut awaiting = Vec::with_capacity(p.jobs.len());
        for new in &p.jobs {
            if let Some(limit) = &new.limit_key {
                limit.check()?;
            }
            awaiting.push(match &new.after {
                Some(after) => {
                    let parent = self
                        .get(after.parent)
                        .map_err(|_| parent_not_found(after))?;
                    after.waits_for(parent.row.state)?
                }
                None => false,
            });
        }
        let inserted = p
            .jobs
            .into_iter()
            .zip(awaiting)
            .map(|(new, awaiting)| self.insert_job(now, new, awaiting))
            .collect();
        Ok(inserted)
    }

    /// Inserts one job, `awaiting` or not (a continuation whose parent has
    /// not ended, or a batch's callback), unless its unique key is held.
    pub(super) fn insert_job(
        &mut self,
        now: Timestamp,
        mut new: NewJob,
        awaiting: bool,
    ) -> Inserted {
        // One fed by a parent that has already succeeded runs on its output now.
        if let (false, Some(after)) = (awaiting, &new.after) {
            let output = self
                .jobs
                .get(&after.parent)
                .and_then(|p| p.row.output.as_ref());
            new.args = after.released_args(&new.args, output);
        }
        let run_at = match new.run_at {
            RunAt::After(delay) => plus(now, delay),
            RunAt::At(at) => at,
            // `RunAt` is non-exhaustive only for other crates; anything
            // unknown here is "now".
            _ => now,
        };
        let unique_key = new.unique.as_ref().map(|unique| unique.stored_for(run_at));
        // Every job of a batch is inserted before the next is looked
        // at, so a key held earlier in the batch is found here too.
        if let Some(holder) = unique_key
            .as_deref()
            .and_then(|key| self.unique_holder(key))
        {
            return Inserted::duplicate_of(holder);
        }
        let state = if awaiting {
            JobState::Awaiting
        } else if run_at > now {
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
                stuck_since: None,
                timeout: new.timeout,
                backoff: new.backoff,
                trace_context: new.trace_context,
                unique_key,
                output: None,
                after: new.after,
                batch: None,
                limit_key: new.limit_key,
            },
            history: Vec::new(),
            unique_held_after: new.unique.map(|u| u.held_after).unwrap_or_default(),
        };
        job.record(now, None, None);
        self.index.add(&job);
        self.jobs.insert(id, job);
        Inserted::new(id)
    }

    /// Releases the continuations whose parent has ended or no longer
    /// exists; how many. Each parent's end releases its own at once, so
    /// this finds only those of parents pruned or lost.
    pub(super) fn release_awaiting(&mut self, now: Timestamp) -> u64 {
        let ended: Vec<(JobId, JobState)> = self
            .index
            .awaiting
            .keys()
            .filter_map(|parent| match self.jobs.get(parent) {
                None => Some((*parent, JobState::Deleted)),
                Some(job) if job.row.state.is_finished() => Some((*parent, job.row.state)),
                Some(_) => None,
            })
            .collect();
        let mut released = 0;
        for (parent, state) in ended {
            released += self
                .index
                .awaiting
                .get(&parent)
                .map_or(0, |c| c.len() as u64);
            self.released |= self.release_continuations(now, parent, state);
        }
        released
    }

    /// Releases the continuations awaiting job `parent`, which just ended in
    /// `state`: runnable at once, or cancelled when they run only on a
    /// success it did not have. Whether any became runnable.
    pub(super) fn release_continuations(
        &mut self,
        now: Timestamp,
        parent: JobId,
        state: JobState,
    ) -> bool {
        let Some(children) = self.index.awaiting.get(&parent).cloned() else {
            return false;
        };
        let output = self.jobs.get(&parent).and_then(|p| p.row.output.clone());
        let mut runnable = false;
        for child in children {
            let released = self.update(child, |job| {
                let on = job.row.after.as_ref().map_or(ContinueOn::AnyEnd, |a| a.on);
                if on.releases(state) {
                    if let Some(after) = &job.row.after {
                        job.row.args = after.released_args(&job.row.args, output.as_ref());
                    }
                    job.row.state = JobState::Enqueued;
                    job.row.run_at = now;
                    job.record(now, None, None);
                    true
                } else {
                    job.row.state = JobState::Cancelled;
                    job.row.finished_at = Some(now);
                    job.record(now, None, Some(After::cancel_reason(parent, state)));
                    false
                }
            });
            runnable |= released == Some(true);
        }
        runnable
    }

    /// The ids of up to `limit` runnable jobs, in claim order.
    fn pick(&self, now: Timestamp, p: &JobClaimParams) -> Vec<JobId> {
        let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
        let names: HashSet<&str> = p.names.iter().map(String::as_str).collect();
        let mut seen_queues = HashSet::new();
        let mut picked = Vec::new();
        // The limit keys of the jobs picked so far, and how many of each.
        let mut keys_taken: HashMap<&str, u32> = HashMap::new();
        for queue in &p.queues {
            if picked.len() >= limit {
                break;
            }
            if !seen_queues.insert(queue.as_str()) {
                continue;
            }
            if !self.paused.is_empty() && self.paused.contains_key(queue) {
                continue;
            }
            let Some(waiting) = self.index.waiting.get(queue) else {
                continue;
            };
            // This queue's jobs end where its own limit is reached, or its
            // cluster-wide limits, or the claim's.
            let queue_limit = [
                p.limit_of(queue).map(u64::from),
                self.limits
                    .get(queue)
                    .map(|(limits, window)| self.cluster_allowance(queue, limits, window, now)),
            ]
            .into_iter()
            .flatten()
            .fold(limit, |limit, own| {
                limit.min(
                    picked
                        .len()
                        .saturating_add(usize::try_from(own).unwrap_or(usize::MAX)),
                )
            });
            if picked.len() >= queue_limit {
                continue;
            }
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
                    let row = &self.jobs[&id].row;
                    if names.contains(row.name.as_str()) && self.key_has_room(row, &mut keys_taken)
                    {
                        picked.push(id);
                        if picked.len() >= queue_limit {
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

    /// Whether the key limit of `row`, if it has one, lets it start now,
    /// counting the jobs with the key already picked by this claim (and then
    /// counting it among them). A job whose key is busy is skipped: it waits
    /// without spending an attempt, and the claim goes on to the next.
    fn key_has_room<'a>(&self, row: &'a JobRow, keys_taken: &mut HashMap<&'a str, u32>) -> bool {
        let Some(limit) = &row.limit_key else {
            return true;
        };
        let running = self
            .index
            .running_keys
            .get(&limit.key)
            .copied()
            .unwrap_or(0);
        let taken = keys_taken.entry(limit.key.as_str()).or_default();
        if running + *taken >= limit.running {
            return false;
        }
        *taken += 1;
        true
    }

    /// How many more jobs of `queue` its cluster-wide limits let start now.
    fn cluster_allowance(
        &self,
        queue: &str,
        limits: &QueueLimits,
        window: &RateWindow,
        now: Timestamp,
    ) -> u64 {
        let running = self
            .index
            .counts
            .get(&(queue.to_owned(), JobState::Processing))
            .copied()
            .unwrap_or(0);
        let by_concurrency = limits
            .concurrency
            .map(|most| u64::from(most).saturating_sub(u64::try_from(running).unwrap_or(0)));
        let by_rate = limits.rate.map(|rate| window.allowance(&rate, now));
        by_concurrency
            .into_iter()
            .chain(by_rate)
            .min()
            .unwrap_or(u64::MAX)
    }

    pub(super) fn claim(&mut self, now: Timestamp, p: JobClaimParams) -> Vec<JobRow> {
        let ids = self.pick(now, &p);
        if !self.limits.is_empty() {
            for id in &ids {
                let queue = &self.jobs[id].row.queue;
                if let Some((
                    QueueLimits {
                        rate: Some(rate), ..
                    },
                    window,
                )) = self.limits.get_mut(queue)
                {
                    window.record(rate, now, 1);
                }
            }
        }
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
                    row.stuck_since = None;
                    job.record(now, Some(p.server_id), None);
                    job.row.clone()
                })
            })
            .collect()
    }

    /// Applies the completions; whether each applied, and whether any made a
    /// job runnable now.
    pub(super) fn complete_many(
        &mut self,
        now: Timestamp,
        p: JobCompleteManyParams,
    ) -> (Vec<bool>, bool) {
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
                    // The jobs waiting for its key can run now.
                    runnable |= job.row.limit_key.is_some();
                    job.release_lease();
                    let row = &mut job.row;
                    let error = match completion.outcome {
                        JobOutcome::Succeeded => {
                            row.state = JobState::Succeeded;
                            row.finished_at = Some(now);
                            row.output = completion.output;
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

    pub(super) fn lease_renew_many(
        &mut self,
        now: Timestamp,
        p: LeaseRenewManyParams,
    ) -> Vec<LeaseStatus> {
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

    pub(super) fn job_progress_many(&mut self, p: JobProgressManyParams) -> Vec<bool> {
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

    pub(super) fn lease_report_stuck(
        &mut self,
        now: Timestamp,
        p: LeaseReportStuckParams,
    ) -> Vec<bool> {
        let server = Some(p.server_id);
        p.reports
            .into_iter()
            .map(|(claim, reason)| {
                self.holds(claim.job_id, claim.token)
                    && self
                        .update(claim.job_id, |job| {
                            job.row.stuck_since.get_or_insert(now);
                            job.record(now, server, Some(reason));
                        })
                        .is_some()
            })
            .collect()
    }

    /// Rescues expired leases; the ids, and whether any job became runnable.
    pub(super) fn lease_rescue(
        &mut self,
        now: Timestamp,
        p: LeaseRescueParams,
    ) -> (Vec<JobId>, bool) {
        let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
        let except: std::collections::HashSet<JobId> = p.except.into_iter().collect();
        let expired: Vec<JobId> = self
            .index
            .leases
            .iter()
            .take_while(|(expires, _)| *expires < now)
            .filter(|(_, id)| !except.contains(id))
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
                // The jobs waiting for its key can run now.
                runnable |= job.row.limit_key.is_some();
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

    pub(super) fn job_retry(&mut self, now: Timestamp, id: JobId) -> StoreResult<()> {
        let job = self.get(id)?;
        let state = job.row.state;
        if let Some(key) = &job.row.unique_key {
            if let Some(holder) = self.unique_holder(key).filter(|holder| *holder != id) {
                return Err(StoreError::unique_key_held(id, holder));
            }
        }
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
            row.output = None;
            job.release_lease();
            job.record(now, None, None);
        });
        Ok(())
    }

    /// Whether the job became runnable.
    pub(super) fn job_run_now(&mut self, now: Timestamp, id: JobId) -> StoreResult<bool> {
        match self.get(id)?.row.state {
            JobState::Scheduled => {
                self.update(id, |job| {
                    job.row.state = JobState::Enqueued;
                    job.row.run_at = now;
                    job.record(now, None, None);
                });
                Ok(true)
            }
            JobState::Enqueued => Ok(false),
            state => Err(StoreError::new(
                StoreErrorKind::Conflict,
                format!("job {id} is {state}; only a scheduled job can be run now"),
            )),
        }
    }

    pub(super) fn job_cancel(
        &mut self,
        now: Timestamp,
        p: JobCancelParams,
    ) -> StoreResult<CancelOutcome> {
        let id = p.id;
        match self.get(id)?.row.state {
            JobState::Awaiting | JobState::Scheduled | JobState::Enqueued => {
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

    pub(super) fn job_delete(&mut self, now: Timestamp, id: JobId) -> StoreResult<()> {
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

    /// The newest `limit` jobs the filter picks and the action accepts,
    /// each changed as the single-job operation changes it; and whether a
    /// retry or a run now made jobs runnable. The lock is held throughout, so no job
    /// changes between the pick and the action.
    pub(super) fn job_act_matching(
        &mut self,
        now: Timestamp,
        p: JobActMatchingParams,
    ) -> StoreResult<(JobActOutcome, bool)> {
        p.check()?;
        let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
        let picks = |row: &&JobRow| p.action.accepts(row.state) && p.filter.matches(row);
        let mut ids: Vec<JobId> = match p.filter.state {
            Some(state) => self
                .index
                .by_state
                .get(&state)
                .into_iter()
                .flat_map(|ids| ids.iter().rev())
                .map(|id| &self.jobs[id].row)
                .filter(picks)
                .take(limit.saturating_add(1))
                .map(|row| row.id)
                .collect(),
            None => self
                .jobs
                .values()
                .rev()
                .map(|job| &job.row)
                .filter(picks)
                .take(limit.saturating_add(1))
                .map(|row| row.id)
                .collect(),
        };
        let more = ids.len() > limit;
        ids.truncate(limit);
        let running = |tables: &Self, id: &JobId| tables.jobs[id].row.state == JobState::Processing;
        if p.dry_run {
            let (requested, changed) = ids.into_iter().partition(|id| running(self, id));
            return Ok((JobActOutcome::new(changed, requested, more), false));
        }
        let mut outcome = JobActOutcome::new(Vec::new(), Vec::new(), more);
        for id in ids {
            match &p.action {
                JobAction::Retry => match self.job_retry(now, id) {
                    Ok(()) => outcome.changed.push(id),
                    // A newer job holds its unique key: left as it is.
                    Err(error) if error.kind() == StoreErrorKind::Conflict => {
                        outcome.held.push(id);
                    }
                    Err(error) => return Err(error),
                },
                JobAction::Cancel { reason } => {
                    let cancel = JobCancelParams::new(id).reason(reason.clone());
                    match self.job_cancel(now, cancel)? {
                        CancelOutcome::Requested => outcome.requested.push(id),
                        _ => outcome.changed.push(id),
                    }
                }
                JobAction::Delete => {
                    self.job_delete(now, id)?;
                    outcome.changed.push(id);
                }
                JobAction::RunNow => {
                    self.job_run_now(now, id)?;
                    outcome.changed.push(id);
                }
            }
        }
        let runnable =
            matches!(p.action, JobAction::Retry | JobAction::RunNow) && !outcome.changed.is_empty();
        Ok((outcome, runnable))
    }

    pub(super) fn job_prune(&mut self, now: Timestamp, p: JobPruneParams) -> u64 {
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
                self.index.remove(&job);
            }
        }
        // A batch is kept as long as the longest kept of its members could be.
        self.prune_batches(minus(now, p.retention.longest()));
        let kept = minus(now, crate::store::THROUGHPUT_KEPT);
        self.minutes.retain(|minute, _| *minute >= kept);
        doomed.len() as u64
    }
}
