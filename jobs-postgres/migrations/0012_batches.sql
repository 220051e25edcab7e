-- Batches: a set of jobs enqueued together, with counters changed in the
-- same statement as each member's change of state (so that the progress is
-- one row, and exactly one change sees `pending` reach zero), the ids of
-- its members (so that listing or cancelling them reads the primary key,
-- not an index of `jobs` that every insert would pay for), and an
-- optional callback job, `awaiting` until the batch ends.
CREATE TABLE {{schema}}.batches (
    id          bigserial   PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    total       bigint      NOT NULL,
    pending     bigint      NOT NULL,
    succeeded   bigint      NOT NULL DEFAULT 0,
    failed      bigint      NOT NULL DEFAULT 0,
    -- Cancelled or deleted.
    cancelled   bigint      NOT NULL DEFAULT 0,
    members     bigint[]    NOT NULL,
    callback_id bigint,
    callback_on text CHECK (callback_on IN ('success', 'any_end')),
    -- Set when `pending` reached zero and the callback was released; a
    -- member retried by hand clears it. The callback leaves `awaiting` at
    -- its release, so a second end of the batch does not release it again.
    finished_at timestamptz,
    CHECK ((callback_id IS NULL) = (callback_on IS NULL))
);

-- The batches whose release is due: the servers' sweep reads them here,
-- so a release lost to a crash after the last member's commit still comes.
CREATE INDEX batches_due_idx ON {{schema}}.batches (id)
    WHERE pending = 0 AND finished_at IS NULL;
-- Pruning reads ended batches by age.
CREATE INDEX batches_finished_idx ON {{schema}}.batches (finished_at)
    WHERE finished_at IS NOT NULL;

-- A member's batch; not indexed (see `members`).
ALTER TABLE {{schema}}.jobs ADD COLUMN batch_id bigint;
