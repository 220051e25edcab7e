//! Batches in memory: the counters of each batch, changed by
//! [`Tables::update`] with each member's state, and the release of the
//! callback when the last member ends.

use std::ops::Bound;

use super::tables::Tables;
use crate::batch::{BatchId, BatchRow, EnqueuedBatch};
use crate::model::{JobId, JobRow, JobState, Timestamp};
use crate::store::{
    BatchCancelParams, BatchInsertParams, BatchListParams, BatchMembersParams, CancelOutcome,
    JobCancelParams, JobInsertManyParams, StoreError, StoreErrorKind, StoreResult,
};

/// A batch and the ids of its members, in insert order.
#[derive(Debug)]
pub(super) struct StoredBatch {
    pub(super) row: BatchRow,
    pub(super) members: Vec<JobId>,
}

/// Which counter of its batch a member in `state` is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Pending,
    Succeeded,
    Failed,
    Cancelled,
}

impl Counter {
    fn of(state: JobState) -> Self {
        match state {
            JobState::Succeeded => Counter::Succeeded,
            JobState::Failed => Counter::Failed,
            JobState::Cancelled | JobState::Deleted => Counter::Cancelled,
            _ => Counter::Pending,
        }
    }

    fn of_mut(self, row: &mut BatchRow) -> &mut i64 {
        match self {
            Counter::Pending => &mut row.pending,
            Counter::Succeeded => &mut row.succeeded,
            Counter::Failed => &mut row.failed,
            Counter::Cancelled => &mut row.cancelled,
        }
    }
}

fn batch_not_found(id: BatchId) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotFound,
        format!("batch {id} does not exist"),
    )
}

impl Tables {
    pub(super) fn batch_insert(
        &mut self,
        now: Timestamp,
        p: BatchInsertParams,
    ) -> StoreResult<EnqueuedBatch> {
        p.check()?;
        let members = self.insert_many(now, JobInsertManyParams::new(p.members))?;
        self.last_batch_id += 1;
        let id = BatchId(self.last_batch_id);
        let stored: Vec<JobId> = members
            .iter()
            .filter(|inserted| !inserted.duplicate)
            .map(|inserted| inserted.id)
            .collect();
        for member in &stored {
            if let Some(job) = self.jobs.get_mut(member) {
                job.row.batch = Some(id);
            }
        }
        let mut row = BatchRow::new(id, now, stored.len() as i64);
        if let Some((callback, on)) = p.callback {
            // Checked by `p.check()`: not unique, so never a duplicate.
            row.callback = Some(self.insert_job(now, callback, true).id);
            row.callback_on = Some(on);
        }
        let callback = row.callback;
        self.batches.insert(
            id,
            StoredBatch {
                row,
                members: stored,
            },
        );
        if self.batches[&id].row.pending == 0 {
            self.finish_batch(now, id);
        }
        Ok(EnqueuedBatch::new(id, members, callback))
    }

    /// Moves member `job` of batch `batch` from the counter of state `from`
    /// to that of `to`, and ends the batch when it has no pending member
    /// left. Called by [`Tables::update`] on every change of a member.
    pub(super) fn count_batch_member(
        &mut self,
        now: Timestamp,
        batch: BatchId,
        from: JobState,
        to: JobState,
    ) {
        let (from, to) = (Counter::of(from), Counter::of(to));
        if from == to {
            return;
        }
        let Some(stored) = self.batches.get_mut(&batch) else {
            return;
        };
        *from.of_mut(&mut stored.row) -= 1;
        *to.of_mut(&mut stored.row) += 1;
        if stored.row.pending > 0 {
            // A member retried by hand: the batch is running again.
            stored.row.finished_at = None;
        } else if stored.row.finished_at.is_none() {
            self.finish_batch(now, batch);
        }
    }

    /// Marks batch `id` ended and releases its callback, if it still awaits:
    /// runnable, or cancelled when it was to run only on success and a
    /// member did not succeed. Once per batch: the release takes the
    /// callback out of `awaiting`, so a batch that ends again (a member
    /// retried) leaves it alone.
    fn finish_batch(&mut self, now: Timestamp, id: BatchId) {
        let Some(stored) = self.batches.get_mut(&id) else {
            return;
        };
        stored.row.finished_at = Some(now);
        let row = stored.row.clone();
        let (Some(callback), Some(on)) = (row.callback, row.callback_on) else {
            return;
        };
        let released = self.update(callback, |job| {
            if job.row.state != JobState::Awaiting {
                return false;
            }
            if row.releases(on) {
                job.row.state = JobState::Enqueued;
                job.row.run_at = now;
                job.record(now, None, None);
                true
            } else {
                job.row.state = JobState::Cancelled;
                job.row.finished_at = Some(now);
                job.record(
                    now,
                    None,
                    Some(BatchRow::cancel_reason(id, row.failed, row.cancelled)),
                );
                false
            }
        });
        self.released |= released == Some(true);
    }

    pub(super) fn batch_get(&self, id: BatchId) -> Option<BatchRow> {
        self.batches.get(&id).map(|stored| stored.row.clone())
    }

    pub(super) fn batch_list(&self, p: &BatchListParams) -> Vec<BatchRow> {
        let upper = p.before.map_or(Bound::Unbounded, Bound::Excluded);
        self.batches
            .range((Bound::Unbounded, upper))
            .rev()
            .take(usize::try_from(p.limit).unwrap_or(usize::MAX))
            .map(|(_, stored)| stored.row.clone())
            .collect()
    }

    pub(super) fn batch_members(&self, p: &BatchMembersParams) -> StoreResult<Vec<JobRow>> {
        let stored = self
            .batches
            .get(&p.id)
            .ok_or_else(|| batch_not_found(p.id))?;
        Ok(stored
            .members
            .iter()
            .rev()
            .filter(|id| p.before.is_none_or(|before| **id < before))
            .filter_map(|id| self.jobs.get(id))
            .take(usize::try_from(p.limit).unwrap_or(usize::MAX))
            .map(|job| job.row.clone())
            .collect())
    }

    /// Cancels batch `p.id`: how many jobs it cancelled or asked to stop,
    /// and whether it asked a running one to stop.
    pub(super) fn batch_cancel(
        &mut self,
        now: Timestamp,
        p: BatchCancelParams,
    ) -> StoreResult<(u64, bool)> {
        let stored = self
            .batches
            .get(&p.id)
            .ok_or_else(|| batch_not_found(p.id))?;
        // The callback first: cancelled, it is not released by the
        // members' ends that follow.
        let jobs: Vec<JobId> = stored
            .row
            .callback
            .into_iter()
            .chain(stored.members.iter().copied())
            .collect();
        let (mut changed, mut requested) = (0, false);
        for id in jobs {
            // As a user's cancel of each; those that have ended are left.
            match self.job_cancel(now, JobCancelParams::new(id).reason(p.reason.clone())) {
                Ok(CancelOutcome::Requested) => {
                    changed += 1;
                    requested = true;
                }
                Ok(_) => changed += 1,
                Err(_) => {}
            }
        }
        Ok((changed, requested))
    }

    /// Forgets the batches that ended before `cutoff`.
    pub(super) fn prune_batches(&mut self, cutoff: Timestamp) {
        self.batches
            .retain(|_, stored| stored.row.finished_at.is_none_or(|at| at > cutoff));
    }
}
