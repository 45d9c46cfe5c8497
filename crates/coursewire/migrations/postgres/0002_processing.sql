-- Processing: leases on inbox lanes, the catalog, the change-event outbox and the audit log.

-- How often a claim has picked this row as the head of its lane without finishing it: a row
-- that keeps killing workers is quarantined once this passes processor.max_attempts.
ALTER TABLE inbox ADD COLUMN attempts BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE inbox ADD COLUMN processed_at BIGINT; -- unix milliseconds
-- The head of a lane: its oldest pending event by (event time, else receive time; dedup key).
CREATE INDEX inbox_pending_by_lane
    ON inbox (subject, COALESCE(event_time, received_at), dedup_key) WHERE status = 'pending';

-- One row per lane (entity subject, or 'inbox/<id>' for an event without one) that a worker
-- holds. A lease past lease_until may be taken over; a drained lane's row is deleted.
CREATE TABLE processor_lanes (
    lane        TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    lease_until BIGINT  NOT NULL, -- unix milliseconds
    claimed_at  BIGINT  NOT NULL
);

-- The catalog: one row per entity, keyed on its LOCAL Canvas id. `state` is the normalized
-- entity (JSON object); (version_time, version_tie) is the newest event applied to it;
-- `deleted` marks a tombstone, kept so that a late, older event cannot resurrect the entity;
-- `sequence` is the last change-event sequence of its subject.
CREATE TABLE catalog_entities (
    kind         TEXT    NOT NULL,
    id           BIGINT  NOT NULL,
    state        TEXT    NOT NULL,
    deleted      BOOLEAN NOT NULL,
    version_time BIGINT  NOT NULL,
    version_tie  TEXT    NOT NULL,
    sequence     BIGINT  NOT NULL,
    course_id    BIGINT,
    section_id   BIGINT,
    user_id      BIGINT,
    written_at   BIGINT  NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX catalog_by_course ON catalog_entities (course_id, kind) WHERE course_id IS NOT NULL;
CREATE INDEX catalog_by_section ON catalog_entities (section_id, kind) WHERE section_id IS NOT NULL;
CREATE INDEX catalog_by_user ON catalog_entities (user_id, kind) WHERE user_id IS NOT NULL;

-- The outbox: every change event, CloudEvents JSON in `event`. `position` is the global cursor;
-- (subject, sequence) has no gaps per subject.
CREATE TABLE change_events (
    position   BIGSERIAL PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    subject    TEXT    NOT NULL,
    sequence   BIGINT  NOT NULL,
    type       TEXT    NOT NULL,
    time_ms    BIGINT  NOT NULL,
    inbox_id   BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    event      TEXT    NOT NULL,
    UNIQUE (subject, sequence)
);

-- What the processor did with each event, and why.
CREATE TABLE audit_log (
    id              BIGSERIAL PRIMARY KEY,
    at              BIGINT  NOT NULL,
    inbox_id        BIGINT,
    subject         TEXT,
    cause_id        TEXT,    -- the upstream CloudEvent id
    action          TEXT    NOT NULL,
    change_event_id TEXT,
    detail          TEXT    NOT NULL -- JSON
);
CREATE INDEX audit_by_inbox ON audit_log (inbox_id);
CREATE INDEX audit_by_subject ON audit_log (subject, id);
