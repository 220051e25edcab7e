//! The [`Store`] trait: where jobs live. Core knows no SQL; a store knows
//! nothing of how jobs are run. Every store passes the conformance suite
//! (`jobs_core::conformance_tests!`).
//!
//! Calls are batch-shaped (claim many, complete many, insert many) because
//! the cost of a job is dominated by round trips to the store. What each
//! call takes is in [`params`](self::params).
//!
//! The list of operations is written once, in `store_operations!` below: it
//! gives the object-safe [`DynStore`] that `Jobs` and `Server` hold, the
//! [`StoreOperation`] names, and [`Layered`], the wrapper that lets a
//! [`StoreLayer`] act around every call. Adding an operation is one method on
//! [`Store`], one line in that list, and the stores' bodies.

mod params;
mod signal;

use std::future::Future;
use std::pin::Pin;

pub(crate) use crate::error::{StoreError, StoreErrorKind, StoreResult};
pub use params::*;
pub use signal::JobSignal;

use crate::batch::{BatchRow, EnqueuedBatch};
use crate::model::{
    Inserted, JobDetail, JobId, JobPage, JobRow, QueueInfo, QueueStateCount, ServerInfo,
    StrandedJobs, ThroughputMinute,
};
use crate::recurring::RecurringRow;

/// A boxed, sendable future: what the object-safe [`DynStore`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where jobs live. Implemented by `jobs_core::MemoryStore` and
/// `jobs_postgres::PgStore`; every implementation passes the conformance
/// suite (`jobs_core::conformance_tests!`), recurring jobs included.
///
/// Times given as durations are measured on the store's own clock (the
/// database clock for PostgreSQL), so servers on hosts with drifting clocks agree.
pub trait Store: Send + Sync + 'static {
    /// Insert jobs; what became of each, in the same order. All or none.
    /// A unique job ([`NewJob::unique`](crate::NewJob::unique)) whose key is
    /// held, by a stored job or by an earlier job of the same batch, is not
    /// inserted: it comes back as a duplicate with the holder's id.
    fn job_insert_many(
        &self,
        p: JobInsertManyParams,
    ) -> impl Future<Output = StoreResult<Vec<Inserted>>> + Send;

    /// Record that running attempts are stuck (see [`LeaseReportStuckParams`]);
    /// for each, whether its claim was current.
    fn lease_report_stuck(
        &self,
        p: LeaseReportStuckParams,
    ) -> impl Future<Output = StoreResult<Vec<bool>>> + Send;

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

    /// A page of jobs, newest first, and where a bounded scan stopped.
    fn job_list(&self, p: JobListParams) -> impl Future<Output = StoreResult<JobPage>> + Send;

    /// Counts by queue and state.
    fn job_count(
        &self,
        p: JobCountParams,
    ) -> impl Future<Output = StoreResult<Vec<QueueStateCount>>> + Send;

    /// How many jobs succeeded and failed in each recent minute (see
    /// [`JobThroughputParams`]).
    fn job_throughput(
        &self,
        p: JobThroughputParams,
    ) -> impl Future<Output = StoreResult<Vec<ThroughputMinute>>> + Send;

    /// The due jobs no live server can take, by queue and name (see
    /// [`JobStrandedParams`]). Its cost grows with the number of distinct
    /// queue and name pairs waiting and with the jobs it counts, not with
    /// the jobs that can run.
    fn job_stranded(
        &self,
        p: JobStrandedParams,
    ) -> impl Future<Output = StoreResult<Vec<StrandedJobs>>> + Send;

    /// Retry a `failed`, `cancelled` or `deleted` job by hand. `NotFound`, or
    /// `Conflict` in any other state.
    fn job_retry(&self, p: JobRetryParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// Run a scheduled job now (see [`JobRunNowParams`]). `NotFound`, or
    /// `Conflict` unless it is `scheduled` or `enqueued`.
    fn job_run_now(&self, p: JobRunNowParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// Cancel an unfinished job. `NotFound`, or `Conflict` if it has finished.
    fn job_cancel(
        &self,
        p: JobCancelParams,
    ) -> impl Future<Output = StoreResult<CancelOutcome>> + Send;

    /// Delete a job that is not running. `NotFound`, or `Conflict` if it is running.
    fn job_delete(&self, p: JobDeleteParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// Retry, cancel, delete or run now the jobs a filter picks, at most `limit` of
    /// them, in one step (see [`JobActMatchingParams`]); which jobs it
    /// changed. `Invalid` if the filter's state is one the action never
    /// accepts.
    fn job_act_matching(
        &self,
        p: JobActMatchingParams,
    ) -> impl Future<Output = StoreResult<JobActOutcome>> + Send;

    /// Release the continuations a parent's end left `awaiting` (see
    /// [`JobReleaseAwaitingParams`]); how many were released or cancelled.
    fn job_release_awaiting(
        &self,
        p: JobReleaseAwaitingParams,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Insert a batch (see [`BatchInsertParams`]): its members as
    /// [`job_insert_many`](Store::job_insert_many) inserts jobs, and its
    /// callback `awaiting`, all or none. A batch whose members are all
    /// duplicates, or that has none, has ended at once, and its callback is
    /// released at once.
    fn batch_insert(
        &self,
        p: BatchInsertParams,
    ) -> impl Future<Output = StoreResult<EnqueuedBatch>> + Send;

    /// One batch's progress, or `None`: one read of the counters the store
    /// keeps with the batch, whatever its size.
    fn batch_get(
        &self,
        p: BatchGetParams,
    ) -> impl Future<Output = StoreResult<Option<BatchRow>>> + Send;

    /// A page of batches, newest first.
    fn batch_list(
        &self,
        p: BatchListParams,
    ) -> impl Future<Output = StoreResult<Vec<BatchRow>>> + Send;

    /// A page of one batch's members, newest first. `NotFound` if the batch
    /// does not exist.
    fn batch_members(
        &self,
        p: BatchMembersParams,
    ) -> impl Future<Output = StoreResult<Vec<JobRow>>> + Send;

    /// Cancel a batch (see [`BatchCancelParams`]); how many jobs it
    /// cancelled or asked to stop. `NotFound` if the batch does not exist.
    fn batch_cancel(&self, p: BatchCancelParams) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Remove old finished jobs; how many were removed.
    fn job_prune(&self, p: JobPruneParams) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Pause or resume a queue for every server (see [`QueuePauseParams`]).
    /// The claim leaves a paused queue's jobs where they are; resuming
    /// raises the wake-up signal.
    fn queue_pause(&self, p: QueuePauseParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// Set a queue's cluster-wide limits (see [`QueueLimitParams`]), which
    /// the claim applies; `Invalid` for limits that fail
    /// [`QueueLimits::check`](crate::QueueLimits::check).
    fn queue_limit(&self, p: QueueLimitParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// The queues the store knows, by name, with whether each is paused.
    fn queue_list(
        &self,
        p: QueueListParams,
    ) -> impl Future<Output = StoreResult<Vec<QueueInfo>>> + Send;

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
    fn cron_upsert(&self, p: CronUpsertParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// Remove a recurring job; whether it existed.
    fn cron_remove(&self, p: CronRemoveParams) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Pause or resume a recurring job.
    fn cron_pause(&self, p: CronPauseParams) -> impl Future<Output = StoreResult<()>> + Send;

    /// Every recurring job.
    fn cron_list(
        &self,
        p: CronListParams,
    ) -> impl Future<Output = StoreResult<Vec<RecurringRow>>> + Send;

    /// The recurring jobs due now, with the store's clock.
    fn cron_due(&self, p: CronDueParams) -> impl Future<Output = StoreResult<CronDue>> + Send;

    /// Fire a recurring job once for a tick (see [`CronFireParams`]).
    fn cron_fire(
        &self,
        p: CronFireParams,
    ) -> impl Future<Output = StoreResult<CronFireOutcome>> + Send;

    /// Enqueue a run of a recurring job now.
    fn cron_trigger(&self, p: CronTriggerParams)
        -> impl Future<Output = StoreResult<JobId>> + Send;

    /// The signal this store raises when jobs may have become runnable, and
    /// when a running job was asked to cancel, if it has one (a capability:
    /// PostgreSQL's comes from LISTEN/NOTIFY). Servers always poll as well
    /// (a cancel reaches a running job at its next lease renewal at the
    /// latest); the signal only makes them faster.
    fn job_signal(&self) -> Option<JobSignal> {
        None
    }

    /// The same store with resources of its own for one server's own writes
    /// (lease renewals, outcomes, heartbeats, rescues), if it has such
    /// resources (a capability: PostgreSQL's is a small pool of its own), so
    /// that those writes never wait behind jobs that hold the store's
    /// connections. A server calls it once as it starts, from the runtime
    /// its own writes run on, and drops it as it stops. `None`: the server
    /// writes through this store.
    fn reserved_for_server(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Acts around every call of a [`Layered`] store: delays, counts, faults,
/// spans. It sees which operation is called and its result, and may answer
/// instead of the store; it does not see the params.
///
/// ```
/// # use jobs_core::{Layered, MemoryStore, StoreLayer, StoreOperation, StoreResult};
/// # use std::future::Future;
/// /// Logs every claim's duration.
/// struct TimeClaims;
///
/// impl StoreLayer for TimeClaims {
///     async fn around<T, F>(&self, operation: StoreOperation, call: F) -> StoreResult<T>
///     where
///         F: Future<Output = StoreResult<T>> + Send,
///     {
///         if operation != StoreOperation::JobClaim {
///             return call.await;
///         }
///         let started = std::time::Instant::now();
///         let result = call.await;
///         println!("claim took {:?}", started.elapsed());
///         result
///     }
/// }
///
/// let store = Layered::new(MemoryStore::new(), TimeClaims);
/// # let _ = store;
/// ```
pub trait StoreLayer: Send + Sync + 'static {
    /// Runs `call`, the inner store's answer to `operation`, or answers instead.
    fn around<T, F>(
        &self,
        operation: StoreOperation,
        call: F,
    ) -> impl Future<Output = StoreResult<T>> + Send
    where
        F: Future<Output = StoreResult<T>> + Send;
}

/// A store whose every call passes through a [`StoreLayer`].
#[derive(Debug)]
pub struct Layered<S, L> {
    inner: S,
    // Shared with the store's reserved handle (`Store::reserved_for_server`).
    layer: std::sync::Arc<L>,
}

impl<S: Clone, L> Clone for Layered<S, L> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: Store, L: StoreLayer> Layered<S, L> {
    /// `inner`, with `layer` around each of its calls.
    pub fn new(inner: S, layer: L) -> Self {
        Self {
            inner,
            layer: std::sync::Arc::new(layer),
        }
    }

    /// The store inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The layer around it.
    pub fn layer(&self) -> &L {
        &self.layer
    }
}

/// The one list of store operations: `Name => method(Params) -> Output;`.
/// Each macro it is given generates code for every operation.
macro_rules! store_operations {
    ($generate:ident) => {
        $generate! {
            JobInsertMany => job_insert_many(JobInsertManyParams) -> Vec<Inserted>;
            JobClaim => job_claim(JobClaimParams) -> Vec<JobRow>;
            JobCompleteMany => job_complete_many(JobCompleteManyParams) -> Vec<bool>;
            LeaseRenewMany => lease_renew_many(LeaseRenewManyParams) -> Vec<LeaseStatus>;
            JobProgressMany => job_progress_many(JobProgressManyParams) -> Vec<bool>;
            LeaseRescue => lease_rescue(LeaseRescueParams) -> Vec<JobId>;
            LeaseReportStuck => lease_report_stuck(LeaseReportStuckParams) -> Vec<bool>;
            JobGet => job_get(JobGetParams) -> Option<JobDetail>;
            JobList => job_list(JobListParams) -> JobPage;
            JobCount => job_count(JobCountParams) -> Vec<QueueStateCount>;
            JobStranded => job_stranded(JobStrandedParams) -> Vec<StrandedJobs>;
            JobThroughput => job_throughput(JobThroughputParams) -> Vec<ThroughputMinute>;
            JobRetry => job_retry(JobRetryParams) -> ();
            JobRunNow => job_run_now(JobRunNowParams) -> ();
            JobCancel => job_cancel(JobCancelParams) -> CancelOutcome;
            JobDelete => job_delete(JobDeleteParams) -> ();
            JobActMatching => job_act_matching(JobActMatchingParams) -> JobActOutcome;
            JobPrune => job_prune(JobPruneParams) -> u64;
            JobReleaseAwaiting => job_release_awaiting(JobReleaseAwaitingParams) -> u64;
            BatchInsert => batch_insert(BatchInsertParams) -> EnqueuedBatch;
            BatchGet => batch_get(BatchGetParams) -> Option<BatchRow>;
            BatchList => batch_list(BatchListParams) -> Vec<BatchRow>;
            BatchMembers => batch_members(BatchMembersParams) -> Vec<JobRow>;
            BatchCancel => batch_cancel(BatchCancelParams) -> u64;
            QueuePause => queue_pause(QueuePauseParams) -> ();
            QueueLimit => queue_limit(QueueLimitParams) -> ();
            QueueList => queue_list(QueueListParams) -> Vec<QueueInfo>;
            ServerHeartbeat => server_heartbeat(ServerHeartbeatParams) -> ();
            ServerList => server_list(ServerListParams) -> Vec<ServerInfo>;
            ServerRemove => server_remove(ServerRemoveParams) -> u64;
            CronUpsert => cron_upsert(CronUpsertParams) -> ();
            CronRemove => cron_remove(CronRemoveParams) -> bool;
            CronPause => cron_pause(CronPauseParams) -> ();
            CronList => cron_list(CronListParams) -> Vec<RecurringRow>;
            CronDue => cron_due(CronDueParams) -> CronDue;
            CronFire => cron_fire(CronFireParams) -> CronFireOutcome;
            CronTrigger => cron_trigger(CronTriggerParams) -> JobId;
        }
    };
}

macro_rules! operation_names {
    ($($name:ident => $method:ident($params:ty) -> $out:ty;)*) => {
        /// The name of a [`Store`] operation, as a [`StoreLayer`] sees it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum StoreOperation {
            $(#[doc = concat!("[`Store::", stringify!($method), "`]")] $name,)*
        }

        impl StoreOperation {
            /// The method's name, `job_claim` say: for logs and metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($method),)*
                }
            }
        }
    };
}

macro_rules! erased {
    ($($name:ident => $method:ident($params:ty) -> $out:ty;)*) => {
        /// The object-safe face of [`Store`], implemented for every `Store`,
        /// so that `Jobs` and `Server` hold any store without a type
        /// parameter. One box per call, not per job: the calls are batch-shaped.
        /// Each method is the [`Store`] method of the same name.
        pub trait DynStore: Send + Sync + 'static {
            $(#[doc = concat!("See [`Store::", stringify!($method), "`].")]
            fn $method(&self, p: $params) -> BoxFuture<'_, StoreResult<$out>>;)*
            /// See [`Store::job_signal`].
            fn job_signal(&self) -> Option<JobSignal>;
            /// See [`Store::reserved_for_server`].
            fn reserved_for_server(&self) -> Option<std::sync::Arc<dyn DynStore>>;
            /// The store itself, for `Jobs::store_as` to find a concrete
            /// store's own API (PostgreSQL's transactional enqueue).
            fn as_any(&self) -> &dyn std::any::Any;
        }

        impl<S: Store> DynStore for S {
            $(fn $method(&self, p: $params) -> BoxFuture<'_, StoreResult<$out>> {
                Box::pin(Store::$method(self, p))
            })*
            fn job_signal(&self) -> Option<JobSignal> {
                Store::job_signal(self)
            }
            fn reserved_for_server(&self) -> Option<std::sync::Arc<dyn DynStore>> {
                Store::reserved_for_server(self).map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn DynStore>)
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
        }
    };
}

macro_rules! layered {
    ($($name:ident => $method:ident($params:ty) -> $out:ty;)*) => {
        impl<S: Store, L: StoreLayer> Store for Layered<S, L> {
            $(fn $method(&self, p: $params) -> impl Future<Output = StoreResult<$out>> + Send {
                self.layer.around(StoreOperation::$name, self.inner.$method(p))
            })*
            fn job_signal(&self) -> Option<JobSignal> {
                self.inner.job_signal()
            }
            fn reserved_for_server(&self) -> Option<Self> {
                let inner = self.inner.reserved_for_server()?;
                Some(Self { inner, layer: self.layer.clone() })
            }
        }
    };
}

#[cfg(feature = "opentelemetry")]
macro_rules! metered {
    ($($name:ident => $method:ident($params:ty) -> $out:ty;)*) => {
        /// A server's store, each call measured for the `jobs.store.duration`
        /// and `jobs.store.errors` metrics (the `opentelemetry` feature).
        pub(crate) struct Metered(pub(crate) std::sync::Arc<dyn DynStore>);

        impl DynStore for Metered {
            $(fn $method(&self, p: $params) -> BoxFuture<'_, StoreResult<$out>> {
                Box::pin(crate::telemetry::measured(StoreOperation::$name, self.0.$method(p)))
            })*
            fn job_signal(&self) -> Option<JobSignal> {
                self.0.job_signal()
            }
            fn reserved_for_server(&self) -> Option<std::sync::Arc<dyn DynStore>> {
                self.0
                    .reserved_for_server()
                    .map(|store| std::sync::Arc::new(Metered(store)) as std::sync::Arc<dyn DynStore>)
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self.0.as_any()
            }
        }
    };
}

store_operations!(operation_names);
#[cfg(feature = "opentelemetry")]
store_operations!(metered);
store_operations!(erased);
store_operations!(layered);
