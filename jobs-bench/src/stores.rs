//! The stores under test and the checks run on them after every workload:
//! PostgreSQL in a schema of the benchmark's own, reset before each
//! repetition, and the in-memory store.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use jobs::postgres::{PgStore, PgStoreOptions};
use jobs::{JobState, Jobs};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

/// A pool for the benchmark's own statements (reset, checks, the floor),
/// separate from the store's.
pub(crate) async fn admin_pool(url: &str, connections: u32) -> Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url} (set DATABASE_URL)"))
}

/// Drops the benchmark's schema, so the next store starts from empty tables.
pub(crate) async fn drop_schema(admin: &PgPool, schema: &str) -> Result<()> {
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(admin)
        .await
        .with_context(|| format!("dropping schema {schema}"))?;
    Ok(())
}

/// A PgStore with default options but the benchmark's schema (migrated on connect).
pub(crate) async fn connect_pg(url: &str, schema: &str) -> Result<PgStore> {
    PgStore::connect_with(url, PgStoreOptions::new().schema(schema))
        .await
        .with_context(|| format!("connecting the PgStore to {url}, schema {schema}"))
}

/// Drops and recreates the schema; a fresh store on it. A checkpoint first,
/// so that no repetition pays for the checkpoint the previous ones' WAL
/// made due (its writes, and the full-page images after it), and
/// repetitions start alike. Skipped, with a note, where the role may not.
pub(crate) async fn fresh_pg(admin: &PgPool, url: &str, schema: &str) -> Result<PgStore> {
    drop_schema(admin, schema).await?;
    if let Err(error) = sqlx::query("CHECKPOINT").execute(admin).await {
        eprintln!("# no checkpoint before the repetition: {error}");
    }
    connect_pg(url, schema).await
}

/// Opens `n` connections of the store's pool at once and gives them back,
/// so a timed run does not pay for connecting.
pub(crate) async fn warm_pool(store: &PgStore, n: usize) -> Result<()> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(store.pool().acquire().await.context("warming the pool")?);
    }
    drop(held);
    Ok(())
}

/// Counts of jobs by state as the client reports them (`Jobs::counts`).
pub(crate) async fn counts(jobs: &Jobs) -> Result<BTreeMap<String, i64>> {
    let mut by_state = BTreeMap::new();
    for count in jobs.counts().await.context("counting jobs")? {
        *by_state.entry(count.state.as_str().to_owned()).or_insert(0) += count.count;
    }
    by_state.retain(|_, n| *n != 0);
    Ok(by_state)
}

/// Counts of rows by state read from the table itself, bypassing the store's
/// counters, so a bug in those cannot hide a lost job.
pub(crate) async fn table_counts(admin: &PgPool, schema: &str) -> Result<BTreeMap<String, i64>> {
    let rows = sqlx::query(&format!(
        "SELECT state, count(*)::bigint FROM \"{schema}\".jobs GROUP BY state"
    ))
    .fetch_all(admin)
    .await
    .context("counting rows by state")?;
    let mut by_state = BTreeMap::new();
    for row in rows {
        by_state.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
    }
    Ok(by_state)
}

/// Fails unless exactly `n` jobs exist and all are in `state`.
pub(crate) fn expect_only(
    what: &str,
    by_state: &BTreeMap<String, i64>,
    state: JobState,
    n: u64,
) -> Result<()> {
    let wanted = BTreeMap::from([(state.as_str().to_owned(), i64::try_from(n)?)]);
    if *by_state != wanted {
        bail!("check failed ({what}): expected {wanted:?}, the store holds {by_state:?}");
    }
    Ok(())
}

/// Checks both views of a PostgreSQL store: the client's counts and the table's rows.
pub(crate) async fn check_pg(
    what: &str,
    jobs: &Jobs,
    admin: &PgPool,
    schema: &str,
    state: JobState,
    n: u64,
) -> Result<()> {
    expect_only(
        &format!("{what}, Jobs::counts"),
        &counts(jobs).await?,
        state,
        n,
    )?;
    expect_only(
        &format!("{what}, rows of {schema}.jobs"),
        &table_counts(admin, schema).await?,
        state,
        n,
    )
}

/// Waits until the store reports `n` succeeded jobs and nothing else, polling
/// every `every`; fails after `limit`.
pub(crate) async fn wait_all_succeeded(
    jobs: &Jobs,
    n: u64,
    every: Duration,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let by_state = counts(jobs).await?;
        if expect_only("all succeeded", &by_state, JobState::Succeeded, n).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the store did not show {n} succeeded jobs within {limit:?}: {by_state:?}");
        }
        tokio::time::sleep(every).await;
    }
}

/// How the server batched its store calls in a PostgreSQL drain, read from
/// the history PgStore writes (`job_events`): the rows of one claim or one
/// completion write share the transaction's `now()`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Batching {
    /// Claim statements that returned jobs.
    pub(crate) claims: i64,
    /// Jobs per claim, on average.
    pub(crate) jobs_per_claim: f64,
    /// Completion writes.
    pub(crate) completion_writes: i64,
    /// Jobs per completion write, on average.
    pub(crate) jobs_per_completion: f64,
    /// Milliseconds between consecutive claims, on average.
    pub(crate) ms_between_claims: f64,
}

/// Reads [`Batching`] from the history of the drained jobs; `None` when the
/// history does not have the expected shape.
pub(crate) async fn batching(admin: &PgPool, schema: &str) -> Option<Batching> {
    let row = sqlx::query(&format!(
        "WITH claims AS (
            SELECT at, count(*) AS n FROM \"{schema}\".job_events
            WHERE state = 'processing' GROUP BY at
        ), completions AS (
            SELECT at, count(*) AS n FROM \"{schema}\".job_events
            WHERE state = 'succeeded' GROUP BY at
        )
        SELECT (SELECT count(*) FROM claims)::bigint,
               (SELECT avg(n) FROM claims)::float8,
               (SELECT count(*) FROM completions)::bigint,
               (SELECT avg(n) FROM completions)::float8,
               (SELECT extract(epoch FROM max(at) - min(at)) * 1000 / greatest(count(*) - 1, 1)
                FROM claims)::float8"
    ))
    .fetch_one(admin)
    .await
    .ok()?;
    Some(Batching {
        claims: row.try_get(0).ok()?,
        jobs_per_claim: row.try_get::<Option<f64>, _>(1).ok()??,
        completion_writes: row.try_get(2).ok()?,
        jobs_per_completion: row.try_get::<Option<f64>, _>(3).ok()??,
        ms_between_claims: row.try_get::<Option<f64>, _>(4).ok()??,
    })
}
