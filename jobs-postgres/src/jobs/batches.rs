//! Batches (migration 0012): insert one (its members, its callback
//! `awaiting`, the row with its counters), read its progress and members,
//! list batches, cancel one, and release the callbacks of batches that have
//! ended.
//!
//! The counters are changed by every statement that changes a job's state,
//! in its `batched` CTE (`sql::counted_cte`), under the batch's row lock;
//! the statement whose change takes `pending` to zero reports it, and the
//! release follows in a statement of its own ([`release_sql`]), which
//! servers also run as a sweep, so a release lost to a crash between the two
//! still comes.

use jobs_core::{
    BatchCancelParams, BatchId, BatchInsertParams, BatchListParams, BatchMembersParams, BatchRow,
    EnqueuedBatch, Inserted, JobId, JobRow, StoreError, StoreErrorKind, StoreResult,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::db::Db;
use crate::error::store_error;
use crate::jobs::job_row;
use crate::jobs::manage::cancel_picked_ctes;
use crate::jobs::run::{self, Wake};
use crate::sql::{counted_cte, job_columns_of};

/// The statements about batches.
#[derive(Debug)]
pub(crate) struct Statements {
    create: String,
    fill: String,
    get: String,
    list: String,
    members: String,
    exists: String,
    cancel: String,
}

impl Statements {
    pub(crate) fn new(s: &str) -> Self {
        Self {
            create: create_sql(s),
            fill: fill_sql(s),
            get: format!("SELECT {BATCH_COLUMNS} FROM {s}.batches WHERE id = $1"),
            list: format!(
                "SELECT {BATCH_COLUMNS} FROM {s}.batches
                 WHERE $1::int8 IS NULL OR id < $1
                 ORDER BY id DESC LIMIT $2"
            ),
            members: members_sql(s),
            exists: format!("SELECT EXISTS (SELECT 1 FROM {s}.batches WHERE id = $1)"),
            cancel: cancel_sql(s),
        }
    }
}

const BATCH_COLUMNS: &str = "id, created_at, total, pending, succeeded, failed, cancelled, \
     finished_at, callback_id, callback_on";

fn batch_row(row: &PgRow) -> Result<BatchRow, sqlx::Error> {
    let mut batch = BatchRow::new(
        BatchId(row.try_get("id")?),
        row.try_get("created_at")?,
        row.try_get("total")?,
    );
    batch.pending = row.try_get("pending")?;
    batch.succeeded = row.try_get("succeeded")?;
    batch.failed = row.try_get("failed")?;
    batch.cancelled = row.try_get("cancelled")?;
    batch.finished_at = row.try_get("finished_at")?;
    batch.callback = row.try_get::<Option<i64>, _>("callback_id")?.map(JobId);
    batch.callback_on = match row.try_get::<Option<&str>, _>("callback_on")? {
        None => None,
        Some(on) => Some(on.parse().map_err(|e: String| sqlx::Error::ColumnDecode {
            index: "callback_on".to_owned(),
            source: e.into(),
        })?),
    };
    Ok(batch)
}

// ---- insert

/// The batch's row, first, so that its members are inserted with its id;
/// its counters, members and callback are set once they are ([`fill_sql`]).
fn create_sql(s: &str) -> String {
    format!("INSERT INTO {s}.batches (total, pending, members) VALUES (0, 0, '{{}}') RETURNING id")
}

/// $1 the batch, $2 its members' ids, $3 the callback (NULL: none), $4 when
/// it runs. The
/// callback, inserted like any job in the same transaction and seen by no
/// one yet, is made `awaiting`, its one history event with it.
fn fill_sql(s: &str) -> String {
    format!(
        "WITH b AS (
            UPDATE {s}.batches
            SET total = cardinality($2::int8[]), pending = cardinality($2::int8[]),
                members = $2::int8[], callback_id = $3, callback_on = $4
            WHERE id = $1
            RETURNING id
        ), c AS (
            UPDATE {s}.jobs j SET state = 'awaiting' WHERE j.id = $3
        ), e AS (
            UPDATE {s}.job_events e SET state = 'awaiting' WHERE e.job_id = $3
        )
        SELECT count(*) FROM b"
    )
}

/// Inserts a batch on `conn`, inside the caller's transaction: the caller
/// commits, and wakes servers as `wake` says.
pub(crate) async fn insert_on(
    db: &Db,
    sql: &crate::jobs::Statements,
    conn: &mut PgConnection,
    p: BatchInsertParams,
    wake: Wake,
) -> StoreResult<EnqueuedBatch> {
    p.check()?;
    let fail = |e| store_error("inserting a batch", e);
    let on = p.callback.as_ref().map(|(_, on)| on.as_str());
    let id = BatchId(
        sqlx::query_scalar(&sql.batches.create)
            .fetch_one(&mut *conn)
            .await
            .map_err(fail)?,
    );
    let members = run::insert_into(db, &sql.run, &mut *conn, p.members, wake, Some(id)).await?;
    let callback = match p.callback {
        Some((job, _)) => run::insert(db, &sql.run, &mut *conn, vec![job], wake)
            .await?
            .first()
            .map(|i| i.id),
        None => None,
    };
    let stored: Vec<i64> = members
        .iter()
        .filter(|i| !i.duplicate)
        .map(|i| i.id.0)
        .collect();
    let empty = stored.is_empty();
    sqlx::query(&sql.batches.fill)
        .bind(id.0)
        .bind(stored)
        .bind(callback.map(|id| id.0))
        .bind(on)
        .execute(&mut *conn)
        .await
        .map_err(fail)?;
    if empty {
        // Ended as it is stored: its callback is released with it.
        run::release(db, &sql.run.release, conn, Some(Vec::new()), true).await?;
    }
    Ok(EnqueuedBatch::new(id, members, callback))
}

