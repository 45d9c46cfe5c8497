-- The recording workflow (workflow/): one row per Panopto session it has seen, with its
-- progress as the pure transitions (workflow/steps.rs) left it. Written by the processor in
-- the transaction that applied the observation or command result that moved it.
CREATE TABLE recording_workflows (
    recording_id TEXT PRIMARY KEY, -- the Panopto session id
    state        TEXT    NOT NULL, -- detected, filed, captioned, posted, audited, parked, failed, withdrawn
    progress     TEXT    NOT NULL, -- workflow::steps::Progress as JSON
    meeting_id   TEXT,             -- the matched lecture, when matched
    lecture_date TEXT,             -- its local date (YYYY-MM-DD)
    updated_at   INTEGER NOT NULL
);
CREATE INDEX recording_workflows_by_state ON recording_workflows (state);
CREATE INDEX recording_workflows_by_lecture ON recording_workflows (lecture_date, meeting_id);

-- Side effects as durable rows: every external write (or check) the workflow asks for, run
-- by the command executor under a lease, retried until done or given up. The idempotency key
-- makes a step asked for twice one row.
CREATE TABLE workflow_commands (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    recording_id    TEXT    NOT NULL,
    -- The SIS section a grant or roster sync is for (roster changes find them by it).
    section_id      TEXT,
    step            TEXT    NOT NULL, -- file, grant, post, audit, withdraw
    command         TEXT    NOT NULL, -- workflow::steps::Command as JSON
    status          TEXT    NOT NULL, -- pending, done, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_try_at     INTEGER NOT NULL, -- unix ms
    result          TEXT,             -- the outcome (JSON) once done
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workflow_commands_due ON workflow_commands (status, next_try_at);
CREATE INDEX workflow_commands_by_recording ON workflow_commands (recording_id);
CREATE INDEX workflow_commands_by_section ON workflow_commands (section_id, step)
    WHERE section_id IS NOT NULL;

-- Panopto user GUIDs by user key (`provider\login`), learnt once per user: a section's
-- group is made of GUIDs, and Panopto looks them up one key per call.
CREATE TABLE panopto_users (
    user_key     TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    looked_up_at INTEGER NOT NULL
);
