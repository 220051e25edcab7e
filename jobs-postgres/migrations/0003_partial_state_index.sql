-- `jobs_state_id_idx` held every row, so each transition of every job wrote
-- an entry into it, the hot path's last one (to `succeeded`) included. Its
-- readers are the dashboard's: a keyset page of one state, newest first
-- (`job_list` repeats this predicate so that a generic plan can use the
-- index), and the exact counts of the unfinished states. `succeeded` rows
-- are most of the table: a page of them is read from the primary key,
-- backwards, where they are dense. Ascending, and read backwards for
-- newest first: new ids land on the right edge of their state's range, where
-- PostgreSQL appends and splits pages full (a descending index takes every
-- new id at the left edge, where pages split in half).
DROP INDEX {{schema}}.jobs_state_id_idx;
CREATE INDEX jobs_state_id_idx ON {{schema}}.jobs (state, id)
    WHERE state <> 'succeeded';
