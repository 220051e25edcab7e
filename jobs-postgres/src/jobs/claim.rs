//! The claim, the hottest statement of all, in three forms. Queues without
//! cluster-wide limits (the common case) are claimed by one statement that
//! locks nothing but the jobs it takes; while their jobs have key limits,
//! by the same statement with the key places added (see [`picked_cte`]).
//! A claim that asks for a queue with
//! limits (`queues.concurrency`, `queues.rate_*`, migration 0014) runs in a
//! transaction of its own instead: it first locks the limited queues' rows,
//! then claims in a second statement, whose fresh snapshot sees every claim
//! of those queues committed before the lock was granted, and which counts
//! what runs and has started, and takes at most what the limits leave.
//! Counting and claiming in one statement would not hold: its snapshot
//! predates the lock, so two servers could each see the last free place.

use std::collections::HashSet;
use std::sync::Mutex;

use jobs_core::{JobClaimParams, JobRow, StoreResult, RATE_SLOTS_PER_PERIOD};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::db::Db;
use crate::error::store_error;
use crate::jobs::job_row;
use crate::sql::{job_columns_of, micros, JOB_COLUMNS};

/// The claim statements of one store, and which lists of queues were found
/// to hold a limited queue, or jobs with key limits.
#[derive(Debug)]
pub(crate) struct Statements {
    plain: String,
    plain_keyed: String,
    lock: String,
    limited: String,
    /// The queue lists whose last claim found a limited queue among them:
    /// their next claim goes straight to the transaction, rather than first
    /// through the plain statement, which would take nothing and say so.
    /// One is removed when its transaction finds no limited queue left.
    limited_lists: Mutex<HashSet<Vec<String>>>,
    /// The queue lists whose last claim picked jobs with a key limit: they
    /// are claimed with the statement that places keys, until one of its
    /// claims picks none.
    keyed_lists: Mutex<HashSet<Vec<String>>>,
}

impl Statements {
    /// Builds the statements for the quoted schema `s`.
    pub(crate) fn new(s: &str) -> Self {
        Self {
            plain: plain_sql(s, false),
            plain_keyed: plain_sql(s, true),
            lock: lock_sql(s),
            limited: limited_sql(s),
            limited_lists: Mutex::new(HashSet::new()),
            keyed_lists: Mutex::new(HashSet::new()),
        }
    }
}

/// Whether `queues` is one of `lists`.
fn known(lists: &Mutex<HashSet<Vec<String>>>, queues: &[String]) -> bool {
    let lists = lists.lock().unwrap_or_else(|e| e.into_inner());
    !lists.is_empty() && lists.contains(queues)
}

/// Adds `queues` to `lists`, or removes it.
fn remember(lists: &Mutex<HashSet<Vec<String>>>, queues: &[String], in_it: bool) {
    let mut lists = lists.lock().unwrap_or_else(|e| e.into_inner());
    if in_it {
        lists.insert(queues.to_vec());
    } else if !lists.is_empty() {
        lists.remove(queues);
    }
}

/// A queue of `queues` (alias `p`) with a cluster-wide limit.
const LIMITED: &str = "(p.concurrency IS NOT NULL OR p.rate_jobs IS NOT NULL)";

