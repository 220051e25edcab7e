//! Recurring jobs, the `cron_*` half of the store: the definitions in
//! `recurring`, the due ones, and firing a tick (a compare-and-set, then the
//! insert of its runs) in one transaction.

use jobs_core::{
    Cron, CronDue, CronDueParams, CronFireOutcome, CronFireParams, CronListParams, CronPauseParams,
    CronRemoveParams, CronTriggerParams, CronUpsertParams, JobId, Misfire, NewJob, Overlap,
    RecurringDef, RecurringOptions, RecurringOrigin, RecurringRow, RunAt, StoreError,
    StoreErrorKind, StoreResult, Timestamp, UniqueKey,
};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::db::Db;
use crate::error::{finish, store_error};
use crate::jobs::run::{self, Wake};
use crate::options::Schema;
use crate::sql::{backoff_json, backoff_of, duration_of_micros, micros};

const SKIPPED_RUNNING: &str = "an earlier run is unfinished";

/// The statements about recurring jobs of one store.
#[derive(Debug)]
pub(crate) struct Statements {
    upsert: String,
    remove: String,
    pause: String,
    list: String,
    due: String,
    fire_cas: String,
    unfinished: String,
    skipped: String,
    fired: String,
    get_def: String,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = &schema.quoted();
        let view = format!(
            "SELECT r.id, r.schedule, r.time_zone, r.name, r.queue, r.args, r.priority,
                    r.max_attempts, r.timeout_us, r.backoff, r.misfire, r.overlap, r.paused,
                    r.unique_key, r.unique_period_us, r.unique_states,
                    r.revision, r.next_run_at,
                    r.last_run_at,
                    r.last_job_id, r.last_skipped_at, r.last_skipped_reason,
                    j.state AS last_job_state, j.last_error
             FROM {s}.recurring r LEFT JOIN {s}.jobs j ON j.id = r.last_job_id"
        );
        Self {
            // A changed schedule or zone restarts from the next tick.
            upsert: format!(
                "INSERT INTO {s}.recurring AS r (id, schedule, time_zone, name, queue, args,
                     priority, max_attempts, misfire, overlap, timeout_us, backoff,
                     unique_key, unique_period_us, unique_states)
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9, $10, $11,
                         $12::text::jsonb, $13, $14, $15)
                 ON CONFLICT (id) DO UPDATE SET
                     revision = r.revision + CASE
                         WHEN (r.schedule, r.time_zone, r.name, r.queue, r.args, r.priority,
                               r.max_attempts, r.misfire, r.overlap, r.timeout_us, r.backoff,
                               r.unique_key, r.unique_period_us, r.unique_states)
                              IS DISTINCT FROM
                              (EXCLUDED.schedule, EXCLUDED.time_zone, EXCLUDED.name,
                               EXCLUDED.queue, EXCLUDED.args, EXCLUDED.priority,
                               EXCLUDED.max_attempts, EXCLUDED.misfire, EXCLUDED.overlap,
                               EXCLUDED.timeout_us, EXCLUDED.backoff, EXCLUDED.unique_key,
                               EXCLUDED.unique_period_us, EXCLUDED.unique_states)
                         THEN 1 ELSE 0 END,
                     next_run_at = CASE WHEN r.schedule = EXCLUDED.schedule
                                         AND r.time_zone = EXCLUDED.time_zone
                                        THEN r.next_run_at END,
                     schedule = EXCLUDED.schedule, time_zone = EXCLUDED.time_zone,
                     name = EXCLUDED.name, queue = EXCLUDED.queue, args = EXCLUDED.args,
                     priority = EXCLUDED.priority, max_attempts = EXCLUDED.max_attempts,
                     misfire = EXCLUDED.misfire, overlap = EXCLUDED.overlap,
                     timeout_us = EXCLUDED.timeout_us, backoff = EXCLUDED.backoff,
                     unique_key = EXCLUDED.unique_key, unique_period_us = EXCLUDED.unique_period_us,
                     unique_states = EXCLUDED.unique_states"
            ),
            remove: format!("DELETE FROM {s}.recurring WHERE id = $1"),
            // Resuming forgets the ticks passed while paused.
            pause: format!(
                "UPDATE {s}.recurring
                 SET next_run_at = CASE WHEN paused AND NOT $2 THEN NULL ELSE next_run_at END,
                     revision = revision + CASE WHEN paused <> $2 THEN 1 ELSE 0 END,
                     paused = $2
                 WHERE id = $1"
            ),
            list: format!("{view} ORDER BY r.id"),
            due: format!(
                "{view} WHERE NOT r.paused AND (r.next_run_at IS NULL OR r.next_run_at <= now())
                 ORDER BY r.id LIMIT $1"
            ),
            fire_cas: format!(
                "UPDATE {s}.recurring SET next_run_at = $2
                 WHERE id = $1 AND NOT paused AND next_run_at IS NOT DISTINCT FROM $3
                   AND ($4::bigint IS NULL OR revision = $4)
                 RETURNING id"
            ),
            unfinished: format!(
                "SELECT EXISTS (SELECT 1 FROM {s}.jobs WHERE recurring_id = $1
                                AND state IN ('scheduled', 'enqueued', 'processing'))"
            ),
            skipped: format!(
                "UPDATE {s}.recurring SET last_skipped_at = now(), last_skipped_reason = $2
                 WHERE id = $1"
            ),
            fired: format!(
                "UPDATE {s}.recurring SET last_job_id = $2, last_run_at = coalesce($3, now())
                 WHERE id = $1"
            ),
            get_def: format!("{view} WHERE r.id = $1 FOR UPDATE OF r"),
        }
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::NotFound,
        format!("recurring job `{id}` does not exist"),
    )
}

