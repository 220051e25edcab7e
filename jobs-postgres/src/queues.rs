//! Queues, the `queue_*` half of the store: pausing and resuming a queue
//! (a row of `queues`, migration 0008, which the claim reads), setting its
//! cluster-wide limits (the same row, migration 0014; the claim applies
//! them, see `jobs::claim`), and listing the queues the store knows, with
//! the oldest due job of each.

use std::time::Duration;

use jobs_core::{
    QueueInfo, QueueLimitParams, QueueLimits, QueueListParams, QueuePauseParams, RateLimit,
    StoreResult, Timestamp,
};
use sqlx::Row;

use crate::db::Db;
use crate::error::store_error;
use crate::options::Schema;

/// The statements about queues of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    pause: String,
    limit: String,
    list: String,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = &schema.quoted();
        Self {
            pause: pause_sql(s),
            limit: limit_sql(s),
            list: list_sql(s),
        }
    }
}

/// $1 queue, $2 paused, $3 the NOTIFY channel. A pause keeps the time of
/// the first; a resume wakes the servers of every process when it commits
/// (a CTE that only selects runs only if it is read: the final SELECT reads
/// both).
fn pause_sql(s: &str) -> String {
    format!(
        "WITH up AS (
            INSERT INTO {s}.queues AS q (queue, paused, paused_at)
            VALUES ($1, $2::bool, CASE WHEN $2::bool THEN now() END)
            ON CONFLICT (queue) DO UPDATE
            SET paused = EXCLUDED.paused,
                paused_at = CASE WHEN EXCLUDED.paused THEN coalesce(q.paused_at, now()) END,
                updated_at = now()
            RETURNING 1
        ), woken AS (
            SELECT pg_notify($3, '') WHERE NOT $2::bool
        )
        SELECT (SELECT count(*) FROM up) AS changed, (SELECT count(*) FROM woken) AS woken"
    )
}

/// $1 queue, $2 concurrency, $3 rate's jobs, $4 rate's period in µs, $5
/// the NOTIFY channel. A rate limit whose period is unchanged keeps the
/// starts it counted; one with a new period (or none) forgets them. Wakes
/// the servers of every process when it commits, as a resume does, for
/// what a raised or lifted limit frees.
fn limit_sql(s: &str) -> String {
    format!(
        "WITH up AS (
            INSERT INTO {s}.queues AS q (queue, concurrency, rate_jobs, rate_period_us)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (queue) DO UPDATE
            SET concurrency = EXCLUDED.concurrency,
                rate_jobs = EXCLUDED.rate_jobs,
                rate_period_us = EXCLUDED.rate_period_us,
                rate_slots = CASE WHEN q.rate_period_us = EXCLUDED.rate_period_us
                                  THEN q.rate_slots ELSE '{{}}' END,
                rate_starts = CASE WHEN q.rate_period_us = EXCLUDED.rate_period_us
                                   THEN q.rate_starts ELSE '{{}}' END,
                updated_at = now()
            RETURNING 1
        ), woken AS (
            SELECT pg_notify($5, '')
        )
        SELECT (SELECT count(*) FROM up) AS changed, (SELECT count(*) FROM woken) AS woken"
    )
}

