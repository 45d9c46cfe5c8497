-- Push delivery: subscriptions (Standard Webhooks endpoints), per-(subscription, subject)
-- delivery lanes, every attempt, and dead letters.

CREATE TABLE subscriptions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL UNIQUE,
    url               TEXT    NOT NULL,
    secret            TEXT    NOT NULL, -- whsec_<base64>
    types             TEXT    NOT NULL, -- JSON array of type globs; empty: every type
    paused            BOOLEAN NOT NULL DEFAULT FALSE,
    retry_schedule_ms TEXT    NOT NULL, -- JSON array of delays after attempt 1, 2, …
    on_exhausted      TEXT    NOT NULL, -- block | skip
    scan_position     INTEGER NOT NULL DEFAULT 0, -- change_events.position lanes were found up to
    failing_since     INTEGER, -- unix ms of the first failure since the last success
    disabled_at       INTEGER,
    disabled_reason   TEXT,
    created_at        INTEGER NOT NULL
);

-- One lane per (subscription, subject): the subject's events are delivered in sequence order,
-- one in flight at a time. `acked_sequence` is the last sequence the subscriber acknowledged
-- (or that was filtered out or dead-lettered).
CREATE TABLE delivery_lanes (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    subject         TEXT    NOT NULL,
    acked_sequence  INTEGER NOT NULL DEFAULT 0,
    latest_sequence INTEGER NOT NULL DEFAULT 0, -- newest sequence of the subject seen by discovery
    attempts        INTEGER NOT NULL DEFAULT 0, -- attempts at the head event so far
    next_attempt_at INTEGER NOT NULL DEFAULT 0, -- unix ms
    exhausted       BOOLEAN NOT NULL DEFAULT FALSE,
    last_error      TEXT,
    -- The process delivering this lane now, and until when (renewed before every attempt).
    owner           TEXT,
    leased_until    INTEGER NOT NULL DEFAULT 0, -- unix ms
    PRIMARY KEY (subscription_id, subject)
);
-- Lanes with work: an event past the acknowledged one, not exhausted.
CREATE INDEX delivery_lanes_due ON delivery_lanes (next_attempt_at)
    WHERE NOT exhausted AND latest_sequence > acked_sequence;

-- Every attempt, written before the request is sent and completed after its answer.
CREATE TABLE delivery_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    subject         TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    sequence        INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    status          INTEGER, -- HTTP status, if one came back
    outcome         TEXT,    -- delivered | failed | NULL while in flight
    error           TEXT
);
CREATE INDEX delivery_attempts_by_subscription ON delivery_attempts (subscription_id, id);

-- Events given up on a `skip` subscription (the lane moved past them), until retried.
CREATE TABLE delivery_dead_letters (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_position  INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    sequence        INTEGER NOT NULL,
    state           TEXT    NOT NULL, -- dead | retry | delivered
    reason          TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    UNIQUE (subscription_id, event_id)
);

-- How far a sink (the NATS JetStream publisher) has published the outbox, by position.
CREATE TABLE sink_cursors (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
);
