//! What clients and dashboards do to jobs: read one with its history, list
//! and count them, find the stranded ones, retry, cancel and delete one or
//! all a filter picks, and prune finished ones.

use jobs_core::{
    CancelOutcome, JobActMatchingParams, JobActOutcome, JobAction, JobCancelParams, JobCountParams,
    JobDeleteParams, JobDetail, JobEvent, JobFilter, JobGetParams, JobId, JobListParams, JobPage,
    JobPruneParams, JobRetryParams, JobRow, JobRunNowParams, JobState, JobStrandedParams,
    JobThroughputParams, QueueStateCount, ServerId, StoreError, StoreErrorKind, StoreResult,
    StrandedJobs, StrandedReason, ThroughputMinute, Timestamp, THROUGHPUT_KEPT,
};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::db::Db;
use crate::error::{conflict, parse_state, store_error};
use crate::jobs::job_row;
use crate::sql::{counted_cte, counted_removal_cte, job_columns_of, micros, FINISHED, JOB_COLUMNS};

/// The statements of job management.
#[derive(Debug)]
pub(crate) struct Statements {
    get: String,
    /// Indexed by [`list_variant`].
    list: [String; 24],
    /// The same with `id >= $n` last: the page within a scan's window.
    list_from: [String; 24],
    /// By `list_variant / 2`: where a bounded scan's window ends.
    scan_bound: [String; 12],
    count: String,
    stranded: String,
    retry: String,
    cancel: String,
    delete: String,
    /// By [`action_index`].
    act: [String; 4],
    /// By [`action_index`].
    act_preview: [String; 4],
    prune: String,
    prune_batches: String,
    prune_minutes: String,
    throughput: String,
    release: crate::jobs::run::ReleaseStatements,
    run_now: String,
}

