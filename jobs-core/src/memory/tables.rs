//! What the store holds: jobs with their history, the indexes, servers and
//! recurring entries, with the few helpers every change goes through, and
//! the reads that are more than a lookup.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use super::batches::StoredBatch;
use super::clock::{minus, Clock};
use super::index::Index;
use crate::batch::BatchId;
use crate::job::HeldAfter;
use crate::limits::{QueueLimits, RateWindow};
use crate::model::{
    JobEvent, JobId, JobPage, JobRow, JobState, QueueInfo, QueueStateCount, ServerId, ServerInfo,
    StrandedJobs, StrandedReason, ThroughputMinute, Timestamp,
};
use crate::recurring::RecurringRow;
use crate::store::{JobListParams, JobStrandedParams, StoreError, StoreResult};

/// A job and its history.
#[derive(Debug)]
pub(super) struct StoredJob {
    pub(super) row: JobRow,
    pub(super) history: Vec<JobEvent>,
    /// Which finished states keep holding `row.unique_key`.
    pub(super) unique_held_after: HeldAfter,
}

impl StoredJob {
    /// Appends an event for the state the job is now in.
    pub(super) fn record(
        &mut self,
        at: Timestamp,
        server_id: Option<ServerId>,
        error: Option<String>,
    ) {
        self.history.push(JobEvent::new(
            at,
            self.row.state,
            self.row.attempt,
            server_id,
            error,
        ));
    }

    /// The unique key this job holds in its current state, if any.
    pub(super) fn held_key(&self) -> Option<&str> {
        self.row
            .unique_key
            .as_deref()
            .filter(|_| self.unique_held_after.holds(self.row.state))
    }

    /// Ends the current attempt's hold on the job.
    pub(super) fn release_lease(&mut self) {
        self.row.server_id = None;
        self.row.lease_expires_at = None;
        self.row.cancel_requested = false;
    }
}

#[derive(Debug, Default)]
pub(super) struct Tables {
    /// The latest time handed out, so the clock never goes backwards.
    pub(super) last_now: Option<Timestamp>,
    /// The last id given to a job.
    pub(super) last_id: i64,
    pub(super) jobs: BTreeMap<JobId, StoredJob>,
    pub(super) index: Index,
    pub(super) servers: HashMap<ServerId, ServerInfo>,
    /// Recurring jobs by id.
    pub(super) recurring: BTreeMap<String, RecurringRow>,
    /// The paused queues, with the time each was paused. Empty, the claim
    /// looks nothing up.
    pub(super) paused: BTreeMap<String, Timestamp>,
    /// The queues with cluster-wide limits, and the starts each rate limit
    /// counts. Empty, the claim looks nothing up.
    pub(super) limits: BTreeMap<String, (QueueLimits, RateWindow)>,
    /// The queues ever paused, resumed or limited, which `queue_list` names
    /// even without jobs (as PostgreSQL keeps their rows).
    pub(super) known_queues: std::collections::BTreeSet<String>,
    /// Whether a continuation or a batch's callback became runnable since
    /// the last look (the store raises its wake-up signal then).
    pub(super) released: bool,
    /// The last id given to a batch.
    pub(super) last_batch_id: i64,
    /// Batches by id.
    pub(super) batches: BTreeMap<BatchId, StoredBatch>,
    /// Jobs that succeeded and failed for good, by the minute they ended in.
    pub(super) minutes: BTreeMap<Timestamp, (i64, i64)>,
}

/// The start of the minute `t` is in.
pub(super) fn minute_of(t: Timestamp) -> Timestamp {
    let secs = t.timestamp();
    chrono::DateTime::from_timestamp(secs - secs.rem_euclid(60), 0).unwrap_or(t)
}

impl Tables {
    pub(super) fn now(&mut self, clock: &Clock) -> Timestamp {
        let now = match self.last_now {
            Some(last) => clock.now().max(last),
            None => clock.now(),
        };
        self.last_now = Some(now);
        now
    }

