-- The initial schema of the jobs store. `{{schema}}` is replaced by the
-- validated, quoted schema name.

-- The hot table: one row per job, kept narrow. Every index on it is either
-- partial (what the claim, the rescuer and retention read) or serves the
-- dashboard's keyset paging.
CREATE TABLE {{schema}}.jobs (
    id               bigserial   PRIMARY KEY,
    state            text        NOT NULL CHECK (state IN ('scheduled', 'enqueued', 'processing',
                                                           'succeeded', 'failed', 'cancelled', 'deleted')),
    priority         smallint    NOT NULL DEFAULT 0,
    cancel_requested boolean     NOT NULL DEFAULT false,
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL,
    claim_token      bigint      NOT NULL DEFAULT 0,
    run_at           timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    lease_expires_at timestamptz,
    server_id        uuid,
    queue            text        NOT NULL,
    name             text        NOT NULL,
    args             jsonb       NOT NULL,
    last_error       text,
    recurring_id     text,
    scheduled_for    timestamptz,
    progress         jsonb,
    CHECK ((recurring_id IS NULL) = (scheduled_for IS NULL))
);

-- The claim: runnable jobs of one queue in claim order. Only waiting rows are
-- in it, so a million finished rows cost the claim nothing.
CREATE INDEX jobs_claim_idx ON {{schema}}.jobs (queue, priority DESC, run_at, id)
    WHERE state IN ('enqueued', 'scheduled');

-- The rescuer: running jobs by lease expiry.
CREATE INDEX jobs_lease_idx ON {{schema}}.jobs (lease_expires_at)
    WHERE state = 'processing';

-- Retention: finished jobs by state and age, read in bounded batches.
CREATE INDEX jobs_finished_idx ON {{schema}}.jobs (state, finished_at)
    WHERE finished_at IS NOT NULL;

-- The dashboard: lists by state, newest first, keyset-paged by id; exact
-- counts of the unfinished states.
CREATE INDEX jobs_state_id_idx ON {{schema}}.jobs (state, id);

-- A recurring tick is enqueued once, whatever the number of servers.
CREATE UNIQUE INDEX jobs_recurring_tick_idx ON {{schema}}.jobs (recurring_id, scheduled_for)
    WHERE recurring_id IS NOT NULL;

-- History: one row per transition. No foreign key (it would cost a lookup per
-- insert); retention deletes a job's events with it.
CREATE TABLE {{schema}}.job_events (
    id        bigserial   NOT NULL,
    job_id    bigint      NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    attempt   integer     NOT NULL,
    state     text        NOT NULL,
    server_id uuid,
    error     text
);
CREATE INDEX job_events_job_idx ON {{schema}}.job_events (job_id, id);

-- Counts of finished jobs by queue and state, maintained by the statements
-- that move jobs into or out of a finished state, so the dashboard never
-- counts a million succeeded rows. Deltas land in one of several shards
-- (chosen by backend pid) so that concurrent completers do not queue on one
-- row; a count is the sum over shards.
CREATE TABLE {{schema}}.job_counts (
    queue text     NOT NULL,
    state text     NOT NULL,
    shard smallint NOT NULL,
    n     bigint   NOT NULL,
    PRIMARY KEY (queue, state, shard)
);

-- Running servers, as their heartbeats describe them.
CREATE TABLE {{schema}}.servers (
    id           uuid        PRIMARY KEY,
    host         text        NOT NULL,
    pid          bigint      NOT NULL,
    queues       text[]      NOT NULL,
    concurrency  bigint      NOT NULL,
    job_names    text[]      NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);
