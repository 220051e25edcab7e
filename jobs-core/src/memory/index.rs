//! The secondary indexes over the jobs: waiting jobs by queue in claim
//! order, leases and finished jobs by time, jobs by state, counts, and the
//! unique keys held.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use super::tables::StoredJob;
use crate::model::{JobId, JobState, Timestamp};

/// Waiting jobs of one queue in claim order: priority descending, then run
/// time, then id.
type WaitingKey = (Reverse<i16>, Timestamp, JobId);

/// Secondary indexes, kept in step with the jobs by [`Tables::update`](super::Tables::update).
#[derive(Debug, Default)]
pub(super) struct Index {
    /// `enqueued` and `scheduled` jobs, by queue, in claim order.
    pub(super) waiting: HashMap<String, BTreeSet<WaitingKey>>,
    /// `processing` jobs by lease expiry.
    pub(super) leases: BTreeSet<(Timestamp, JobId)>,
    /// Finished jobs by the time they finished.
    pub(super) finished: BTreeSet<(Timestamp, JobId)>,
    /// Every job by state, for listing.
    pub(super) by_state: HashMap<JobState, BTreeSet<JobId>>,
    /// Non-zero counts by queue and state.
    pub(super) counts: HashMap<(String, JobState), i64>,
    /// The unique keys held, with the job holding each.
    pub(super) unique: HashMap<String, JobId>,
    /// The `awaiting` continuations, by the job they wait for.
    pub(super) awaiting: HashMap<JobId, BTreeSet<JobId>>,
    /// How many `processing` jobs hold each limit key.
    pub(super) running_keys: HashMap<String, u32>,
}

impl Index {
    /// The run time of the oldest due job of `queue`: the earliest of the
    /// first (earliest) run time of each priority, one lookup per priority.
    pub(super) fn oldest_due(&self, queue: &str, now: Timestamp) -> Option<Timestamp> {
        let waiting = self.waiting.get(queue)?;
        let mut oldest: Option<Timestamp> = None;
        let mut first = waiting.first();
        while let Some(&(Reverse(priority), run_at, _)) = first {
            if run_at <= now {
                oldest = Some(oldest.map_or(run_at, |o| o.min(run_at)));
            }
            let Some(lower) = priority.checked_sub(1) else {
                break;
            };
            first = waiting
                .range((Reverse(lower), Timestamp::MIN_UTC, JobId(i64::MIN))..)
                .next();
        }
        oldest
    }

    pub(super) fn add(&mut self, job: &StoredJob) {
        let row = &job.row;
        if let Some(key) = job.held_key() {
            self.unique.insert(key.to_owned(), row.id);
        }
        if let (JobState::Awaiting, Some(after)) = (row.state, &row.after) {
            self.awaiting
                .entry(after.parent)
                .or_default()
                .insert(row.id);
        }
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
                if let Some(limit) = &row.limit_key {
                    *self.running_keys.entry(limit.key.clone()).or_default() += 1;
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

    pub(super) fn remove(&mut self, job: &StoredJob) {
        let row = &job.row;
        if let Some(key) = job.held_key() {
            if self.unique.get(key) == Some(&row.id) {
                self.unique.remove(key);
            }
        }
        if let (JobState::Awaiting, Some(after)) = (row.state, &row.after) {
            if let Some(children) = self.awaiting.get_mut(&after.parent) {
                children.remove(&row.id);
                if children.is_empty() {
                    self.awaiting.remove(&after.parent);
                }
            }
        }
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
                if let Some(limit) = &row.limit_key {
                    if let Some(n) = self.running_keys.get_mut(&limit.key) {
                        *n -= 1;
                        if *n == 0 {
                            self.running_keys.remove(&limit.key);
                        }
                    }
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
