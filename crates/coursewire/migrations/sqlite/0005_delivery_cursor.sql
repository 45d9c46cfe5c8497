-- Push delivery by a cursor per subscription (bus/delivery/pump.rs). `scan_position` is now
-- the subscription's cursor: every change event up to it has been delivered, filtered out,
-- dead-lettered or handed to a lane. A lane exists only for a subject that failed (the slow
-- path, with its retry schedule) and is deleted once it has caught up, so the caught-up lanes
-- the old discovery wrote for every subject carry nothing the cursor does not say.
ALTER TABLE subscriptions ADD COLUMN cursor_owner TEXT;
ALTER TABLE subscriptions ADD COLUMN cursor_leased_until BIGINT NOT NULL DEFAULT 0;
DELETE FROM delivery_lanes WHERE acked_sequence >= latest_sequence AND NOT exhausted;