    /// Changes a job, keeping the indexes in step.
    pub(super) fn update<R>(
        &mut self,
        id: JobId,
        f: impl FnOnce(&mut StoredJob) -> R,
    ) -> Option<R> {
        let job = self.jobs.get_mut(&id)?;
        let was = job.row.state;
        let was_finished = was.is_finished();
        self.index.remove(job);
        let result = f(job);
        self.index.add(job);
        let state = job.row.state;
        // A job that has just ended releases its continuations, whatever
        // ended it: its attempt, a user's cancel or delete.
        if !was_finished && state.is_finished() && self.index.awaiting.contains_key(&id) {
            let now = self.last_now.unwrap_or_else(chrono::Utc::now);
            self.released |= self.release_continuations(now, id, state);
        }
        if was != state && matches!(state, JobState::Succeeded | JobState::Failed) {
            let now = self.last_now.unwrap_or_else(chrono::Utc::now);
            let counts = self.minutes.entry(minute_of(now)).or_default();
            if state == JobState::Succeeded {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
        // A member's change of state moves it between its batch's counters.
        if let Some(batch) = self.jobs.get(&id).and_then(|job| job.row.batch) {
            if was != state {
                let now = self.last_now.unwrap_or_else(chrono::Utc::now);
                self.count_batch_member(now, batch, was, state);
            }
        }
        Some(result)
    }

    /// The per-minute counts of the last `window`, oldest first.
    pub(super) fn job_throughput(
        &self,
        now: Timestamp,
        window: std::time::Duration,
    ) -> Vec<ThroughputMinute> {
        let since = minus(minute_of(now), window);
        self.minutes
            .range(since..)
            .map(|(minute, (succeeded, failed))| {
                ThroughputMinute::new(*minute, *succeeded, *failed)
            })
            .collect()
    }

    pub(super) fn get(&self, id: JobId) -> StoreResult<&StoredJob> {
        self.jobs
            .get(&id)
            .ok_or_else(|| StoreError::job_not_found(id))
    }

    /// The job holding unique key `key`, if one does.
    pub(super) fn unique_holder(&self, key: &str) -> Option<JobId> {
        self.index.unique.get(key).copied()
    }

    /// Whether `claim` is the current attempt of a running job.
    pub(super) fn holds(&self, job_id: JobId, token: i64) -> bool {
        self.jobs.get(&job_id).is_some_and(|job| {
            job.row.state == JobState::Processing && job.row.claim_token == token
        })
    }

    /// A page of jobs: those the state, queue and name pick are examined
    /// newest first, at most `scan` of them, and those whose arguments
    /// match are kept until the page is full.
    pub(super) fn job_list(&self, p: &JobListParams) -> JobPage {
        let limit = usize::try_from(p.limit).unwrap_or(usize::MAX);
        if limit == 0 {
            return JobPage::default();
        }
        let scan = p
            .scan
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let upper = p.before.map_or(Bound::Unbounded, Bound::Excluded);
        let mut scanned = p.filter();
        let args = scanned.args.take();
        let newest_first: Box<dyn Iterator<Item = &JobRow>> = match p.state {
            Some(state) => match self.index.by_state.get(&state) {
                Some(ids) => Box::new(
                    ids.range((Bound::Unbounded, upper))
                        .rev()
                        .map(|id| &self.jobs[id].row),
                ),
                None => Box::new(std::iter::empty()),
            },
            None => Box::new(
                self.jobs
                    .range((Bound::Unbounded, upper))
                    .rev()
                    .map(|(_, job)| &job.row),
            ),
        };
        let matches_args = crate::store::JobFilter {
            args,
            ..Default::default()
        };
        let mut jobs = Vec::new();
        let (mut examined, mut oldest) = (0, None);
        for row in newest_first.filter(|row| scanned.matches(row)).take(scan) {
            examined += 1;
            oldest = Some(row.id);
            if matches_args.matches(row) {
                jobs.push(row.clone());
                if jobs.len() == limit {
                    break;
                }
            }
        }
        let stopped_at_bound = jobs.len() < limit && examined == scan;
        JobPage::new(jobs, oldest.filter(|_| stopped_at_bound))
    }

    pub(super) fn queue_list(&self, now: Timestamp) -> Vec<QueueInfo> {
        let mut names: std::collections::BTreeSet<&str> =
            self.known_queues.iter().map(String::as_str).collect();
        names.extend(self.index.counts.keys().map(|(queue, _)| queue.as_str()));
        names
            .into_iter()
            .map(|queue| {
                QueueInfo::new(queue.to_owned(), self.paused.get(queue).copied())
                    .oldest_due(self.index.oldest_due(queue, now))
                    .limits(self.limits.get(queue).map(|(l, _)| *l).unwrap_or_default())
            })
            .collect()
    }

    pub(super) fn job_count(&self) -> Vec<QueueStateCount> {
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
    /// Due jobs no live server can take, by queue and name. It walks the
    /// due jobs of every queue (this store keeps no index by name), under
    /// the lock: fine for the sizes this store is for.
    pub(super) fn job_stranded(&self, now: Timestamp, p: &JobStrandedParams) -> Vec<StrandedJobs> {
        let live_since = minus(now, p.live_within);
        let live: Vec<&ServerInfo> = self
            .servers
            .values()
            .filter(|server| server.heartbeat_at >= live_since)
            .collect();
        let mut groups: BTreeMap<(&str, &str), (i64, Timestamp)> = BTreeMap::new();
        for (queue, waiting) in &self.index.waiting {
            let served: Vec<&ServerInfo> = live
                .iter()
                .copied()
                .filter(|server| server.queues.iter().any(|q| q == queue))
                .collect();
            for &(_, run_at, id) in waiting {
                if run_at > now {
                    continue;
                }
                let name = self.jobs[&id].row.name.as_str();
                if served.iter().any(|s| s.job_names.iter().any(|n| n == name)) {
                    continue;
                }
                let group = groups.entry((queue.as_str(), name)).or_insert((0, run_at));
                group.0 += 1;
                group.1 = group.1.min(run_at);
            }
        }
        let mut stranded: Vec<StrandedJobs> = groups
            .into_iter()
            .map(|((queue, name), (count, oldest_due))| {
                let served = live.iter().any(|s| s.queues.iter().any(|q| q == queue));
                let reason = if served {
                    StrandedReason::NoServerKnowsName
                } else {
                    StrandedReason::NoServerForQueue
                };
                StrandedJobs::new(queue.to_owned(), name.to_owned(), reason, count, oldest_due)
            })
            .collect();
        stranded.sort_by(|a, b| {
            (a.oldest_due, &a.queue, &a.name).cmp(&(b.oldest_due, &b.queue, &b.name))
        });
        stranded.truncate(usize::try_from(p.limit).unwrap_or(usize::MAX));
        stranded
    }
}
