//! Integration tests: real guest components, a real `trib`, real HTTP.
//!
//! Guests live in `tests/guests` (their own workspace, built for
//! `wasm32-wasip2` once per test process by [`support::guests`]); each test
//! starts `trib up` on `127.0.0.1:0` and talks to it over loopback.

mod app;
mod build;
mod compose;
mod crash;
mod cron_trigger;
mod dashboard;
mod files_env;
mod hardening;
mod host_apis;
mod ingest;
mod kube_scaffold;
mod manifests;
mod mqtt_api;
mod mysql;
mod outbound;
mod pipeline;
mod postgres;
mod postgres_old;
mod redis_api;
mod redis_trigger;
mod registry;
mod replicas;
mod reports;
mod rollups;
mod runtime_config;
mod scaling;
mod scheduled_reports;
mod sdk_generations;
mod segment_compat;
mod serving;
mod sockets;
mod spin_cli;
mod spin_parity;
mod support;
mod traces;
mod wagi;
mod watch;
