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
pub use jobs_core::{Error, Job, JobContext, JobId, Jobs, OnOutput, Request, Result, State};
pub use jobs_macros::job;

// Running jobs: the server, and what a job can ask of it.
pub use jobs_core::{
    Backoff, JobOptions, Permanent, Retention, Server, ServerBuilder, Snooze, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_QUEUE,
};

// Unique jobs: declared with `#[job(unique(...))]` or per request.
pub use jobs_core::{HeldAfter, Inserted, Unique, UniqueKey};

// Whether a running server is healthy, for readiness endpoints.
pub use jobs_core::{HealthProbe, HealthStatus, LastSeen, ServerHealth, StoreFailure};

// The bounds `#[job]` puts on a function's types; its errors name them.
pub use jobs_core::{
    BoxError, Inject, IntoJobResult, JobArg, JobOutput, Produces, RunResult, TakesOutput,
};

// Recurring jobs, managed through `Jobs::recurring`.
pub use jobs_core::{
    Cron, IntoCron, Misfire, Overlap, Recurring, RecurringDef, RecurringOptions, RecurringOrigin,
    RecurringRow, Tz,
};

// Pausing, resuming and limiting queues, through `Jobs::queues`; limits
// per key, on the job type or one enqueue.
pub use jobs_core::{KeyLimit, LimitKey, QueueInfo, QueueLimits, Queues, RateLimit};

// Batches: a set of jobs with one callback, through `Jobs::batches`.
pub use jobs_core::{BatchId, BatchRow, Batches, EnqueuedBatch, NewBatch, MAX_BATCH_MEMBERS};

// Inspecting and managing stored jobs.
pub use jobs_core::{
    After, CancelOutcome, Claim, ContinueOn, JobActMatchingParams, JobActOutcome, JobAction,
    JobDetail, JobEvent, JobFilter, JobPage, JobRow, JobState, ListJobs, NewJob, QueueStateCount,
    RunAt, ServerId, ServerInfo, ServerSummary, StrandedJobs, StrandedReason, Timestamp,
    UnknownState,
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
        BatchCancelParams, BatchGetParams, BatchInsertParams, BatchListParams, BatchMembersParams,
        BoxFuture, CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams,
        CronListParams, CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams,
        DynStore, JobActMatchingParams, JobActOutcome, JobAction, JobCancelParams, JobClaimParams,
        JobCompleteManyParams, JobCompletion, JobCountParams, JobDeleteParams, JobFilter,
        JobGetParams, JobInsertManyParams, JobListParams, JobOutcome, JobProgressManyParams,
        JobPruneParams, JobRetryParams, JobSignal, JobStrandedParams, Layered,
        LeaseRenewManyParams, LeaseReportStuckParams, LeaseRescueParams, LeaseStatus,
        QueueLimitParams, QueueListParams, QueuePauseParams, ServerHeartbeatParams,
        ServerListParams, ServerRemoveParams, StoreLayer, StoreOperation, MAINTENANCE_BATCH,
    };
}

/// The PostgreSQL store, behind the `postgres` feature: jobs kept durable in
/// the application's own database.
///
/// [`PgStore`](postgres::PgStore) migrates its own tables into a schema of
/// its own (`jobs` unless [`PgStoreOptions`](postgres::PgStoreOptions) says
/// otherwise), claims many jobs in one `FOR UPDATE SKIP LOCKED` statement,
/// fences every write about a running attempt by its claim, and wakes idle
/// servers with LISTEN/NOTIFY. It can enqueue inside the application's own
/// transaction ([`enqueue_in`](postgres::PgStore::enqueue_in)), so that a
/// rolled-back request leaves no job behind.
///
/// ```no_run
/// use jobs::postgres::{PgStore, PgStoreOptions};
/// use jobs::{job, Jobs, Server};
///
/// #[job]
/// async fn send_account_confirmation_email(user_id: i64) -> anyhow::Result<()> {
///     println!("mailing user {user_id}");
///     Ok(())
/// }
///
/// # async fn run() -> anyhow::Result<()> {
/// let store = PgStore::connect("postgres://postgres@localhost/app").await?; // migrates
/// let jobs = Jobs::new(store.clone());
/// let server = Server::builder(store.clone()).start().await?;
///
/// // In a request handler: the user and the mail commit together, or neither.
/// let mut tx = store.pool().begin().await?;
/// let user_id = 9; // INSERT INTO users ... RETURNING id
/// store.enqueue_in(&mut tx, SendAccountConfirmationEmail::new(user_id)).await?;
/// tx.commit().await?;
///
/// // Elsewhere, without a transaction, through the store-agnostic client.
/// SendAccountConfirmationEmail::enqueue(&jobs, 10).await?;
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// The main items: [`PgStore`](postgres::PgStore) (build it with
/// [`connect`](postgres::PgStore::connect) or, on the application's pool,
/// [`from_pool`](postgres::PgStore::from_pool)),
/// [`PgStoreOptions`](postgres::PgStoreOptions) (schema, migrations,
/// argument size limit, LISTEN/NOTIFY) and this module's
/// [`Error`](postgres::Error). To apply the migrations with your own tool, take
/// their SQL from [`PgStore::migration_sql`](postgres::PgStore::migration_sql).
/// The typed forms of the transactional enqueue are
/// [`EnqueueIn`](postgres::EnqueueIn) on a request and
/// [`PgJobs`](postgres::PgJobs) on `Jobs`.
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use jobs_postgres::{
        EnqueueIn, Error, PgJobs, PgStore, PgStoreOptions, Result, APPLICATION_NAME,
        DEFAULT_ENQUEUE_TIMEOUT, DEFAULT_MAX_ARGS_BYTES, DEFAULT_SCHEMA,
    };
}

