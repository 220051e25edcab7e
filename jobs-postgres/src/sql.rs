//! Every statement the store runs, built once per store from the validated,
//! quoted schema name. Nothing else is ever spliced into SQL: every value is
//! a bound parameter. Durations travel as microseconds and are added to the
//! database clock (`now()`), never to the application's.

use crate::options::Schema;

/// The columns of a job, in the order `rows::job_row` reads them.
pub(crate) const JOB_COLUMNS: &str = "id, name, queue, args, state, priority, attempt, \
     max_attempts, run_at, created_at, finished_at, claim_token, server_id, lease_expires_at, \
     cancel_requested, last_error, recurring_id, scheduled_for, progress";

/// The same columns qualified by the alias `j`.
fn job_columns_of(alias: &str) -> String {
    JOB_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const FINISHED: &str = "('succeeded', 'failed', 'cancelled', 'deleted')";

/// A CTE named `counted` that adds the deltas of `source` (rows of `queue`,
/// `state`, `d`) to the finished-job counters. Unfinished states are counted
/// exactly from the table instead (their rows are few and indexed).
fn counted_cte(s: &str, source: &str) -> String {
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

/// The statements of one store.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) insert: String,
    pub(crate) insert_notify: String,
    /// One job, its columns as scalars.
    pub(crate) insert_one: String,
    pub(crate) insert_one_notify: String,
    pub(crate) claim: String,
    pub(crate) complete: String,
    /// Succeeds one running job inside the caller's transaction.
    pub(crate) complete_in: String,
    pub(crate) renew: String,
    pub(crate) progress: String,
    pub(crate) rescue: String,
    /// A job with its history, in one statement.
    pub(crate) get_job: String,
    /// Indexed by `state filter? * 2 + queue filter?`.
    pub(crate) list: [String; 4],
    pub(crate) count: String,
    pub(crate) retry: String,
    pub(crate) cancel: String,
    pub(crate) delete: String,
    pub(crate) prune: String,
    pub(crate) heartbeat: String,
    pub(crate) server_list: String,
    pub(crate) server_remove: String,
}

impl Queries {
    pub(crate) fn new(schema: &Schema) -> Self {
        let s = &schema.quoted();
        let channel = schema.channel();
        let cols = JOB_COLUMNS;
        let j_cols = job_columns_of("j");

        // $1 names, $2 queues, $3 args (JSON text), $4 priorities,
        // $5 max attempts, $6 absolute run times, $7 delays in µs,
        // $8 recurring ids, $9 recurring ticks. One row per job; ids come back
        // in input order because they are drawn in `ord` order.
        let many =
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::int4[],
                                  $6::timestamptz[], $7::int8[], $8::text[], $9::timestamptz[])
                     WITH ORDINALITY
                     AS t(name, queue, args, priority, max_attempts, run_at_abs, delay_us,
                          recurring_id, scheduled_for, ord)";
        // The same parameters as scalars: a single enqueue (the common case)
        // costs the database about a tenth less without the arrays.
        let one = "SELECT $1::text AS name, $2::text AS queue, $3::text AS args,
                          $4::int2 AS priority, $5::int4 AS max_attempts,
                          $6::timestamptz AS run_at_abs, $7::int8 AS delay_us,
                          $8::text AS recurring_id, $9::timestamptz AS scheduled_for,
                          1::int8 AS ord";
        let insert_from = |input: &str| {
            format!(
                "WITH input AS (
                    SELECT t.*, coalesce(t.run_at_abs, now() + t.delay_us * interval '1 microsecond') AS run_at
                    FROM ({input}) AS t
                ), ins AS (
                    INSERT INTO {s}.jobs (name, queue, args, state, priority, max_attempts, run_at,
                                          recurring_id, scheduled_for)
                    SELECT name, queue, args::jsonb,
                           CASE WHEN run_at > now() THEN 'scheduled' ELSE 'enqueued' END,
                           priority, max_attempts, run_at, recurring_id, scheduled_for
                    FROM input
                    ORDER BY ord
                    RETURNING id, state, attempt
                ), ev AS (
                    INSERT INTO {s}.job_events (job_id, at, state, attempt)
                    SELECT id, now(), state, attempt FROM ins
                )
                SELECT id FROM ins ORDER BY id"
            )
        };
        // The same in the application's transaction, plus the NOTIFY that
        // PostgreSQL delivers when (and only if) that transaction commits.
        // $10 is the channel.
        let notifying = |insert: &str| {
            insert.replace(
                "SELECT id FROM ins ORDER BY id",
                "SELECT id FROM ins CROSS JOIN (SELECT pg_notify($10, '')) AS wake ORDER BY id",
            )
        };
        let insert = insert_from(many);
        let insert_one = insert_from(one);
        let insert_notify = notifying(&insert);
        let insert_one_notify = notifying(&insert_one);

        // $1 queues in order of preference, $2 names, $3 limit, $4 server,
        // $5 lease in µs. One lateral index scan per queue, each stopping
        // after `limit` rows: with one queue (the common case) the plan is a
        // single range scan of `jobs_claim_idx` in index order.
        let claim = format!(
            "WITH picked AS (
                SELECT c.id, q.ord, c.priority, c.run_at
                FROM unnest($1::text[]) WITH ORDINALITY AS q(queue, ord)
                CROSS JOIN LATERAL (
                    SELECT j.id, j.priority, j.run_at
                    FROM {s}.jobs j
                    WHERE j.state IN ('enqueued', 'scheduled')
                      AND j.queue = q.queue
                      AND j.run_at <= now()
                      AND j.name = ANY($2::text[])
                    ORDER BY j.priority DESC, j.run_at, j.id
                    LIMIT $3
                    FOR UPDATE SKIP LOCKED
                ) c
                ORDER BY q.ord, c.priority DESC, c.run_at, c.id
                LIMIT $3
            ), claimed AS (
                UPDATE {s}.jobs j
                SET state = 'processing',
                    attempt = j.attempt + 1,
                    claim_token = j.claim_token + 1,
                    server_id = $4,
                    lease_expires_at = now() + $5 * interval '1 microsecond',
                    cancel_requested = false, progress = NULL
                FROM picked
                WHERE j.id = picked.id
                RETURNING {j_cols}, picked.ord
            ), ev AS (
                INSERT INTO {s}.job_events (job_id, at, state, attempt, server_id)
                SELECT id, now(), 'processing', attempt, server_id FROM claimed
            )
            SELECT {cols} FROM claimed ORDER BY ord, priority DESC, run_at, id"
        );

        // $1 ids, $2 tokens, $3 new states, $4 errors (for the history),
        // $5 delays in µs (NULL: keep run_at), $6 attempt deltas,
        // $7 whether the error becomes last_error, $8 the server.
        // Fenced: only the current claim of a running job is applied.
        let complete = format!(
            "WITH input AS (
                SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::int8[],
                                     $6::int4[], $7::bool[])
                       AS t(id, token, new_state, error, delay_us, attempt_delta, set_error)
            ), upd AS (
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
                    server_id = NULL,
                    lease_expires_at = NULL,
                    cancel_requested = false
                FROM input i
                WHERE j.id = i.id AND j.claim_token = i.token AND j.state = 'processing'
                RETURNING j.id, j.claim_token, j.queue, j.state, j.attempt, j.run_at,
                          CASE WHEN j.state = 'cancelled' AND i.new_state = 'enqueued'
                               THEN 'cancelled by a user; ' || i.error ELSE i.error END AS error
            ), ev AS (
                INSERT INTO {s}.job_events (job_id, at, state, attempt, server_id, error)
                SELECT id, now(), state, attempt, $8, error FROM upd
            ), {counted}, notified AS (
                SELECT pg_notify('{channel}', '') FROM (
                    SELECT 1 FROM upd WHERE state IN ('enqueued', 'scheduled') AND run_at <= now() LIMIT 1
                ) AS runnable
            )
            SELECT id, claim_token, (SELECT count(*) FROM notified) AS notified FROM upd",
            counted = counted_cte(s, "SELECT queue, state, 1 AS d FROM upd"),
            cancels = "(i.new_state = 'enqueued' AND j.cancel_requested)",
        );

        // $1 id, $2 attempt. Succeeds the running attempt `$2` of job `$1`
        // on the caller's connection (inside its transaction); the row lock
        // it takes is held until that transaction ends, so the server's own
        // writes about the job wait for its outcome. The old server is kept
        // for the history event.
        let complete_in = format!(
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
                RETURNING j.id, j.queue, j.state, j.attempt, old.server_id AS old_server
            ), ev AS (
                INSERT INTO {s}.job_events (job_id, at, state, attempt, server_id)
                SELECT id, now(), state, attempt, old_server FROM upd
            ), {counted}
            SELECT count(*)::bigint FROM upd",
            counted = counted_cte(s, "SELECT queue, state, 1 AS d FROM upd"),
        );

        // $1 ids, $2 tokens, $3 lease in µs.
        let renew = format!(
            "UPDATE {s}.jobs j
             SET lease_expires_at = now() + $3 * interval '1 microsecond'
             FROM unnest($1::int8[], $2::int8[]) AS i(id, token)
             WHERE j.id = i.id AND j.claim_token = i.token AND j.state = 'processing'
             RETURNING j.id, j.claim_token, j.cancel_requested"
        );

        // $1 ids, $2 tokens, $3 progress (JSON text). Fenced like a completion.
        let progress = format!(
            "UPDATE {s}.jobs j
             SET progress = i.progress::jsonb
             FROM unnest($1::int8[], $2::int8[], $3::text[]) AS i(id, token, progress)
             WHERE j.id = i.id AND j.claim_token = i.token AND j.state = 'processing'
             RETURNING j.id, j.claim_token"
        );

        // $1 limit. SET expressions read the old row, so the message names
        // the server that lost the lease. A job a user asked to cancel is
        // `cancelled` (the request outlives the server that was to carry it
        // out), one without attempts left `failed`, the others retried now.
        let rescue = format!(
            "WITH expired AS (
                SELECT id FROM {s}.jobs
                WHERE state = 'processing' AND lease_expires_at < now()
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
                RETURNING j.id, j.queue, j.state, j.attempt, j.last_error
            ), ev AS (
                INSERT INTO {s}.job_events (job_id, at, state, attempt, error)
                SELECT id, now(), state, attempt, last_error FROM upd
            ), {counted}, notified AS (
                SELECT pg_notify('{channel}', '') FROM (
                    SELECT 1 FROM upd WHERE state = 'scheduled' LIMIT 1
                ) AS runnable
            )
            SELECT id, (SELECT count(*) FROM notified) AS notified FROM upd ORDER BY id",
            counted = counted_cte(s, "SELECT queue, state, 1 AS d FROM upd"),
        );

        // $1 id. The job and its history in one statement, so both come
        // from one snapshot: the history is aggregated into one array per
        // column, oldest event first.
        let get_job = format!(
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
        );

        // Keyset paging by id, newest first: `(state, id)` serves the state
        // filter, the primary key the rest. Four variants rather than
        // `$1 IS NULL OR ...`, which a generic plan cannot use an index for.
        let lists: [String; 4] = std::array::from_fn(|i| {
            // Parameters: $1 before, $2 limit, then the state and the queue
            // when they filter, numbered in that order.
            let mut filter = String::from("id < $1");
            let mut next = 3;
            if i & 2 != 0 {
                filter.push_str(&format!(" AND state = ${next}"));
                next += 1;
            }
            if i & 1 != 0 {
                filter.push_str(&format!(" AND queue = ${next}"));
            }
            format!("SELECT {cols} FROM {s}.jobs WHERE {filter} ORDER BY id DESC LIMIT $2")
        });

        // Unfinished states exactly, from the rows (few, and indexed by
        // state); finished states from the counters (a few rows per queue).
        let count = format!(
            "SELECT queue, state, count(*)::bigint AS n FROM {s}.jobs
             WHERE state IN ('scheduled', 'enqueued', 'processing')
             GROUP BY queue, state
             UNION ALL
             SELECT queue, state, sum(n)::bigint AS n FROM {s}.job_counts
             GROUP BY queue, state
             HAVING sum(n) > 0"
        );

        // $1 id. The row says the state before; `applied` whether it changed.
        let retry = format!(
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
                SELECT pg_notify('{channel}', '') FROM upd
            )
            SELECT old.state, (SELECT count(*) FROM notified) AS notified FROM old",
            counted = counted_cte(s, "SELECT queue, old_state AS state, -1 AS d FROM upd"),
        );

        // $1 id, $2 reason.
        let cancel = format!(
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
            ), {counted}
            SELECT old.state FROM old",
            counted = counted_cte(s, "SELECT queue, state, 1 AS d FROM cancelled"),
        );

        // $1 id.
        let delete = format!(
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
            SELECT old.state FROM old",
            counted = counted_cte(
                s,
                "SELECT queue, 'deleted' AS state, 1 AS d FROM upd
                 UNION ALL SELECT queue, old_state, -1 FROM upd"
            ),
        );

        // $1, $2, $3: ages in µs of succeeded, deleted/cancelled, failed
        // jobs; $4 limit. One bounded range scan of `jobs_finished_idx` per
        // state; rows are locked (and re-checked) before they are deleted, so
        // a job retried meanwhile survives.
        let prune = format!(
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
            SELECT count(*)::bigint FROM del",
            counted = counted_cte(s, "SELECT queue, state, -1 AS d FROM del"),
        );

        let heartbeat = format!(
            "INSERT INTO {s}.servers (id, host, pid, queues, concurrency, job_names, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now())
             ON CONFLICT (id) DO UPDATE SET
                host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
                concurrency = EXCLUDED.concurrency, job_names = EXCLUDED.job_names,
                started_at = EXCLUDED.started_at, heartbeat_at = now()"
        );
        let server_list = format!(
            "SELECT id, host, pid, queues, concurrency, job_names, started_at, heartbeat_at
             FROM {s}.servers ORDER BY started_at DESC, id"
        );
        let server_remove = format!(
            "DELETE FROM {s}.servers
             WHERE id = $1 OR heartbeat_at < now() - $2 * interval '1 microsecond'"
        );

        Self {
            insert,
            insert_notify,
            insert_one,
            insert_one_notify,
            claim,
            complete,
            complete_in,
            renew,
            progress,
            rescue,
            get_job,
            list: lists,
            count,
            retry,
            cancel,
            delete,
            prune,
            heartbeat,
            server_list,
            server_remove,
        }
    }
}
