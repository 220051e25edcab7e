-- How long after its latest heartbeat each server counts itself dead
-- (`ServerInfo::stale_after`, µs), written by the heartbeat, so that readers
-- such as the dashboard judge each server by its own heartbeat interval
-- rather than by a fixed age. Records written before this column existed
-- get 100 s: what a server with the default interval writes.
ALTER TABLE {{schema}}.servers
    ADD COLUMN stale_after_us bigint NOT NULL DEFAULT 100000000;
