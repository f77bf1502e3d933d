//! The `filter` transform (a `tributary:pipeline/transformer` component).
//!
//! Removes events; a removed event is simply not passed on (it is not a
//! rejection). An event is removed if any setting matches it:
//! - `drop_events`: comma-separated event names (matched exactly against
//!   the event's `name`);
//! - `drop_if`: comma-separated rules `FIELD=VALUE` or `FIELD!=VALUE`, where
//!   FIELD is `properties.PATH`, `context.PATH`, `type`, `name`, `userId`
//!   or `anonymousId`, and VALUE is a JSON literal (`true`, `3`, `null`,
//!   `"a b"`) or else a plain string. A string field also matches the
//!   VALUE text (`properties.internal=true` matches `true` and `"true"`);
//!   numbers compare by value. `=` never matches a missing field; `!=`
//!   always does.
//!
//! With no settings it passes every event through unchanged (the no-op to
//! fill an unused slot of the ingest chain). An event whose `properties`
//! or `context` is not a JSON object when a rule needs it is rejected
//! (`invalid_event`).

pub mod filter;

transform_common::transformer!(crate::filter::run);
