//! The event store the data functions share: one schema, on Spin's SQLite
//! API (the default, embedded) or on Spin's PostgreSQL API.
//!
//! The backend comes from the component variable `database_url`: empty or
//! `sqlite` is the `default` SQLite database, `sqlite:LABEL` another one,
//! and a `postgres://...` URL a PostgreSQL server (which the component's
//! `allowed_outbound_hosts` must list). Statements are written once with
//! numbered `?N` placeholders; where the dialects differ (JSON paths,
//! transactions, identity columns) [`Db`] gives each its own SQL. Values are
//! only ever bound as parameters.
//!
//! [`Db`] and the migrations' runner need Spin (feature `spin`, on by
//! default); the schema ([`migrations::VERSIONS`]), the shared
//! [`statements`], the [`rollup`]s with their [`hll`] sketches and
//! [`Param`] and the [`reports`] (funnels, retention, breakdowns) are
//! plain Rust, so the native benchmark runs the very
//! statements (and rollup arithmetic) the functions run.

pub mod hll;
pub mod migrations;
mod param;
pub mod reports;
pub mod rollup;
pub mod statements;

#[cfg(feature = "spin")]
mod db;
#[cfg(feature = "spin")]
mod value;

#[cfg(feature = "spin")]
pub use db::Db;
pub use param::{Cell, Param};
pub use statements::EventFilter;
