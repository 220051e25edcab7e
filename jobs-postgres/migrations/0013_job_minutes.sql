-- How many jobs succeeded and failed for good in each minute, for the
-- dashboard's chart: added to by every statement that ends jobs, once per
-- statement and state (not once per job), sharded by backend like
-- `job_counts` so that concurrent completions rarely wait on one row, and
-- pruned after a day.
CREATE TABLE {{schema}}.job_minutes (
    minute timestamptz NOT NULL,
    state  text        NOT NULL CHECK (state IN ('succeeded', 'failed')),
    shard  smallint    NOT NULL,
    n      bigint      NOT NULL,
    PRIMARY KEY (minute, state, shard)
);
