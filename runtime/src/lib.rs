//! Tributary's host: runs Spin HTTP applications on Wasmtime.
//!
//! The pipeline, one module each:
//! - [`manifest`] reads and validates `spin.toml` (Spin manifest v2);
//! - [`router`] maps request paths to components with Spin's rules;
//! - [`engine`] owns the Wasmtime engine, the compile cache and the
//!   componentization of core modules;
//! - [`host`] is the per-instance state and the linker of host interfaces;
//! - [`instances`] schedules requests onto (by default fresh) instances;
//! - [`app`] ties these into a [`app::LoadedApp`];
//! - [`server`] is the HTTP front door, serving a [`live::LiveApp`] that
//!   `trib watch` replaces while it serves ([`watch`] decides when);
//! - [`redis_trigger`] runs components for Redis pub/sub messages;
//! - [`build_cmd`] implements `trib build`;
//! - [`kube_scaffold`] writes SpinKube manifests (`trib kube scaffold`).
//!
//! The `trib` binary parses flags into [`app::RuntimeSettings`] and calls
//! into this library; nothing here reads the environment or the command line.

pub mod admission;
pub mod allowed_hosts;
pub mod app;
pub mod blocked_networks;
pub mod body;
pub mod build_cmd;
pub mod cli_values;
pub mod client_tls;
pub mod config_file;
pub mod cron_trigger;
pub mod dispatch;
pub mod duration;
pub mod engine;
pub mod files;
pub mod guest_output;
pub mod host;
pub mod instances;
pub mod invocation;
pub mod kube_scaffold;
pub mod live;
pub mod loader;
pub mod manifest;
pub mod metrics;
pub mod oci;
pub mod outbound;
pub mod outcome;
pub mod redis_trigger;
pub mod route_pattern;
pub mod router;
pub mod runtime_config;
pub mod scaling;
pub mod server;
pub mod spin_apis;
pub mod spin_headers;
pub mod telemetry;
pub mod tls;
pub mod transform_cmd;
pub mod variables;
pub mod wagi;
pub mod watch;
