-- Key limits (`KeyLimit`, `Request::key_limit`): at most `limit_running`
-- jobs with the same `limit_key` running at once, across all servers.
ALTER TABLE {{schema}}.jobs
    ADD COLUMN limit_key     text,
    ADD COLUMN limit_running integer CHECK (limit_running > 0),
    ADD CHECK ((limit_key IS NULL) = (limit_running IS NULL));

-- The places of the keys: a row per running job with a key, in one of the
-- numbered places 1..limit_running of its key. The claim takes a place by
-- inserting its row (`ON CONFLICT DO NOTHING`: a place another claim took,
-- committed or not, is not taken twice, whatever the claim's snapshot saw),
-- and the statements that move a job out of `processing` give it back. A
-- place left behind by a path that missed it is swept by the rescuer,
-- which deletes places whose job no longer runs. As many rows as running
-- jobs with keys: a claim counts a key's places by its primary key.
CREATE TABLE {{schema}}.key_places (
    key    text    NOT NULL,
    place  integer NOT NULL,
    job_id bigint  NOT NULL,
    PRIMARY KEY (key, place)
);
CREATE INDEX key_places_job_idx ON {{schema}}.key_places (job_id);
