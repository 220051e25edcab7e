-- The cluster-wide limits of a queue (`Queues::set_limits`), on its row of
-- `queues`: at most `concurrency` of its jobs `processing` at once, and at
-- most `rate_jobs` started in any `rate_period_us`. A rate limit counts the
-- starts of each tenth of its period (a slot, numbered from the epoch) in
-- `rate_slots` and `rate_starts`, side by side, holding only the slots that
-- still count: eleven pairs at most, whatever the rate. The claim of a
-- limited queue locks its row, so claims of it queue on one another, and
-- claims of other queues do not.
ALTER TABLE {{schema}}.queues
    ADD COLUMN concurrency    integer CHECK (concurrency > 0),
    ADD COLUMN rate_jobs      integer CHECK (rate_jobs > 0),
    ADD COLUMN rate_period_us bigint  CHECK (rate_period_us > 0),
    ADD COLUMN rate_slots     bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN rate_starts    bigint[] NOT NULL DEFAULT '{}',
    ADD CHECK ((rate_jobs IS NULL) = (rate_period_us IS NULL));

-- Running jobs by queue, then lease expiry: the count of a queue's running
-- jobs that a concurrency limit needs, and the distinct queues with running
-- jobs that `queue_list` finds by skipping through it, one probe per queue.
-- It replaces the rescuer's index on lease expiry alone (the rescuer reads
-- the running jobs' entries, as few as the jobs running), so a claim still
-- writes one entry to an index of running jobs, not two.
DROP INDEX {{schema}}.jobs_lease_idx;
CREATE INDEX jobs_running_idx ON {{schema}}.jobs (queue, lease_expires_at)
    WHERE state = 'processing';
