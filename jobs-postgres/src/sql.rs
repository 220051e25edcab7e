//! What the statements of several entities share: the columns of a job, the
//! finished states, the CTE that maintains the finished-job counters, the
//! conversion of durations to the microseconds the statements take, and the
//! stored form of a job's own timeout and backoff (jobs and recurring
//! entries both keep them).
//!
//! Each statement is written once, in the module of its entity (`jobs`,
//! `leases`, `servers`, `recurring`), beside its binds and the decoding of
//! its rows, and built once per store from the validated, quoted schema
//! name. The schema is the only thing ever spliced into SQL: every value is
//! a bound parameter, the NOTIFY channel included (it is data, not syntax,
//! and binding it keeps the rule without exception). Durations travel as
//! microseconds and are added to the database clock (`now()`), never to the
//! application's.

use std::time::Duration;

use jobs_core::{Backoff, StoreError, StoreErrorKind, StoreResult, TraceContext};
use serde_json::{json, Value};

/// The columns of a job, in the order `jobs::job_row` reads them.
pub(crate) const JOB_COLUMNS: &str = "id, name, queue, args, state, priority, attempt, \
     max_attempts, run_at, created_at, finished_at, claim_token, server_id, lease_expires_at, \
     cancel_requested, last_error, recurring_id, scheduled_for, progress, timeout_us, backoff, stuck_at, \
     trace_context, unique_key, output, parent_id, continue_on, input_arg, batch_id, limit_key, \
     limit_running";

/// The CTE `places_freed`: gives back the key places (migration 0016) of
/// the jobs of `upd` (a CTE returning `id` and `limit_key`) that left
/// `processing`, in the same statement. For the statements that end jobs
/// rarely (the rescue, a completion in the application's transaction);
/// the server's batched completions give places back after their commit
/// instead, and only when they ended keyed jobs (`run::free_places_sql`).
pub(crate) fn places_freed_cte(s: &str) -> String {
    format!(
        "places_freed AS (
            DELETE FROM {s}.key_places k
            USING (SELECT id FROM upd WHERE limit_key IS NOT NULL) f
            WHERE k.job_id = f.id
        )"
    )
}

/// [`JOB_COLUMNS`] qualified by `alias`.
pub(crate) fn job_columns_of(alias: &str) -> String {
    JOB_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A CTE named `locked`: the rows of `input` (a `FROM` item aliased `i`,
/// with at least the columns `id` and `token`) whose job is running under
/// that claim, after locking those jobs' rows in id order. Every statement
/// that changes many running jobs (renewal, batched completion, progress)
/// reads its input through it, so any two of them lock their common rows in
/// the same order and never wait on each other in a cycle. Sorting the input
/// is not enough: an `UPDATE ... FROM` locks rows in whatever order its join
/// meets them. `FOR UPDATE` sits above the sort, so rows are locked in the
/// sorted order; `MATERIALIZED` keeps the planner from folding the CTE into
/// the update's join, where the order would again be the plan's. The cost is
/// a second index lookup per row and a sort of the batch.
pub(crate) fn locked_cte(s: &str, input: &str) -> String {
    format!(
        "locked AS MATERIALIZED (
            SELECT i.* FROM {input}
            JOIN {s}.jobs j ON j.id = i.id
            WHERE j.claim_token = i.token AND j.state = 'processing'
            ORDER BY j.id
            FOR UPDATE OF j
        )"
    )
}

/// The predicate of `jobs_unique_idx` (migration 0009): which rows hold
/// their unique key, with the columns prefixed by `p` (`""` or `"h."`).
/// `ON CONFLICT` names it unprefixed to pick that index; the retries check
/// for a holder with it.
pub(crate) fn unique_held(p: &str) -> String {
    format!(
        "{p}unique_key IS NOT NULL
      AND ({p}state IN ('awaiting', 'scheduled', 'enqueued', 'processing')
           OR ({p}state = 'succeeded' AND {p}unique_states & 1 <> 0)
           OR ({p}state = 'failed' AND {p}unique_states & 2 <> 0)
           OR ({p}state = 'cancelled' AND {p}unique_states & 4 <> 0))"
    )
}

/// The finished states, as a SQL list.
pub(crate) const FINISHED: &str = "('succeeded', 'failed', 'cancelled', 'deleted')";

/// A statement that releases the continuations awaiting parents that have
/// ended: $1 the parents (NULL: every parent, the servers' sweep), $2 the
/// NOTIFY channel. A continuation whose parent ended as it asked becomes
/// `enqueued`; one on success of a parent that ended otherwise (or no
/// longer exists) is `cancelled`, with the reason in its history. Locking
/// each continuation re-reads it, so two releases of one continuation (a
/// completion's and a sweep's) change it once. Returns how many it changed
/// (`released`), how many of them became runnable (`runnable`), and the
/// cancelled ones that have continuations of their own (`ended_parents`),
/// whose release comes next.
pub(crate) fn release_sql(s: &str) -> String {
    let counted = counted_cte(s, "SELECT queue, state, 1 AS d, batch_id FROM released");
    format!(
        "WITH ended AS (
            SELECT c.id, c.continue_on, c.parent_id, c.input_arg, p.state AS parent_state,
                   p.output AS parent_output
            FROM {s}.jobs c LEFT JOIN {s}.jobs p ON p.id = c.parent_id
            WHERE c.state = 'awaiting' AND c.parent_id IS NOT NULL
              AND ($1::int8[] IS NULL OR c.parent_id = ANY($1::int8[]))
              AND (p.id IS NULL OR p.state IN {FINISHED})
            ORDER BY c.id
            FOR UPDATE OF c
        ), released AS (
            UPDATE {s}.jobs j
            SET state = CASE WHEN e.continue_on = 'any_end' OR e.parent_state = 'succeeded'
                             THEN 'enqueued' ELSE 'cancelled' END,
                run_at = CASE WHEN e.continue_on = 'any_end' OR e.parent_state = 'succeeded'
                              THEN now() ELSE j.run_at END,
                finished_at = CASE WHEN e.continue_on = 'any_end' OR e.parent_state = 'succeeded'
                                   THEN NULL ELSE now() END,
                args = CASE WHEN e.input_arg IS NOT NULL AND e.parent_state = 'succeeded'
                            THEN j.args || jsonb_build_object(e.input_arg,
                                                              coalesce(e.parent_output, 'null'::jsonb))
                            ELSE j.args END
            FROM ended e
            WHERE j.id = e.id AND j.state = 'awaiting'
            RETURNING j.id, j.queue, j.state, j.attempt, j.has_continuations, j.batch_id,
                      e.parent_id, coalesce(e.parent_state, 'deleted') AS parent_state
        ), ev AS (
            INSERT INTO {s}.job_events (job_id, at, state, attempt, error)
            SELECT id, now(), state, attempt,
                   CASE WHEN state = 'cancelled'
                        THEN format('job %s ended %s; this job was to run only after it succeeded',
                                    parent_id, parent_state)
                   END
            FROM released
        ), {counted}, notified AS (
            SELECT pg_notify($2, '') WHERE EXISTS (SELECT 1 FROM released WHERE state = 'enqueued')
        )
        SELECT count(*) AS released, count(*) FILTER (WHERE state = 'enqueued') AS runnable,
               (SELECT count(*) FROM notified) AS notified,
               coalesce(array_agg(id) FILTER (WHERE state = 'cancelled' AND has_continuations),
                        '{{}}'::bigint[]) AS ended_parents,
               coalesce(bool_or(batch_id IS NOT NULL AND state = 'cancelled'), false) AS batch_end
        FROM released"
    )
}

