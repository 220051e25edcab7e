//! The raw-SQL floor of W2: the same drain on the same table shape as
//! PgStore's, by a minimal loop with no framework around it. Each client
//! claims a batch (`FOR UPDATE SKIP LOCKED`) in one statement and marks it
//! done in a second, each its own commit. Our W2 divided by this says what
//! the framework itself costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use jobs::JobState;
use sqlx::{PgPool, Row};

use crate::args::Options;
use crate::stores;

/// One repetition with `clients` connections claiming `batch` jobs at a
/// time. Returns jobs/s.
pub(crate) async fn run(o: &Options, admin: &PgPool, clients: usize, batch: i64) -> Result<f64> {
    let s = format!("\"{}\"", o.schema);
    // The PgStore creates the tables (its migrations), then steps aside.
    let store = stores::fresh_pg(admin, &o.url, &o.schema).await?;
    store.pool().close().await;
    sqlx::query(&format!(
        "INSERT INTO {s}.jobs (state, max_attempts, run_at, queue, name, args)
         SELECT 'enqueued', 25, now(), 'default', 'bench_noop',
                jsonb_build_object('i', g, 't', 0)
         FROM generate_series(1, $1) AS g"
    ))
    .bind(i64::try_from(o.jobs)?)
    .execute(admin)
    .await
    .context("seeding the floor's jobs")?;

    let pool = stores::admin_pool(&o.url, u32::try_from(clients)?).await?;
    // Connect every client before timing.
    let mut warm = Vec::with_capacity(clients);
    for _ in 0..clients {
        warm.push(pool.acquire().await?);
    }
    drop(warm);

    let claim = Arc::new(format!(
        "UPDATE {s}.jobs
         SET state = 'processing', attempt = attempt + 1, claim_token = claim_token + 1,
             lease_expires_at = now() + interval '30 seconds'
         WHERE id IN (
             SELECT id FROM {s}.jobs
             WHERE state IN ('enqueued', 'scheduled') AND queue = 'default' AND run_at <= now()
             ORDER BY priority DESC, run_at, id
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING id, args"
    ));
    let complete = Arc::new(format!(
        "UPDATE {s}.jobs
         SET state = 'succeeded', finished_at = now(), lease_expires_at = NULL
         WHERE id = ANY($1)"
    ));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (pool, claim, complete, done) =
                (pool.clone(), claim.clone(), complete.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    let rows = sqlx::query(&claim).bind(batch).fetch_all(&pool).await?;
                    if rows.is_empty() {
                        return Ok::<_, sqlx::Error>(());
                    }
                    let mut ids = Vec::with_capacity(rows.len());
                    for row in &rows {
                        ids.push(row.try_get::<i64, _>(0)?);
                    }
                    let finished = sqlx::query(&complete).bind(&ids).execute(&pool).await?;
                    done.fetch_add(finished.rows_affected(), Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker
            .await
            .context("a floor client panicked")?
            .context("a floor client failed")?;
    }
    let elapsed = started.elapsed();
    pool.close().await;
    let done = done.load(Ordering::Relaxed);
    if done != o.jobs {
        bail!("check failed (floor): {done} of {} jobs completed", o.jobs);
    }
    stores::expect_only(
        "floor, rows",
        &stores::table_counts(admin, &o.schema).await?,
        JobState::Succeeded,
        o.jobs,
    )?;
    Ok(o.jobs as f64 / elapsed.as_secs_f64())
}
