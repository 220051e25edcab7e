-- Continuations: a job that waits, `awaiting`, for another (its parent) to
-- end, on its success or on any end. The parent is marked when a
-- continuation is added (`has_continuations`, an update that takes the
-- parent's row lock, so an insert and the parent's completion are ordered),
-- and its end releases the continuations in a statement of its own, which
-- sees every continuation committed before the end. Servers also sweep for
-- continuations whose parent has ended, so none waits on a lost release.
ALTER TABLE {{schema}}.jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE {{schema}}.jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('awaiting', 'scheduled', 'enqueued', 'processing',
                     'succeeded', 'failed', 'cancelled', 'deleted')) NOT VALID;
ALTER TABLE {{schema}}.jobs VALIDATE CONSTRAINT jobs_state_check;

ALTER TABLE {{schema}}.jobs
    ADD COLUMN parent_id         bigint,
    ADD COLUMN continue_on       text CHECK (continue_on IN ('success', 'any_end')),
    ADD COLUMN has_continuations boolean NOT NULL DEFAULT false,
    -- The argument a continuation fed by its parent's output takes it as.
    ADD COLUMN input_arg         text,
    ADD CHECK ((parent_id IS NULL) = (continue_on IS NULL));

-- No index of their own: a release and the sweep read the `awaiting` jobs
-- through `jobs_state_id_idx` (a range of the awaiting ones, few while
-- continuations are a small part of the jobs), because every index of
-- `jobs`, even a partial one that holds no row, costs each single insert
-- a few percent (W1).