/// The jobs of `asked` (queue, queue_limit, ord) that the claim takes: one
/// lateral index scan per queue, each stopping after its limit (`least`
/// ignores a NULL limit, and so does `LIMIT NULL`), in the order of
/// `jobs_claim_idx`; with one queue (the common case) the plan is a single
/// range scan of it in index order.
///
/// Key limits (migration 0016): the scan passes over a job whose key's
/// places (`key_places`) are all taken as its snapshot sees them, so a busy
/// key never holds up the jobs behind it. A picked job with a key then
/// takes a free place of its key by inserting it, the n-th job of a key in
/// this claim the n-th free place; `ON CONFLICT DO NOTHING` leaves it
/// unclaimed if another claim took that place meanwhile (committed or not:
/// the unique index sees both), so no snapshot can let two jobs into one
/// place.
///
/// Without `keys` (the plain claim of lists of queues where no job with a
/// key was seen lately), none of that is in the statement: jobs with a key
/// are picked but left unclaimed, and `keyed_seen` says the caller should
/// claim with `keys` from now on. So queues without key limits pay nothing
/// for them.
fn picked_cte(s: &str, asked: &str, keys: bool) -> String {
    let busy_key = if keys {
        format!(
            "AND (j.limit_key IS NULL
                       OR (SELECT count(*) FROM {s}.key_places k WHERE k.key = j.limit_key)
                          < j.limit_running)"
        )
    } else {
        String::new()
    };
    let (placing, placed) = if keys {
        (
            format!(
                "), keyed AS (
            SELECT p.id, p.limit_key, p.limit_running,
                   row_number() OVER (PARTITION BY p.limit_key
                                      ORDER BY p.ord, p.priority DESC, p.run_at, p.id) AS nth
            FROM picked p
            WHERE p.limit_key IS NOT NULL
        ), placed AS (
            INSERT INTO {s}.key_places (key, place, job_id)
            SELECT k.limit_key, f.place, k.id
            FROM keyed k CROSS JOIN LATERAL (
                SELECT n AS place FROM generate_series(1, k.limit_running) AS n
                WHERE NOT EXISTS (SELECT 1 FROM {s}.key_places x
                                  WHERE x.key = k.limit_key AND x.place = n)
                ORDER BY n OFFSET k.nth - 1 LIMIT 1
            ) f
            ON CONFLICT DO NOTHING
            RETURNING job_id"
            ),
            "picked.id IN (SELECT job_id FROM placed)",
        )
    } else {
        (String::new(), "false")
    };
    format!(
        "picked AS (
            SELECT c.id, a.ord, c.priority, c.run_at, a.queue, c.limit_key, c.limit_running
            FROM {asked} a
            CROSS JOIN LATERAL (
                SELECT j.id, j.priority, j.run_at, j.limit_key, j.limit_running
                FROM {s}.jobs j
                WHERE j.state IN ('enqueued', 'scheduled')
                  AND j.queue = a.queue
                  AND j.run_at <= now()
                  AND j.name = ANY($2::text[])
                  {busy_key}
                ORDER BY j.priority DESC, j.run_at, j.id
                LIMIT least($3, a.queue_limit)
                FOR UPDATE OF j SKIP LOCKED
            ) c
            ORDER BY a.ord, c.priority DESC, c.run_at, c.id
            LIMIT $3
        {placing}
        ), claimed AS (
            UPDATE {s}.jobs j
            SET state = 'processing',
                attempt = j.attempt + 1,
                claim_token = j.claim_token + 1,
                server_id = $4,
                lease_expires_at = now() + $5 * interval '1 microsecond',
                cancel_requested = false, progress = NULL, stuck_at = NULL
            FROM picked
            WHERE j.id = picked.id
              AND (picked.limit_key IS NULL OR {placed})
            RETURNING {j_cols}, picked.ord
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, server_id)
            SELECT id, now(), 'processing', attempt, server_id FROM claimed
        )",
        j_cols = job_columns_of("j"),
    )
}

/// $1 queues in order of preference, $2 names, $3 limit, $4 server, $5 lease
/// in µs, $6 each queue's own limit (NULL: none). Paused queues are dropped
/// before their scans, by an anti-join of one primary-key probe of `queues`
/// per queue asked for: the cost does not grow with the jobs. If a queue
/// asked for has limits, it takes nothing and names those queues in
/// `limited_queues`, for the caller to claim in a transaction
/// ([`limited_sql`]); otherwise `limited_queues` is NULL. One row comes
/// back when nothing was claimed, its job columns NULL, to carry it, and
/// `keyed_seen` counts the picked jobs with a key limit (see [`picked_cte`]).
fn plain_sql(s: &str, keys: bool) -> String {
    let picked = picked_cte(s, "asked", keys);
    format!(
        "WITH limited AS (
            SELECT array_agg(p.queue) AS limited_queues FROM {s}.queues p
            WHERE p.queue = ANY($1::text[]) AND NOT p.paused AND {LIMITED}
        ), asked AS (
            SELECT q.queue, q.queue_limit, q.ord
            FROM unnest($1::text[], $6::int8[]) WITH ORDINALITY AS q(queue, queue_limit, ord)
            WHERE NOT EXISTS (
                SELECT 1 FROM {s}.queues p WHERE p.queue = q.queue AND (p.paused OR {LIMITED})
            ) AND (SELECT limited_queues FROM limited) IS NULL
        ), {picked}
        SELECT c.*, l.limited_queues,
               (SELECT count(*) FROM picked WHERE limit_key IS NOT NULL) AS keyed_seen
        FROM limited l LEFT JOIN (SELECT {JOB_COLUMNS}, ord FROM claimed) c ON true
        ORDER BY c.ord, c.priority DESC, c.run_at, c.id"
    )
}

