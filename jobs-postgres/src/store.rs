//! [`PgStore`]: its construction (connecting, options, migrating), the
//! statements it builds once, transactional enqueue and completion, the
//! listener, and the `impl Store`, which hands each method to the module of
//! its entity (`jobs`, `leases`, `servers`, `recurring`) with the store's
//! [`Db`] and that entity's statements.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jobs_core::{
    BatchCancelParams, BatchGetParams, BatchInsertParams, BatchListParams, BatchMembersParams,
    BatchRow, CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams,
    CronListParams, CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams,
    EnqueuedBatch, Inserted, Job, JobActMatchingParams, JobActOutcome, JobCancelParams,
    JobClaimParams, JobCompleteManyParams, JobContext, JobCountParams, JobDeleteParams, JobDetail,
    JobGetParams, JobId, JobInsertManyParams, JobListParams, JobPage, JobProgressManyParams,
    JobPruneParams, JobReleaseAwaitingParams, JobRetryParams, JobRow, JobRunNowParams, JobSignal,
    JobStrandedParams, JobThroughputParams, LeaseRenewManyParams, LeaseReportStuckParams,
    LeaseRescueParams, LeaseStatus, NewBatch, NewJob, QueueInfo, QueueLimitParams, QueueListParams,
    QueuePauseParams, QueueStateCount, RecurringRow, Request, ServerHeartbeatParams, ServerInfo,
    ServerListParams, ServerRemoveParams, Store, StoreError, StoreErrorKind, StoreResult,
    StrandedJobs, ThroughputMinute,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

use crate::db::{to_completion, Db};
use crate::error::{Error, Result};
use crate::jobs::run::Wake;
use crate::jobs::{self, batches, claim, manage, run};
use crate::listener::ListenerGuard;
use crate::options::{PgStoreOptions, Schema};
use crate::{leases, migrate, queues, recurring, servers};

/// The `application_name` of the store's connections when the URL sets none,
/// so operators can find them in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "jobs";

