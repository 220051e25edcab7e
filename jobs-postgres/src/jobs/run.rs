//! The server's hot path: insert (through the store's pool or the
//! application's transaction), complete (in batches, or one job in
//! the application's transaction) and progress. Every write about a running
//! attempt is fenced by its claim token and the `processing` state.

use std::collections::HashSet;

use jobs_core::{
    After, BatchId, ContinueOn, Inserted, JobCompleteManyParams, JobContext, JobId, JobOutcome,
    JobProgressManyParams, JobState, NewJob, RunAt, StoreError, StoreErrorKind, StoreResult,
    Timestamp,
};
use sqlx::{PgConnection, PgExecutor, Row};

use crate::db::Db;
use crate::error::{conflict, store_error};
use crate::sql::{
    backoff_json, counted_cte, locked_cte, micros, places_freed_cte, release_sql,
    trace_context_json, unique_held, FINISHED,
};

/// The statements of the hot path.
#[derive(Debug)]
pub(crate) struct Statements {
    insert: String,
    insert_notify: String,
    insert_one: String,
    insert_one_notify: String,
    insert_full: String,
    insert_full_notify: String,
    complete: String,
    complete_output: String,
    complete_in: String,
    free_places: String,
    progress: String,
    pub(crate) release: ReleaseStatements,
}

impl Statements {
    /// Builds the statements for the quoted schema `s`.
    pub(crate) fn new(s: &str) -> Self {
        Self {
            insert: insert_sql(s, MANY, RETURN_IDS),
            insert_notify: insert_sql(s, MANY, RETURN_IDS_NOTIFY),
            insert_one: insert_sql(s, ONE, RETURN_IDS),
            insert_one_notify: insert_sql(s, ONE, RETURN_IDS_NOTIFY),
            insert_full: insert_full_sql(s, None),
            insert_full_notify: insert_full_sql(s, Some("$22")),
            complete: complete_sql(s, false),
            complete_output: complete_sql(s, true),
            complete_in: complete_in_sql(s),
            free_places: free_places_sql(s),
            progress: progress_sql(s),
            release: ReleaseStatements::new(s),
        }
    }
}

// ---- insert

/// How an insert wakes servers in other processes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wake {
    /// In the statement: the NOTIFY is delivered when the caller's
    /// transaction commits (and never if it rolls back).
    AtCommit,
    /// From the coalescing notifier after the insert committed, so that
    /// inserting transactions do not queue on NOTIFY's commit lock.
    Afterwards,
}

/// The input of an insert of many jobs: $1 names, $2 queues, $3 args (JSON
/// text), $4 priorities, $5 max attempts, $6 absolute run times, $7 delays
/// in µs, $8 recurring ids, $9 recurring ticks, $10 timeouts in µs, $11
/// backoffs (JSON text), $12 trace contexts (JSON text). One row per job; ids come back in input order
/// because they are drawn in `ord` order.
const MANY: &str =
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::int4[],
                                  $6::timestamptz[], $7::int8[], $8::text[], $9::timestamptz[],
                                  $10::int8[], $11::text[], $12::text[])
                     WITH ORDINALITY
                     AS t(name, queue, args, priority, max_attempts, run_at_abs, delay_us,
                          recurring_id, scheduled_for, timeout_us, backoff, trace_context, ord)";

/// The same parameters as scalars, for a single enqueue (the common case),
/// which costs the database less without the arrays.
const ONE: &str = "SELECT $1::text AS name, $2::text AS queue, $3::text AS args,
                          $4::int2 AS priority, $5::int4 AS max_attempts,
                          $6::timestamptz AS run_at_abs, $7::int8 AS delay_us,
                          $8::text AS recurring_id, $9::timestamptz AS scheduled_for,
                          $10::int8 AS timeout_us, $11::text AS backoff,
                          $12::text AS trace_context, 1::int8 AS ord";

/// The end of an insert through the store's pool: the notifier wakes other
/// processes after the commit.
const RETURN_IDS: &str = "SELECT id FROM ins ORDER BY id";

/// The end of an insert in the application's transaction: the NOTIFY
/// ($13 the channel) that PostgreSQL delivers when (and only if) that
/// transaction commits.
const RETURN_IDS_NOTIFY: &str =
    "SELECT id FROM ins CROSS JOIN (SELECT pg_notify($13, '')) AS wake ORDER BY id";