fn invalid(what: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored recurring job has an invalid {what}: {e}").into())
}

fn recurring_row(row: &PgRow) -> Result<RecurringRow, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let schedule: String = row.try_get("schedule")?;
    let time_zone: String = row.try_get("time_zone")?;
    let cron = Cron::parse(&schedule)
        .and_then(|c| c.in_time_zone(&time_zone))
        .map_err(|e| invalid("schedule", e))?;
    let misfire: Misfire = row
        .try_get::<&str, _>("misfire")?
        .parse()
        .map_err(|e| invalid("misfire policy", e))?;
    let overlap: Overlap = row
        .try_get::<&str, _>("overlap")?
        .parse()
        .map_err(|e| invalid("overlap policy", e))?;
    let mut job = NewJob::new(
        row.try_get::<String, _>("name")?,
        row.try_get::<serde_json::Value, _>("args")?,
    );
    job.queue = row.try_get("queue")?;
    job.priority = row.try_get("priority")?;
    job.max_attempts = row.try_get("max_attempts")?;
    job.timeout = row
        .try_get::<Option<i64>, _>("timeout_us")?
        .map(duration_of_micros);
    job.backoff = backoff_of(row.try_get("backoff")?)?;
    job.unique = row
        .try_get::<Option<String>, _>("unique_key")?
        .map(|key| -> Result<UniqueKey, sqlx::Error> {
            Ok(UniqueKey::from_stored(
                key,
                row.try_get("unique_period_us")?,
                row.try_get::<Option<i16>, _>("unique_states")?.unwrap_or(0),
            ))
        })
        .transpose()?;
    let options = RecurringOptions::new().misfire(misfire).overlap(overlap);
    let mut def = RecurringDef::new(id, &cron, job, options);
    // Keep the text exactly as stored.
    def.schedule = schedule;
    def.time_zone = time_zone;
    let mut out = RecurringRow::new(def, row.try_get("paused")?, row.try_get("next_run_at")?);
    out.revision = row.try_get("revision")?;
    out.last_run_at = row.try_get("last_run_at")?;
    out.last_job_id = row.try_get::<Option<i64>, _>("last_job_id")?.map(JobId);
    out.last_job_state = row
        .try_get::<Option<&str>, _>("last_job_state")?
        .map(|s| s.parse().map_err(|e| invalid("job state", e)))
        .transpose()?;
    out.last_error = row.try_get("last_error")?;
    let skipped_at: Option<Timestamp> = row.try_get("last_skipped_at")?;
    let reason: Option<String> = row.try_get("last_skipped_reason")?;
    out.last_skipped = skipped_at.map(|at| (at, reason.unwrap_or_default()));
    Ok(out)
}

pub(crate) async fn upsert(db: &Db, sql: &Statements, p: CronUpsertParams) -> StoreResult<()> {
    let def = p.def;
    let args = serde_json::to_string(&def.job.args).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Invalid,
            "arguments cannot be stored as JSON",
        )
        .with_source(e)
    })?;
    db.check_args_size(&def.job.name, args.len())?;
    sqlx::query(&sql.upsert)
        .bind(&def.id)
        .bind(&def.schedule)
        .bind(&def.time_zone)
        .bind(&def.job.name)
        .bind(&def.job.queue)
        .bind(args)
        .bind(def.job.priority)
        .bind(def.job.max_attempts)
        .bind(def.misfire.to_string())
        .bind(def.overlap.to_string())
        .bind(def.job.timeout.map(micros))
        .bind(backoff_json(def.job.backoff)?)
        .bind(def.job.unique.as_ref().map(|u| u.key.as_str()))
        .bind(def.job.unique.as_ref().and_then(UniqueKey::period_micros))
        .bind(def.job.unique.as_ref().map(|u| u.held_after.bits()))
        .execute(db.pool())
        .await
        .map_err(|e| store_error("saving a recurring job", e))?;
    Ok(())
}

