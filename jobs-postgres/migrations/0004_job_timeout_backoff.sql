-- A job's own attempt timeout and backoff, when its enqueue set them (NULL:
-- the job type's options on the server that runs it). They are stored with
-- the job because any server, in any process, may run it. The timeout is in
-- microseconds, as every duration the statements take; the backoff is a
-- small JSON value (`{"fixed_us": ..}` or `{"exponential": {"base_us": ..,
-- "max_us": .., "jitter_per_mille": ..}}`), so a new kind of backoff needs
-- no new columns. Recurring entries carry them into each run.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN timeout_us bigint,
    ADD COLUMN backoff    jsonb;
ALTER TABLE {{schema}}.recurring
    ADD COLUMN timeout_us bigint,
    ADD COLUMN backoff    jsonb;