fn insert_sql(s: &str, input: &str, returning: &str) -> String {
    format!(
        "WITH input AS (
            SELECT t.*, coalesce(t.run_at_abs, now() + t.delay_us * interval '1 microsecond') AS run_at
            FROM ({input}) AS t
        ), ins AS (
            INSERT INTO {s}.jobs (name, queue, args, state, priority, max_attempts, run_at,
                                  recurring_id, scheduled_for, timeout_us, backoff,
                                  trace_context)
            SELECT name, queue, args::jsonb,
                   CASE WHEN run_at > now() THEN 'scheduled' ELSE 'enqueued' END,
                   priority, max_attempts, run_at, recurring_id, scheduled_for,
                   timeout_us, backoff::jsonb, trace_context::jsonb
            FROM input
            ORDER BY ord
            RETURNING id, state, attempt
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt)
            SELECT id, now(), state, attempt FROM ins
        )
        {returning}"
    )
}

/// The input of an insert of many jobs of which some are unique or
/// continuations: [`MANY`]'s parameters, and $13 unique keys (NULL: not
/// unique), $14 their periods in µs (NULL: none), $15 the finished states
/// that hold them (`HeldAfter::bits`), $16 parents (NULL: not a
/// continuation), $17 on which ends of the parent (`ContinueOn::as_str`),
/// $18 the argument that takes the parent's output (NULL: none), $19 the
/// batch (NULL: none), $20 limit keys (NULL: none), $21 how many with the
/// key may run at once.
const MANY_FULL: &str =
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::int4[],
                                  $6::timestamptz[], $7::int8[], $8::text[], $9::timestamptz[],
                                  $10::int8[], $11::text[], $12::text[],
                                  $13::text[], $14::int8[], $15::int2[], $16::int8[], $17::text[],
                                  $18::text[], $19::int8[], $20::text[], $21::int4[])
                     WITH ORDINALITY
                     AS t(name, queue, args, priority, max_attempts, run_at_abs, delay_us,
                          recurring_id, scheduled_for, timeout_us, backoff, trace_context,
                          ukey, period_us, unique_states, parent_id, continue_on, input_arg,
                          batch_id, limit_key, limit_running, ord)";

/// An insert of jobs of which some are unique, continuations or members of
/// a batch, used only when a call has such a job (the plain insert stays as
/// cheap as it was).
///
/// Unique: the stored key gets the run time's period number
/// (`UniqueKey::stored_for`, on the database clock). Within the batch, a
/// key's first job stands for the others; against the table, `ON CONFLICT`
/// on the partial unique index (migration 0009) finds the holder, waiting
/// for an inserting transaction to end if there is one (so a rolled-back
/// holder frees the key), and returns it, with `xmax = 0` telling a new row
/// from an existing one.
///
/// Continuations: each parent is marked (`has_continuations`), which takes
/// its row lock, so that its completion, which releases continuations
/// afterwards in a statement of its own, is ordered with this insert; the
/// parent's state read under that lock says whether the continuation waits
/// (`awaiting`), runs at once, or is refused (`refused`, or `missing` for a
/// parent that does not exist), in which case nothing is inserted.
///
/// Ids go back to input order: keyed jobs by key, the others by rank, since
/// their ids are drawn in `ord` order. `channel`: the parameter of the
/// NOTIFY's channel, for an insert in the application's transaction.
fn insert_full_sql(s: &str, channel: Option<&str>) -> String {
    let wake = match channel {
        Some(channel) => format!("CROSS JOIN (SELECT pg_notify({channel}, '')) AS wake"),
        None => String::new(),
    };
    let held = unique_held("");
    format!(
        "WITH input AS (
            SELECT t.*, coalesce(t.run_at_abs, now() + t.delay_us * interval '1 microsecond') AS run_at
            FROM ({MANY_FULL}) AS t
        ), parents AS (
            UPDATE {s}.jobs p SET has_continuations = true
            WHERE p.id IN (SELECT parent_id FROM input WHERE parent_id IS NOT NULL)
            RETURNING p.id, p.state, p.output
        ), keyed AS (
            SELECT i.*, pa.state AS parent_state, pa.output AS parent_output,
                   CASE WHEN i.parent_id IS NULL THEN NULL
                        WHEN pa.state IS NULL THEN 'missing'
                        WHEN pa.state NOT IN {FINISHED} THEN 'awaiting'
                        WHEN i.continue_on = 'any_end' OR pa.state = 'succeeded' THEN 'run'
                        ELSE 'refused'
                   END AS continuation,
                   CASE WHEN i.ukey IS NULL OR i.period_us IS NULL THEN i.ukey
                        -- Rounded down before the epoch too, as `div_euclid`.
                        ELSE i.ukey || '@' || (((extract(epoch FROM i.run_at) * 1000000)::int8
                                                - CASE WHEN i.run_at < 'epoch' THEN i.period_us - 1 ELSE 0 END)
                                               / i.period_us)::text
                   END AS unique_key
            FROM input i LEFT JOIN parents pa ON pa.id = i.parent_id
        ), firsts AS (
            SELECT k.*,
                   CASE WHEN k.unique_key IS NULL THEN k.ord
                        ELSE min(k.ord) OVER (PARTITION BY k.unique_key) END AS first_ord
            FROM keyed k
        ), ins AS (
            INSERT INTO {s}.jobs (name, queue, args, state, priority, max_attempts, run_at,
                                  recurring_id, scheduled_for, timeout_us, backoff,
                                  trace_context, unique_key, unique_states, parent_id,
                                  continue_on, input_arg, batch_id, limit_key, limit_running)
            SELECT name, queue,
                   -- One fed by a parent that has already succeeded runs on its output now.
                   CASE WHEN continuation = 'run' AND input_arg IS NOT NULL
                        THEN args::jsonb || jsonb_build_object(input_arg, coalesce(parent_output, 'null'::jsonb))
                        ELSE args::jsonb END,
                   CASE WHEN continuation = 'awaiting' THEN 'awaiting'
                        WHEN run_at > now() THEN 'scheduled' ELSE 'enqueued' END,
                   priority, max_attempts, run_at, recurring_id, scheduled_for,
                   timeout_us, backoff::jsonb, trace_context::jsonb, unique_key,
                   CASE WHEN unique_key IS NULL THEN NULL ELSE unique_states END,
                   parent_id, continue_on, input_arg, batch_id, limit_key, limit_running
            FROM firsts
            WHERE first_ord = ord
              AND NOT EXISTS (SELECT 1 FROM keyed WHERE continuation IN ('missing', 'refused'))
            ORDER BY ord
            ON CONFLICT (unique_key) WHERE {held}
                DO UPDATE SET unique_key = EXCLUDED.unique_key
            RETURNING id, state, attempt, unique_key, xmax = 0 AS inserted
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt)
            SELECT id, now(), state, attempt FROM ins WHERE inserted
        ), plain_ids AS (
            SELECT id, row_number() OVER (ORDER BY id) AS rank FROM ins WHERE unique_key IS NULL
        ), plain_input AS (
            SELECT ord, row_number() OVER (ORDER BY ord) AS rank FROM firsts WHERE unique_key IS NULL
        )
        SELECT coalesce(p.id, k.id) AS id,
               coalesce(NOT k.inserted OR f.ord <> f.first_ord, false) AS duplicate,
               f.continuation, f.parent_id, f.parent_state
        FROM firsts f
        LEFT JOIN plain_input pi ON pi.ord = f.ord
        LEFT JOIN plain_ids p ON p.rank = pi.rank
        LEFT JOIN ins k ON f.unique_key IS NOT NULL AND k.unique_key = f.unique_key
        {wake}
        ORDER BY f.ord"
    )
}

