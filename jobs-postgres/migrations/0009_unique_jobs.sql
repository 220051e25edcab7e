-- Unique jobs. A unique job carries its key (the job's name and a digest of
-- its chosen arguments, with the period's number when it has a period) and
-- which finished states keep holding it (bit 0 succeeded, bit 1 failed,
-- bit 2 cancelled; unfinished states, `awaiting` of migration 0011
-- included, always hold it, deleted never does).
-- The partial unique index below is the whole guarantee: an insert whose key
-- is held conflicts with the holder (ON CONFLICT finds it and returns its
-- id), in any transaction and any batch, and a rolled-back insert leaves no
-- trace. A job leaves the index by changing state, in the same statement.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN unique_key    text,
    ADD COLUMN unique_states int2;

CREATE FUNCTION {{schema}}.unique_key_held(states int2, state text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE state
            WHEN 'awaiting'   THEN true
            WHEN 'scheduled'  THEN true
            WHEN 'enqueued'   THEN true
            WHEN 'processing' THEN true
            WHEN 'succeeded'  THEN states & 1 <> 0
            WHEN 'failed'     THEN states & 2 <> 0
            WHEN 'cancelled'  THEN states & 4 <> 0
            ELSE false
        END
    $$;

CREATE UNIQUE INDEX jobs_unique_idx ON {{schema}}.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND {{schema}}.unique_key_held(unique_states, state);

-- A recurring job of a unique type keeps its key, so that its runs are
-- unique as every other enqueue is.
ALTER TABLE {{schema}}.recurring
    ADD COLUMN unique_key       text,
    ADD COLUMN unique_period_us int8,
    ADD COLUMN unique_states    int2;
