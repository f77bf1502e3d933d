//! The `trap` transform, for tests only (a `tributary:pipeline/transformer`
//! component): panics (a trap, since `wasm32` aborts on panic) when an
//! event's `properties.trap` is `true`; otherwise passes every event
//! through unchanged. Settings: `error` (optional): when given, the call
//! returns `err(error)` instead, to test a stage that cannot run.

pub mod trap;

transform_common::transformer!(crate::trap::run);