/// Inserts already serialized jobs in one statement on `executor`; what
/// became of each, in order. The caller wakes servers as `wake` says.
pub(crate) async fn insert<'e>(
    db: &Db,
    sql: &Statements,
    executor: impl PgExecutor<'e>,
    jobs: Vec<NewJob>,
    wake: Wake,
) -> StoreResult<Vec<Inserted>> {
    insert_into(db, sql, executor, jobs, wake, None).await
}

/// [`insert`], the jobs members of `batch` if it is given (its row exists:
/// the caller inserted it in the same transaction).
pub(crate) async fn insert_into<'e>(
    db: &Db,
    sql: &Statements,
    executor: impl PgExecutor<'e>,
    jobs: Vec<NewJob>,
    wake: Wake,
    batch: Option<BatchId>,
) -> StoreResult<Vec<Inserted>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let n = jobs.len();
    // The full statement when a job is unique, a continuation, a member
    // or has a key limit.
    let full = batch.is_some()
        || jobs
            .iter()
            .any(|job| job.unique.is_some() || job.after.is_some() || job.limit_key.is_some());
    let mut limit_keys: Vec<Option<String>> = Vec::new();
    let mut limit_running: Vec<Option<i32>> = Vec::new();
    let mut unique_keys: Vec<Option<String>> = Vec::new();
    let mut parents: Vec<Option<i64>> = Vec::new();
    let mut continue_on: Vec<Option<&'static str>> = Vec::new();
    let mut inputs: Vec<Option<String>> = Vec::new();
    let mut unique_periods: Vec<Option<i64>> = Vec::new();
    let mut unique_states: Vec<Option<i16>> = Vec::new();
    let mut names = Vec::with_capacity(n);
    let mut queues = Vec::with_capacity(n);
    let mut args = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut max_attempts = Vec::with_capacity(n);
    let mut run_at_abs: Vec<Option<Timestamp>> = Vec::with_capacity(n);
    let mut delays: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut recurring_ids: Vec<Option<String>> = Vec::with_capacity(n);
    let mut ticks: Vec<Option<Timestamp>> = Vec::with_capacity(n);
    let mut timeouts: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut backoffs: Vec<Option<String>> = Vec::with_capacity(n);
    let mut trace_contexts: Vec<Option<String>> = Vec::with_capacity(n);
    for job in jobs {
        let json = serde_json::to_string(&job.args).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "the arguments of job `{}` cannot be stored as JSON",
                    job.name
                ),
            )
            .with_source(e)
        })?;
        db.check_args_size(&job.name, json.len())?;
        let (at, delay) = match job.run_at {
            RunAt::At(at) => (Some(at), None),
            RunAt::After(delay) => (None, Some(micros(delay))),
            _ => (None, Some(0)),
        };
        timeouts.push(job.timeout.map(micros));
        backoffs.push(backoff_json(job.backoff)?);
        trace_contexts.push(job.trace_context.as_ref().map(trace_context_json));
        if full {
            if let Some(limit) = &job.limit_key {
                limit.check()?;
            }
            limit_running.push(
                job.limit_key
                    .as_ref()
                    .map(|l| i32::try_from(l.running).unwrap_or(i32::MAX)),
            );
            limit_keys.push(job.limit_key.map(|l| l.key));
            parents.push(job.after.as_ref().map(|after| after.parent.0));
            continue_on.push(job.after.as_ref().map(|after| after.on.as_str()));
            inputs.push(job.after.as_ref().and_then(|after| after.input.clone()));
            unique_periods.push(job.unique.as_ref().and_then(|u| u.period_micros()));
            unique_states.push(job.unique.as_ref().map(|u| u.held_after.bits()));
            unique_keys.push(job.unique.map(|u| u.key));
        }
        names.push(job.name);
        queues.push(job.queue);
        args.push(json);
        priorities.push(job.priority);
        max_attempts.push(job.max_attempts);
        run_at_abs.push(at);
        delays.push(delay);
        match job.recurring {
            Some(origin) => {
                recurring_ids.push(Some(origin.id));
                ticks.push(Some(origin.scheduled_for));
            }
            None => {
                recurring_ids.push(None);
                ticks.push(None);
            }
        }
    }
    let mut query = match (full, n, wake) {
        (true, _, Wake::AtCommit) => sqlx::query(&sql.insert_full_notify),
        (true, _, Wake::Afterwards) => sqlx::query(&sql.insert_full),
        (false, 1, Wake::AtCommit) => sqlx::query(&sql.insert_one_notify),
        (false, 1, Wake::Afterwards) => sqlx::query(&sql.insert_one),
        (false, _, Wake::AtCommit) => sqlx::query(&sql.insert_notify),
        (false, _, Wake::Afterwards) => sqlx::query(&sql.insert),
    };
    query = if n == 1 && !full {
        fn only<T>(column: Vec<T>) -> Option<T> {
            column.into_iter().next()
        }
        query
            .bind(only(names))
            .bind(only(queues))
            .bind(only(args))
            .bind(only(priorities))
            .bind(only(max_attempts))
            .bind(only(run_at_abs).flatten())
            .bind(only(delays).flatten())
            .bind(only(recurring_ids).flatten())
            .bind(only(ticks).flatten())
            .bind(only(timeouts).flatten())
            .bind(only(backoffs).flatten())
            .bind(only(trace_contexts).flatten())
    } else {
        query
            .bind(names)
            .bind(queues)
            .bind(args)
            .bind(priorities)
            .bind(max_attempts)
            .bind(run_at_abs)
            .bind(delays)
            .bind(recurring_ids)
            .bind(ticks)
            .bind(timeouts)
            .bind(backoffs)
            .bind(trace_contexts)
    };
    if full {
        query = query
            .bind(unique_keys)
            .bind(unique_periods)
            .bind(unique_states)
            .bind(parents)
            .bind(continue_on)
            .bind(inputs)
            .bind(vec![batch.map(|b| b.0); n])
            .bind(limit_keys)
            .bind(limit_running);
    }
    if let Wake::AtCommit = wake {
        query = query.bind(db.channel());
    }
    let rows = query.fetch_all(executor).await.map_err(insert_error)?;
    if full {
        refused_continuation(&rows)?;
    }
    let read = |row: &sqlx::postgres::PgRow| -> Result<Inserted, sqlx::Error> {
        let id = JobId(row.try_get::<i64, _>(0)?);
        Ok(if full && row.try_get::<bool, _>(1)? {
            Inserted::duplicate_of(id)
        } else {
            Inserted::new(id)
        })
    };
    let inserted = rows
        .iter()
        .map(read)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| store_error("reading inserted ids", e))?;
    if inserted.len() != n {
        return Err(StoreError::new(
            StoreErrorKind::Other,
            format!(
                "postgres: inserting {n} jobs returned {} ids",
                inserted.len()
            ),
        ));
    }
    Ok(inserted)
}