/// `Store::batch_insert`: in a transaction of its own, on the store's pool.
pub(crate) async fn insert(
    db: &Db,
    sql: &crate::jobs::Statements,
    p: BatchInsertParams,
) -> StoreResult<EnqueuedBatch> {
    let fail = |e| store_error("inserting a batch", e);
    let mut tx = db.pool().begin().await.map_err(fail)?;
    let enqueued = insert_on(db, sql, &mut tx, p, Wake::Afterwards).await?;
    tx.commit().await.map_err(fail)?;
    if enqueued.members.iter().any(|i: &Inserted| !i.duplicate) || enqueued.callback.is_some() {
        db.wake();
        db.notify_others();
    }
    Ok(enqueued)
}

// ---- read

pub(crate) async fn get(db: &Db, sql: &Statements, id: BatchId) -> StoreResult<Option<BatchRow>> {
    let row = sqlx::query(&sql.get)
        .bind(id.0)
        .fetch_optional(db.pool())
        .await
        .map_err(|e| store_error("reading a batch", e))?;
    row.as_ref()
        .map(batch_row)
        .transpose()
        .map_err(|e| store_error("reading a batch", e))
}

pub(crate) async fn list(
    db: &Db,
    sql: &Statements,
    p: BatchListParams,
) -> StoreResult<Vec<BatchRow>> {
    let rows = sqlx::query(&sql.list)
        .bind(p.before.map(|id| id.0))
        .bind(i64::from(p.limit))
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("listing batches", e))?;
    rows.iter()
        .map(batch_row)
        .collect::<Result<_, _>>()
        .map_err(|e| store_error("reading batches", e))
}

/// $1 batch, $2 before (NULL: from the newest), $3 limit. The page is cut
/// from the batch's member ids before any job is read, so a page costs its
/// own rows and a sort of the ids, not a read of every member.
fn members_sql(s: &str) -> String {
    let j_cols = job_columns_of("j");
    format!(
        "WITH page AS (
            SELECT m.id FROM {s}.batches b CROSS JOIN LATERAL unnest(b.members) AS m(id)
            WHERE b.id = $1 AND ($2::int8 IS NULL OR m.id < $2)
            ORDER BY m.id DESC LIMIT $3
        )
        SELECT {j_cols} FROM page JOIN {s}.jobs j ON j.id = page.id ORDER BY j.id DESC"
    )
}

pub(crate) async fn members(
    db: &Db,
    sql: &Statements,
    p: BatchMembersParams,
) -> StoreResult<Vec<JobRow>> {
    let fail = |e| store_error("listing a batch's jobs", e);
    let rows = sqlx::query(&sql.members)
        .bind(p.id.0)
        .bind(p.before.map(|id| id.0))
        .bind(i64::from(p.limit))
        .fetch_all(db.pool())
        .await
        .map_err(fail)?;
    if rows.is_empty() && !exists(db, sql, p.id).await? {
        return Err(not_found(p.id));
    }
    rows.iter()
        .map(job_row)
        .collect::<Result<_, _>>()
        .map_err(fail)
}

async fn exists(db: &Db, sql: &Statements, id: BatchId) -> StoreResult<bool> {
    sqlx::query_scalar(&sql.exists)
        .bind(id.0)
        .fetch_one(db.pool())
        .await
        .map_err(|e| store_error("reading a batch", e))
}

fn not_found(id: BatchId) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotFound,
        format!("batch {id} does not exist"),
    )
}

// ---- cancel

/// $1 batch, $2 reason, $3 the NOTIFY channel, $4 the cancel payload. Its
/// waiting members and its awaiting callback are cancelled, its running
/// members asked to stop, all locked in id order first; the batch's counters
/// follow in the same statement.
fn cancel_sql(s: &str) -> String {
    let cancel = cancel_picked_ctes(s, "$2", "$3", "$4");
    format!(
        "WITH b AS (
            SELECT members, callback_id FROM {s}.batches WHERE id = $1
        ), targets AS (
            SELECT unnest(members) AS id FROM b
            UNION ALL SELECT callback_id FROM b WHERE callback_id IS NOT NULL
        ), old AS MATERIALIZED (
            SELECT j.id, j.state FROM {s}.jobs j
            WHERE j.id IN (SELECT id FROM targets)
              AND j.state IN ('awaiting', 'scheduled', 'enqueued', 'processing')
            ORDER BY j.id
            FOR UPDATE OF j
        ), {cancel}
        SELECT (SELECT count(*) FROM b) AS found,
               (SELECT count(*) FROM cancelled) AS cancelled,
               (SELECT count(*) FROM requested) AS requested,
               coalesce((SELECT array_agg(id) FROM cancelled WHERE has_continuations),
                        '{{}}'::bigint[]) AS parents"
    )
}

