//! [`DelayedStore`]: a store that answers chosen calls late, for tests of
//! how the server behaves when the store is slow. On a paused tokio clock
//! the delays cost no real time and are exact.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::model::{JobDetail, JobId, JobRow, QueueStateCount, ServerInfo};
use crate::recurring::RecurringRow;
use crate::store::{
    CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams, CronListParams,
    CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams, JobCancelParams,
    JobClaimParams, JobCompleteManyParams, JobCountParams, JobDeleteParams, JobGetParams,
    JobInsertManyParams, JobListParams, JobProgressManyParams, JobPruneParams, JobRetryParams,
    JobSignal, LeaseRenewManyParams, LeaseRescueParams, LeaseStatus, ServerHeartbeatParams,
    ServerListParams, ServerRemoveParams, Store, StoreResult,
};

/// Wraps a store; claims and recurring fires take the given extra time
/// (a `tokio::time::sleep` before the call), everything else is passed on.
/// It counts how many claims were in flight at once, at most.
///
/// ```ignore
/// let store = DelayedStore::new(MemoryStore::new()).claims(Duration::from_millis(5));
/// ```
#[derive(Debug, Clone)]
pub struct DelayedStore<S> {
    inner: S,
    claim: Duration,
    fire: Duration,
    claims: Arc<ClaimCount>,
}

#[derive(Debug, Default)]
struct ClaimCount {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// Counts a claim as in flight until dropped.
struct InFlight<'a>(&'a ClaimCount);

impl<'a> InFlight<'a> {
    fn start(count: &'a ClaimCount) -> Self {
        let now = count.now.fetch_add(1, Ordering::SeqCst) + 1;
        count.most.fetch_max(now, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S> DelayedStore<S> {
    /// Passes every call on at once, until told otherwise.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            claim: Duration::ZERO,
            fire: Duration::ZERO,
            claims: Arc::default(),
        }
    }

    /// The most claims that were in flight at once (clones share the count).
    pub fn most_claims_in_flight(&self) -> usize {
        self.claims.most.load(Ordering::SeqCst)
    }

    /// Every `job_claim` takes this long before it reaches the store.
    pub fn claims(mut self, delay: Duration) -> Self {
        self.claim = delay;
        self
    }

    /// Every `cron_fire` takes this long before it reaches the store.
    pub fn fires(mut self, delay: Duration) -> Self {
        self.fire = delay;
        self
    }
}

async fn after(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

impl<S: Store> Store for DelayedStore<S> {
    async fn job_insert_many(&self, p: JobInsertManyParams) -> StoreResult<Vec<JobId>> {
        self.inner.job_insert_many(p).await
    }
    async fn job_claim(&self, p: JobClaimParams) -> StoreResult<Vec<JobRow>> {
        let _counted = InFlight::start(&self.claims);
        after(self.claim).await;
        self.inner.job_claim(p).await
    }
    async fn job_complete_many(&self, p: JobCompleteManyParams) -> StoreResult<Vec<bool>> {
        self.inner.job_complete_many(p).await
    }
    async fn lease_renew_many(&self, p: LeaseRenewManyParams) -> StoreResult<Vec<LeaseStatus>> {
        self.inner.lease_renew_many(p).await
    }
    async fn job_progress_many(&self, p: JobProgressManyParams) -> StoreResult<Vec<bool>> {
        self.inner.job_progress_many(p).await
    }
    async fn lease_rescue(&self, p: LeaseRescueParams) -> StoreResult<Vec<JobId>> {
        self.inner.lease_rescue(p).await
    }
    async fn job_get(&self, p: JobGetParams) -> StoreResult<Option<JobDetail>> {
        self.inner.job_get(p).await
    }
    async fn job_list(&self, p: JobListParams) -> StoreResult<Vec<JobRow>> {
        self.inner.job_list(p).await
    }
    async fn job_count(&self, p: JobCountParams) -> StoreResult<Vec<QueueStateCount>> {
        self.inner.job_count(p).await
    }
    async fn job_retry(&self, p: JobRetryParams) -> StoreResult<()> {
        self.inner.job_retry(p).await
    }
    async fn job_cancel(&self, p: JobCancelParams) -> StoreResult<CancelOutcome> {
        self.inner.job_cancel(p).await
    }
    async fn job_delete(&self, p: JobDeleteParams) -> StoreResult<()> {
        self.inner.job_delete(p).await
    }
    async fn job_prune(&self, p: JobPruneParams) -> StoreResult<u64> {
        self.inner.job_prune(p).await
    }
    async fn server_heartbeat(&self, p: ServerHeartbeatParams) -> StoreResult<()> {
        self.inner.server_heartbeat(p).await
    }
    async fn server_list(&self, p: ServerListParams) -> StoreResult<Vec<ServerInfo>> {
        self.inner.server_list(p).await
    }
    async fn server_remove(&self, p: ServerRemoveParams) -> StoreResult<u64> {
        self.inner.server_remove(p).await
    }
    async fn cron_upsert(&self, p: CronUpsertParams) -> StoreResult<()> {
        self.inner.cron_upsert(p).await
    }
    async fn cron_remove(&self, p: CronRemoveParams) -> StoreResult<bool> {
        self.inner.cron_remove(p).await
    }
    async fn cron_pause(&self, p: CronPauseParams) -> StoreResult<()> {
        self.inner.cron_pause(p).await
    }
    async fn cron_list(&self, p: CronListParams) -> StoreResult<Vec<RecurringRow>> {
        self.inner.cron_list(p).await
    }
    async fn cron_due(&self, p: CronDueParams) -> StoreResult<CronDue> {
        self.inner.cron_due(p).await
    }
    async fn cron_fire(&self, p: CronFireParams) -> StoreResult<CronFireOutcome> {
        after(self.fire).await;
        self.inner.cron_fire(p).await
    }
    async fn cron_trigger(&self, p: CronTriggerParams) -> StoreResult<JobId> {
        self.inner.cron_trigger(p).await
    }
    fn job_signal(&self) -> Option<JobSignal> {
        self.inner.job_signal()
    }
}
