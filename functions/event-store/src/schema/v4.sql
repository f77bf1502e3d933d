-- Version 4: reports (`src/reports.rs`). Funnel steps and retention
-- returns look up one user's events of one name from a time on: one index
-- seek per user, the index holding everything those lookups read. The
-- user expression must be written exactly as the reports write it. Top
-- pages and referrers read the page events of a window without the rest.
CREATE INDEX IF NOT EXISTS events_by_name_user ON events (source, name, (COALESCE(user_id, anonymous_id)), timestamp_ms);
CREATE INDEX IF NOT EXISTS events_by_type ON events (source, type, timestamp_ms);