pub(crate) async fn cancel(
    db: &Db,
    sql: &crate::jobs::Statements,
    p: BatchCancelParams,
) -> StoreResult<u64> {
    let fail = |e| store_error("cancelling a batch", e);
    let row = sqlx::query(&sql.batches.cancel)
        .bind(p.id.0)
        .bind(p.reason)
        .bind(db.channel())
        .bind(db.cancel_payload())
        .fetch_one(db.pool())
        .await
        .map_err(fail)?;
    let read = || -> Result<(i64, i64, i64, Vec<i64>), sqlx::Error> {
        Ok((
            row.try_get("found")?,
            row.try_get("cancelled")?,
            row.try_get("requested")?,
            row.try_get("parents")?,
        ))
    };
    let (found, cancelled, requested, parents) = read().map_err(fail)?;
    if found == 0 {
        return Err(not_found(p.id));
    }
    if requested > 0 {
        db.wake_cancel();
    }
    run::release_pooled(db, &sql.run.release, Some(parents), true).await?;
    Ok((cancelled + requested).unsigned_abs())
}

// ---- release

/// $1 the NOTIFY channel. Releases the callbacks of the batches whose last
/// member has ended (`pending = 0`, not yet `finished_at`), at most 1,000
/// per statement, through `batches_due_idx`: a callback on any end, or on
/// success of a batch whose members all succeeded, becomes `enqueued`; the
/// other is `cancelled` with the counts. The batches are locked `SKIP
/// LOCKED` (another release has them), then the callbacks, `SKIP LOCKED`
/// too: a batch whose awaiting callback is locked by a user's action is
/// left due for the next release, so no statement waits on another in a
/// cycle. A callback that is no longer awaiting (cancelled by a user, or
/// released before a member was retried) is left alone: each is released
/// once. It returns how many batches ended, how many callbacks became
/// runnable, and the cancelled callbacks that have continuations.
pub(crate) fn release_sql(s: &str) -> String {
    let counted = counted_cte(s, "SELECT queue, state, 1 AS d, batch_id FROM released");
    format!(
        "WITH due AS MATERIALIZED (
            SELECT b.id, b.callback_id, b.callback_on, b.total, b.succeeded, b.failed, b.cancelled
            FROM {s}.batches b
            WHERE b.pending = 0 AND b.finished_at IS NULL
            ORDER BY b.id
            LIMIT 1000
            FOR UPDATE SKIP LOCKED
        ), waiting AS MATERIALIZED (
            SELECT j.id FROM {s}.jobs j JOIN due ON due.callback_id = j.id
            WHERE j.state = 'awaiting'
        ), callbacks AS MATERIALIZED (
            SELECT j.id FROM {s}.jobs j JOIN waiting w ON w.id = j.id
            ORDER BY j.id
            FOR UPDATE OF j SKIP LOCKED
        ), ended AS (
            UPDATE {s}.batches b SET finished_at = now()
            FROM due
            WHERE b.id = due.id
              AND (due.callback_id IS NULL
                   OR due.callback_id NOT IN (SELECT id FROM waiting)
                   OR due.callback_id IN (SELECT id FROM callbacks))
            RETURNING b.id
        ), released AS (
            UPDATE {s}.jobs j
            SET state = CASE WHEN due.callback_on = 'any_end' OR due.succeeded = due.total
                             THEN 'enqueued' ELSE 'cancelled' END,
                run_at = CASE WHEN due.callback_on = 'any_end' OR due.succeeded = due.total
                              THEN now() ELSE j.run_at END,
                finished_at = CASE WHEN due.callback_on = 'any_end' OR due.succeeded = due.total
                                   THEN NULL ELSE now() END
            FROM due
            WHERE j.id = due.callback_id AND j.id IN (SELECT id FROM callbacks)
              AND j.state = 'awaiting'
            RETURNING j.id, j.queue, j.state, j.attempt, j.has_continuations, j.batch_id,
                      due.id AS batch, due.failed, due.cancelled
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, error)
            SELECT id, now(), state, attempt,
                   CASE WHEN state = 'cancelled'
                        THEN format('batch %s ended with %s failed and %s cancelled or deleted; '
                                    'this job was to run only if all its jobs succeeded',
                                    batch, failed, cancelled)
                   END
            FROM released
        ), {counted}, notified AS (
            SELECT pg_notify($1, '') WHERE EXISTS (SELECT 1 FROM released WHERE state = 'enqueued')
        )
        SELECT (SELECT count(*) FROM ended) AS ended,
               count(*) FILTER (WHERE state = 'enqueued') AS runnable,
               coalesce(array_agg(id) FILTER (WHERE state = 'cancelled' AND has_continuations),
                        '{{}}'::bigint[]) AS ended_parents,
               (SELECT count(*) FROM notified) AS notified
        FROM released"
    )
}
