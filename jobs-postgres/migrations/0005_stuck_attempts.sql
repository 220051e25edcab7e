-- When the current (or last) attempt of a job was reported stuck: past its
-- timeout, asked to stop, and still not returned (a job that blocks its
-- thread cannot be stopped). Its server keeps renewing the lease until the
-- attempt returns, so the job is not run twice; the history holds the
-- report. Cleared by the next claim, like `progress`. Nullable with no
-- default: adding it rewrites nothing.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN stuck_at timestamptz;
