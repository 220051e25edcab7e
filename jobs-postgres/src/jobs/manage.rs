//! What clients and dashboards do to jobs: read one with its history, list
//! and count them, find the stranded ones, retry, cancel and delete one, and
//! prune finished ones.

use jobs_core::{
    CancelOutcome, JobCancelParams, JobCountParams, JobDeleteParams, JobDetail, JobEvent,
    JobGetParams, JobListParams, JobPruneParams, JobRetryParams, JobRow, JobState,
    JobStrandedParams, QueueStateCount, ServerId, StoreError, StoreResult, StrandedJobs,
    StrandedReason, Timestamp,
};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::db::Db;
use crate::error::{conflict, parse_state, store_error};
use crate::jobs::job_row;
use crate::sql::{counted_cte, job_columns_of, micros, FINISHED, JOB_COLUMNS};

/// The statements of job management.
#[derive(Debug)]
pub(crate) struct Statements {
    get: String,
    /// Indexed by [`list_variant`].
    list: [String; 6],
    count: String,
    stranded: String,
    retry: String,
    cancel: String,
    delete: String,
    prune: String,
}

impl Statements {
    /// Builds the statements for the quoted schema `s`.
    pub(crate) fn new(s: &str) -> Self {
        Self {
            get: get_sql(s),
            list: std::array::from_fn(|variant| list_sql(s, variant)),
            count: count_sql(s),
            stranded: stranded_sql(s),
            retry: retry_sql(s),
            cancel: cancel_sql(s),
            delete: delete_sql(s),
            prune: prune_sql(s),
        }
    }
}

// ---- get

/// $1 id. The job and its history in one statement, so both come from one
/// snapshot: the history is aggregated into one array per column, oldest
/// event first.
fn get_sql(s: &str) -> String {
    let j_cols = job_columns_of("j");
    format!(
        "SELECT {j_cols}, h.event_at, h.event_state, h.event_attempt, h.event_server_id,
                h.event_error
         FROM {s}.jobs j
         CROSS JOIN LATERAL (
            SELECT coalesce(array_agg(e.at ORDER BY e.id), '{{}}') AS event_at,
                   coalesce(array_agg(e.state ORDER BY e.id), '{{}}') AS event_state,
                   coalesce(array_agg(e.attempt ORDER BY e.id), '{{}}') AS event_attempt,
                   coalesce(array_agg(e.server_id ORDER BY e.id), '{{}}') AS event_server_id,
                   coalesce(array_agg(e.error ORDER BY e.id), '{{}}') AS event_error
            FROM {s}.job_events e
            WHERE e.job_id = j.id
         ) h
         WHERE j.id = $1"
    )
}

pub(crate) async fn get(
    db: &Db,
    sql: &Statements,
    p: JobGetParams,
) -> StoreResult<Option<JobDetail>> {
    let Some(row) = sqlx::query(&sql.get)
        .bind(p.id.0)
        .fetch_optional(db.pool())
        .await
        .map_err(|e| store_error("reading a job", e))?
    else {
        return Ok(None);
    };
    let read = || -> Result<_, sqlx::Error> { Ok((job_row(&row)?, job_history(&row)?)) };
    let (job, history) = read().map_err(|e| store_error("reading a job", e))?;
    Ok(Some(JobDetail::new(job, history)))
}

/// A job's history from the arrays `event_at`, `event_state`,
/// `event_attempt`, `event_server_id` and `event_error` (one element per
/// event, oldest first), as [`get_sql`] returns them.
fn job_history(row: &PgRow) -> Result<Vec<JobEvent>, sqlx::Error> {
    let at: Vec<Timestamp> = row.try_get("event_at")?;
    let states: Vec<String> = row.try_get("event_state")?;
    let attempts: Vec<i32> = row.try_get("event_attempt")?;
    let servers: Vec<Option<Uuid>> = row.try_get("event_server_id")?;
    let errors: Vec<Option<String>> = row.try_get("event_error")?;
    let n = at.len();
    if [states.len(), attempts.len(), servers.len(), errors.len()] != [n; 4] {
        return Err(sqlx::Error::Protocol(
            "the history arrays of a job differ in length".to_owned(),
        ));
    }
    at.into_iter()
        .zip(states)
        .zip(attempts)
        .zip(servers)
        .zip(errors)
        .map(|((((at, state), attempt), server), error)| {
            let state = state.parse().map_err(|e| sqlx::Error::ColumnDecode {
                index: "event_state".to_owned(),
                source: Box::new(e),
            })?;
            Ok(JobEvent::new(
                at,
                state,
                attempt,
                server.map(ServerId),
                error,
            ))
        })
        .collect()
}

// ---- list

