//! Typed, durable background jobs for Rust.
//!
//! Mark a plain `async fn` with [`#[job]`](job); the macro adds a type beside
//! it whose `enqueue` stores the job and returns at once. A [`Server`] running
//! inside the same process picks jobs up on tokio tasks, retries failures with
//! backoff and records every state a job passes through.
//!
//! ```
//! use jobs::{job, Jobs};
//!
//! #[job]
//! async fn send_account_confirmation_email(user_id: i64) -> anyhow::Result<()> {
//!     println!("mailing user {user_id}");
//!     Ok(())
//! }
//!
//! pub async fn signup(jobs: Jobs) -> anyhow::Result<()> {
//!     SendAccountConfirmationEmail::enqueue(&jobs, 9).await?;
//!     Ok(())
//! }
//! ```
//!
//! Shared resources and the run's context are injected by type, settings go
//! in the attribute, and the generated `new` builds a request that carries
//! per-enqueue options (see [`job`] for everything it generates):
//!
//! ```
//! use std::time::Duration;
//! use jobs::{job, JobContext, Jobs, MemoryStore, Server, State};
//!
//! #[derive(Clone)]
//! struct Mailer; // a pool, a client, config: anything `Clone + Send + Sync`
//!
//! /// Mails the invoice; the generated `SendInvoice` carries this comment.
//! #[job(queue = "mail", max_attempts = 5, backoff = exponential("30s", "1h"), timeout = "2m")]
//! async fn send_invoice(invoice_id: i64, mailer: State<Mailer>, ctx: JobContext) -> anyhow::Result<()> {
//!     let Mailer = *mailer;
//!     println!("invoice {invoice_id}, attempt {} of {}", ctx.attempt(), ctx.max_attempts());
//!     Ok(())
//! }
//!
//! # async fn run() -> anyhow::Result<()> {
//! let store = MemoryStore::new();
//! let jobs = Jobs::new(store.clone());
//! SendInvoice::enqueue(&jobs, 7).await?;
//! SendInvoice::new(8).delay(Duration::from_secs(60)).priority(5).enqueue(&jobs).await?;
//! assert_eq!(SendInvoice::NAME, "send_invoice");
//!
//! let server = Server::builder(store).queues(["mail"]).state(Mailer).start().await?;
//! server.shutdown().await;
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

// What a job and its caller name.
pub use jobs_core::{Error, Job, JobContext, JobId, Jobs, Request, Result, State};
pub use jobs_macros::job;

// Running jobs: the server, and what a job can ask of it.
pub use jobs_core::{
    Backoff, JobOptions, Permanent, Retention, Server, ServerBuilder, Snooze, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_QUEUE,
};

// The bounds `#[job]` puts on a function's types; its errors name them.
pub use jobs_core::{BoxError, Inject, IntoJobResult, JobArg};

// Recurring jobs, managed through `Jobs::recurring`.
pub use jobs_core::{
    Cron, IntoCron, Misfire, Overlap, Recurring, RecurringDef, RecurringOptions, RecurringOrigin,
    RecurringRow, Tz,
};

// Inspecting and managing stored jobs.
pub use jobs_core::{
    CancelOutcome, Claim, JobDetail, JobEvent, JobRow, JobState, ListJobs, NewJob, QueueStateCount,
    RunAt, ServerId, ServerInfo, Timestamp, UnknownState,
};

// Stores: the two that exist, and the trait. What a store's operations take
// and answer is in `store`.
pub use jobs_core::{MemoryStore, Store, StoreError, StoreErrorKind, StoreResult};

/// What the [`Store`] trait's operations take and answer, for store authors
/// and store wrappers: the params of each operation, the object-safe
/// [`DynStore`](store::DynStore) that `Jobs` holds, and
/// [`Layered`](store::Layered), which puts a [`StoreLayer`](store::StoreLayer)
/// (delays, faults, spans) around every call of a store.
pub mod store {
    pub use jobs_core::{
        BoxFuture, CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams,
        CronListParams, CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams,
        DynStore, JobCancelParams, JobClaimParams, JobCompleteManyParams, JobCompletion,
        JobCountParams, JobDeleteParams, JobGetParams, JobInsertManyParams, JobListParams,
        JobOutcome, JobProgressManyParams, JobPruneParams, JobRetryParams, JobSignal, Layered,
        LeaseRenewManyParams, LeaseRescueParams, LeaseStatus, ServerHeartbeatParams,
        ServerListParams, ServerRemoveParams, StoreLayer, StoreOperation, MAINTENANCE_BATCH,
    };
}

/// The PostgreSQL store, and enqueue in the application's own transaction:
/// [`EnqueueIn`](postgres::EnqueueIn) on a request, [`PgJobs`](postgres::PgJobs) on `Jobs`.
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use jobs_postgres::{
        EnqueueIn, Error, PgJobs, PgStore, PgStoreOptions, Result, APPLICATION_NAME,
        DEFAULT_ENQUEUE_TIMEOUT, DEFAULT_MAX_ARGS_BYTES, DEFAULT_SCHEMA,
    };
}

/// Helpers for your own tests: run what was enqueued on a paused clock,
/// assert on it, and run one job inline with its resources ([`Perform`](testing::Perform)).
#[cfg(feature = "testing")]
pub mod testing {
    pub use jobs_core::testing::{
        assert_enqueued, assert_not_enqueued, enqueued, run_until_empty, DrainReport, Perform,
        Performed,
    };
}

// Used by the code `#[job]` generates; not public API, may change in any release.
#[doc(hidden)]
pub use jobs_core::__private;
