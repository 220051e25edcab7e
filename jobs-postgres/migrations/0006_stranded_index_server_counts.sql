-- The due jobs no live server can take (`job_stranded`): the distinct
-- (queue, name) pairs of waiting jobs are found by skipping through this
-- index, one probe per pair, and only the stranded pairs' due jobs are
-- counted, from it alone; without it, finding them reads every waiting job.
-- Partial like the claim index, so a job leaves it when it is claimed: it
-- costs one entry per insert and per retry, nothing on claim or completion.
-- Built in the migration's transaction, not CONCURRENTLY: writes to `jobs`
-- wait while it is built (seconds for a million waiting jobs).
CREATE INDEX jobs_waiting_name_idx ON {{schema}}.jobs (queue, name, run_at)
    WHERE state IN ('enqueued', 'scheduled');

-- What each server's latest heartbeat says it holds, both `processing` in
-- `jobs`: the jobs it runs, and the jobs it claimed ahead of a free slot.
-- Written by the heartbeat only, so they cost nothing per job.
ALTER TABLE {{schema}}.servers
    ADD COLUMN running       bigint NOT NULL DEFAULT 0,
    ADD COLUMN claimed_ahead bigint NOT NULL DEFAULT 0;
