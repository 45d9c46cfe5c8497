-- One naming for every row that a process holds by lease (store/lease.rs): `lease_owner`, the
-- process holding it (NULL when free), and `lease_until`, unix ms after which another process
-- may take it over. Processor lanes, delivery lanes and subscription cursors used three names.
ALTER TABLE processor_lanes RENAME COLUMN owner TO lease_owner;
ALTER TABLE delivery_lanes RENAME COLUMN owner TO lease_owner;
ALTER TABLE delivery_lanes RENAME COLUMN leased_until TO lease_until;
ALTER TABLE subscriptions RENAME COLUMN cursor_owner TO lease_owner;
ALTER TABLE subscriptions RENAME COLUMN cursor_leased_until TO lease_until;
