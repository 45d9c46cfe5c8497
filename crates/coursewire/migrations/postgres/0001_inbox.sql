-- The inbox: every accepted upstream event, raw, before anything else happens to it.
CREATE TABLE inbox (
    id            BIGSERIAL PRIMARY KEY,
    source        TEXT    NOT NULL,
    dedup_key     TEXT    NOT NULL,
    received_at   BIGINT  NOT NULL, -- unix milliseconds
    event_name    TEXT,
    event_time    BIGINT,           -- unix milliseconds, when the event carried a readable time
    subject       TEXT,
    body          BYTEA   NOT NULL, -- the request body exactly as received (JWS or JSON)
    headers       TEXT    NOT NULL, -- JSON object of the headers that matter
    verification  TEXT    NOT NULL, -- 'kid:<kid>' or 'unsigned-allowed'
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'processed', 'quarantined')),
    status_reason TEXT,
    UNIQUE (source, dedup_key)
);
CREATE INDEX inbox_by_status ON inbox (status, id);

-- Requests that failed verification: never events, kept for the on-call engineer, capped.
CREATE TABLE rejected_requests (
    id           BIGSERIAL PRIMARY KEY,
    received_at  BIGINT NOT NULL,
    source       TEXT   NOT NULL,
    reason       TEXT   NOT NULL,
    detail       TEXT   NOT NULL,
    remote_addr  TEXT,
    body_prefix  TEXT   NOT NULL
);
