//! Leases, the `lease_*` half of the store: renewing the leases of running
//! attempts (fenced by their claim tokens), and rescuing the jobs whose
//! lease ran out.

use std::collections::HashMap;

use jobs_core::{
    JobId, LeaseRenewManyParams, LeaseReportStuckParams, LeaseRescueParams, LeaseStatus,
    StoreResult,
};
use sqlx::Row;

use crate::db::Db;
use crate::error::store_error;
use crate::options::Schema;
use crate::sql::{counted_cte, locked_cte, micros, places_freed_cte};

/// The statements about leases of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    renew: String,
    rescue: String,
    sweep_places: String,
    report_stuck: String,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = &schema.quoted();
        Self {
            renew: renew_sql(s),
            rescue: rescue_sql(s),
            sweep_places: sweep_places_sql(s),
            report_stuck: report_stuck_sql(s),
        }
    }
}

// ---- renew

/// $1 ids, $2 tokens, $3 lease in µs. The rows are locked in id order first
/// (see [`locked_cte`]): a renewal and the same server's batched completion
/// of some of its jobs deadlocked when each locked them in its own order.
fn renew_sql(s: &str) -> String {
    let locked = locked_cte(s, "unnest($1::int8[], $2::int8[]) AS i(id, token)");
    format!(
        "WITH {locked}
         UPDATE {s}.jobs j
         SET lease_expires_at = now() + $3 * interval '1 microsecond'
         FROM locked i
         WHERE j.id = i.id AND j.claim_token = i.token AND j.state = 'processing'
         RETURNING j.id, j.claim_token, j.cancel_requested"
    )
}

pub(crate) async fn renew_many(
    db: &Db,
    sql: &Statements,
    p: LeaseRenewManyParams,
) -> StoreResult<Vec<LeaseStatus>> {
    if p.claims.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = p.claims.iter().map(|c| c.job_id.0).collect();
    let tokens: Vec<i64> = p.claims.iter().map(|c| c.token).collect();
    let rows = sqlx::query(&sql.renew)
        .bind(ids)
        .bind(tokens)
        .bind(micros(p.lease))
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("renewing leases", e))?;
    let mut held = HashMap::with_capacity(rows.len());
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

// ---- rescue

/// $1 limit, $2 the NOTIFY channel, $3 the ids never to rescue (the
/// rescuer's own claims). SET expressions read the old row, so the
/// message names the server that lost the lease. A job a user asked to
/// cancel is `cancelled` (the request outlives the server that was to carry
/// it out), one without attempts left `failed`, the others retried now.
fn rescue_sql(s: &str) -> String {
    let counted = counted_cte(s, "SELECT queue, state, 1 AS d, batch_id FROM upd");
    let places_freed = places_freed_cte(s);
    format!(
        "WITH expired AS (
            SELECT id FROM {s}.jobs
            WHERE state = 'processing' AND lease_expires_at < now()
              AND id <> ALL($3::int8[])
            ORDER BY lease_expires_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), upd AS (
            UPDATE {s}.jobs j
            SET state = CASE WHEN j.cancel_requested THEN 'cancelled'
                             WHEN j.attempt >= j.max_attempts THEN 'failed'
                             ELSE 'scheduled' END,
                finished_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts
                                   THEN now() ELSE j.finished_at END,
                run_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts
                              THEN j.run_at ELSE now() END,
                last_error = format('lease expired: server %s stopped renewing it (attempt %s)',
                                    coalesce(j.server_id::text, 'unknown'), j.attempt),
                server_id = NULL,
                lease_expires_at = NULL,
                cancel_requested = false
            FROM expired e
            WHERE j.id = e.id AND j.state = 'processing' AND j.lease_expires_at < now()
            RETURNING j.id, j.queue, j.state, j.attempt, j.batch_id, j.last_error, j.limit_key
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, error)
            SELECT id, now(), state, attempt, last_error FROM upd
        ), {places_freed}, {counted}, notified AS (
            SELECT pg_notify($2, '') FROM (
                SELECT 1 FROM upd WHERE state = 'scheduled' LIMIT 1
            ) AS runnable
        )
        SELECT id, (SELECT count(*) FROM notified) AS notified FROM upd ORDER BY id"
    )
}

/// Deletes the key places (migration 0016) whose job no longer runs: those
/// a path out of `processing` failed to give back. A place row is only
/// ever inserted, with its job's claim in one statement, and deleted, so a
/// snapshot that sees it sees the claim too: one whose job is not
/// `processing` there is left behind for good, whatever runs concurrently.
fn sweep_places_sql(s: &str) -> String {
    format!(
        "DELETE FROM {s}.key_places k
        WHERE NOT EXISTS (SELECT 1 FROM {s}.jobs j
                          WHERE j.id = k.job_id AND j.state = 'processing')"
    )
}

pub(crate) async fn rescue(
    db: &Db,
    sql: &Statements,
    p: LeaseRescueParams,
) -> StoreResult<Vec<JobId>> {
    if p.limit == 0 {
        return Ok(Vec::new());
    }
    let swept = sqlx::query(&sql.sweep_places)
        .execute(db.pool())
        .await
        .map_err(|e| store_error("sweeping key places left behind", e))?;
    if swept.rows_affected() > 0 {
        tracing::warn!(
            places = swept.rows_affected(),
            "gave back key places whose jobs no longer run"
        );
        db.wake();
    }
    let rows = sqlx::query(&sql.rescue)
        .bind(i64::from(p.limit))
        .bind(db.channel())
        .bind(p.except.iter().map(|id| id.0).collect::<Vec<i64>>())
        .fetch_all(db.pool())
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
        db.wake();
    }
    Ok(ids)
}

// ---- stuck attempts

/// $1 ids, $2 tokens, $3 reasons, $4 the server. Fenced and locked in id
/// order like a renewal; the first report of an attempt sets `stuck_at`,
/// each adds an event.
fn report_stuck_sql(s: &str) -> String {
    let locked = locked_cte(
        s,
        "unnest($1::int8[], $2::int8[], $3::text[]) AS i(id, token, reason)",
    );
    format!(
        "WITH {locked}, upd AS (
            UPDATE {s}.jobs j
            SET stuck_at = coalesce(j.stuck_at, now())
            FROM locked i
            WHERE j.id = i.id AND j.claim_token = i.token AND j.state = 'processing'
            RETURNING j.id, j.claim_token, j.attempt, i.reason
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, server_id, error)
            SELECT id, now(), 'processing', attempt, $4, reason FROM upd
        )
        SELECT id, claim_token FROM upd"
    )
}

pub(crate) async fn report_stuck(
    db: &Db,
    sql: &Statements,
    p: LeaseReportStuckParams,
) -> StoreResult<Vec<bool>> {
    if p.reports.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = p.reports.iter().map(|(c, _)| c.job_id.0).collect();
    let tokens: Vec<i64> = p.reports.iter().map(|(c, _)| c.token).collect();
    let reasons: Vec<&str> = p.reports.iter().map(|(_, r)| r.as_str()).collect();
    let rows = sqlx::query(&sql.report_stuck)
        .bind(ids)
        .bind(tokens)
        .bind(reasons)
        .bind(p.server_id.0)
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("reporting stuck attempts", e))?;
    let mut reported = std::collections::HashSet::with_capacity(rows.len());
    for row in &rows {
        let read = || -> Result<_, sqlx::Error> {
            Ok((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?))
        };
        reported.insert(read().map_err(|e| store_error("reading stuck attempts", e))?);
    }
    Ok(p.reports
        .iter()
        .map(|(c, _)| reported.contains(&(c.job_id.0, c.token)))
        .collect())
}
