//! The `redact` transform (a `tributary:pipeline/transformer` component).
//!
//! Settings:
//! - `paths` (required): comma-separated dot paths, e.g.
//!   `email,address.street`. Each applies to both `properties` and
//!   `context`; an array met on the way is walked element by element
//!   (`items.email` redacts every item's `email`).
//! - `mode`: `hash` (default) replaces the value with the lowercase hex
//!   SHA-256 of the string (of its JSON text for non-strings; `null` stays
//!   `null`); `drop` removes the key.
//!
//! An event whose `properties` or `context` is not a JSON object is
//! rejected (`invalid_event`): it cannot be redacted, so it must not go on.

pub mod redact;

transform_common::transformer!(crate::redact::run);