impl Statements {
    /// Builds the statements for the quoted schema `s`.
    pub(crate) fn new(s: &str) -> Self {
        Self {
            get: get_sql(s),
            list: std::array::from_fn(|variant| list_sql(s, variant, false)),
            list_from: std::array::from_fn(|variant| list_sql(s, variant, true)),
            scan_bound: std::array::from_fn(|variant| scan_bound_sql(s, variant)),
            count: count_sql(s),
            stranded: stranded_sql(s),
            retry: retry_sql(s),
            cancel: cancel_sql(s),
            delete: delete_sql(s),
            act: actions().map(|action| act_sql(s, &action)),
            act_preview: actions().map(|action| act_preview_sql(s, &action)),
            prune: prune_sql(s),
            // $1 the longest retention in µs: a batch is kept as long as the
            // longest kept of its members could be. Through `batches_finished_idx`.
            // $1 how long minutes are kept, in µs.
            prune_minutes: format!(
                "DELETE FROM {s}.job_minutes WHERE minute < now() - $1 * interval '1 microsecond'"
            ),
            throughput: throughput_sql(s),
            prune_batches: format!(
                "DELETE FROM {s}.batches
                 WHERE finished_at IS NOT NULL AND finished_at <= now() - $1 * interval '1 microsecond'"
            ),
            release: crate::jobs::run::ReleaseStatements::new(s),
            run_now: run_now_sql(s),
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

/// Which list statement serves `p`: `((state * 2 + queue) * 2 + name) * 2 +
/// args`, where `queue`, `name` and `args` are 1 when they filter, and
/// `state` is 0 (no filter), 1 (`succeeded`) or 2 (another state). The
/// statements that find a scan's window ignore the arguments: they take
/// `list_variant(p) / 2`.
fn list_variant(p: &JobListParams) -> usize {
    let state = match p.state {
        None => 0,
        Some(JobState::Succeeded) => 1,
        Some(_) => 2,
    };
    let variant = (state * 2 + usize::from(p.queue.is_some())) * 2 + usize::from(p.name.is_some());
    variant * 2 + usize::from(p.args.is_some())
}

/// The state, queue and name criteria of list statement `variant` after
/// `id < $1`, their parameters numbered from `next`; returns the condition
/// and the next free number.
fn list_filter(variant: usize, mut next: usize) -> (String, usize) {
    let variant = variant / 2;
    let (state, queue, name) = (variant / 4, (variant / 2) % 2 == 1, variant % 2 == 1);
    let mut filter = String::from("id < $1");
    if state >= 1 {
        filter.push_str(&format!(" AND state = ${next}"));
        next += 1;
    }
    if state == 2 {
        filter.push_str(" AND state <> 'succeeded'");
    }
    if queue {
        filter.push_str(&format!(" AND queue = ${next}"));
        next += 1;
    }
    if name {
        filter.push_str(&format!(" AND name = ${next}"));
        next += 1;
    }
    (filter, next)
}

/// Keyset paging by id, newest first. Variants rather than `$1 IS NULL OR
/// ...`, which a generic plan cannot use an index for. Parameters: $1
/// before, $2 limit, then the state, the queue, the name and the arguments
/// when they filter, numbered in that order; with `from`, one more: the
/// lowest id examined (`id >= $n`, the window of a bounded scan).
///
/// A state other than `succeeded` is read from the partial
/// `jobs_state_id_idx` (migration 0003): the statement repeats the index's
/// predicate, because a generic plan, which does not know `$3`, cannot
/// otherwise prove that the index covers the rows. `succeeded` jobs, most of
/// the table, and unfiltered lists are read from the primary key backwards.
/// No index has the name first: a name filter is checked on the rows the
/// state or the key yields. So is an arguments filter (jsonb containment,
/// `args @>`), with no index of its own: the page scan reads back until it
/// has found a page of jobs that contain them, so a rare match under a
/// broad state reads far, unless `JobListParams::scan` bounds it (see
/// [`scan_bound_sql`]).
fn list_sql(s: &str, variant: usize, from: bool) -> String {
    let cols = JOB_COLUMNS;
    let (mut filter, mut next) = list_filter(variant, 3);
    if variant % 2 == 1 {
        filter.push_str(&format!(" AND args @> ${next}::jsonb"));
        next += 1;
    }
    let indexed_state = variant / 8 == 2;
    match (from, indexed_state) {
        (false, _) => {}
        // The window as a range of `jobs_state_id_idx`, which the primary
        // key cannot serve: with `id` bounds alone the planner reads the
        // whole id range through the key, every job in it of any state (on
        // a table laid out like the dashboard benchmark's, all cached: 56 ms
        // against 15 ms for a window of 20,000 failed jobs), as it costs
        // cached pages as if they were on disk.
        (true, true) => {
            filter = filter.replacen("id < $1", "(state, id) < ($3, $1)", 1);
            filter.push_str(&format!(" AND (state, id) >= ($3, ${next})"));
        }
        (true, false) => filter.push_str(&format!(" AND id >= ${next}")),
    }
    format!("SELECT {cols} FROM {s}.jobs WHERE {filter} ORDER BY id DESC LIMIT $2")
}

/// The window of a bounded scan (`JobListParams::scan`): the id of the
/// `scan`-th newest job below `$1` that the state, queue and name pick
/// (their parameters from $2, then `scan`), or no row when there are fewer.
/// The page is then read with `id >= ` it ([`list_sql`] with `from`), so the
/// jobs examined are exactly those of the window, and the next window starts
/// below it, whatever was inserted in between. It reads ids alone: with a
/// state, from `jobs_state_id_idx` (an index-only scan, given a vacuumed
/// table), so that the arguments are read for the window's jobs only; a
/// single statement that numbered the rows and cut them at the bound was
/// planned on the primary key, reading every job of the id range.
fn scan_bound_sql(s: &str, variant: usize) -> String {
    let (filter, next) = list_filter(variant * 2, 2);
    format!("SELECT id FROM {s}.jobs WHERE {filter} ORDER BY id DESC OFFSET ${next} - 1 LIMIT 1")
}

pub(crate) async fn list(db: &Db, sql: &Statements, p: JobListParams) -> StoreResult<JobPage> {
    if p.limit == 0 {
        return Ok(JobPage::default());
    }
    let variant = list_variant(&p);
    // With a bound, the window first: the lowest id the scan may examine.
    let from = match p.scan {
        None => None,
        Some(0) => return Ok(JobPage::default()),
        Some(scan) => {
            let mut query = sqlx::query_scalar::<_, i64>(&sql.scan_bound[variant / 2])
                .bind(p.before.map_or(i64::MAX, |id| id.0));
            if let Some(state) = p.state {
                query = query.bind(state.as_str());
            }
            if let Some(queue) = &p.queue {
                query = query.bind(queue.clone());
            }
            if let Some(name) = &p.name {
                query = query.bind(name.clone());
            }
            query
                .bind(i64::from(scan))
                .fetch_optional(db.pool())
                .await
                .map_err(|e| store_error("finding the window of a bounded list", e))?
        }
    };
    let statement = match from {
        Some(_) => &sql.list_from[variant],
        None => &sql.list[variant],
    };
    let mut query = sqlx::query(statement)
        .bind(p.before.map_or(i64::MAX, |id| id.0))
        .bind(i64::from(p.limit));
    if let Some(state) = p.state {
        query = query.bind(state.as_str());
    }
    if let Some(queue) = p.queue {
        query = query.bind(queue);
    }
    if let Some(name) = p.name {
        query = query.bind(name);
    }
    if let Some(args) = p.args {
        query = query.bind(args);
    }
    if let Some(from) = from {
        query = query.bind(from);
    }
    let jobs: Vec<JobRow> = query
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("listing jobs", e))?
        .iter()
        .map(job_row)
        .collect::<Result<_, _>>()
        .map_err(|e| store_error("reading listed jobs", e))?;
    // The window ended the scan unless the page filled within it.
    let full = jobs.len() == p.limit as usize;
    let scanned_to = from.filter(|_| !full).map(JobId);
    Ok(JobPage::new(jobs, scanned_to))
}

// ---- count

/// Unfinished states exactly, from the rows (few, and indexed by state);
/// finished states from the counters (a few rows per queue).
fn count_sql(s: &str) -> String {
    format!(
        "SELECT queue, state, count(*)::bigint AS n FROM {s}.jobs
         WHERE state IN ('awaiting', 'scheduled', 'enqueued', 'processing')
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
/// whether it changed (a retried job is runnable at once); `holder` the job
/// holding its unique key, if another does, in which case nothing changed.
fn retry_sql(s: &str) -> String {
    let counted = counted_cte(
        s,
        "SELECT queue, old_state AS state, -1 AS d, batch_id FROM upd",
    );
    let holder = unique_holder(s, "old");
    format!(
        "WITH old AS (
            SELECT id, queue, state, unique_key FROM {s}.jobs WHERE id = $1 FOR UPDATE
        ), upd AS (
            UPDATE {s}.jobs j
            SET state = 'enqueued', attempt = 0, run_at = now(), finished_at = NULL, output = NULL,
                server_id = NULL, lease_expires_at = NULL, cancel_requested = false
            FROM old
            WHERE j.id = old.id AND old.state IN ('failed', 'cancelled', 'deleted')
              AND {holder} IS NULL
            RETURNING j.id, j.queue, j.attempt, j.batch_id, old.state AS old_state
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt)
            SELECT id, now(), 'enqueued', attempt FROM upd
        ), {counted}, notified AS (
            SELECT pg_notify($2, '') FROM upd
        )
        SELECT old.state, (SELECT count(*) FROM notified) AS notified, {holder} AS holder
        FROM old"
    )
}

/// A scalar subquery: the id of another job holding the unique key of the
/// row `row` (a CTE or alias with `id` and `unique_key`), or NULL. One
/// probe of `jobs_unique_idx`; a job with no key has no holder.
fn unique_holder(s: &str, row: &str) -> String {
    let held = crate::sql::unique_held("h.");
    format!(
        "(SELECT h.id FROM {s}.jobs h
          WHERE {row}.unique_key IS NOT NULL AND h.unique_key = {row}.unique_key
            AND {held} AND h.id <> {row}.id
          LIMIT 1)"
    )
}

/// A retry's error when another job took the unique key between the check
/// and the update (the unique index refused it).
fn retry_error(what: &str, error: sqlx::Error) -> StoreError {
    let unique =
        matches!(&error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"));
    if unique {
        conflict(format!(
            "{what}: another job took the unique key meanwhile; retry once it has finished"
        ))
    } else {
        store_error(what, error)
    }
}

pub(crate) async fn retry(db: &Db, sql: &Statements, p: JobRetryParams) -> StoreResult<()> {
    let row = sqlx::query(&sql.retry)
        .bind(p.id.0)
        .bind(db.channel())
        .fetch_optional(db.pool())
        .await
        .map_err(|e| retry_error("retrying a job", e))?
        .ok_or_else(|| StoreError::job_not_found(p.id))?;
    let read = || -> Result<(String, Option<i64>), sqlx::Error> {
        Ok((row.try_get(0)?, row.try_get("holder")?))
    };
    let (state, holder) = read().map_err(|e| store_error("retrying a job", e))?;
    match parse_state(&state)? {
        JobState::Failed | JobState::Cancelled | JobState::Deleted => match holder {
            Some(holder) => Err(StoreError::unique_key_held(p.id, JobId(holder))),
            None => {
                db.wake();
                Ok(())
            }
        },
        state => Err(conflict(format!(
            "job {} is {state}; only failed, cancelled or deleted jobs can be retried",
            p.id
        ))),
    }
}

// ---- run now

/// $1 id, $2 the NOTIFY channel. The row says the state before; the job
/// changed only if it was `scheduled`.
fn run_now_sql(s: &str) -> String {
    format!(
        "WITH old AS (
            SELECT id, state FROM {s}.jobs WHERE id = $1 FOR UPDATE
        ), upd AS (
            UPDATE {s}.jobs j SET state = 'enqueued', run_at = now()
            FROM old
            WHERE j.id = old.id AND old.state = 'scheduled'
            RETURNING j.id, j.attempt
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt)
            SELECT id, now(), 'enqueued', attempt FROM upd
        ), notified AS (
            SELECT pg_notify($2, '') FROM upd
        )
        SELECT old.state, (SELECT count(*) FROM notified) AS notified FROM old"
    )
}

