//! `impl Store for MemoryStore`: each operation takes the lock, applies the
//! change to the tables with the store's time, and wakes idle servers when
//! jobs became runnable (and the server of a running job asked to cancel).

use super::clock::minus;
use super::MemoryStore;
use crate::batch::{BatchRow, EnqueuedBatch};
use crate::limits::RateWindow;
use crate::model::{
    Inserted, JobDetail, JobId, JobPage, JobRow, QueueInfo, QueueStateCount, ServerInfo,
    StrandedJobs, ThroughputMinute,
};
use crate::recurring::RecurringRow;
use crate::store::{
    BatchCancelParams, BatchGetParams, BatchInsertParams, BatchListParams, BatchMembersParams,
    CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams, CronListParams,
    CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams, JobActMatchingParams,
    JobActOutcome, JobCancelParams, JobClaimParams, JobCompleteManyParams, JobCountParams,
    JobDeleteParams, JobGetParams, JobInsertManyParams, JobListParams, JobProgressManyParams,
    JobPruneParams, JobReleaseAwaitingParams, JobRetryParams, JobRunNowParams, JobSignal,
    JobStrandedParams, JobThroughputParams, LeaseRenewManyParams, LeaseReportStuckParams,
    LeaseRescueParams, LeaseStatus, QueueLimitParams, QueueListParams, QueuePauseParams,
    ServerHeartbeatParams, ServerListParams, ServerRemoveParams, Store, StoreResult,
};

impl Store for MemoryStore {
    async fn job_insert_many(&self, p: JobInsertManyParams) -> StoreResult<Vec<Inserted>> {
        let inserted = self.with_state(|state, now| state.insert_many(now, p))?;
        // Delayed jobs wake servers too: they recompute their next poll.
        self.wake(inserted.iter().any(|i| !i.duplicate));
        Ok(inserted)
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

    async fn lease_report_stuck(&self, p: LeaseReportStuckParams) -> StoreResult<Vec<bool>> {
        Ok(self.with_state(|state, now| state.lease_report_stuck(now, p)))
    }

    async fn job_get(&self, p: JobGetParams) -> StoreResult<Option<JobDetail>> {
        let state = self.lock();
        Ok(state
            .jobs
            .get(&p.id)
            .map(|job| JobDetail::new(job.row.clone(), job.history.clone())))
    }

    async fn job_list(&self, p: JobListParams) -> StoreResult<JobPage> {
        Ok(self.lock().job_list(&p))
    }

    async fn job_count(&self, _p: JobCountParams) -> StoreResult<Vec<QueueStateCount>> {
        Ok(self.lock().job_count())
    }

    async fn job_throughput(&self, p: JobThroughputParams) -> StoreResult<Vec<ThroughputMinute>> {
        Ok(self.with_state(|state, now| state.job_throughput(now, p.window)))
    }

    async fn job_stranded(&self, p: JobStrandedParams) -> StoreResult<Vec<StrandedJobs>> {
        Ok(self.with_state(|state, now| state.job_stranded(now, &p)))
    }

    async fn job_retry(&self, p: JobRetryParams) -> StoreResult<()> {
        self.with_state(|state, now| state.job_retry(now, p.id))?;
        self.wake(true);
        Ok(())
    }

    async fn job_cancel(&self, p: JobCancelParams) -> StoreResult<CancelOutcome> {
        let outcome = self.with_state(|state, now| state.job_cancel(now, p))?;
        if outcome == CancelOutcome::Requested {
            // The server running it renews at once, and learns of it.
            self.inner.signal.notify_cancel();
        }
        Ok(outcome)
    }

    async fn job_delete(&self, p: JobDeleteParams) -> StoreResult<()> {
        self.with_state(|state, now| state.job_delete(now, p.id))
    }

    async fn job_act_matching(&self, p: JobActMatchingParams) -> StoreResult<JobActOutcome> {
        let (outcome, runnable) = self.with_state(|state, now| state.job_act_matching(now, p))?;
        self.wake(runnable);
        if !outcome.requested.is_empty() {
            // The servers running them renew at once, and learn of it.
            self.inner.signal.notify_cancel();
        }
        Ok(outcome)
    }

    async fn job_prune(&self, p: JobPruneParams) -> StoreResult<u64> {
        Ok(self.with_state(|state, now| state.job_prune(now, p)))
    }

    async fn job_run_now(&self, p: JobRunNowParams) -> StoreResult<()> {
        let runnable = self.with_state(|state, now| state.job_run_now(now, p.id))?;
        self.wake(runnable);
        Ok(())
    }

    async fn job_release_awaiting(&self, _: JobReleaseAwaitingParams) -> StoreResult<u64> {
        Ok(self.with_state(|state, now| state.release_awaiting(now)))
    }

    async fn batch_insert(&self, p: BatchInsertParams) -> StoreResult<EnqueuedBatch> {
        let enqueued = self.with_state(|state, now| state.batch_insert(now, p))?;
        self.wake(true);
        Ok(enqueued)
    }

    async fn batch_get(&self, p: BatchGetParams) -> StoreResult<Option<BatchRow>> {
        Ok(self.lock().batch_get(p.id))
    }

    async fn batch_list(&self, p: BatchListParams) -> StoreResult<Vec<BatchRow>> {
        Ok(self.lock().batch_list(&p))
    }

    async fn batch_members(&self, p: BatchMembersParams) -> StoreResult<Vec<JobRow>> {
        self.lock().batch_members(&p)
    }

    async fn batch_cancel(&self, p: BatchCancelParams) -> StoreResult<u64> {
        let (changed, requested) = self.with_state(|state, now| state.batch_cancel(now, p))?;
        if requested {
            // The servers running them renew at once, and learn of it.
            self.inner.signal.notify_cancel();
        }
        Ok(changed)
    }

    async fn queue_pause(&self, p: QueuePauseParams) -> StoreResult<()> {
        self.with_state(|state, now| {
            state.known_queues.insert(p.queue.clone());
            if p.paused {
                state.paused.entry(p.queue).or_insert(now);
            } else {
                state.paused.remove(&p.queue);
            }
        });
        // Resumed jobs are claimed at once, not at the next poll.
        self.wake(!p.paused);
        Ok(())
    }

    async fn queue_limit(&self, p: QueueLimitParams) -> StoreResult<()> {
        p.limits.check()?;
        let raised = self.with_state(|state, _| {
            state.known_queues.insert(p.queue.clone());
            let before = state.limits.get(&p.queue).map(|(l, _)| *l);
            if p.limits.is_none() {
                state.limits.remove(&p.queue);
            } else {
                let entry = state.limits.entry(p.queue).or_default();
                if entry.0.rate.map(|r| r.per) != p.limits.rate.map(|r| r.per) {
                    entry.1 = RateWindow::default();
                }
                entry.0 = p.limits;
            }
            before.unwrap_or_default() != p.limits
        });
        // What a raised or lifted limit frees is claimed at once.
        self.wake(raised);
        Ok(())
    }

    async fn queue_list(&self, _p: QueueListParams) -> StoreResult<Vec<QueueInfo>> {
        Ok(self.with_state(|state, now| state.queue_list(now)))
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
        let id = self.with_state(|state, now| state.cron_trigger(now, p))?;
        self.wake(true);
        Ok(id)
    }

    fn job_signal(&self) -> Option<JobSignal> {
        Some(self.inner.signal.clone())
    }
}
