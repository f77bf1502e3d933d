-- Version 1 of the event store's schema, for both dialects: `{id}` is the
-- dialect's auto-increment key (SQLite `INTEGER PRIMARY KEY`, PostgreSQL
-- `BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`). `properties` and `raw`
-- are JSON text, byte for byte as stored; queries read them as JSON.
CREATE TABLE IF NOT EXISTS events (
    id {id},
    source TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT,
    user_id TEXT,
    anonymous_id TEXT,
    timestamp_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    properties TEXT NOT NULL,
    raw TEXT NOT NULL,
    UNIQUE (source, message_id)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (source, timestamp_ms);
CREATE INDEX IF NOT EXISTS events_by_name ON events (source, name, timestamp_ms);
CREATE TABLE IF NOT EXISTS dead_letters (
    id {id},
    source TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL
);
