//! The core of the `jobs` framework: the [`Job`] trait and registry, the
//! [`Jobs`] client, the [`Server`], the retry policy, the [`Store`] trait with
//! the in-memory [`MemoryStore`], and the store conformance suite.
//!
//! This crate is semver-exempt: depend on `jobs`, which re-exports what users
//! name. Store authors depend on it for [`Store`] and `conformance`.

mod batch;
mod client;
mod cron;
mod error;
mod job;
mod limits;
mod memory;
mod model;
mod recurring;
mod retry;
mod server;
#[cfg(any(test, feature = "conformance"))]
mod slow;
mod store;
mod telemetry;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod testing;

pub use batch::{BatchId, BatchRow, Batches, EnqueuedBatch, NewBatch, MAX_BATCH_MEMBERS};
pub use client::{Jobs, ListJobs, Queues, Recurring};
pub use cron::{Cron, Tz};
pub use error::{Error, Result, StoreError, StoreErrorKind, StoreResult};
pub use job::{
    registered_jobs, BoxError, HeldAfter, Inject, IntoJobResult, Invocation, Job, JobArg,
    JobContext, JobOptions, JobOutput, JobRegistration, OnOutput, Permanent, Produces, Request,
    Requirement, Resources, RunResult, Snooze, State, TakesOutput, Unique, UniqueKey,
    DEFAULT_QUEUE,
};

pub use limits::{KeyLimit, LimitKey, QueueLimits, RateLimit, RATE_SLOTS_PER_PERIOD};
pub use memory::MemoryStore;
pub use model::{
    After, Claim, ContinueOn, Inserted, JobDetail, JobEvent, JobId, JobPage, JobRow, JobState,
    NewJob, QueueInfo, QueueStateCount, RecurringOrigin, RunAt, ServerId, ServerInfo,
    ServerSummary, StrandedJobs, StrandedReason, ThroughputMinute, Timestamp, TraceContext,
    UnknownState,
};
pub use recurring::{
    IntoCron, Misfire, Overlap, RecurringDef, RecurringOptions, RecurringRow, MISFIRE_GRACE,
};
pub use retry::{Backoff, DEFAULT_MAX_ATTEMPTS};
pub use server::{
    HealthProbe, HealthStatus, LastSeen, Server, ServerBuilder, ServerHealth, StoreFailure,
    DEFAULT_MAX_OUTPUT_BYTES,
};
pub use store::{
    BatchCancelParams, BatchGetParams, BatchInsertParams, BatchListParams, BatchMembersParams,
    BoxFuture, CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams,
    CronListParams, CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams,
    DynStore, JobActMatchingParams, JobActOutcome, JobAction, JobCancelParams, JobClaimParams,
    JobCompleteManyParams, JobCompletion, JobCountParams, JobDeleteParams, JobFilter, JobGetParams,
    JobInsertManyParams, JobListParams, JobOutcome, JobProgressManyParams, JobPruneParams,
    JobReleaseAwaitingParams, JobRetryParams, JobRunNowParams, JobSignal, JobStrandedParams,
    JobThroughputParams, Layered, LeaseRenewManyParams, LeaseReportStuckParams, LeaseRescueParams,
    LeaseStatus, QueueLimitParams, QueueListParams, QueuePauseParams, Retention,
    ServerHeartbeatParams, ServerListParams, ServerRemoveParams, Store, StoreLayer, StoreOperation,
    MAINTENANCE_BATCH, THROUGHPUT_KEPT,
};

// Used by the code `#[job]` generates (rooted at `jobs::__private`, which
// re-exports this module, or at `crate = "..."`); not public API, may change
// in any release.
#[doc(hidden)]
pub mod __private {
    pub use core;
    pub use inventory;
    pub use serde;
    pub use serde_json;
    pub use std;

    pub use crate::batch::traced_batch_insert;
    pub use crate::job::{
        args_map, injector, job_arg, job_result, ArgUse, CheckField, Injector, OutputOf,
        SerializeField, TakeField,
    };
    pub use crate::telemetry::enqueue as traced_enqueue;
    pub use crate::{
        registered_jobs, Backoff, BoxError, BoxFuture, Error, IntoJobResult, Invocation, Job,
        JobId, JobOptions, JobRegistration, JobState, Jobs, KeyLimit, OnOutput, Produces, Request,
        Requirement, RunResult, TakesOutput, Unique,
    };
}