pub(crate) async fn run_now(db: &Db, sql: &Statements, p: JobRunNowParams) -> StoreResult<()> {
    let row = sqlx::query(&sql.run_now)
        .bind(p.id.0)
        .bind(db.channel())
        .fetch_optional(db.pool())
        .await
        .map_err(|e| store_error("running a job now", e))?
        .ok_or_else(|| StoreError::job_not_found(p.id))?;
    let state: String = row
        .try_get(0)
        .map_err(|e| store_error("running a job now", e))?;
    match parse_state(&state)? {
        JobState::Scheduled => {
            db.wake();
            Ok(())
        }
        JobState::Enqueued => Ok(()),
        state => Err(conflict(format!(
            "job {} is {state}; only a scheduled job can be run now",
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
    let counted = counted_cte(s, "SELECT queue, state, 1 AS d, batch_id FROM cancelled");
    format!(
        "WITH old AS (
            SELECT id, state FROM {s}.jobs WHERE id = $1 FOR UPDATE
        ), cancelled AS (
            UPDATE {s}.jobs j SET state = 'cancelled', finished_at = now()
            FROM old
            WHERE j.id = old.id AND old.state IN ('awaiting', 'scheduled', 'enqueued')
            RETURNING j.id, j.queue, j.state, j.attempt, j.batch_id
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
        JobState::Awaiting | JobState::Scheduled | JobState::Enqueued => {
            release_after(db, sql, vec![p.id.0]).await?;
            Ok(CancelOutcome::Cancelled)
        }
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
        "SELECT queue, 'deleted' AS state, 1 AS d, batch_id FROM upd
         UNION ALL SELECT queue, old_state, -1, batch_id FROM upd",
    );
    format!(
        "WITH old AS (
            SELECT id, state FROM {s}.jobs WHERE id = $1 FOR UPDATE
        ), upd AS (
            UPDATE {s}.jobs j SET state = 'deleted', finished_at = now()
            FROM old
            WHERE j.id = old.id AND old.state NOT IN ('processing', 'deleted')
            RETURNING j.id, j.queue, j.attempt, j.batch_id, old.state AS old_state
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
        _ => release_after(db, sql, vec![p.id.0]).await,
    }
}

/// Releases the continuations of jobs a user just ended (cancelled or
/// deleted), and the callbacks of batches they were the last members of,
/// after that change committed.
async fn release_after(db: &Db, sql: &Statements, parents: Vec<i64>) -> StoreResult<()> {
    if !parents.is_empty() {
        crate::jobs::run::release_pooled(db, &sql.release, Some(parents), true).await?;
    }
    Ok(())
}

// ---- act on all matching

/// The actions, in the order of `Statements::act` and `Statements::act_preview`.
fn actions() -> [JobAction; 4] {
    [
        JobAction::Retry,
        JobAction::cancel(),
        JobAction::Delete,
        JobAction::RunNow,
    ]
}

/// Where `action` is in [`actions`].
fn action_index(action: &JobAction) -> StoreResult<usize> {
    match action {
        JobAction::Retry => Ok(0),
        JobAction::Cancel { .. } => Ok(1),
        JobAction::Delete => Ok(2),
        JobAction::RunNow => Ok(3),
        other => Err(StoreError::new(
            StoreErrorKind::Invalid,
            format!(
                "postgres: this build cannot {} jobs; use jobs-postgres from the same \
                 release as jobs-core",
                other.as_str()
            ),
        )),
    }
}

/// The states `action` accepts, as a SQL list: written from
/// [`JobAction::accepted_states`], so both stores pick the same jobs.
fn accepted(action: &JobAction) -> String {
    let states: Vec<String> = action
        .accepted_states()
        .iter()
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    format!("({})", states.join(", "))
}

/// The filter of the jobs an action picks, on the columns of `alias`: $1
/// state, $2 queue, $3 name, $5 the JSON the arguments contain (`@>`), each
/// NULL for "any". `$n IS NULL OR ...`
/// rather than a statement per combination (as `list_sql` has): these
/// statements run once per operator's action, so PostgreSQL plans them with
/// the values (a custom plan, where a NULL criterion folds away), and the
/// state list the action accepts lets the partial `jobs_state_id_idx`
/// serve every action but a delete of `succeeded` jobs.
fn act_filter(action: &JobAction, alias: &str) -> String {
    let states = accepted(action);
    format!(
        "{alias}.state IN {states} AND ($1::text IS NULL OR {alias}.state = $1)
         AND ($2::text IS NULL OR {alias}.queue = $2) AND ($3::text IS NULL OR {alias}.name = $3)
         AND ($5::jsonb IS NULL OR {alias}.args @> $5)"
    )
}

/// $1 state, $2 queue, $3 name, $4 limit, $5 arguments. The newest `$4 + 1` jobs the
/// action would take, with their states: what a dry run returns (the one
/// past the limit says whether more match).
fn act_preview_sql(s: &str, action: &JobAction) -> String {
    let filter = act_filter(action, "j");
    format!(
        "SELECT j.id, j.state FROM {s}.jobs j WHERE {filter}
         ORDER BY j.id DESC LIMIT $4::bigint + 1"
    )
}

/// The CTEs `candidates` (the newest `$4 + 1` jobs the action accepts that
/// the filter picks) and `old` (the newest `$4` of them, locked in id order,
/// as every statement that locks many jobs locks them, so none waits on
/// another in a cycle). `FOR UPDATE` re-reads a row another transaction
/// changed meanwhile and applies the filter again to what it reads, so a
/// job that a server claimed or finished between the pick and the lock is
/// passed over if the action no longer accepts it (never a running job
/// deleted), and `old.state` is the state the job is in when changed.
fn act_pick(s: &str, action: &JobAction) -> String {
    let pick = act_filter(action, "j");
    format!(
        "candidates AS (
            SELECT j.id FROM {s}.jobs j WHERE {pick}
            ORDER BY j.id DESC LIMIT $4::bigint + 1
        ), old AS MATERIALIZED (
            SELECT j.id, j.queue, j.state, j.unique_key FROM {s}.jobs j
            WHERE j.id IN (SELECT id FROM candidates ORDER BY id DESC LIMIT $4)
              AND {pick}
            ORDER BY j.id
            FOR UPDATE OF j
        )"
    )
}

/// The statement of `action`: its pick, then the same changes, history and
/// counters as the single-job statement (`retry_sql`, `cancel_sql`,
/// `delete_sql`, `run_now_sql`) on every picked job. Parameters $1 to $5 as in
/// [`act_pick`]; a retry's and a run now's $6 is the NOTIFY channel, a cancel's $6 the
/// reason, $7 the channel and $8 the cancel payload. It returns the ids
/// changed (`changed`) and asked to stop (`requested`), newest first,
/// whether more jobs matched than `$4` (`more`), and whether it notified; a
/// retry also the unique jobs it left because their key is held (`held`):
/// by a job outside the pick, or by a newer job of the pick with the same
/// key, which alone is retried.
fn act_sql(s: &str, action: &JobAction) -> String {
    let pick = act_pick(s, action);
    let more = "(SELECT count(*) FROM candidates) > $4 AS more";
    let ids = |cte: &str| {
        format!("coalesce((SELECT array_agg(id ORDER BY id DESC) FROM {cte}), '{{}}'::bigint[])")
    };
    match action {
        JobAction::Retry => {
            let counted = counted_cte(
                s,
                "SELECT queue, old_state AS state, -1 AS d, batch_id FROM upd",
            );
            let changed = ids("upd");
            let held = ids("(SELECT id FROM old EXCEPT SELECT id FROM upd) AS held");
            let holder = unique_holder(s, "o");
            format!(
                "WITH {pick}, free AS (
                    SELECT DISTINCT ON (coalesce(o.unique_key, o.id::text)) o.id
                    FROM old o
                    WHERE {holder} IS NULL
                    ORDER BY coalesce(o.unique_key, o.id::text), o.id DESC
                ), upd AS (
                    UPDATE {s}.jobs j
                    SET state = 'enqueued', attempt = 0, run_at = now(), finished_at = NULL, output = NULL,
                        server_id = NULL, lease_expires_at = NULL, cancel_requested = false
                    FROM old
                    WHERE j.id = old.id AND old.id IN (SELECT id FROM free)
                    RETURNING j.id, j.queue, j.attempt, j.batch_id, old.state AS old_state
                ), ev AS (
                    INSERT INTO {s}.job_events (job_id, at, state, attempt)
                    SELECT id, now(), 'enqueued', attempt FROM upd
                ), {counted}, notified AS (
                    SELECT pg_notify($6, '') WHERE EXISTS (SELECT 1 FROM upd)
                )
                SELECT {changed} AS changed, '{{}}'::bigint[] AS requested, {more},
                       (SELECT count(*) FROM notified) AS notified, {held} AS held"
            )
        }
        JobAction::Cancel { .. } => {
            let cancel = cancel_picked_ctes(s, "$6", "$7", "$8");
            let (changed, requested) = (ids("cancelled"), ids("requested"));
            format!(
                "WITH {pick}, {cancel}
                SELECT {changed} AS changed, {requested} AS requested, {more},
                       (SELECT count(*) FROM notified) AS notified"
            )
        }
        // No counters: `scheduled` and `enqueued` are counted from the rows.
        JobAction::RunNow => {
            let changed = ids("upd");
            format!(
                "WITH {pick}, upd AS (
                    UPDATE {s}.jobs j SET state = 'enqueued', run_at = now()
                    FROM old
                    WHERE j.id = old.id
                    RETURNING j.id, j.attempt
                ), ev AS (
                    INSERT INTO {s}.job_events (job_id, at, state, attempt)
                    SELECT id, now(), 'enqueued', attempt FROM upd
                ), notified AS (
                    SELECT pg_notify($6, '') WHERE EXISTS (SELECT 1 FROM upd)
                )
                SELECT {changed} AS changed, '{{}}'::bigint[] AS requested, {more},
                       (SELECT count(*) FROM notified) AS notified"
            )
        }
        _ => {
            let counted = counted_cte(
                s,
                "SELECT queue, 'deleted' AS state, 1 AS d, batch_id FROM upd
                 UNION ALL SELECT queue, old_state, -1, batch_id FROM upd",
            );
            let changed = ids("upd");
            format!(
                "WITH {pick}, upd AS (
                    UPDATE {s}.jobs j SET state = 'deleted', finished_at = now()
                    FROM old
                    WHERE j.id = old.id
                    RETURNING j.id, j.queue, j.attempt, j.batch_id, old.state AS old_state
                ), ev AS (
                    INSERT INTO {s}.job_events (job_id, at, state, attempt)
                    SELECT id, now(), 'deleted', attempt FROM upd
                ), {counted}
                SELECT {changed} AS changed, '{{}}'::bigint[] AS requested, {more},
                       0::bigint AS notified"
            )
        }
    }
}