/// The error of a batch that inserted nothing because a continuation's
/// parent does not exist, or has ended so that it could never run.
fn refused_continuation(rows: &[sqlx::postgres::PgRow]) -> StoreResult<()> {
    for row in rows {
        let read = || -> Result<_, sqlx::Error> {
            Ok((
                row.try_get::<Option<String>, _>("continuation")?,
                row.try_get::<Option<i64>, _>("parent_id")?,
                row.try_get::<Option<String>, _>("parent_state")?,
            ))
        };
        let (continuation, parent, parent_state) =
            read().map_err(|e| store_error("reading inserted jobs", e))?;
        let (Some(continuation), Some(parent)) = (continuation, parent) else {
            continue;
        };
        let after = After::new(JobId(parent), ContinueOn::Success);
        match continuation.as_str() {
            "missing" => {
                return Err(StoreError::new(
                    StoreErrorKind::NotFound,
                    format!("job {parent} does not exist, so nothing can run after it"),
                ))
            }
            "refused" => {
                let state: JobState = parent_state
                    .as_deref()
                    .unwrap_or("deleted")
                    .parse()
                    .map_err(|e: jobs_core::UnknownState| {
                        StoreError::new(StoreErrorKind::Other, format!("postgres: {e}"))
                    })?;
                after.waits_for(state)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn insert_error(error: sqlx::Error) -> StoreError {
    let unique =
        matches!(&error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"));
    if unique {
        StoreError::new(
            StoreErrorKind::Conflict,
            "postgres: this recurring tick is already enqueued",
        )
        .with_source(error)
    } else {
        store_error("inserting jobs", error)
    }
}

/// `Store::job_insert_many`: through the store's pool.
pub(crate) async fn insert_many(
    db: &Db,
    sql: &Statements,
    jobs: Vec<NewJob>,
) -> StoreResult<Vec<Inserted>> {
    let inserted = insert(db, sql, db.pool(), jobs, Wake::Afterwards).await?;
    if inserted.iter().any(|i| !i.duplicate) {
        // Our own servers need not wait for the NOTIFY round trip.
        db.wake();
        db.notify_others();
    }
    Ok(inserted)
}

// ---- complete

/// $1 ids, $2 tokens, $3 new states, $4 errors (for the history), $5 delays
/// in µs (NULL: keep run_at), $6 attempt deltas, $7 whether the error
/// becomes last_error, $8 the server, $9 the NOTIFY channel. Fenced: only
/// the current claim of a running job is applied. A job made runnable at
/// once wakes the servers of every process. The rows are locked in id order
/// first (see [`locked_cte`]), as the renewal locks them.
///
/// `with_output`: $10 the outputs (JSON text, NULL for none) of succeeded
/// attempts, used only when a batch has one, so that completions of jobs
/// without output pay nothing for the column.
fn complete_sql(s: &str, with_output: bool) -> String {
    let counted = counted_cte(s, "SELECT queue, state, 1 AS d, batch_id FROM upd");
    let locked = locked_cte(s, "input i");
    let cancels = "(i.new_state = 'enqueued' AND j.cancel_requested)";
    let (input, output) = if with_output {
        (
            "SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int8[],
                                 $6::int4[], $7::bool[], $10::text[])
                   AS t(id, token, new_state, error, delay_us, attempt_delta, set_error, output)",
            "output = CASE WHEN i.new_state = 'succeeded' THEN i.output::jsonb ELSE j.output END,",
        )
    } else {
        (
            "SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int8[],
                                 $6::int4[], $7::bool[])
                   AS t(id, token, new_state, error, delay_us, attempt_delta, set_error)",
            "",
        )
    };
    format!(
        "WITH input AS (
            {input}
        ), {locked}, upd AS (
            -- A cancel requested meanwhile outlives a hand-back (the
            -- only outcome that makes a job `enqueued`), as it outlives
            -- a rescue. SET expressions read the old row.
            UPDATE {s}.jobs j
            SET state = CASE WHEN {cancels} THEN 'cancelled' ELSE i.new_state END,
                run_at = CASE WHEN i.delay_us IS NULL OR {cancels} THEN j.run_at
                              ELSE now() + i.delay_us * interval '1 microsecond' END,
                attempt = greatest(j.attempt + i.attempt_delta, 0),
                finished_at = CASE WHEN i.new_state IN {FINISHED} OR {cancels} THEN now()
                                   ELSE j.finished_at END,
                last_error = CASE WHEN i.set_error THEN i.error ELSE j.last_error END,
                {output}
                server_id = NULL,
                lease_expires_at = NULL,
                cancel_requested = false
            FROM locked i
            WHERE j.id = i.id AND j.claim_token = i.token AND j.state = 'processing'
            RETURNING j.id, j.claim_token, j.queue, j.state, j.attempt, j.run_at,
                      j.has_continuations, j.batch_id, j.limit_key,
                      CASE WHEN j.state = 'cancelled' AND i.new_state = 'enqueued'
                           THEN 'cancelled by a user; ' || i.error ELSE i.error END AS error
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, server_id, error)
            SELECT id, now(), state, attempt, $8, error FROM upd
        ), {counted}, notified AS (
            SELECT pg_notify($9, '') FROM (
                SELECT 1 FROM upd WHERE state IN ('enqueued', 'scheduled') AND run_at <= now() LIMIT 1
            ) AS runnable
        )
        SELECT id, claim_token, (SELECT count(*) FROM notified) AS notified,
               has_continuations AND state IN {FINISHED} AS release,
               limit_key IS NOT NULL AS keyed,
               (SELECT count(*) FROM batched WHERE pending = 0) AS batches_ended
        FROM upd"
    )
}

/// $1 the ids of jobs with a key limit that a completion ended: gives
/// back their key places, after the completion's commit (so that a
/// completion of jobs without keys pays nothing for them). Only places
/// whose job no longer runs: if a job was claimed again meanwhile, the
/// place its new claim took stays (the rescuer's sweep argues why a
/// snapshot cannot mistake it). Until this runs, the key counts the job:
/// it can only run below its limit, never above.
fn free_places_sql(s: &str) -> String {
    format!(
        "DELETE FROM {s}.key_places k
        WHERE k.job_id = ANY($1::int8[])
          AND NOT EXISTS (SELECT 1 FROM {s}.jobs j
                          WHERE j.id = k.job_id AND j.state = 'processing')"
    )
}

pub(crate) async fn complete_many(
    db: &Db,
    sql: &Statements,
    p: JobCompleteManyParams,
) -> StoreResult<Vec<bool>> {
    let n = p.completions.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    // A claim named twice is applied once: the first time.
    let mut first = HashSet::with_capacity(n);
    let mut is_first = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut tokens = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut delays = Vec::with_capacity(n);
    let mut deltas = Vec::with_capacity(n);
    let mut set_errors = Vec::with_capacity(n);
    let mut outputs: Vec<Option<String>> = Vec::new();
    let with_output = p
        .completions
        .iter()
        .any(|c| c.output.is_some() && c.outcome == JobOutcome::Succeeded);
    for completion in p.completions {
        let claim = completion.claim;
        let fresh = first.insert(claim.job_id);
        is_first.push((claim, fresh));
        if !fresh {
            continue;
        }
        if with_output {
            let output = completion
                .output
                .filter(|_| completion.outcome == JobOutcome::Succeeded)
                .map(|output| serde_json::to_string(&output))
                .transpose()
                .map_err(|e| store_error_json("a job's output", e))?;
            outputs.push(output);
        }
        let (state, error, delay, delta, set_error) = outcome_columns(completion.outcome)?;
        ids.push(claim.job_id.0);
        tokens.push(claim.token);
        states.push(state);
        errors.push(error);
        delays.push(delay);
        deltas.push(delta);
        set_errors.push(set_error);
    }
    let statement = if with_output {
        &sql.complete_output
    } else {
        &sql.complete
    };
    let mut query = sqlx::query(statement)
        .bind(ids)
        .bind(tokens)
        .bind(states)
        .bind(errors)
        .bind(delays)
        .bind(deltas)
        .bind(set_errors)
        .bind(p.server_id.0)
        .bind(db.channel());
    if with_output {
        query = query.bind(outputs);
    }
    let rows = query
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("completing jobs", e))?;
    let mut applied = HashSet::with_capacity(rows.len());
    let mut runnable = false;
    let mut parents = Vec::new();
    let mut batches = false;
    let mut keyed = Vec::new();
    for row in &rows {
        let read = || -> Result<_, sqlx::Error> {
            Ok((
                row.try_get::<i64, _>("id")?,
                row.try_get::<i64, _>("claim_token")?,
                row.try_get::<i64, _>("notified")?,
                row.try_get::<bool, _>("release")?,
                row.try_get::<i64, _>("batches_ended")?,
                row.try_get::<bool, _>("keyed")?,
            ))
        };
        let (id, token, notified, release, batches_ended, has_key) =
            read().map_err(|e| store_error("reading completions", e))?;
        applied.insert((id, token));
        runnable |= notified > 0;
        if release {
            parents.push(id);
        }
        if has_key {
            keyed.push(id);
        }
        batches |= batches_ended > 0;
    }
    if !keyed.is_empty() {
        // The completions have committed: a failure here must not report
        // them as failed. The places stay taken until the rescuer's sweep.
        match sqlx::query(&sql.free_places)
            .bind(keyed)
            .execute(db.pool())
            .await
        {
            // The jobs waiting for those keys can run now.
            Ok(_) => runnable = true,
            Err(error) => tracing::warn!(
                %error,
                "giving back the key places of completed jobs failed; the rescuer's sweep will"
            ),
        }
    }
    // After the completion's commit, in a statement of its own: it sees
    // every continuation whose insert the completion waited for.
    if !parents.is_empty() || batches {
        release_pooled(db, &sql.release, Some(parents), batches).await?;
    }
    if runnable {
        db.wake();
    }
    Ok(is_first
        .into_iter()
        .map(|(claim, fresh)| fresh && applied.contains(&(claim.job_id.0, claim.token)))
        .collect())
}