/// Which list statement serves `p`: `state filter * 2 + queue filter?`,
/// where the state filter is 0 (none), 1 (`succeeded`) or 2 (another state).
fn list_variant(p: &JobListParams) -> usize {
    let state = match p.state {
        None => 0,
        Some(JobState::Succeeded) => 1,
        Some(_) => 2,
    };
    state * 2 + usize::from(p.queue.is_some())
}

/// Keyset paging by id, newest first. Variants rather than `$1 IS NULL OR
/// ...`, which a generic plan cannot use an index for. Parameters: $1
/// before, $2 limit, then the state and the queue when they filter,
/// numbered in that order.
///
/// A state other than `succeeded` is read from the partial
/// `jobs_state_id_idx` (migration 0003): the statement repeats the index's
/// predicate, because a generic plan, which does not know `$3`, cannot
/// otherwise prove that the index covers the rows. `succeeded` jobs, most of
/// the table, and unfiltered lists are read from the primary key backwards.
fn list_sql(s: &str, variant: usize) -> String {
    let cols = JOB_COLUMNS;
    let mut filter = String::from("id < $1");
    let mut next = 3;
    if variant >= 2 {
        filter.push_str(&format!(" AND state = ${next}"));
        next += 1;
    }
    if variant >= 4 {
        filter.push_str(" AND state <> 'succeeded'");
    }
    if variant % 2 == 1 {
        filter.push_str(&format!(" AND queue = ${next}"));
    }
    format!("SELECT {cols} FROM {s}.jobs WHERE {filter} ORDER BY id DESC LIMIT $2")
}

pub(crate) async fn list(db: &Db, sql: &Statements, p: JobListParams) -> StoreResult<Vec<JobRow>> {
    if p.limit == 0 {
        return Ok(Vec::new());
    }
    let mut query = sqlx::query(&sql.list[list_variant(&p)])
        .bind(p.before.map_or(i64::MAX, |id| id.0))
        .bind(i64::from(p.limit));
    if let Some(state) = p.state {
        query = query.bind(state.as_str());
    }
    if let Some(queue) = p.queue {
        query = query.bind(queue);
    }
    query
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("listing jobs", e))?
        .iter()
        .map(job_row)
        .collect::<Result<_, _>>()
        .map_err(|e| store_error("reading listed jobs", e))
}

// ---- count

/// Unfinished states exactly, from the rows (few, and indexed by state);
/// finished states from the counters (a few rows per queue).
fn count_sql(s: &str) -> String {
    format!(
        "SELECT queue, state, count(*)::bigint AS n FROM {s}.jobs
         WHERE state IN ('scheduled', 'enqueued', 'processing')
         GROUP BY queue, state
         UNION ALL
         SELECT queue, state, sum(n)::bigint AS n FROM {s}.job_counts
         GROUP BY queue, state
         HAVING sum(n) > 0"
    )
}

pub(crate) async fn count(
    db: &Db,
    sql: &Statements,
    _p: JobCountParams,
) -> StoreResult<Vec<QueueStateCount>> {
    let rows = sqlx::query(&sql.count)
        .fetch_all(db.pool())
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

// ---- stranded

/// $1 the age in µs within which a server's heartbeat makes it live, $2 the
/// most groups. Reads `jobs_waiting_name_idx` (migration 0005) alone:
/// `pairs` skips through it from one distinct (queue, name) of the waiting
/// jobs to the next, one probe each, however many jobs each pair has;
/// `stranded` keeps the pairs no live server can take, with the first run
/// time of each (one probe); only the `$2` longest waiting of those, if
/// due, have their due jobs counted (an index-only range scan each). So
/// jobs that can run cost nothing here, a million of them included. Ties
/// are ordered bytewise, as `MemoryStore` orders them.
fn stranded_sql(s: &str) -> String {
    let waiting = "j.state IN ('enqueued', 'scheduled')";
    format!(
        "WITH RECURSIVE pairs AS (
            (SELECT j.queue, j.name FROM {s}.jobs j
             WHERE {waiting}
             ORDER BY j.queue, j.name LIMIT 1)
            UNION ALL
            SELECT next.queue, next.name FROM pairs p CROSS JOIN LATERAL (
                SELECT j.queue, j.name FROM {s}.jobs j
                WHERE {waiting} AND (j.queue, j.name) > (p.queue, p.name)
                ORDER BY j.queue, j.name LIMIT 1
            ) next
        ), live AS (
            SELECT queues, job_names FROM {s}.servers
            WHERE heartbeat_at >= now() - $1 * interval '1 microsecond'
        ), stranded AS (
            SELECT p.queue, p.name,
                   NOT EXISTS (SELECT 1 FROM live WHERE p.queue = ANY (live.queues))
                       AS no_server_for_queue,
                   (SELECT min(j.run_at) FROM {s}.jobs j
                    WHERE {waiting} AND j.queue = p.queue AND j.name = p.name) AS oldest
            FROM pairs p
            WHERE NOT EXISTS (SELECT 1 FROM live
                              WHERE p.queue = ANY (live.queues) AND p.name = ANY (live.job_names))
        ), top AS (
            SELECT * FROM stranded WHERE oldest <= now()
            ORDER BY oldest, queue COLLATE \"C\", name COLLATE \"C\"
            LIMIT $2
        )
        SELECT t.queue, t.name, t.no_server_for_queue, t.oldest, due.n
        FROM top t CROSS JOIN LATERAL (
            SELECT count(*)::bigint AS n FROM {s}.jobs j
            WHERE {waiting} AND j.queue = t.queue AND j.name = t.name AND j.run_at <= now()
        ) due
        ORDER BY t.oldest, t.queue COLLATE \"C\", t.name COLLATE \"C\""
    )
}

