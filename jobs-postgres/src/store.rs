//! [`PgStore`]: the [`Store`] on PostgreSQL, and transactional enqueue.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jobs_core::{
    CancelOutcome, CronDue, CronDueParams, CronFireOutcome, CronFireParams, CronListParams,
    CronPauseParams, CronRemoveParams, CronTriggerParams, CronUpsertParams, Job, JobCancelParams,
    JobClaimParams, JobCompleteManyParams, JobContext, JobCountParams, JobDeleteParams, JobDetail,
    JobGetParams, JobId, JobInsertManyParams, JobListParams, JobOutcome, JobProgressManyParams,
    JobPruneParams, JobRetryParams, JobRow, JobSignal, JobState, LeaseRenewManyParams,
    LeaseRescueParams, LeaseStatus, NewJob, QueueStateCount, RecurringRow, Request, RunAt,
    ServerHeartbeatParams, ServerInfo, ServerListParams, ServerRemoveParams, Store, StoreError,
    StoreErrorKind, StoreResult, Timestamp,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgExecutor, PgPool, Row};

use crate::error::{store_error, Error, Result};
use crate::listener::{self, ListenerGuard, Notifier};
use crate::migrate;
use crate::options::{PgStoreOptions, Schema};
use crate::recurring::CronQueries;
use crate::rows;
use crate::sql::Queries;

/// The `application_name` of the store's connections when the URL sets none,
/// so operators can find them in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "jobs";

/// Pooled connections idle this long are pinged before they are handed out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// The longest duration the store passes to the database (1,000 years):
/// longer delays and ages are clamped to it, and mean "never".
const MAX_MICROS: i64 = 1_000 * 366 * 24 * 3600 * 1_000_000;

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).map_or(MAX_MICROS, |us| us.min(MAX_MICROS))
}

/// The PostgreSQL store: durable jobs on a sqlx [`PgPool`].
///
/// Cheap to clone; clones share the pool, the prepared SQL and the
/// LISTEN/NOTIFY listener, which stops when the last clone is dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use jobs_postgres::PgStore;
/// let store = PgStore::connect("postgres://postgres@localhost/app").await?; // migrates
/// let jobs = jobs_core::Jobs::new(store.clone());
/// # let _ = jobs;
/// # Ok(()) }
/// ```
///
/// Claims take `FOR UPDATE SKIP LOCKED` in one statement; every write about a
/// running attempt is fenced by its claim token; times are the database's
/// (`now()`), never the application's. A job whose completion could not be
/// written (the database was unreachable) is run again after its lease runs
/// out: delivery is at least once.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    schema: Schema,
    sql: Queries,
    cron_sql: CronQueries,
    options: PgStoreOptions,
    signal: JobSignal,
    /// The payload of this store's own NOTIFYs, so that its listener can
    /// skip them (the store woke its servers when it inserted).
    origin: String,
    /// Started on the first `job_signal()`: a client that only enqueues
    /// holds no listening connection.
    listener: OnceLock<Option<ListenerGuard>>,
    /// Started on the first insert through the store's pool.
    notifier: OnceLock<Option<Notifier>>,
}

