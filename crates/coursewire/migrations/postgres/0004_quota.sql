-- Canvas quota shared by the processes that use one token: each publishes the units its
-- governor holds in flight, and takes the others' off its own budget (canvas/client/governor.rs).
CREATE TABLE canvas_quota_peers (
    token_key  TEXT    NOT NULL, -- a hash of the Canvas URL and token identity, never the token
    owner      TEXT    NOT NULL, -- the publishing process
    units      DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL, -- unix ms
    PRIMARY KEY (token_key, owner)
);