/// The CTEs that follow jobs moving into or out of a finished state:
/// `counted` adds the deltas of `source` (rows of `queue`, `state`, `d`,
/// `batch_id`) to the finished-job counters, `minutes` the jobs that just
/// succeeded or failed to the current minute's (migration 0013), and
/// `batched` moves batch members between their batches' counters. Every statement that changes
/// a job's state includes them (a purge, which removes finished jobs
/// without changing a batch, includes [`counted_removal_cte`] instead).
/// Unfinished states are counted exactly from the table (their rows are
/// few and indexed).
pub(crate) fn counted_cte(s: &str, source: &str) -> String {
    let counted = counted_removal_cte(s, source);
    format!(
        "{counted}, minutes AS (
            INSERT INTO {s}.job_minutes AS m (minute, state, shard, n)
            SELECT date_trunc('minute', now()), state, (pg_backend_pid() % 8)::smallint,
                   sum(d)::bigint
            FROM ({source}) AS delta
            WHERE state IN ('succeeded', 'failed') AND d > 0
            GROUP BY state
            ORDER BY state
            ON CONFLICT (minute, state, shard) DO UPDATE SET n = m.n + EXCLUDED.n
        ), batch_delta AS (
            SELECT batch_id, sum(d) AS ended,
                   coalesce(sum(d) FILTER (WHERE state = 'succeeded'), 0) AS succeeded,
                   coalesce(sum(d) FILTER (WHERE state = 'failed'), 0) AS failed,
                   coalesce(sum(d) FILTER (WHERE state IN ('cancelled', 'deleted')), 0) AS cancelled
            FROM ({source}) AS delta
            WHERE batch_id IS NOT NULL AND state IN {FINISHED}
            GROUP BY batch_id
        ), batch_locked AS MATERIALIZED (
            -- In id order, as `locked` does for jobs: two statements that
            -- end members of the same batches never wait on each other in
            -- a cycle.
            SELECT b.id FROM {s}.batches b JOIN batch_delta d ON d.batch_id = b.id
            ORDER BY b.id
            FOR UPDATE OF b
        ), batched AS (
            -- A batch that has members pending again (one retried by hand)
            -- is no longer finished; one whose last member just ended is
            -- left for `release_batches_sql`, after this commit.
            UPDATE {s}.batches b
            SET pending = b.pending - d.ended,
                succeeded = b.succeeded + d.succeeded,
                failed = b.failed + d.failed,
                cancelled = b.cancelled + d.cancelled,
                finished_at = CASE WHEN b.pending - d.ended > 0 THEN NULL ELSE b.finished_at END
            FROM batch_delta d
            WHERE b.id = d.batch_id AND b.id IN (SELECT id FROM batch_locked)
            RETURNING b.id, b.pending
        )"
    )
}

