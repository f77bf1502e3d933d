//! Turns core modules into components at load time, as Spin does.
//!
//! Guests built for `wasm32-wasip1` (older SDKs, other languages) or linked
//! without `wasm-component-ld` are core modules that carry their component
//! type in a custom section and import `wasi_snapshot_preview1`. `wit-component`
//! encodes them as components, with the WASI preview1 adapter that its
//! provider crate ships bridging preview1 to preview2.

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

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

/// Encodes a core module with an embedded component type as a component.
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, ComponentizeError> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|e| {
            e.adapter(
                "wasi_snapshot_preview1",
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut e| e.encode())
        .map_err(ComponentizeError)
}
