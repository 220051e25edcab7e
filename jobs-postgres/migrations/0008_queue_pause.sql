-- Queues with a stored state: today whether each is paused. A row exists
-- once a queue was paused or resumed; a queue without one is not paused.
-- The claim looks up each queue it asks for here (one probe of the primary
-- key per queue, a table of a few rows), so a pause is seen by every server
-- at its next claim, and it costs nothing per job.
CREATE TABLE {{schema}}.queues (
    queue      text        PRIMARY KEY,
    paused     boolean     NOT NULL DEFAULT false,
    paused_at  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (paused = (paused_at IS NOT NULL))
);