fn store_error_json(what: &str, error: serde_json::Error) -> StoreError {
    StoreError::new(
        StoreErrorKind::Invalid,
        format!("postgres: {what} cannot be stored as JSON"),
    )
    .with_source(error)
}

/// The two release statements: of continuations whose parent ended
/// (`sql::release_sql`), and of callbacks of batches that ended
/// (`batches::release_sql`).
#[derive(Debug)]
pub(crate) struct ReleaseStatements {
    continuations: String,
    batches: String,
}

impl ReleaseStatements {
    pub(crate) fn new(s: &str) -> Self {
        Self {
            continuations: release_sql(s),
            batches: crate::jobs::batches::release_sql(s),
        }
    }
}

/// Releases what jobs that ended were holding back, on `conn`: the
/// continuations of `parents` (`None`: of every parent that has ended;
/// empty: none),
/// and, when `batches`, the callbacks of every batch that has ended; how
/// many continuations and batches. The statements notify other processes
/// themselves; this process's servers are woken here.
///
/// A continuation or callback cancelled because what it waited for did not
/// succeed ends too: its own continuations are released next, and a batch
/// it was a member of may have ended with it, down the chain, one
/// statement per step.
pub(crate) async fn release(
    db: &Db,
    sql: &ReleaseStatements,
    conn: &mut PgConnection,
    parents: Option<Vec<i64>>,
    batches: bool,
) -> StoreResult<u64> {
    let fail = |e| store_error("releasing continuations", e);
    // `None`: a sweep of every parent; none at all, nothing to release.
    let mut sweep_parents = parents.is_none();
    let mut parents = parents.filter(|p| !p.is_empty());
    let mut batches = batches;
    let mut total = 0;
    while sweep_parents || parents.is_some() || batches {
        if sweep_parents || parents.is_some() {
            let row = sqlx::query(&sql.continuations)
                .bind(parents.take())
                .bind(db.channel())
                .fetch_one(&mut *conn)
                .await
                .map_err(fail)?;
            sweep_parents = false;
            let read = || -> Result<(i64, i64, Vec<i64>, bool), sqlx::Error> {
                Ok((
                    row.try_get("released")?,
                    row.try_get("runnable")?,
                    row.try_get("ended_parents")?,
                    row.try_get("batch_end")?,
                ))
            };
            let (released, runnable, ended, batch_end) = read().map_err(fail)?;
            if runnable > 0 {
                db.wake();
            }
            total += released.unsigned_abs();
            parents = (!ended.is_empty()).then_some(ended);
            batches |= batch_end;
        }
        if batches {
            let row = sqlx::query(&sql.batches)
                .bind(db.channel())
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| store_error("releasing the callbacks of batches", e))?;
            let read = || -> Result<(i64, i64, Vec<i64>), sqlx::Error> {
                Ok((
                    row.try_get("ended")?,
                    row.try_get("runnable")?,
                    row.try_get("ended_parents")?,
                ))
            };
            let (ended, runnable, ended_parents) =
                read().map_err(|e| store_error("releasing the callbacks of batches", e))?;
            if runnable > 0 {
                db.wake();
            }
            total += ended.unsigned_abs();
            // More batches are due than one statement releases.
            batches = ended >= 1000;
            if !ended_parents.is_empty() {
                let mut all = parents.take().unwrap_or_default();
                all.extend(ended_parents);
                parents = Some(all);
            }
        }
    }
    Ok(total)
}

