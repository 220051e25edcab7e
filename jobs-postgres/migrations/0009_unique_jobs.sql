-- Unique jobs. A unique job carries its key (the job's name and a digest of
-- its chosen arguments, with the period's number when it has a period) and
-- which finished states keep holding it (bit 0 succeeded, bit 1 failed,
-- bit 2 cancelled; unfinished states, `awaiting` of migration 0011
-- included, always hold it, deleted never does).
-- The partial unique index below is the whole guarantee: an insert whose key
-- is held conflicts with the holder (ON CONFLICT finds it and returns its
-- id), in any transaction and any batch, and a rolled-back insert leaves no
-- trace. A job leaves the index by changing state, in the same statement.
-- The predicate is a plain expression, not a function call: every insert
-- and update of a job evaluates it. `sql::unique_held` repeats it for
-- ON CONFLICT, which must name the same predicate.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN unique_key    text,
    ADD COLUMN unique_states int2;

CREATE UNIQUE INDEX jobs_unique_idx ON {{schema}}.jobs (unique_key)
    WHERE unique_key IS NOT NULL
      AND (state IN ('awaiting', 'scheduled', 'enqueued', 'processing')
           OR (state = 'succeeded' AND unique_states & 1 <> 0)
           OR (state = 'failed' AND unique_states & 2 <> 0)
           OR (state = 'cancelled' AND unique_states & 4 <> 0));

-- A recurring job of a unique type keeps its key, so that its runs are
-- unique as every other enqueue is.
ALTER TABLE {{schema}}.recurring
    ADD COLUMN unique_key       text,
    ADD COLUMN unique_period_us int8,
    ADD COLUMN unique_states    int2;