/// How an insert wakes servers in other processes.
#[derive(Debug, Clone, Copy)]
enum Wake {
    /// In the statement: the NOTIFY is delivered when the caller's
    /// transaction commits (and never if it rolls back).
    AtCommit,
    /// From the coalescing notifier after the insert committed, so that
    /// inserting transactions do not queue on NOTIFY's commit lock.
    Afterwards,
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
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PgStoreOptions::new()).await
    }

    /// Connects to the database at `url` with these options. The pool's
    /// connections carry `application_name = jobs` unless the URL names one.
    pub async fn connect_with(url: &str, options: PgStoreOptions) -> Result<Self> {
        // Refuse a bad schema before touching the network.
        Schema::parse(&options.schema)?;
        let mut connect = PgConnectOptions::from_str(url).map_err(Error::Connect)?;
        if connect.get_application_name().is_none() {
            connect = connect.application_name(APPLICATION_NAME);
        }
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection it hands out by default: one
            // more round trip before each statement (single enqueues went
            // from 8,300 to 9,400 a second without it). Like pgx, ping only
            // connections that sat idle
            // (those a restart or a network fault may have broken); a hot
            // connection that broke fails its statement, which the
            // server's loops retry and the caller sees as an error.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await
            .map_err(Error::Connect)?;
        Self::with_options(pool, options).await
    }

    /// A store on the application's own pool, with the default options
    /// (schema `jobs`); applies pending migrations.
    ///
    /// sqlx pings every connection it hands out unless the pool was built
    /// with `test_before_acquire(false)`: a round trip before each
    /// statement. [`PgStore::connect`] turns that off and pings only
    /// connections idle for a second (see sqlx's `before_acquire`); a pool
    /// built the same way makes enqueues and claims about a tenth faster.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        Self::with_options(pool, PgStoreOptions::new()).await
    }

    /// A store on the application's own pool, with these options; applies
    /// pending migrations unless told not to.
    pub async fn with_options(pool: PgPool, options: PgStoreOptions) -> Result<Self> {
        let schema = Schema::parse(&options.schema)?;
        if options.migrate {
            migrate::run(&pool, &schema).await?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                sql: Queries::new(&schema),
                cron_sql: CronQueries::new(&schema),
                schema,
                options,
                signal: JobSignal::new(),
                origin: uuid::Uuid::new_v4().simple().to_string(),
                listener: OnceLock::new(),
                notifier: OnceLock::new(),
            }),
        })
    }

    /// Applies pending migrations: idempotent, and safe when several
    /// processes run it at once.
    pub async fn migrate(&self) -> Result<()> {
        migrate::run(&self.inner.pool, &self.inner.schema).await
    }

    /// The SQL of every migration for `schema`, for applying with your own
    /// tool (then build the store with `PgStoreOptions::migrate(false)`).
    /// It records itself in `<schema>.jobs_migrations`, so the store's own
    /// migrator will later apply only what is newer.
    pub fn migration_sql(schema: &str) -> Result<String> {
        Ok(migrate::full_sql(&Schema::parse(schema)?))
    }

    /// The pool the store runs on.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema the store's tables live in.
    pub fn schema(&self) -> &str {
        self.inner.schema.name()
    }

    /// Enqueues one job on the application's own connection or transaction
    /// (`&mut *tx`): if the transaction rolls back, the job never existed.
    /// Servers are woken by NOTIFY when the transaction commits.
    pub async fn enqueue_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        request: Request<J>,
    ) -> jobs_core::Result<JobId> {
        let ids = self.insert_in(conn, vec![request.into_new_job()?]).await?;
        ids.first().copied().ok_or_else(|| {
            StoreError::new(StoreErrorKind::Other, "postgres: insert returned no id").into()
        })
    }

    /// Enqueues many jobs of one type in one statement on the application's
    /// own connection or transaction; their ids in order.
    pub async fn enqueue_many_in<J: Job>(
        &self,
        conn: &mut PgConnection,
        requests: impl IntoIterator<Item = Request<J>>,
    ) -> jobs_core::Result<Vec<JobId>> {
        let jobs = requests
            .into_iter()
            .map(Request::into_new_job)
            .collect::<jobs_core::Result<Vec<_>>>()?;
        Ok(self.insert_in(conn, jobs).await?)
    }

    /// Inserts already serialized jobs (of any types) in one statement on the
    /// application's own connection or transaction; their ids in order.
    pub async fn insert_in(
        &self,
        conn: &mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> StoreResult<Vec<JobId>> {
        self.insert(&mut *conn, jobs, Wake::AtCommit).await
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
    /// # async fn job(store: jobs_postgres::PgStore, ctx: jobs_core::JobContext) -> anyhow::Result<()> {
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("UPDATE offers SET is_valid = false WHERE id = $1")
    ///     .bind(7_i64)
    ///     .execute(&mut *tx)
    ///     .await?;
    /// store.complete_in(&mut tx, &ctx).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn complete_in(&self, conn: &mut PgConnection, ctx: &JobContext) -> StoreResult<()> {
        let applied: i64 = sqlx::query_scalar(&self.inner.sql.complete_in)
            .bind(ctx.id().0)
            .bind(ctx.claim().token)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| store_error("completing a job in a transaction", e))?;
        if applied == 1 {
            Ok(())
        } else {
            Err(conflict(format!(
                "job {} is no longer running attempt {} (its lease expired, or it was \
                 cancelled or finished); roll the transaction back",
                ctx.id(),
                ctx.attempt()
            )))
        }
    }

    async fn insert<'e>(
        &self,
        executor: impl PgExecutor<'e>,
        jobs: Vec<NewJob>,
        wake: Wake,
    ) -> StoreResult<Vec<JobId>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let n = jobs.len();
        let mut names = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut args = Vec::with_capacity(n);
        let mut priorities = Vec::with_capacity(n);
        let mut max_attempts = Vec::with_capacity(n);
        let mut run_at_abs: Vec<Option<Timestamp>> = Vec::with_capacity(n);
        let mut delays: Vec<Option<i64>> = Vec::with_capacity(n);
        let mut recurring_ids: Vec<Option<String>> = Vec::with_capacity(n);
        let mut ticks: Vec<Option<Timestamp>> = Vec::with_capacity(n);
        for job in jobs {
            let json = serde_json::to_string(&job.args).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Invalid,
                    format!(
                        "the arguments of job `{}` cannot be stored as JSON",
                        job.name
                    ),
                )
                .with_source(e)
            })?;
            self.check_args_size(&job.name, json.len())?;
            let (at, delay) = match job.run_at {
                RunAt::At(at) => (Some(at), None),
                RunAt::After(delay) => (None, Some(micros(delay))),
                _ => (None, Some(0)),
            };
            names.push(job.name);
            queues.push(job.queue);
            args.push(json);
            priorities.push(job.priority);
            max_attempts.push(job.max_attempts);
            run_at_abs.push(at);
            delays.push(delay);
            match job.recurring {
                Some(origin) => {
                    recurring_ids.push(Some(origin.id));
                    ticks.push(Some(origin.scheduled_for));
                }
                None => {
                    recurring_ids.push(None);
                    ticks.push(None);
                }
            }
        }
        let sql = &self.inner.sql;
        let mut query = match (n, wake) {
            (1, Wake::AtCommit) => sqlx::query(&sql.insert_one_notify),
            (1, Wake::Afterwards) => sqlx::query(&sql.insert_one),
            (_, Wake::AtCommit) => sqlx::query(&sql.insert_notify),
            (_, Wake::Afterwards) => sqlx::query(&sql.insert),
        };
        query = if n == 1 {
            fn only<T>(column: Vec<T>) -> Option<T> {
                column.into_iter().next()
            }
            query
                .bind(only(names))
                .bind(only(queues))
                .bind(only(args))
                .bind(only(priorities))
                .bind(only(max_attempts))
                .bind(only(run_at_abs).flatten())
                .bind(only(delays).flatten())
                .bind(only(recurring_ids).flatten())
                .bind(only(ticks).flatten())
        } else {
            query
                .bind(names)
                .bind(queues)
                .bind(args)
                .bind(priorities)
                .bind(max_attempts)
                .bind(run_at_abs)
                .bind(delays)
                .bind(recurring_ids)
                .bind(ticks)
        };
        if let Wake::AtCommit = wake {
            query = query.bind(self.inner.schema.channel());
        }
        let rows = query.fetch_all(executor).await.map_err(insert_error)?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>(0).map(JobId))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| store_error("reading inserted ids", e))
    }

    fn wake(&self) {
        self.inner.signal.notify();
    }

    /// Wakes servers in other processes, through the coalescing notifier
    /// (started on first use).
    fn notify_others(&self) {
        let inner = &self.inner;
        let notifier = inner.notifier.get_or_init(|| {
            listener::spawn_notifier(&inner.pool, inner.schema.channel(), inner.origin.clone())
        });
        if let Some(notifier) = notifier {
            notifier.request();
        }
    }

    pub(crate) fn wake_local(&self) {
        self.wake();
    }

    pub(crate) fn cron_sql(&self) -> &CronQueries {
        &self.inner.cron_sql
    }

    /// Refuses arguments over the configured limit.
    pub(crate) fn check_args_size(&self, name: &str, len: usize) -> StoreResult<()> {
        let max = self.inner.options.max_args_bytes;
        if len > max {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "the arguments of job `{name}` are {len} bytes, over the limit of {max} bytes; \
                     store large data elsewhere and pass its id (or raise \
                     `PgStoreOptions::max_args_bytes`)"
                ),
            ));
        }
        Ok(())
    }
}