/// [`release`] on a connection of the store's pool.
pub(crate) async fn release_pooled(
    db: &Db,
    sql: &ReleaseStatements,
    parents: Option<Vec<i64>>,
    batches: bool,
) -> StoreResult<u64> {
    let mut conn = db
        .pool()
        .acquire()
        .await
        .map_err(|e| store_error("releasing continuations", e))?;
    release(db, sql, &mut conn, parents, batches).await
}

/// `Store::job_release_awaiting`: every continuation whose parent ended,
/// and every callback of a batch that ended.
pub(crate) async fn release_all(db: &Db, sql: &Statements) -> StoreResult<u64> {
    release_pooled(db, &sql.release, None, true).await
}

/// How one outcome is written: new state, history error, delay in µs (`None`:
/// keep `run_at`), attempt delta, whether the error becomes `last_error`.
type OutcomeColumns = (&'static str, Option<String>, Option<i64>, i32, bool);

fn outcome_columns(outcome: JobOutcome) -> StoreResult<OutcomeColumns> {
    Ok(match outcome {
        JobOutcome::Succeeded => ("succeeded", None, None, 0, false),
        JobOutcome::Retry { error, after } => {
            ("scheduled", Some(error), Some(micros(after)), 0, true)
        }
        JobOutcome::Failed { error } => ("failed", Some(error), None, 0, true),
        // The attempt is not counted.
        JobOutcome::Snooze { after } => ("scheduled", None, Some(micros(after)), -1, false),
        JobOutcome::Cancelled { reason } => ("cancelled", Some(reason), None, 0, false),
        // Runnable again at once, the attempt not counted.
        JobOutcome::Released { reason } => ("enqueued", Some(reason), Some(0), -1, false),
        other => {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!("postgres: unsupported job outcome {other:?}"),
            ))
        }
    })
}