/// The CTEs that cancel the jobs of a CTE named `old` (locked rows of `id`
/// and `state`): `cancelled`, the waiting ones (with `has_continuations`);
/// `requested`, the running ones asked to stop; their history, counters
/// (`counted_cte`) and `notified`, the cancel wake-up. `reason`, `channel`
/// and `payload` name the statement's parameters. Shared by the cancel of
/// all matching jobs and the cancel of a batch.
pub(crate) fn cancel_picked_ctes(s: &str, reason: &str, channel: &str, payload: &str) -> String {
    let counted = counted_cte(s, "SELECT queue, state, 1 AS d, batch_id FROM cancelled");
    format!(
        "cancelled AS (
            UPDATE {s}.jobs j SET state = 'cancelled', finished_at = now()
            FROM old
            WHERE j.id = old.id AND old.state IN ('awaiting', 'scheduled', 'enqueued')
            RETURNING j.id, j.queue, j.state, j.attempt, j.batch_id, j.has_continuations
        ), requested AS (
            UPDATE {s}.jobs j SET cancel_requested = true
            FROM old
            WHERE j.id = old.id AND old.state = 'processing'
            RETURNING j.id
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, error)
            SELECT id, now(), 'cancelled', attempt, {reason} FROM cancelled
        ), {counted}, notified AS (
            SELECT pg_notify({channel}, {payload}) WHERE EXISTS (SELECT 1 FROM requested)
        )"
    )
}

