-- Scoped API tokens (`coursewire tokens add`): a name, a role and, for a consumer, the
-- subscriptions it may read. Only the SHA-256 of a token is kept; the token is shown once.
-- A revoked token keeps its row (who had access, and until when); its name may be reused.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL, -- admin | operator | consumer
    token_sha256  TEXT    NOT NULL UNIQUE, -- hex
    subscriptions TEXT    NOT NULL DEFAULT '[]', -- JSON array of subscription names (consumer)
    created_at    INTEGER NOT NULL, -- unix ms
    revoked_at    INTEGER -- unix ms
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Who created a subscription: a token's name, `api.token`, or `cli` (per-token caps).
ALTER TABLE subscriptions ADD COLUMN created_by TEXT;
