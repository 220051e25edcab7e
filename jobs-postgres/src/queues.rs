//! Queues, the `queue_*` half of the store: pausing and resuming a queue
//! (a row of `queues`, migration 0008, which the claim reads), and listing
//! the queues the store knows, with the oldest due job of each.

use jobs_core::{QueueInfo, QueueListParams, QueuePauseParams, StoreResult, Timestamp};
use sqlx::Row;

use crate::db::Db;
use crate::error::store_error;
use crate::options::Schema;

/// The statements about queues of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    pause: String,
    list: String,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = &schema.quoted();
        Self {
            pause: pause_sql(s),
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

/// The queues with waiting jobs are found by skipping through the claim
/// index, one probe per queue (a million waiting jobs in three queues cost
/// four probes); running jobs are few, finished ones are counted in
/// `job_counts`, and `queues` has a row per queue ever paused. Ordered by
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
            UNION SELECT queue FROM {s}.jobs WHERE state = 'processing'
            UNION SELECT queue FROM {s}.job_counts
            UNION SELECT queue FROM {s}.queues
        )
        SELECT n.queue, q.paused_at, o.oldest_due
        FROM names n LEFT JOIN {s}.queues q ON q.queue = n.queue AND q.paused
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
            .oldest_due(row.try_get("oldest_due")?))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| store_error("reading queues", e))
}