// ---- complete in the application's transaction

/// $1 id, $2 claim token. Succeeds the running attempt of job `$1` on the
/// caller's connection (inside its transaction); the row lock it takes is
/// held until that transaction ends, so the server's own writes about the
/// job wait for its outcome. The old server is kept for the history event.
fn complete_in_sql(s: &str) -> String {
    let counted = counted_cte(s, "SELECT queue, state, 1 AS d, batch_id FROM upd");
    let places_freed = places_freed_cte(s);
    format!(
        "WITH old AS (
            SELECT id, server_id FROM {s}.jobs
            WHERE id = $1 AND claim_token = $2 AND state = 'processing'
            FOR UPDATE
        ), upd AS (
            UPDATE {s}.jobs j
            SET state = 'succeeded', finished_at = now(), server_id = NULL,
                lease_expires_at = NULL, cancel_requested = false
            FROM old
            WHERE j.id = old.id
            RETURNING j.id, j.queue, j.state, j.attempt, j.batch_id, j.limit_key,
                      old.server_id AS old_server
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, server_id)
            SELECT id, now(), state, attempt, old_server FROM upd
        ), {places_freed}, {counted}
        SELECT count(*)::bigint FROM upd"
    )
}

/// `PgStore::complete_in`.
pub(crate) async fn complete_in(
    db: &Db,
    sql: &Statements,
    conn: &mut PgConnection,
    ctx: &JobContext,
) -> StoreResult<()> {
    let applied: i64 = sqlx::query_scalar(&sql.complete_in)
        .bind(ctx.id().0)
        .bind(ctx.claim().token)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| store_error("completing a job in a transaction", e))?;
    if applied == 1 {
        // In the same transaction: its continuations (and its batch's
        // callback, if it was the batch's last member) are released with it.
        release(db, &sql.release, conn, Some(vec![ctx.id().0]), true).await?;
        Ok(())
    } else {
        Err(conflict(format!(
            "job {} is no longer running attempt {} (its lease expired, or it was \
             cancelled or finished); roll the transaction back",
            ctx.id(),
            ctx.attempt()
        )))
    }
}