pub(crate) async fn act_matching(
    db: &Db,
    sql: &Statements,
    p: JobActMatchingParams,
) -> StoreResult<JobActOutcome> {
    p.check()?;
    let index = action_index(&p.action)?;
    let limit = i64::from(p.limit);
    let what = format!("{} matching jobs", p.action.as_str());
    let fail = |e| store_error(&what, e);
    let JobFilter {
        state,
        queue,
        name,
        args,
        ..
    } = p.filter;
    let state = state.map(JobState::as_str);
    // Retried and run-now jobs are runnable at once; cancelled and deleted
    // ones have ended, and their continuations are released.
    let runnable = matches!(p.action, JobAction::Retry | JobAction::RunNow);
    if p.dry_run {
        let rows = sqlx::query(&sql.act_preview[index])
            .bind(state)
            .bind(queue)
            .bind(name)
            .bind(limit)
            .bind(args)
            .fetch_all(db.pool())
            .await
            .map_err(fail)?;
        let mut outcome = JobActOutcome::new(
            Vec::new(),
            Vec::new(),
            rows.len() as u64 > u64::from(p.limit),
        );
        for row in rows.iter().take(p.limit as usize) {
            let id = JobId(row.try_get("id").map_err(fail)?);
            let running = row.try_get::<&str, _>("state").map_err(fail)? == "processing";
            if running {
                outcome.requested.push(id);
            } else {
                outcome.changed.push(id);
            }
        }
        return Ok(outcome);
    }
    let mut query = sqlx::query(&sql.act[index])
        .bind(state)
        .bind(queue)
        .bind(name)
        .bind(limit)
        .bind(args);
    query = match p.action {
        JobAction::Retry | JobAction::RunNow => query.bind(db.channel()),
        JobAction::Cancel { reason } => query
            .bind(reason)
            .bind(db.channel())
            .bind(db.cancel_payload()),
        _ => query,
    };
    let row = query
        .fetch_one(db.pool())
        .await
        .map_err(|e| retry_error(&what, e))?;
    let read = || -> Result<_, sqlx::Error> {
        let ids = |column: &str| -> Result<Vec<JobId>, sqlx::Error> {
            Ok(row
                .try_get::<Vec<i64>, _>(column)?
                .into_iter()
                .map(JobId)
                .collect())
        };
        let outcome = JobActOutcome::new(ids("changed")?, ids("requested")?, row.try_get("more")?);
        Ok(if index == 0 {
            outcome.with_held(ids("held")?)
        } else {
            outcome
        })
    };
    let outcome = read().map_err(fail)?;
    if runnable && !outcome.changed.is_empty() {
        db.wake();
    }
    if !runnable {
        release_after(db, sql, outcome.changed.iter().map(|id| id.0).collect()).await?;
    }
    if !outcome.requested.is_empty() {
        db.wake_cancel();
    }
    Ok(outcome)
}

