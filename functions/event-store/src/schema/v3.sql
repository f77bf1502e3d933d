-- Version 3: rollups. Per source, grain (`width_ms`: a minute, an hour or
-- a day), bucket and event name, the exact number of events and a sketch
-- of their unique users (`src/hll.rs`: exact hashes while small, else a
-- HyperLogLog). `scope` 0 is every event of the bucket, 1 the events
-- without a name, 2 those named `name` (empty otherwise: a primary key
-- holds no NULL). Ingest maintains them in the transaction that stores
-- the events; the query API's counts read them instead of every event.
-- Events stored before this version are rolled up by the migration itself
-- (`migrations.rs`). `{blob}` is BLOB (SQLite) or BYTEA (PostgreSQL).
CREATE TABLE IF NOT EXISTS rollups (
    source TEXT NOT NULL,
    width_ms BIGINT NOT NULL,
    bucket_ms BIGINT NOT NULL,
    scope BIGINT NOT NULL,
    name TEXT NOT NULL,
    events BIGINT NOT NULL,
    users {blob} NOT NULL,
    PRIMARY KEY (source, width_ms, bucket_ms, scope, name)
);
