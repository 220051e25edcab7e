-- Recurring jobs: one row per schedule. A tick fires by compare-and-set on
-- `next_run_at` and `revision` (one statement, under the row's lock), so each tick runs once
-- whatever the number of servers; the unique index on the runs'
-- (recurring_id, scheduled_for) backs it up.
CREATE TABLE {{schema}}.recurring (
    id                  text        PRIMARY KEY,
    schedule            text        NOT NULL,
    time_zone           text        NOT NULL,
    name                text        NOT NULL,
    queue               text        NOT NULL,
    args                jsonb       NOT NULL,
    priority            smallint    NOT NULL,
    max_attempts        integer     NOT NULL,
    misfire             text        NOT NULL,
    overlap             text        NOT NULL,
    paused              boolean     NOT NULL DEFAULT false,
    -- Bumped by every change of the definition and every pause or resume;
    -- a fire planned from an older revision loses its compare-and-set.
    revision            bigint      NOT NULL DEFAULT 0,
    next_run_at         timestamptz,
    last_run_at         timestamptz,
    last_job_id         bigint,
    last_skipped_at     timestamptz,
    last_skipped_reason text
);