/// Pooled connections idle this long are pinged before they are handed out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// How long [`PgStore::pool_options`] waits for a connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store: durable jobs on a sqlx [`PgPool`].
///
/// Cheap to clone; clones share the pool, the prepared SQL and the
/// LISTEN/NOTIFY listener, which stops when the last clone is dropped.
///
/// Before the process exits, [`close`](PgStore::close) it: an enqueue
/// through the store's pool stores the job, and the NOTIFY that wakes idle
/// servers in other processes follows from a background task, which an
/// exiting process ends before it is sent (the servers then find the job
/// at their next poll). `close` sends it, stops the listener and closes a
/// pool the store opened; [`flush`](PgStore::flush) only sends it.
///
/// ```no_run
/// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
/// use jobs::postgres::PgStore;
/// use jobs::{Jobs, Server};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgStore::connect("postgres://postgres@localhost/app").await?; // migrates
/// let jobs = Jobs::new(store.clone()); // enqueue and manage jobs through it
/// let server = Server::builder(store).start().await?; // and run them
/// # let _ = jobs;
/// # server.shutdown().await;
/// # Ok(()) }
/// ```
///
/// Claims take `FOR UPDATE SKIP LOCKED` in one statement; every write about a
/// running attempt is fenced by its claim token; times are the database's
/// (`now()`), never the application's. A job whose completion could not be
/// written (the database was unreachable) is run again after its lease runs
/// out: delivery is at least once.
///
/// Its own functions return [`jobs_postgres::Result`](crate::Result); the
/// methods of [`Store`] return the trait's `StoreResult`.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    schema: Schema,
    // Every statement of the store, by entity, built once from its schema.
    jobs: jobs::Statements,
    leases: leases::Statements,
    servers: servers::Statements,
    recurring: recurring::Statements,
    queues: queues::Statements,
    options: PgStoreOptions,
    /// Started on the first `job_signal()`: a client that only enqueues
    /// holds no listening connection.
    listener: OnceLock<Option<ListenerGuard>>,
    /// Whether the store opened its pool (`connect`, `connect_with`), and
    /// so closes it in `close`.
    owns_pool: bool,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.inner.schema.name())
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` with the default options (schema
    /// `jobs`) and applies pending migrations.
    ///
    /// ```no_run
    /// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
    /// use jobs::postgres::PgStore;
    ///
    /// # async fn demo() -> jobs::postgres::Result<()> {
    /// let store = PgStore::connect("postgres://postgres@localhost/app").await?;
    /// assert_eq!(store.schema(), "jobs");
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PgStoreOptions::new()).await
    }

    /// Connects to the database at `url` with these options: the pool of
    /// [`PgStore::pool_options`], sized by [`PgStoreOptions::max_connections`],
    /// its connections named by [`PgStoreOptions::application_name`], else
    /// by the URL, else `jobs`.
    pub async fn connect_with(url: &str, options: PgStoreOptions) -> Result<Self> {
        // Refuse a bad schema before touching the network.
        Schema::parse(&options.schema)?;
        let mut connect = Self::connect_options(url)?;
        if let Some(name) = &options.application_name {
            connect = connect.application_name(name);
        }
        let mut pool = Self::pool_options();
        if let Some(max) = options.max_connections {
            pool = pool.max_connections(max);
        }
        let pool = pool.connect_with(connect).await.map_err(Error::Connect)?;
        Self::build(pool, options, true).await
    }

    /// The pool settings [`PgStore::connect`] uses, for building the
    /// application's one pool that its queries and its jobs share:
    ///
    /// ```no_run
    /// # async fn demo(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    /// use jobs_postgres::PgStore;
    /// let pool = PgStore::pool_options()
    ///     .max_connections(20)
    ///     .connect_with(PgStore::connect_options(url)?.application_name("billing"))
    ///     .await?;
    /// let store = PgStore::from_pool(pool.clone()).await?; // migrates
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    ///
    /// sqlx pings every connection it hands out by default: one more round
    /// trip before each statement. These options ping only connections that
    /// sat idle for a second (those a restart or a network fault may have
    /// broken), and wait at most 10 s for a connection.
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Like pgx: a hot connection that broke fails its statement,
            // which the server's loops retry and the caller sees as an error.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
    }

    /// The connect options of `url`, with `application_name = jobs` unless
    /// the URL names one, so operators can find the connections in
    /// `pg_stat_activity`. Set your own with `.application_name(..)`.
    pub fn connect_options(url: &str) -> Result<PgConnectOptions> {
        let connect = PgConnectOptions::from_str(url).map_err(Error::Connect)?;
        Ok(match connect.get_application_name() {
            Some(_) => connect,
            None => connect.application_name(APPLICATION_NAME),
        })
    }

    /// A store on the application's own pool, with the default options
    /// (schema `jobs`); applies pending migrations.
    ///
    /// Build the pool from [`PgStore::pool_options`]: a pool from
    /// `PgPoolOptions::new()` pings every connection before handing it out,
    /// a round trip before each statement, and waits 30 s for a connection.
    ///
    /// ```no_run
    /// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
    /// use jobs::postgres::PgStore;
    ///
    /// # async fn demo(pool: sqlx::PgPool) -> jobs::postgres::Result<()> {
    /// // `pool` is the application's `sqlx::PgPool`; the store shares it.
    /// let store = PgStore::from_pool(pool.clone()).await?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        Self::with_options(pool, PgStoreOptions::new()).await
    }

    /// A store on the application's own pool, with these options; applies
    /// pending migrations unless told not to.
    pub async fn with_options(pool: PgPool, options: PgStoreOptions) -> Result<Self> {
        Self::build(pool, options, false).await
    }

    async fn build(pool: PgPool, options: PgStoreOptions, owns_pool: bool) -> Result<Self> {
        let schema = Schema::parse(&options.schema)?;
        if options.migrate {
            migrate::run(&pool, &schema).await?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                db: Db::new(pool, schema.channel(), options.max_args_bytes),
                jobs: jobs::Statements::new(&schema),
                leases: leases::Statements::new(&schema),
                servers: servers::Statements::new(&schema),
                recurring: recurring::Statements::new(&schema),
                queues: queues::Statements::new(&schema),
                schema,
                options,
                listener: OnceLock::new(),
                owns_pool,
            }),
        })
    }

    /// Applies pending migrations: idempotent, and safe when several
    /// processes run it at once.
    pub async fn migrate(&self) -> Result<()> {
        migrate::run(self.inner.db.pool(), &self.inner.schema).await
    }

    /// The SQL of every migration for `schema`, for applying with your own
    /// tool (then build the store with `PgStoreOptions::migrate(false)`).
    /// It records itself in `<schema>.jobs_migrations`, so the store's own
    /// migrator will later apply only what is newer.
    pub fn migration_sql(schema: &str) -> Result<String> {
        Ok(migrate::full_sql(&Schema::parse(schema)?))
    }

    /// Waits until the wake-ups for the jobs enqueued so far through the
    /// store's pool were sent, so that idle servers in other processes pick
    /// the jobs up at once rather than at their next poll. Such an enqueue
    /// returns once the jobs are stored; its NOTIFY follows from a
    /// background task, which a process that exits at once (a CLI) ends
    /// before it sends anything. Enqueues in the application's transaction
    /// need no flush: their NOTIFY is part of its commit.
    ///
    /// Gives up after [`PgStoreOptions::enqueue_timeout`]: a wake-up only
    /// makes servers faster, they poll anyway. [`PgStore::close`] flushes
    /// first.
    pub async fn flush(&self) {
        self.inner
            .db
            .flush(self.inner.options.enqueue_timeout)
            .await;
    }

    /// Ends the store's background work, for a process about to exit:
    /// sends the pending wake-ups ([`PgStore::flush`]), stops the LISTEN
    /// listener and the notifier, and closes the pool if the store opened it
    /// ([`PgStore::connect`], [`PgStore::connect_with`]). A pool the
    /// application handed over ([`PgStore::from_pool`],
    /// [`PgStore::with_options`]) stays open: it is the application's to
    /// close.
    ///
    /// Clones share what it ends, so call it once, last, after
    /// `Server::shutdown` of the servers on the store:
    ///
    /// ```no_run
    /// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendInvoice { invoice_id: i64 }
    /// # impl jobs::Job for SendInvoice { const NAME: &'static str = "send_invoice"; }
    /// use jobs::postgres::PgStore;
    /// use jobs::{Jobs, Request};
    ///
    /// // A command-line tool that enqueues one job and exits.
    /// # async fn demo() -> anyhow::Result<()> {
    /// let store = PgStore::connect("postgres://postgres@localhost/app").await?;
    /// Jobs::new(store.clone())
    ///     .enqueue(Request::new(SendInvoice { invoice_id: 7 }))
    ///     .await?;
    /// store.close().await; // or the servers elsewhere learn of the job at their next poll
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) {
        let inner = &self.inner;
        inner.db.flush(inner.options.enqueue_timeout).await;
        inner.db.close_notifier();
        // Initialized here if it never started, so that it never does.
        if let Some(listener) = inner.listener.get_or_init(|| None) {
            listener.stop().await;
        }
        if inner.owns_pool {
            inner.db.pool().close().await;
        }
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &PgPool {
        self.inner.db.pool()
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &str {
        self.inner.schema.name()
    }

    /// Enqueues one job on the application's own connection or transaction
    /// (`&mut *tx`): if the transaction rolls back, the job never existed.
    /// Servers are woken by NOTIFY when the transaction commits.
    ///
    /// ```no_run
    /// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct SendAccountConfirmationEmail { user_id: i64 }
    /// # impl jobs::Job for SendAccountConfirmationEmail { const NAME: &'static str = "send_account_confirmation_email"; }
    /// # impl SendAccountConfirmationEmail { fn new(user_id: i64) -> jobs::Request<Self> { jobs::Request::new(Self { user_id }) } }
    /// use jobs::postgres::PgStore;
    ///
    /// // `SendAccountConfirmationEmail` comes from `#[job] async fn send_account_confirmation_email(user_id: i64)`.
    /// async fn signup(store: &PgStore, email: &str) -> anyhow::Result<()> {
    ///     let mut tx = store.pool().begin().await?;
    ///     let (user_id,): (i64,) = sqlx::query_as("INSERT INTO users (email) VALUES ($1) RETURNING id")
    ///         .bind(email)
    ///         .fetch_one(&mut *tx)
    ///         .await?;
    ///     store.enqueue_in(&mut tx, SendAccountConfirmationEmail::new(user_id)).await?;
    ///     tx.commit().await?; // the user and the job, or neither
    ///     Ok(())
    /// }
    /// ```
    pub async fn enqueue_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        request: Request<J>,
    ) -> Result<JobId> {
        Ok(self.enqueue_detailed_in(conn, request).await?.id)
    }

    /// Enqueues one job on the application's own connection or transaction,
    /// and says whether it was a duplicate of a unique job (see
    /// [`Jobs::enqueue_detailed`](jobs_core::Jobs::enqueue_detailed)). The
    /// key is held from the insert: another transaction inserting the same
    /// key waits for this one, and gets a duplicate if it commits or stores
    /// its own job if it rolls back.
    pub async fn enqueue_detailed_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        request: Request<J>,
    ) -> Result<Inserted> {
        let inserted = self.insert_in(conn, vec![request.into_new_job()?]).await?;
        inserted.first().copied().ok_or_else(|| {
            StoreError::new(StoreErrorKind::Other, "postgres: insert returned no id").into()
        })
    }

    /// Enqueues many jobs of one type in one statement on the application's
    /// own connection or transaction; their ids in order (a unique job's
    /// duplicate gives the holder's id).
    pub async fn enqueue_many_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        requests: impl IntoIterator<Item = Request<J>>,
    ) -> Result<Vec<JobId>> {
        let jobs = requests
            .into_iter()
            .map(Request::into_new_job)
            .collect::<jobs_core::Result<Vec<_>>>()?;
        let inserted = self.insert_in(conn, jobs).await?;
        Ok(inserted.into_iter().map(|i| i.id).collect())
    }

    /// Inserts already serialized jobs (of any types) in one statement on the
    /// application's own connection or transaction; what became of each, in
    /// order.
    pub async fn insert_in(
        &self,
        conn: &mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Inserted>> {
        let inner = &self.inner;
        let insert = |jobs| run::insert(&inner.db, &inner.jobs.run, conn, jobs, Wake::AtCommit);
        Ok(jobs_core::__private::traced_enqueue(jobs, insert).await?)
    }

    /// Enqueues a batch on the application's own connection or transaction:
    /// its members, its callback and its counters commit with the
    /// application's writes, or not at all (see
    /// [`Batches::enqueue`](jobs_core::Batches::enqueue)).
    ///
    /// ```no_run
    /// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct ImportRow { row: u32 }
    /// # impl jobs::Job for ImportRow { const NAME: &'static str = "import_row"; }
    /// # async fn demo(store: jobs::postgres::PgStore) -> anyhow::Result<()> {
    /// use jobs::{NewBatch, Request};
    ///
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("UPDATE imports SET state = 'running' WHERE id = 3").execute(&mut *tx).await?;
    /// let batch = NewBatch::new().members((0..500).map(|row| Request::new(ImportRow { row })));
    /// let enqueued = store.enqueue_batch_in(&mut tx, batch).await?;
    /// tx.commit().await?; // the import's state and its 500 jobs, or neither
    /// # let _ = enqueued; Ok(()) }
    /// ```
    pub async fn enqueue_batch_in(
        &self,
        conn: &mut PgConnection,
        batch: NewBatch,
    ) -> Result<EnqueuedBatch> {
        let p = batch.into_params()?;
        let inner = &self.inner;
        // Moving `conn` into the body makes the closure `FnOnce`, so that the
        // future may hold the borrow.
        let insert = move |p| {
            let conn = conn;
            batches::insert_on(&inner.db, &inner.jobs, conn, p, Wake::AtCommit)
        };
        Ok(jobs_core::__private::traced_batch_insert(p, insert).await?)
    }

    /// Marks the running job of `ctx` succeeded on the application's own
    /// connection or transaction (`&mut *tx`), for jobs whose effects live in
    /// the same database: the effects and the completion commit together or
    /// not at all (an outbox that cannot run twice after a commit).
    ///
    /// Call it last, just before committing: it locks the job's row until
    /// the transaction ends, and the server's lease renewals wait for it.
    /// It fails with a `Conflict` store error when the attempt is no longer
    /// the job's running attempt (its lease expired and it was rescued, or it
    /// was cancelled and finished): roll back then, as `?` does by dropping
    /// the transaction, and return the error.
    ///
    /// The fence is the attempt's claim (`ctx.claim()`: the job id and its
    /// claim token) with the `processing` state, like every other write about
    /// a running attempt. After the commit the job must return `Ok`: the
    /// server's own "succeeded" write then finds the job already finished
    /// under the same claim and is not applied.
    ///
    /// ```no_run
    /// # mod jobs { pub use jobs_core::*; pub mod postgres { pub use jobs_postgres::*; } }
    /// # async fn job(store: jobs::postgres::PgStore, ctx: jobs::JobContext) -> anyhow::Result<()> {
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("UPDATE offers SET is_valid = false WHERE id = $1")
    ///     .bind(7_i64)
    ///     .execute(&mut *tx)
    ///     .await?;
    /// store.complete_in(&mut tx, &ctx).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn complete_in(&self, conn: &mut PgConnection, ctx: &JobContext) -> Result<()> {
        Ok(run::complete_in(&self.inner.db, &self.inner.jobs.run, conn, ctx).await?)
    }
}