/// A CTE named `counted` that adds the deltas of `source` (rows of `queue`,
/// `state`, `d`) to the finished-job counters, and touches no batch: for
/// the purge of finished jobs.
pub(crate) fn counted_removal_cte(s: &str, source: &str) -> String {
    format!(
        "counted AS (
            INSERT INTO {s}.job_counts AS c (queue, state, shard, n)
            SELECT queue, state, (pg_backend_pid() % 8)::smallint, sum(d)::bigint
            FROM ({source}) AS delta
            WHERE state IN {FINISHED}
            GROUP BY queue, state
            ORDER BY queue, state
            ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n
        )"
    )
}

/// The longest duration the store passes to the database (1,000 years):
/// longer delays and ages are clamped to it, and mean "never".
const MAX_MICROS: i64 = 1_000 * 366 * 24 * 3600 * 1_000_000;

/// A duration as the microseconds a statement takes.
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).map_or(MAX_MICROS, |us| us.min(MAX_MICROS))
}

/// A stored timeout (µs) as a duration; a negative one, which no build
/// writes, counts as zero.
pub(crate) fn duration_of_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// A backoff as the JSON text of the `backoff` columns (see migration 0004).
pub(crate) fn backoff_json(backoff: Option<Backoff>) -> StoreResult<Option<String>> {
    let value = match backoff {
        None => return Ok(None),
        Some(Backoff::Fixed(delay)) => json!({ "fixed_us": micros(delay) }),
        Some(Backoff::Exponential {
            base,
            max,
            jitter_per_mille,
        }) => json!({ "exponential": {
            "base_us": micros(base),
            "max_us": micros(max),
            "jitter_per_mille": jitter_per_mille,
        }}),
        Some(other) => {
            return Err(StoreError::new(
                StoreErrorKind::Invalid,
                format!(
                    "postgres: this build cannot store the backoff {other:?}; \
                     use jobs-postgres from the same release as jobs-core"
                ),
            ))
        }
    };
    Ok(Some(value.to_string()))
}

/// The backoff stored by [`backoff_json`].
/// A trace context as the JSON text of the `trace_context` column.
pub(crate) fn trace_context_json(context: &TraceContext) -> String {
    // A map of strings always serializes.
    serde_json::to_string(context).unwrap_or_default()
}

/// A stored trace context; one that is not an object of strings, which no
/// build writes, is dropped: a trace must never keep a job from running.
pub(crate) fn trace_context_of(value: Option<Value>) -> Option<TraceContext> {
    serde_json::from_value(value?).ok()
}

pub(crate) fn backoff_of(value: Option<Value>) -> Result<Option<Backoff>, sqlx::Error> {
    let Some(value) = value else {
        return Ok(None);
    };
    let micros_at =
        |v: &Value, key: &str| v.get(key).and_then(Value::as_i64).map(duration_of_micros);
    let backoff = if let Some(delay) = micros_at(&value, "fixed_us") {
        Some(Backoff::fixed(delay))
    } else if let Some(e) = value.get("exponential") {
        let jitter = e
            .get("jitter_per_mille")
            .and_then(Value::as_u64)
            .and_then(|j| u16::try_from(j).ok());
        match (micros_at(e, "base_us"), micros_at(e, "max_us"), jitter) {
            (Some(base), Some(max), Some(jitter_per_mille)) => Some(Backoff::Exponential {
                base,
                max,
                jitter_per_mille,
            }),
            _ => None,
        }
    } else {
        None
    };
    backoff.map(Some).ok_or_else(|| {
        sqlx::Error::Decode(
            format!("a stored backoff has an unknown form: {value}; a newer build wrote it").into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backoff_round_trips_through_its_stored_form() {
        let backoffs = [
            Backoff::fixed(Duration::from_millis(1500)),
            Backoff::Exponential {
                base: Duration::from_micros(1),
                max: Duration::from_secs(3600),
                jitter_per_mille: 1000,
            },
        ];
        for backoff in backoffs {
            let text = backoff_json(Some(backoff)).unwrap().unwrap();
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(backoff_of(Some(value)).unwrap(), Some(backoff), "{text}");
        }
        assert_eq!(backoff_json(None).unwrap(), None);
        assert_eq!(backoff_of(None).unwrap(), None);
    }

    #[test]
    fn an_unknown_stored_backoff_is_a_decode_error() {
        let error = backoff_of(Some(json!({ "linear_us": 5 }))).unwrap_err();
        assert!(error.to_string().contains("unknown form"), "{error}");
    }
}
