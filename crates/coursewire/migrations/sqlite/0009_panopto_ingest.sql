-- The Panopto request budget shared by the processes on one API client
-- (panopto/client/pace.rs): one row per request sent in the last hour. A request is counted
-- only while every window holds fewer than its cap; the clients row is what a counting
-- transaction locks (PostgreSQL), so two processes cannot both take the last slot.
CREATE TABLE panopto_clients (
    client_key TEXT PRIMARY KEY -- a hash of the site and the API client, never a secret
);
CREATE TABLE panopto_requests (
    client_key TEXT    NOT NULL,
    at         INTEGER NOT NULL -- unix ms of the client's clock
);
CREATE INDEX panopto_requests_by_time ON panopto_requests (client_key, at);

-- The Panopto poller (sources/panopto): its change-feed cursor and last good poll, held by
-- lease so one process polls at a time.
CREATE TABLE panopto_pollers (
    name            TEXT PRIMARY KEY,
    cursor          TEXT, -- the change feed's fromDate for the next poll (ISO-8601 UTC)
    last_success_at INTEGER, -- unix ms
    last_attempt_at INTEGER,
    last_error      TEXT,
    polls           INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER NOT NULL DEFAULT 0
);

-- What the poller last turned into an inbox event, per subject (recording/<id>,
-- recorder/<id>): the dedup key of that event, so an unchanged observation writes nothing and
-- a change back to an earlier state is still a new event.
CREATE TABLE panopto_observed (
    subject     TEXT PRIMARY KEY,
    last_key    TEXT    NOT NULL,
    snapshot    TEXT    NOT NULL, -- the state last reported (JSON object)
    -- 1 while the session may change without a feed entry (scheduled, recording, processing).
    watch       INTEGER NOT NULL,
    starts_at   INTEGER, -- a session's scheduled start, unix ms
    observed_at INTEGER NOT NULL
);
CREATE INDEX panopto_observed_watch ON panopto_observed (watch, starts_at);