// ---- progress

/// $1 ids, $2 tokens, $3 progress (JSON text). Fenced like a completion,
/// and its rows locked in id order first like one (see [`locked_cte`]).
fn progress_sql(s: &str) -> String {
    let locked = locked_cte(
        s,
        "unnest($1::int8[], $2::int8[], $3::text[]) AS i(id, token, progress)",
    );
    format!(
        "WITH {locked}
         UPDATE {s}.jobs j
         SET progress = i.progress::jsonb
         FROM locked i
         WHERE j.id = i.id AND j.claim_token = i.token AND j.state = 'processing'
         RETURNING j.id, j.claim_token"
    )
}

pub(crate) async fn progress_many(
    db: &Db,
    sql: &Statements,
    p: JobProgressManyParams,
) -> StoreResult<Vec<bool>> {
    if p.updates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = p.updates.iter().map(|(c, _)| c.job_id.0).collect();
    let tokens: Vec<i64> = p.updates.iter().map(|(c, _)| c.token).collect();
    let progress: Vec<String> = p.updates.iter().map(|(_, v)| v.to_string()).collect();
    let rows = sqlx::query(&sql.progress)
        .bind(ids)
        .bind(tokens)
        .bind(progress)
        .fetch_all(db.pool())
        .await
        .map_err(|e| store_error("writing job progress", e))?;
    let mut applied = HashSet::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row
            .try_get(0)
            .map_err(|e| store_error("reading progress", e))?;
        let token: i64 = row
            .try_get(1)
            .map_err(|e| store_error("reading progress", e))?;
        applied.insert((id, token));
    }
    Ok(p.updates
        .iter()
        .map(|(c, _)| applied.contains(&(c.job_id.0, c.token)))
        .collect())
}