// ---- throughput

/// $1 the window in µs. The per-minute counts (migration 0013), one row per
/// minute: a range of the primary key, at most a day's 1,440 minutes of
/// two states and eight shards.
fn throughput_sql(s: &str) -> String {
    format!(
        "SELECT minute,
                coalesce(sum(n) FILTER (WHERE state = 'succeeded'), 0)::int8 AS succeeded,
                coalesce(sum(n) FILTER (WHERE state = 'failed'), 0)::int8 AS failed
         FROM {s}.job_minutes
         WHERE minute >= date_trunc('minute', now()) - $1 * interval '1 microsecond'
         GROUP BY minute
         ORDER BY minute"
    )
}

pub(crate) async fn throughput(
    db: &Db,
    sql: &Statements,
    p: JobThroughputParams,
) -> StoreResult<Vec<ThroughputMinute>> {
    let fail = |e| store_error("reading the per-minute counts", e);
    let rows = sqlx::query(&sql.throughput)
        .bind(micros(p.window))
        .fetch_all(db.pool())
        .await
        .map_err(fail)?;
    rows.iter()
        .map(|row| {
            Ok(ThroughputMinute::new(
                row.try_get("minute")?,
                row.try_get("succeeded")?,
                row.try_get("failed")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(fail)
}

// ---- prune

/// $1, $2, $3: ages in µs of succeeded, deleted/cancelled, failed jobs; $4
/// limit. One bounded range scan of `jobs_finished_idx` per state; rows are
/// locked (and re-checked) before they are deleted, so a job retried
/// meanwhile survives.
fn prune_sql(s: &str) -> String {
    let counted = counted_removal_cte(s, "SELECT queue, state, -1 AS d FROM del");
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
    sqlx::query(&sql.prune_batches)
        .bind(micros(p.retention.longest()))
        .execute(db.pool())
        .await
        .map_err(|e| store_error("pruning batches", e))?;
    sqlx::query(&sql.prune_minutes)
        .bind(micros(THROUGHPUT_KEPT))
        .execute(db.pool())
        .await
        .map_err(|e| store_error("pruning the per-minute counts", e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