/// $1 queues: locks the rows of those with limits, in name order (so that
/// two claims lock in one order), and names them.
fn lock_sql(s: &str) -> String {
    format!(
        "SELECT p.queue FROM {s}.queues p
        WHERE p.queue = ANY($1::text[]) AND NOT p.paused AND {LIMITED}
        ORDER BY p.queue
        FOR UPDATE"
    )
}

/// The parameters of [`plain_sql`], in the transaction that locked the
/// limited queues' rows. Each queue's cluster allowance is what its limits
/// leave: its concurrency less its `processing` jobs (counted in
/// `jobs_running_idx`), its rate less the starts of the slots that still
/// count (see `RateLimit`); never below 0. The starts are then added to the
/// current slot of each rate-limited queue, and the slots that no longer
/// count dropped, in the same statement.
fn limited_sql(s: &str) -> String {
    let picked = picked_cte(s, "asked", true);
    let slots = RATE_SLOTS_PER_PERIOD;
    // The current slot of the queue `p`: microseconds since the epoch, by
    // tenths of its period, as `RateWindow::slot` numbers them.
    let current = format!(
        "floor(extract(epoch FROM now()) * 1000000 / (p.rate_period_us / {slots}))::bigint"
    );
    format!(
        "WITH asked AS (
            SELECT q.queue, least(q.queue_limit, l.allowance) AS queue_limit, q.ord
            FROM unnest($1::text[], $6::int8[]) WITH ORDINALITY AS q(queue, queue_limit, ord)
            LEFT JOIN LATERAL (
                SELECT greatest(0, least(
                    p.concurrency - (SELECT count(*) FROM {s}.jobs r
                                     WHERE r.state = 'processing' AND r.queue = p.queue),
                    p.rate_jobs - (SELECT coalesce(sum(u.n), 0) FROM unnest(p.rate_slots, p.rate_starts) AS u(slot, n)
                                   WHERE u.slot >= {current} - {slots})
                )) AS allowance
                FROM {s}.queues p
                WHERE p.queue = q.queue AND {LIMITED}
            ) l ON true
            WHERE NOT EXISTS (
                SELECT 1 FROM {s}.queues p WHERE p.queue = q.queue AND p.paused
            )
        ), {picked}, started AS (
            SELECT queue, count(*) AS n FROM claimed GROUP BY queue
        ), counted AS (
            UPDATE {s}.queues p
            SET (rate_slots, rate_starts) = (
                SELECT coalesce(array_agg(k.slot ORDER BY k.slot), '{{}}'),
                       coalesce(array_agg(k.n ORDER BY k.slot), '{{}}')
                FROM (
                    SELECT u.slot, sum(u.n)::bigint AS n FROM (
                        SELECT slot, n FROM unnest(p.rate_slots, p.rate_starts) AS kept(slot, n)
                        WHERE slot >= {current} - {slots}
                        UNION ALL
                        SELECT {current}, st.n
                    ) u GROUP BY u.slot
                ) k
            )
            FROM started st
            WHERE p.queue = st.queue AND p.rate_jobs IS NOT NULL
        )
        SELECT {JOB_COLUMNS} FROM claimed ORDER BY ord, priority DESC, run_at, id"
    )
}