/// A transaction's task cancelled by the runtime's shutdown.
fn cancelled(error: tokio::task::JoinError) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        "postgres: the transaction's task was cancelled (the runtime is shutting down)",
    )
    .with_source(error)
}

impl Store for PgStore {
    async fn job_insert_many(&self, p: JobInsertManyParams) -> StoreResult<Vec<Inserted>> {
        // Bounded here, not by the pool's acquire timeout: the pool may be
        // the application's, and a statement on a connection that went
        // silent is not bounded by it at all.
        let budget = self.inner.options.enqueue_timeout;
        let insert = run::insert_many(&self.inner.db, &self.inner.jobs.run, p.jobs);
        match tokio::time::timeout(budget, insert).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "postgres: the enqueue did not finish within its budget of {budget:?}; \
                     check that the database is reachable, or raise PgStoreOptions::enqueue_timeout"
                ),
            )),
        }
    }

    async fn job_claim(&self, p: JobClaimParams) -> StoreResult<Vec<JobRow>> {
        claim::claim(&self.inner.db, &self.inner.jobs.claim, p).await
    }

    async fn job_complete_many(&self, p: JobCompleteManyParams) -> StoreResult<Vec<bool>> {
        run::complete_many(&self.inner.db, &self.inner.jobs.run, p).await
    }

    async fn job_progress_many(&self, p: JobProgressManyParams) -> StoreResult<Vec<bool>> {
        run::progress_many(&self.inner.db, &self.inner.jobs.run, p).await
    }

    async fn lease_renew_many(&self, p: LeaseRenewManyParams) -> StoreResult<Vec<LeaseStatus>> {
        leases::renew_many(&self.inner.db, &self.inner.leases, p).await
    }

    async fn lease_rescue(&self, p: LeaseRescueParams) -> StoreResult<Vec<JobId>> {
        leases::rescue(&self.inner.db, &self.inner.leases, p).await
    }

    async fn lease_report_stuck(&self, p: LeaseReportStuckParams) -> StoreResult<Vec<bool>> {
        leases::report_stuck(&self.inner.db, &self.inner.leases, p).await
    }

    async fn job_get(&self, p: JobGetParams) -> StoreResult<Option<JobDetail>> {
        manage::get(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_list(&self, p: JobListParams) -> StoreResult<JobPage> {
        manage::list(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_count(&self, p: JobCountParams) -> StoreResult<Vec<QueueStateCount>> {
        manage::count(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_stranded(&self, p: JobStrandedParams) -> StoreResult<Vec<StrandedJobs>> {
        manage::stranded(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_retry(&self, p: JobRetryParams) -> StoreResult<()> {
        manage::retry(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_cancel(&self, p: JobCancelParams) -> StoreResult<CancelOutcome> {
        manage::cancel(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_delete(&self, p: JobDeleteParams) -> StoreResult<()> {
        manage::delete(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_act_matching(&self, p: JobActMatchingParams) -> StoreResult<JobActOutcome> {
        manage::act_matching(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_throughput(&self, p: JobThroughputParams) -> StoreResult<Vec<ThroughputMinute>> {
        manage::throughput(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_prune(&self, p: JobPruneParams) -> StoreResult<u64> {
        manage::prune(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn job_run_now(&self, p: JobRunNowParams) -> StoreResult<()> {
        manage::run_now(&self.inner.db, &self.inner.jobs.manage, p).await
    }

    async fn batch_insert(&self, p: BatchInsertParams) -> StoreResult<EnqueuedBatch> {
        let budget = self.inner.options.enqueue_timeout;
        let insert = batches::insert(&self.inner.db, &self.inner.jobs, p);
        match tokio::time::timeout(budget, insert).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "postgres: the batch's enqueue did not finish within its budget of {budget:?}; \
                     check that the database is reachable, or raise PgStoreOptions::enqueue_timeout"
                ),
            )),
        }
    }

    async fn batch_get(&self, p: BatchGetParams) -> StoreResult<Option<BatchRow>> {
        batches::get(&self.inner.db, &self.inner.jobs.batches, p.id).await
    }

    async fn batch_list(&self, p: BatchListParams) -> StoreResult<Vec<BatchRow>> {
        batches::list(&self.inner.db, &self.inner.jobs.batches, p).await
    }

    async fn batch_members(&self, p: BatchMembersParams) -> StoreResult<Vec<JobRow>> {
        batches::members(&self.inner.db, &self.inner.jobs.batches, p).await
    }

    async fn batch_cancel(&self, p: BatchCancelParams) -> StoreResult<u64> {
        batches::cancel(&self.inner.db, &self.inner.jobs, p).await
    }

    async fn job_release_awaiting(&self, _: JobReleaseAwaitingParams) -> StoreResult<u64> {
        let db = &self.inner.db;
        run::release_all(db, &self.inner.jobs.run).await
    }

    async fn server_heartbeat(&self, p: ServerHeartbeatParams) -> StoreResult<()> {
        servers::heartbeat(&self.inner.db, &self.inner.servers, p).await
    }

    async fn server_list(&self, p: ServerListParams) -> StoreResult<Vec<ServerInfo>> {
        servers::list(&self.inner.db, &self.inner.servers, p).await
    }

    async fn server_remove(&self, p: ServerRemoveParams) -> StoreResult<u64> {
        servers::remove(&self.inner.db, &self.inner.servers, p).await
    }

    async fn cron_upsert(&self, p: CronUpsertParams) -> StoreResult<()> {
        recurring::upsert(&self.inner.db, &self.inner.recurring, p).await
    }

    async fn cron_remove(&self, p: CronRemoveParams) -> StoreResult<bool> {
        recurring::remove(&self.inner.db, &self.inner.recurring, p).await
    }

    async fn queue_pause(&self, p: QueuePauseParams) -> StoreResult<()> {
        queues::pause(&self.inner.db, &self.inner.queues, p).await
    }

    async fn queue_limit(&self, p: QueueLimitParams) -> StoreResult<()> {
        queues::limit(&self.inner.db, &self.inner.queues, p).await
    }

    async fn queue_list(&self, p: QueueListParams) -> StoreResult<Vec<QueueInfo>> {
        queues::list(&self.inner.db, &self.inner.queues, p).await
    }

    async fn cron_pause(&self, p: CronPauseParams) -> StoreResult<()> {
        recurring::pause(&self.inner.db, &self.inner.recurring, p).await
    }

    async fn cron_list(&self, p: CronListParams) -> StoreResult<Vec<RecurringRow>> {
        recurring::list(&self.inner.db, &self.inner.recurring, p).await
    }

    // The three transactions of the store run to their end whatever the
    // caller does (see `db::to_completion`).

    async fn cron_due(&self, p: CronDueParams) -> StoreResult<CronDue> {
        let inner = self.inner.clone();
        let work = async move { recurring::due(&inner.db, &inner.recurring, p).await };
        to_completion(work, cancelled).await
    }

    async fn cron_fire(&self, p: CronFireParams) -> StoreResult<CronFireOutcome> {
        let inner = self.inner.clone();
        let work =
            async move { recurring::fire(&inner.db, &inner.recurring, &inner.jobs.run, p).await };
        to_completion(work, cancelled).await
    }

    async fn cron_trigger(&self, p: CronTriggerParams) -> StoreResult<JobId> {
        let inner = self.inner.clone();
        let work = async move {
            recurring::trigger(&inner.db, &inner.recurring, &inner.jobs.run, p).await
        };
        to_completion(work, cancelled).await
    }

    fn job_signal(&self) -> Option<JobSignal> {
        let inner = &self.inner;
        inner
            .listener
            .get_or_init(|| inner.options.listen.then(|| inner.db.spawn_listener())?);
        Some(inner.db.signal())
    }

    /// A store on a pool of its own of [`PgStoreOptions::server_connections`]
    /// connections, opened on first use from the runtime of the server's own
    /// writes (so their I/O never waits for the application's runtime),
    /// closed when the server drops it.
    fn reserved_for_server(&self) -> Option<Self> {
        let inner = &self.inner;
        let connections = inner.options.server_connections;
        if connections == 0 {
            return None;
        }
        let connect = (*inner.db.pool().connect_options()).clone();
        let pool = Self::pool_options()
            .max_connections(connections)
            .connect_lazy_with(connect);
        Some(Self {
            inner: Arc::new(Inner {
                db: inner.db.with_pool(pool),
                jobs: jobs::Statements::new(&inner.schema),
                leases: leases::Statements::new(&inner.schema),
                servers: servers::Statements::new(&inner.schema),
                recurring: recurring::Statements::new(&inner.schema),
                queues: queues::Statements::new(&inner.schema),
                schema: inner.schema.clone(),
                options: inner.options.clone(),
                listener: OnceLock::new(),
                owns_pool: true,
            }),
        })
    }
}
