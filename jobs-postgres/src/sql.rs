//! What the statements of several entities share: the columns of a job, the
//! finished states, the CTE that maintains the finished-job counters, and
//! the conversion of durations to the microseconds the statements take.
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

/// The columns of a job, in the order `jobs::job_row` reads them.
pub(crate) const JOB_COLUMNS: &str = "id, name, queue, args, state, priority, attempt, \
     max_attempts, run_at, created_at, finished_at, claim_token, server_id, lease_expires_at, \
     cancel_requested, last_error, recurring_id, scheduled_for, progress";

/// [`JOB_COLUMNS`] qualified by `alias`.
pub(crate) fn job_columns_of(alias: &str) -> String {
    JOB_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The finished states, as a SQL list.
pub(crate) const FINISHED: &str = "('succeeded', 'failed', 'cancelled', 'deleted')";

/// A CTE named `counted` that adds the deltas of `source` (rows of `queue`,
/// `state`, `d`) to the finished-job counters. Every statement that moves a
/// job into or out of a finished state includes it. Unfinished states are
/// counted exactly from the table instead (their rows are few and indexed).
pub(crate) fn counted_cte(s: &str, source: &str) -> String {
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