/// The web dashboard, behind the `dashboard` feature: an axum `Router` the
/// application nests under any path, server-rendered, reading and acting
/// through [`Jobs`] on any store. It gives no router until the application
/// has decided who may see it.
///
/// ```
/// # #[cfg(feature = "dashboard")] {
/// use jobs::dashboard::{Access, Dashboard};
/// use jobs::{Jobs, MemoryStore};
///
/// let jobs = Jobs::new(MemoryStore::new());
/// let dashboard = Dashboard::builder(jobs)
///     .authorize(|parts: &axum::http::request::Parts| {
///         let admin = parts.headers.contains_key("x-admin");
///         async move { if admin { Access::Full.user("admin") } else { Access::Deny.into() } }
///     })
///     .router();
/// let app: axum::Router = axum::Router::new().nest("/admin/jobs", dashboard);
/// # let _ = app;
/// # }
/// ```
///
/// See [`Dashboard::builder`](dashboard::Dashboard::builder) for the
/// decisions, and the README's "The dashboard" for what the pages show.
#[cfg(feature = "dashboard")]
pub mod dashboard {
    pub use jobs_dashboard::{Access, AuthDecision, Dashboard, DashboardBuilder, Decision};
}

/// Helpers for your own tests, behind the `testing` feature: run what was
/// enqueued until nothing is left, assert on what was enqueued, typed, and
/// run one job inline with its resources ([`Perform`](testing::Perform)).
///
/// Put the feature on in your dev-dependencies only:
/// `jobs = { git = "...", features = ["testing"] }` under `[dev-dependencies]`.
/// The helpers are meant for a [`MemoryStore`], whose clock is tokio's: in a
/// test marked `#[tokio::test(start_paused = true)]`, delays, backoff and
/// leases take no real time. On another store they work, but wait in real time.
///
/// ```
/// use jobs::testing::{assert_enqueued, assert_not_enqueued, run_until_empty};
/// use jobs::{job, Jobs, MemoryStore, Server};
///
/// #[job]
/// async fn send_account_confirmation_email(user_id: i64) -> anyhow::Result<()> {
///     println!("mailing user {user_id}");
///     Ok(())
/// }
///
/// async fn signup(jobs: &Jobs, user_id: i64) -> jobs::Result<()> {
///     SendAccountConfirmationEmail::enqueue(jobs, user_id).await?;
///     Ok(())
/// }
///
/// // #[tokio::test(start_paused = true)]
/// async fn signup_mails_the_new_user() {
///     let store = MemoryStore::new();
///     let jobs = Jobs::new(store.clone());
///     signup(&jobs, 9).await.unwrap();
///
///     assert_enqueued::<SendAccountConfirmationEmail>(&jobs, |job| job.user_id == 9).await;
///     assert_not_enqueued::<SendAccountConfirmationEmail>(&jobs, |job| job.user_id == 10).await;
///
///     let report = run_until_empty(Server::builder(store)).await.unwrap();
///     assert_eq!(report.succeeded, 1);
/// }
/// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
/// #     .block_on(signup_mails_the_new_user());
/// ```
///
/// The main items: [`run_until_empty`](testing::run_until_empty) runs a
/// server until no job is waiting and reports how the jobs ended
/// ([`DrainReport`](testing::DrainReport));
/// [`assert_enqueued`](testing::assert_enqueued) and
/// [`assert_not_enqueued`](testing::assert_not_enqueued) check the waiting
/// jobs of one type against a predicate on their arguments;
/// [`enqueued`](testing::enqueued) returns them for assertions of your own.
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