fn insert_error(error: sqlx::Error) -> StoreError {
    let unique =
        matches!(&error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"));
    if unique {
        StoreError::new(
            StoreErrorKind::Conflict,
            "postgres: this recurring tick is already enqueued",
        )
        .with_source(error)
    } else {
        store_error("inserting jobs", error)
    }
}

fn conflict(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::Conflict, message)
}

fn parse_state(text: &str) -> StoreResult<JobState> {
    text.parse().map_err(|e| {
        StoreError::new(StoreErrorKind::Other, "postgres: unknown state").with_source(e)
    })
}

/// How one outcome is written: new state, history error, delay in µs (`None`:
/// keep `run_at`), attempt delta, whether the error becomes `last_error`.
type OutcomeColumns = (&'static str, Option<String>, Option<i64>, i32, bool);

fn outcome_columns(outcome: JobOutcome) -> StoreResult<OutcomeColumns> {
    Ok(match outcome {
        JobOutcome::Succeeded => ("succeeded", None, None, 0, false),
        JobOutcome::Retry { error, after } => {
            ("scheduled", Some(error), Some(micros(after)), 0, true)
        }
        JobOutcome::Failed { error } => ("failed", Some(error), None, 0, true),
        // The attempt is not counted.
        JobOutcome::Snooze { after } => ("scheduled", None, Some(micros(after)), -1, false),
        JobOutcome::Cancelled { reason } => ("cancelled", Some(reason), None, 0, false),
        // Runnable again at once, the attempt not counted.
        JobOutcome::Released { reason } => ("enqueued", Some(reason), Some(0), -1, false),
        other => {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("postgres: unsupported job outcome {other:?}"),
            ))
        }
    })
}

