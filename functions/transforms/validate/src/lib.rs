//! The `validate` transform (a `tributary:pipeline/transformer` component).
//!
//! Setting `rules` (required): a JSON object mapping an event name to a
//! schema for the event's `properties`; the name `*` applies to every
//! event. Events with no applicable schema pass. A failing event is
//! rejected with code `schema_violation` and a reason naming each failing
//! property and rule, e.g.
//! `properties.total violates minimum 0: got -5`.
//!
//! ```json
//! {"Order Completed": {"required": ["order_id", "total"],
//!                      "properties": {"total": {"type": "number", "minimum": 0},
//!                                     "order_id": {"type": "string"}}}}
//! ```
//!
//! The schema language is a small subset of JSON Schema, described in
//! [`schema`]; an unknown keyword is a settings error (no silent typos).
//! An event whose `properties` is not a JSON object is rejected
//! (`invalid_event`).

pub mod schema;
pub mod validate;

transform_common::transformer!(crate::validate::run);
