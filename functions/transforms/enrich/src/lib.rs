//! The `enrich` transform (a `tributary:pipeline/transformer` component).
//!
//! Derives properties from each event, overwriting a property of the same
//! name (the derived value is the trusted one):
//! - `day_of_week` (`Monday`..`Sunday`) from `timestamp-ms`, in UTC;
//! - `url_host` (lowercase, no port), `url_path` (`/` when empty) and
//!   `url_query` (without `?`; only when non-empty) from `context.page.url`,
//!   else `properties.url`, when it is an absolute URL;
//! - `ua_family` (`Chrome`, `Firefox`, `Safari`, `Edge`, `bot` or `other`)
//!   from `context.userAgent`, when present.
//!
//! Settings: `fields` (optional), comma-separated among `day_of_week`,
//! `url`, `ua_family`; default all.
//!
//! An event whose `properties` or `context` is not a JSON object is
//! rejected (`invalid_event`).

pub mod enrich;
pub mod url;
pub mod user_agent;

transform_common::transformer!(crate::enrich::run);
