-- What a job returned when it succeeded (the `T` of its `Result<T, E>`),
-- kept as long as the job. Written by the completion of a succeeded
-- attempt, cleared when the job is retried by hand.
ALTER TABLE {{schema}}.jobs ADD COLUMN output jsonb;