impl Store for PgStore {
    async fn job_insert_many(&self, p: JobInsertManyParams) -> StoreResult<Vec<JobId>> {
        let ids = self
            .insert(&self.inner.pool, p.jobs, Wake::Afterwards)
            .await?;
        if !ids.is_empty() {
            // Our own servers need not wait for the NOTIFY round trip.
            self.wake();
            self.notify_others();
        }
        Ok(ids)
    }

    async fn job_claim(&self, p: JobClaimParams) -> StoreResult<Vec<JobRow>> {
        let mut seen = HashSet::new();
        let queues: Vec<String> = p
            .queues
            .into_iter()
            .filter(|q| seen.insert(q.clone()))
            .collect();
        if queues.is_empty() || p.names.is_empty() || p.limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&self.inner.sql.claim)
            .bind(queues)
            .bind(p.names)
            .bind(i64::from(p.limit))
            .bind(p.server_id.0)
            .bind(micros(p.lease))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| store_error("claiming jobs", e))?;
        rows.iter()
            .map(rows::job_row)
            .collect::<Result<_, _>>()
            .map_err(|e| store_error("reading claimed jobs", e))
    }

    async fn job_complete_many(&self, p: JobCompleteManyParams) -> StoreResult<Vec<bool>> {
        let n = p.completions.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        // A claim named twice is applied once: the first time.
        let mut first = HashSet::with_capacity(n);
        let mut is_first = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut tokens = Vec::with_capacity(n);
        let mut states = Vec::with_capacity(n);
        let mut errors = Vec::with_capacity(n);
        let mut delays = Vec::with_capacity(n);
        let mut deltas = Vec::with_capacity(n);
        let mut set_errors = Vec::with_capacity(n);
        for completion in p.completions {
            let claim = completion.claim;
            let fresh = first.insert(claim.job_id);
            is_first.push((claim, fresh));
            if !fresh {
                continue;
            }
            let (state, error, delay, delta, set_error) = outcome_columns(completion.outcome)?;
            ids.push(claim.job_id.0);
            tokens.push(claim.token);
            states.push(state);
            errors.push(error);
            delays.push(delay);
            deltas.push(delta);
            set_errors.push(set_error);
        }
        let rows = sqlx::query(&self.inner.sql.complete)
            .bind(ids)
            .bind(tokens)
            .bind(states)
            .bind(errors)
            .bind(delays)
            .bind(deltas)
            .bind(set_errors)
            .bind(p.server_id.0)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| store_error("completing jobs", e))?;
        let mut applied = HashSet::with_capacity(rows.len());
        let mut runnable = false;
        for row in &rows {
            let read = || -> Result<_, sqlx::Error> {
                Ok((
                    row.try_get::<i64, _>("id")?,
                    row.try_get::<i64, _>("claim_token")?,
                    row.try_get::<i64, _>("notified")?,
                ))
            };
            let (id, token, notified) =
                read().map_err(|e| store_error("reading completions", e))?;
            applied.insert((id, token));
            runnable |= notified > 0;
        }
        if runnable {
            self.wake();
        }
        Ok(is_first
            .into_iter()
            .map(|(claim, fresh)| fresh && applied.contains(&(claim.job_id.0, claim.token)))
            .collect())
    }

    async fn job_progress_many(&self, p: JobProgressManyParams) -> StoreResult<Vec<bool>> {
        if p.updates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = p.updates.iter().map(|(c, _)| c.job_id.0).collect();
        let tokens: Vec<i64> = p.updates.iter().map(|(c, _)| c.token).collect();
        let progress: Vec<String> = p.updates.iter().map(|(_, v)| v.to_string()).collect();
        let rows = sqlx::query(&self.inner.sql.progress)
            .bind(ids)
            .bind(tokens)
            .bind(progress)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| store_error("writing job progress", e))?;
        let mut applied = HashSet::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row
                .try_get(0)
                .map_err(|e| store_error("reading progress", e))?;
            let token: i64 = row
                .try_get(1)
                .map_err(|e| store_error("reading progress", e))?;
            applied.insert((id, token));
        }
        Ok(p.updates
            .iter()
            .map(|(c, _)| applied.contains(&(c.job_id.0, c.token)))
            .collect())
    }

    async fn lease_renew_many(&self, p: LeaseRenewManyParams) -> StoreResult<Vec<LeaseStatus>> {
        if p.claims.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = p.claims.iter().map(|c| c.job_id.0).collect();
        let tokens: Vec<i64> = p.claims.iter().map(|c| c.token).collect();
        let rows = sqlx::query(&self.inner.sql.renew)
            .bind(ids)
            .bind(tokens)
            .bind(micros(p.lease))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| store_error("renewing leases", e))?;
        let mut held = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let read = || -> Result<_, sqlx::Error> {
                Ok((
                    row.try_get::<i64, _>(0)?,
                    row.try_get::<i64, _>(1)?,
                    row.try_get::<bool, _>(2)?,
                ))
            };
            let (id, token, cancel) = read().map_err(|e| store_error("reading leases", e))?;
            held.insert((id, token), cancel);
        }
        Ok(p.claims
            .iter()
            .map(|c| match held.get(&(c.job_id.0, c.token)) {
                Some(true) => LeaseStatus::CancelRequested,
                Some(false) => LeaseStatus::Held,
                None => LeaseStatus::Lost,
            })
            .collect())
    }

    async fn lease_rescue(&self, p: LeaseRescueParams) -> StoreResult<Vec<JobId>> {
        if p.limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&self.inner.sql.rescue)
            .bind(i64::from(p.limit))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| store_error("rescuing expired leases", e))?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut runnable = false;
        for row in &rows {
            let read = || -> Result<_, sqlx::Error> {
                Ok((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?))
            };
            let (id, notified) = read().map_err(|e| store_error("reading rescued jobs", e))?;
            ids.push(JobId(id));
            runnable |= notified > 0;
        }
        if runnable {
            self.wake();
        }
        Ok(ids)
    }

    async fn job_get(&self, p: JobGetParams) -> StoreResult<Option<JobDetail>> {
        // One statement, one snapshot: the history matches the row.
        let Some(row) = sqlx::query(&self.inner.sql.get_job)
            .bind(p.id.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|e| store_error("reading a job", e))?
        else {
            return Ok(None);
        };
        let read =
            || -> Result<_, sqlx::Error> { Ok((rows::job_row(&row)?, rows::job_history(&row)?)) };
        let (job, history) = read().map_err(|e| store_error("reading a job", e))?;
        Ok(Some(JobDetail::new(job, history)))
    }

    async fn job_list(&self, p: JobListParams) -> StoreResult<Vec<JobRow>> {
        if p.limit == 0 {
            return Ok(Vec::new());
        }
        let variant = usize::from(p.state.is_some()) * 2 + usize::from(p.queue.is_some());
        let mut query = sqlx::query(&self.inner.sql.list[variant])
            .bind(p.before.map_or(i64::MAX, |id| id.0))
            .bind(i64::from(p.limit));
        if let Some(state) = p.state {
            query = query.bind(state.as_str());
        }
        if let Some(queue) = p.queue {
            query = query.bind(queue);
        }
        query
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| store_error("listing jobs", e))?
            .iter()
            .map(rows::job_row)
            .collect::<Result<_, _>>()
            .map_err(|e| store_error("reading listed jobs", e))
    }

    async fn job_count(&self, _p: JobCountParams) -> StoreResult<Vec<QueueStateCount>> {
        let rows = sqlx::query(&self.inner.sql.count)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| store_error("counting jobs", e))?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in &rows {
            let read = || -> Result<_, sqlx::Error> {
                Ok((
                    row.try_get::<String, _>(0)?,
                    row.try_get::<String, _>(1)?,
                    row.try_get::<i64, _>(2)?,
                ))
            };
            let (queue, state, n) = read().map_err(|e| store_error("reading counts", e))?;
            if n > 0 {
                counts.push(QueueStateCount::new(queue, parse_state(&state)?, n));
            }
        }
        let order = |state: JobState| JobState::ALL.iter().position(|s| *s == state);
        counts.sort_by(|a, b| {
            a.queue
                .cmp(&b.queue)
                .then_with(|| order(a.state).cmp(&order(b.state)))
        });
        Ok(counts)
    }

    async fn job_retry(&self, p: JobRetryParams) -> StoreResult<()> {
        let row = sqlx::query(&self.inner.sql.retry)
            .bind(p.id.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|e| store_error("retrying a job", e))?
            .ok_or_else(|| StoreError::job_not_found(p.id))?;
        let state: String = row
            .try_get(0)
            .map_err(|e| store_error("retrying a job", e))?;
        let state = parse_state(&state)?;
        match state {
            JobState::Failed | JobState::Cancelled | JobState::Deleted => {
                self.wake();
                Ok(())
            }
            state => Err(conflict(format!(
                "job {} is {state}; only failed, cancelled or deleted jobs can be retried",
                p.id
            ))),
        }
    }

    async fn job_cancel(&self, p: JobCancelParams) -> StoreResult<CancelOutcome> {
        let row = sqlx::query(&self.inner.sql.cancel)
            .bind(p.id.0)
            .bind(p.reason)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|e| store_error("cancelling a job", e))?
            .ok_or_else(|| StoreError::job_not_found(p.id))?;
        let state: String = row
            .try_get(0)
            .map_err(|e| store_error("cancelling a job", e))?;
        match parse_state(&state)? {
            JobState::Scheduled | JobState::Enqueued => Ok(CancelOutcome::Cancelled),
            JobState::Processing => Ok(CancelOutcome::Requested),
            state => Err(conflict(format!(
                "job {} is {state} and cannot be cancelled",
                p.id
            ))),
        }
    }

    async fn job_delete(&self, p: JobDeleteParams) -> StoreResult<()> {
        let row = sqlx::query(&self.inner.sql.delete)
            .bind(p.id.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(|e| store_error("deleting a job", e))?
            .ok_or_else(|| StoreError::job_not_found(p.id))?;
        let state: String = row
            .try_get(0)
            .map_err(|e| store_error("deleting a job", e))?;
        match parse_state(&state)? {
            JobState::Processing => Err(conflict(format!(
                "job {} is running and cannot be deleted; cancel it first",
                p.id
            ))),
            _ => Ok(()),
        }
    }

    async fn job_prune(&self, p: JobPruneParams) -> StoreResult<u64> {
        if p.limit == 0 {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar(&self.inner.sql.prune)
            .bind(micros(p.succeeded_older_than))
            .bind(micros(p.deleted_older_than))
            .bind(micros(p.failed_older_than))
            .bind(i64::from(p.limit))
            .fetch_one(&self.inner.pool)
            .await
            .map_err(|e| store_error("pruning jobs", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn server_heartbeat(&self, p: ServerHeartbeatParams) -> StoreResult<()> {
        let info: ServerInfo = p.info;
        sqlx::query(&self.inner.sql.heartbeat)
            .bind(info.id.0)
            .bind(info.host)
            .bind(i64::from(info.pid))
            .bind(info.queues)
            .bind(i64::from(info.concurrency))
            .bind(info.job_names)
            .bind(info.started_at)
            .execute(&self.inner.pool)
            .await
            .map_err(|e| store_error("recording a heartbeat", e))?;
        Ok(())
    }

    async fn server_list(&self, _p: ServerListParams) -> StoreResult<Vec<ServerInfo>> {
        sqlx::query(&self.inner.sql.server_list)
            .fetch_all(&self.inner.pool)
            .await
            .map_err(|e| store_error("listing servers", e))?
            .iter()
            .map(rows::server_info)
            .collect::<Result<_, _>>()
            .map_err(|e| store_error("reading servers", e))
    }

    async fn server_remove(&self, p: ServerRemoveParams) -> StoreResult<u64> {
        let done = sqlx::query(&self.inner.sql.server_remove)
            .bind(p.id.map(|id| id.0))
            .bind(micros(p.stale_after))
            .execute(&self.inner.pool)
            .await
            .map_err(|e| store_error("removing servers", e))?;
        Ok(done.rows_affected())
    }

    async fn cron_upsert(&self, p: CronUpsertParams) -> StoreResult<()> {
        self.pg_cron_upsert(p).await
    }

    async fn cron_remove(&self, p: CronRemoveParams) -> StoreResult<bool> {
        self.pg_cron_remove(p).await
    }

    async fn cron_pause(&self, p: CronPauseParams) -> StoreResult<()> {
        self.pg_cron_pause(p).await
    }

    async fn cron_list(&self, p: CronListParams) -> StoreResult<Vec<RecurringRow>> {
        self.pg_cron_list(p).await
    }

    async fn cron_due(&self, p: CronDueParams) -> StoreResult<CronDue> {
        self.pg_cron_due(p).await
    }

    async fn cron_fire(&self, p: CronFireParams) -> StoreResult<CronFireOutcome> {
        self.pg_cron_fire(p).await
    }

    async fn cron_trigger(&self, p: CronTriggerParams) -> StoreResult<JobId> {
        self.pg_cron_trigger(p).await
    }

    fn job_signal(&self) -> Option<JobSignal> {
        let inner = &self.inner;
        inner.listener.get_or_init(|| {
            inner.options.listen.then(|| {
                listener::spawn(
                    &inner.pool,
                    inner.schema.channel(),
                    inner.origin.clone(),
                    inner.signal.clone(),
                )
            })?
        });
        Some(inner.signal.clone())
    }
}
