//! Turns core modules into components at load time, as Spin does.
//!
//! Guests built for `wasm32-wasip1` (older SDKs, other languages) or linked
//! without `wasm-component-ld` are core modules that carry their component
//! type in a custom section and import `wasi_snapshot_preview1`. `wit-component`
//! encodes them as components, with the WASI preview1 adapter that its
//! provider crate ships bridging preview1 to preview2.

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

/// Why a core module could not be made into a component.
#[derive(Debug, thiserror::Error)]
#[error("cannot turn the core module into a component: {0:#}")]
pub struct ComponentizeError(anyhow::Error);

/// What kind of binary a `.wasm` file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A component: used as is.
    Component,
    /// A core module: needs [`componentize`].
    CoreModule,
    /// Neither (text format, truncated, not Wasm).
    Unknown,
}

/// Sniffs the Wasm header without parsing the rest.
pub fn kind(bytes: &[u8]) -> WasmKind {
    if wasmparser::Parser::is_component(bytes) {
        WasmKind::Component
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        WasmKind::CoreModule
    } else {
        WasmKind::Unknown
    }
}

/// How the component's host calls into it, which decides the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Through its exports (a `wasi:http` handler, a trigger's handler):
    /// the reactor adapter.
    Exports,
    /// As a program run once (Wagi): a module with `_start` gets the
    /// command adapter, which exports `wasi:cli/run` and calls it.
    Command,
}

/// Encodes a core module (with an embedded component type, if it has
/// one) as a component, with the adapter `entry` needs.
pub fn componentize(module: &[u8], entry: Entry) -> Result<Vec<u8>, ComponentizeError> {
    // The command adapter calls the module's `_start`; a module for
    // wasip2 exports `wasi:cli/run` itself and needs only the reactor one.
    let adapter = match entry {
        Entry::Command if exports_start(module) => WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        _ => WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|e| e.adapter("wasi_snapshot_preview1", adapter))
        .and_then(|mut e| e.encode())
        .map_err(ComponentizeError)
}

fn exports_start(module: &[u8]) -> bool {
    crate::engine::imports::exports(module).is_ok_and(|names| names.iter().any(|n| n == "_start"))
}