pub(crate) async fn stranded(
    db: &Db,
    sql: &Statements,
    p: JobStrandedParams,
) -> StoreResult<Vec<StrandedJobs>> {
    let rows = sqlx::query(&sql.stranded)
        .bind(micros(p.live_within))
        .bind(i64::from(p.limit))
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("finding stranded jobs", e))?;
    rows.iter()
        .map(|row| {
            let reason = if row.try_get::<bool, _>("no_server_for_queue")? {
                StrandedReason::NoServerForQueue
            } else {
                StrandedReason::NoServerKnowsName
            };
            Ok(StrandedJobs::new(
                row.try_get("queue")?,
                row.try_get("name")?,
                reason,
                row.try_get("n")?,
                row.try_get("oldest")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(|e| store_error("reading stranded jobs", e))
}

// ---- retry

/// $1 id, $2 the NOTIFY channel. The row says the state before; `notified`
/// whether it changed (a retried job is runnable at once).
fn retry_sql(s: &str) -> String {
    let counted = counted_cte(s, "SELECT queue, old_state AS state, -1 AS d FROM upd");
    format!(
        "WITH old AS (
            SELECT id, queue, state FROM {s}.jobs WHERE id = $1 FOR UPDATE
        ), upd AS (
            UPDATE {s}.jobs j
            SET state = 'enqueued', attempt = 0, run_at = now(), finished_at = NULL,
                server_id = NULL, lease_expires_at = NULL, cancel_requested = false
            FROM old
            WHERE j.id = old.id AND old.state IN ('failed', 'cancelled', 'deleted')
            RETURNING j.id, j.queue, j.attempt, old.state AS old_state
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt)
            SELECT id, now(), 'enqueued', attempt FROM upd
        ), {counted}, notified AS (
            SELECT pg_notify($2, '') FROM upd
        )
        SELECT old.state, (SELECT count(*) FROM notified) AS notified FROM old"
    )
}

pub(crate) async fn retry(db: &Db, sql: &Statements, p: JobRetryParams) -> StoreResult<()> {
    let row = sqlx::query(&sql.retry)
        .bind(p.id.0)
        .bind(db.channel())
        .fetch_optional(db.pool())
        .await
        .map_err(|e| store_error("retrying a job", e))?
        .ok_or_else(|| StoreError::job_not_found(p.id))?;
    let state: String = row
        .try_get(0)
        .map_err(|e| store_error("retrying a job", e))?;
    match parse_state(&state)? {
        JobState::Failed | JobState::Cancelled | JobState::Deleted => {
            db.wake();
            Ok(())
        }
        state => Err(conflict(format!(
            "job {} is {state}; only failed, cancelled or deleted jobs can be retried",
            p.id
        ))),
    }
}

// ---- cancel

/// $1 id, $2 reason, $3 the NOTIFY channel, $4 the cancel payload. A waiting
/// job is cancelled, a running one asked to stop: its server learns of it at
/// its next renewal, or at once from the cancel wake-up this statement
/// notifies with its commit (to other processes; this store raises its own
/// signal when the statement returns).
fn cancel_sql(s: &str) -> String {
    let counted = counted_cte(s, "SELECT queue, state, 1 AS d FROM cancelled");
    format!(
        "WITH old AS (
            SELECT id, state FROM {s}.jobs WHERE id = $1 FOR UPDATE
        ), cancelled AS (
            UPDATE {s}.jobs j SET state = 'cancelled', finished_at = now()
            FROM old
            WHERE j.id = old.id AND old.state IN ('scheduled', 'enqueued')
            RETURNING j.id, j.queue, j.state, j.attempt
        ), requested AS (
            UPDATE {s}.jobs j SET cancel_requested = true
            FROM old
            WHERE j.id = old.id AND old.state = 'processing'
            RETURNING j.id
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, error)
            SELECT id, now(), 'cancelled', attempt, $2 FROM cancelled
        ), {counted}, notified AS (
            SELECT pg_notify($3, $4) FROM requested
        )
        SELECT old.state, (SELECT count(*) FROM notified) AS notified FROM old"
    )
}