pub(crate) async fn remove(db: &Db, sql: &Statements, p: CronRemoveParams) -> StoreResult<bool> {
    let done = sqlx::query(&sql.remove)
        .bind(&p.id)
        .execute(db.pool())
        .await
        .map_err(|e| store_error("removing a recurring job", e))?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn pause(db: &Db, sql: &Statements, p: CronPauseParams) -> StoreResult<()> {
    let done = sqlx::query(&sql.pause)
        .bind(&p.id)
        .bind(p.paused)
        .execute(db.pool())
        .await
        .map_err(|e| store_error("pausing a recurring job", e))?;
    if done.rows_affected() == 0 {
        return Err(not_found(&p.id));
    }
    Ok(())
}

pub(crate) async fn list(
    db: &Db,
    sql: &Statements,
    _p: CronListParams,
) -> StoreResult<Vec<RecurringRow>> {
    sqlx::query(&sql.list)
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("listing recurring jobs", e))?
        .iter()
        .map(recurring_row)
        .collect::<Result<_, _>>()
        .map_err(|e| store_error("reading recurring jobs", e))
}

pub(crate) async fn due(db: &Db, sql: &Statements, p: CronDueParams) -> StoreResult<CronDue> {
    let fail = |e| store_error("reading due recurring jobs", e);
    let mut tx = db.pool().begin().await.map_err(fail)?;
    let due = async {
        // `now()` is the transaction's start: the same clock the query used.
        let now: Timestamp = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
        let due = sqlx::query(&sql.due)
            .bind(i64::from(p.limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(fail)?
            .iter()
            .map(recurring_row)
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        Ok(CronDue::new(now, due))
    }
    .await;
    finish(tx, due, fail).await
}

pub(crate) async fn fire(
    db: &Db,
    sql: &Statements,
    jobs_sql: &run::Statements,
    p: CronFireParams,
) -> StoreResult<CronFireOutcome> {
    let fail = |e| store_error("firing a recurring job", e);
    let mut tx = db.pool().begin().await.map_err(fail)?;
    let fired = async {
        // Compare-and-set under the row's lock: one fire per tick.
        let won = sqlx::query(&sql.fire_cas)
            .bind(&p.id)
            .bind(p.next_run_at)
            .bind(p.expected_next_run_at)
            .bind(p.expected_revision)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?
            .is_some();
        if !won {
            return Ok(CronFireOutcome::Lost);
        }
        if p.skip_if_running && !p.jobs.is_empty() {
            let running: bool = sqlx::query_scalar(&sql.unfinished)
                .bind(&p.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(fail)?;
            if running {
                sqlx::query(&sql.skipped)
                    .bind(&p.id)
                    .bind(SKIPPED_RUNNING)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                return Ok(CronFireOutcome::SkippedRunning);
            }
        }
        let tick = p
            .jobs
            .last()
            .and_then(|job| job.recurring.as_ref())
            .map(|origin| origin.scheduled_for);
        // A run of a unique job whose key is held comes back as the
        // holder's id: that job stands for this tick.
        let ids: Vec<JobId> = run::insert(db, jobs_sql, &mut *tx, p.jobs, Wake::AtCommit)
            .await?
            .into_iter()
            .map(|inserted| inserted.id)
            .collect();
        if let Some(last) = ids.last() {
            sqlx::query(&sql.fired)
                .bind(&p.id)
                .bind(last.0)
                .bind(tick)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        Ok(CronFireOutcome::Fired(ids))
    }
    .await;
    let outcome = finish(tx, fired, fail).await?;
    if matches!(&outcome, CronFireOutcome::Fired(ids) if !ids.is_empty()) {
        db.wake();
    }
    Ok(outcome)
}

pub(crate) async fn trigger(
    db: &Db,
    sql: &Statements,
    jobs_sql: &run::Statements,
    p: CronTriggerParams,
) -> StoreResult<JobId> {
    let fail = |e| store_error("triggering a recurring job", e);
    let mut tx = db.pool().begin().await.map_err(fail)?;
    let triggered = async {
        let row = sqlx::query(&sql.get_def)
            .bind(&p.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(fail)?
            .ok_or_else(|| not_found(&p.id))?;
        let def = recurring_row(&row).map_err(fail)?.def;
        let now: Timestamp = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
        let mut job = def.job;
        job.run_at = RunAt::Now;
        job.recurring = Some(origin(&p.id, now)?);
        job.trace_context = p.trace_context.clone();
        let ids = run::insert(db, jobs_sql, &mut *tx, vec![job], Wake::AtCommit).await?;
        let id = ids
            .first()
            .ok_or_else(|| {
                StoreError::new(StoreErrorKind::Other, "postgres: insert returned no id")
            })?
            .id;
        sqlx::query(&sql.fired)
            .bind(&p.id)
            .bind(id.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        Ok(id)
    }
    .await;
    let id = finish(tx, triggered, fail).await?;
    db.wake();
    Ok(id)
}

fn origin(id: &str, at: Timestamp) -> StoreResult<RecurringOrigin> {
    serde_json::from_value(serde_json::json!({ "id": id, "scheduled_for": at })).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Other,
            "postgres: building a recurring origin",
        )
        .with_source(e)
    })
}