/// The queues with waiting jobs are found by skipping through the claim
/// index, one probe per queue (a million waiting jobs in three queues cost
/// four probes), the queues with running jobs likewise in
/// `jobs_running_idx`, finished ones are counted in `job_counts`, and
/// `queues` has a row per queue ever paused or limited. Ordered by
/// bytes (`COLLATE "C"`), as `MemoryStore` orders them, whatever the
/// database's collation.
///
/// The oldest due job of a queue is found in the same index, which orders
/// a queue's waiting jobs by priority, then run time: `firsts` skips from
/// one priority of the queue to the next lower one, one probe each, and
/// takes the first (earliest) run time of each; the earliest of those that
/// has come is the queue's. So it costs a probe per queue and priority,
/// whatever the number of jobs.
fn list_sql(s: &str) -> String {
    let waiting_j = "j.state IN ('enqueued', 'scheduled')";
    format!(
        "WITH RECURSIVE waiting AS (
            (SELECT queue FROM {s}.jobs
             WHERE state IN ('enqueued', 'scheduled')
             ORDER BY queue LIMIT 1)
            UNION ALL
            SELECT (SELECT j.queue FROM {s}.jobs j
                    WHERE {waiting_j} AND j.queue > w.queue
                    ORDER BY j.queue LIMIT 1)
            FROM waiting w
            WHERE w.queue IS NOT NULL
        ), running AS (
            (SELECT queue FROM {s}.jobs
             WHERE state = 'processing'
             ORDER BY queue LIMIT 1)
            UNION ALL
            SELECT (SELECT j.queue FROM {s}.jobs j
                    WHERE j.state = 'processing' AND j.queue > r.queue
                    ORDER BY j.queue LIMIT 1)
            FROM running r
            WHERE r.queue IS NOT NULL
        ), firsts AS (
            SELECT w.queue, f.priority, f.run_at
            FROM waiting w CROSS JOIN LATERAL (
                SELECT j.priority, j.run_at FROM {s}.jobs j
                WHERE {waiting_j} AND j.queue = w.queue
                ORDER BY j.priority DESC, j.run_at LIMIT 1
            ) f
            WHERE w.queue IS NOT NULL
            UNION ALL
            SELECT p.queue, f.priority, f.run_at
            FROM firsts p CROSS JOIN LATERAL (
                SELECT j.priority, j.run_at FROM {s}.jobs j
                WHERE {waiting_j} AND j.queue = p.queue AND j.priority < p.priority
                ORDER BY j.priority DESC, j.run_at LIMIT 1
            ) f
        ), oldest AS (
            SELECT queue, min(run_at) AS oldest_due FROM firsts
            WHERE run_at <= now()
            GROUP BY queue
        ), names AS (
            SELECT queue FROM waiting WHERE queue IS NOT NULL
            UNION SELECT queue FROM running WHERE queue IS NOT NULL
            UNION SELECT queue FROM {s}.job_counts
            UNION SELECT queue FROM {s}.queues
        )
        SELECT n.queue, q.paused_at, o.oldest_due,
               q.concurrency, q.rate_jobs, q.rate_period_us
        FROM names n LEFT JOIN {s}.queues q ON q.queue = n.queue
        LEFT JOIN oldest o ON o.queue = n.queue
        ORDER BY n.queue COLLATE \"C\""
    )
}

/// `Store::queue_pause`.
pub(crate) async fn pause(db: &Db, sql: &Statements, p: QueuePauseParams) -> StoreResult<()> {
    let what = if p.paused {
        "pausing a queue"
    } else {
        "resuming a queue"
    };
    sqlx::query(&sql.pause)
        .bind(&p.queue)
        .bind(p.paused)
        .bind(db.channel())
        .execute(db.pool())
        .await
        .map_err(|e| store_error(what, e))?;
    if !p.paused {
        // Our own servers need not wait for the NOTIFY round trip.
        db.wake();
    }
    Ok(())
}

/// `Store::queue_limit`.
pub(crate) async fn limit(db: &Db, sql: &Statements, p: QueueLimitParams) -> StoreResult<()> {
    p.limits.check()?;
    let rate = p.limits.rate;
    sqlx::query(&sql.limit)
        .bind(&p.queue)
        .bind(p.limits.concurrency.map(i64::from))
        .bind(rate.map(|r| i64::from(r.jobs)))
        .bind(rate.map(|r| i64::try_from(r.per.as_micros()).unwrap_or(i64::MAX)))
        .bind(db.channel())
        .execute(db.pool())
        .await
        .map_err(|e| store_error("setting a queue's limits", e))?;
    // Our own servers need not wait for the NOTIFY round trip.
    db.wake();
    Ok(())
}

/// The limits stored on a row of `queue_list`.
fn limits_of(row: &sqlx::postgres::PgRow) -> Result<QueueLimits, sqlx::Error> {
    let mut limits = QueueLimits::none();
    if let Some(jobs) = row.try_get::<Option<i32>, _>("concurrency")? {
        limits = limits.concurrency(u32::try_from(jobs).unwrap_or(u32::MAX));
    }
    let rate_jobs: Option<i32> = row.try_get("rate_jobs")?;
    let period: Option<i64> = row.try_get("rate_period_us")?;
    if let (Some(jobs), Some(period)) = (rate_jobs, period) {
        limits = limits.rate(RateLimit::new(
            u32::try_from(jobs).unwrap_or(u32::MAX),
            Duration::from_micros(u64::try_from(period).unwrap_or(0)),
        ));
    }
    Ok(limits)
}

/// `Store::queue_list`.
pub(crate) async fn list(
    db: &Db,
    sql: &Statements,
    _p: QueueListParams,
) -> StoreResult<Vec<QueueInfo>> {
    sqlx::query(&sql.list)
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("listing queues", e))?
        .iter()
        .map(|row| {
            Ok(QueueInfo::new(
                row.try_get("queue")?,
                row.try_get::<Option<Timestamp>, _>("paused_at")?,
            )
            .oldest_due(row.try_get("oldest_due")?)
            .limits(limits_of(row)?))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| store_error("reading queues", e))
}