pub(crate) async fn cancel(
    db: &Db,
    sql: &Statements,
    p: JobCancelParams,
) -> StoreResult<CancelOutcome> {
    let row = sqlx::query(&sql.cancel)
        .bind(p.id.0)
        .bind(p.reason)
        .bind(db.channel())
        .bind(db.cancel_payload())
        .fetch_optional(db.pool())
        .await
        .map_err(|e| store_error("cancelling a job", e))?
        .ok_or_else(|| StoreError::job_not_found(p.id))?;
    let state: String = row
        .try_get(0)
        .map_err(|e| store_error("cancelling a job", e))?;
    match parse_state(&state)? {
        JobState::Scheduled | JobState::Enqueued => Ok(CancelOutcome::Cancelled),
        JobState::Processing => {
            db.wake_cancel();
            Ok(CancelOutcome::Requested)
        }
        state => Err(conflict(format!(
            "job {} is {state} and cannot be cancelled",
            p.id
        ))),
    }
}

// ---- delete

/// $1 id.
fn delete_sql(s: &str) -> String {
    let counted = counted_cte(
        s,
        "SELECT queue, 'deleted' AS state, 1 AS d FROM upd
         UNION ALL SELECT queue, old_state, -1 FROM upd",
    );
    format!(
        "WITH old AS (
            SELECT id, state FROM {s}.jobs WHERE id = $1 FOR UPDATE
        ), upd AS (
            UPDATE {s}.jobs j SET state = 'deleted', finished_at = now()
            FROM old
            WHERE j.id = old.id AND old.state NOT IN ('processing', 'deleted')
            RETURNING j.id, j.queue, j.attempt, old.state AS old_state
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt)
            SELECT id, now(), 'deleted', attempt FROM upd
        ), {counted}
        SELECT old.state FROM old"
    )
}

pub(crate) async fn delete(db: &Db, sql: &Statements, p: JobDeleteParams) -> StoreResult<()> {
    let row = sqlx::query(&sql.delete)
        .bind(p.id.0)
        .fetch_optional(db.pool())
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

// ---- prune

/// $1, $2, $3: ages in µs of succeeded, deleted/cancelled, failed jobs; $4
/// limit. One bounded range scan of `jobs_finished_idx` per state; rows are
/// locked (and re-checked) before they are deleted, so a job retried
/// meanwhile survives.
fn prune_sql(s: &str) -> String {
    let counted = counted_cte(s, "SELECT queue, state, -1 AS d FROM del");
    format!(
        "WITH candidates AS (
            (SELECT id FROM {s}.jobs WHERE state = 'succeeded' AND finished_at IS NOT NULL
                AND finished_at <= now() - $1 * interval '1 microsecond'
                ORDER BY state, finished_at LIMIT $4)
            UNION ALL
            (SELECT id FROM {s}.jobs WHERE state = 'deleted' AND finished_at IS NOT NULL
                AND finished_at <= now() - $2 * interval '1 microsecond'
                ORDER BY state, finished_at LIMIT $4)
            UNION ALL
            (SELECT id FROM {s}.jobs WHERE state = 'cancelled' AND finished_at IS NOT NULL
                AND finished_at <= now() - $2 * interval '1 microsecond'
                ORDER BY state, finished_at LIMIT $4)
            UNION ALL
            (SELECT id FROM {s}.jobs WHERE state = 'failed' AND finished_at IS NOT NULL
                AND finished_at <= now() - $3 * interval '1 microsecond'
                ORDER BY state, finished_at LIMIT $4)
        ), doomed AS (
            SELECT j.id FROM {s}.jobs j
            WHERE j.id IN (SELECT id FROM candidates LIMIT $4)
              AND j.state IN {FINISHED}
            FOR UPDATE SKIP LOCKED
        ), del AS (
            DELETE FROM {s}.jobs j USING doomed d
            WHERE j.id = d.id AND j.state IN {FINISHED}
            RETURNING j.id, j.queue, j.state
        ), ev AS (
            DELETE FROM {s}.job_events e USING del WHERE e.job_id = del.id
        ), {counted}
        SELECT count(*)::bigint FROM del"
    )
}

pub(crate) async fn prune(db: &Db, sql: &Statements, p: JobPruneParams) -> StoreResult<u64> {
    if p.limit == 0 {
        return Ok(0);
    }
    let n: i64 = sqlx::query_scalar(&sql.prune)
        .bind(micros(p.retention.succeeded))
        .bind(micros(p.retention.deleted))
        .bind(micros(p.retention.failed))
        .bind(i64::from(p.limit))
        .fetch_one(db.pool())
        .await
        .map_err(|e| store_error("pruning jobs", e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