pub(crate) async fn claim(
    db: &Db,
    sql: &Statements,
    p: JobClaimParams,
) -> StoreResult<Vec<JobRow>> {
    let mut seen = HashSet::new();
    let queues: Vec<String> = p
        .queues
        .iter()
        .filter(|q| seen.insert(q.as_str()))
        .cloned()
        .collect();
    if queues.is_empty() || p.names.is_empty() || p.limit == 0 {
        return Ok(Vec::new());
    }
    let queue_limits: Vec<Option<i64>> = queues
        .iter()
        .map(|q| p.limit_of(q).map(i64::from))
        .collect();
    if known(&sql.limited_lists, &queues) {
        return claim_limited(db, sql, &p, queues, queue_limits).await;
    }
    let keyed = known(&sql.keyed_lists, &queues);
    let statement = if keyed { &sql.plain_keyed } else { &sql.plain };
    let rows = bind(sqlx::query(statement), &p, &queues, &queue_limits)
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("claiming jobs", e))?;
    let read = |e| store_error("reading claimed jobs", e);
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    if first
        .try_get::<Option<Vec<String>>, _>("limited_queues")
        .map_err(read)?
        .is_some()
    {
        remember(&sql.limited_lists, &queues, true);
        return claim_limited(db, sql, &p, queues, queue_limits).await;
    }
    let keyed_seen = first.try_get::<i64, _>("keyed_seen").map_err(read)? > 0;
    let mut claimed: Vec<JobRow> = rows
        .iter()
        .filter(|row| matches!(row.try_get::<Option<i64>, _>("id"), Ok(Some(_))))
        .map(job_row)
        .collect::<Result<_, _>>()
        .map_err(read)?;
    if keyed != keyed_seen {
        remember(&sql.keyed_lists, &queues, keyed_seen);
    }
    if keyed_seen && !keyed {
        // The plain statement left the jobs with a key: claim them now,
        // with what the claim has left.
        let left = p
            .limit
            .saturating_sub(u32::try_from(claimed.len()).unwrap_or(u32::MAX));
        if left > 0 {
            let mut rest = p.clone().limit(left);
            for (queue, limit) in queues.iter().zip(&queue_limits) {
                if let Some(limit) = limit {
                    let taken = claimed.iter().filter(|r| &r.queue == queue).count();
                    let taken = i64::try_from(taken).unwrap_or(i64::MAX);
                    rest = rest.queue_limit(
                        queue.clone(),
                        u32::try_from((limit - taken).max(0)).unwrap_or(0),
                    );
                }
            }
            let rest_limits: Vec<Option<i64>> = queues
                .iter()
                .map(|q| rest.limit_of(q).map(i64::from))
                .collect();
            let more = bind(sqlx::query(&sql.plain_keyed), &rest, &queues, &rest_limits)
                .fetch_all(db.pool())
                .await
                .map_err(|e| store_error("claiming jobs", e))?;
            for row in &more {
                if matches!(row.try_get::<Option<i64>, _>("id"), Ok(Some(_))) {
                    claimed.push(job_row(row).map_err(read)?);
                }
            }
        }
    }
    Ok(claimed)
}

/// The claim in a transaction that first locks the limited queues' rows
/// (see the module's documentation).
async fn claim_limited(
    db: &Db,
    sql: &Statements,
    p: &JobClaimParams,
    queues: Vec<String>,
    queue_limits: Vec<Option<i64>>,
) -> StoreResult<Vec<JobRow>> {
    let fail = |e| store_error("claiming jobs of limited queues", e);
    let mut tx = db.pool().begin().await.map_err(fail)?;
    let locked = sqlx::query(&sql.lock)
        .bind(&queues)
        .fetch_all(&mut *tx)
        .await
        .map_err(fail)?;
    remember(&sql.limited_lists, &queues, !locked.is_empty());
    let rows: Vec<PgRow> = bind(sqlx::query(&sql.limited), p, &queues, &queue_limits)
        .fetch_all(&mut *tx)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    rows.iter()
        .map(job_row)
        .collect::<Result<_, _>>()
        .map_err(|e| store_error("reading claimed jobs", e))
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    p: &JobClaimParams,
    queues: &[String],
    queue_limits: &[Option<i64>],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(queues.to_vec())
        .bind(p.names.clone())
        .bind(i64::from(p.limit))
        .bind(p.server_id.0)
        .bind(micros(p.lease))
        .bind(queue_limits.to_vec())
}
