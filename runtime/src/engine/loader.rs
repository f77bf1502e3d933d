//! From a manifest component to linked code: read the file, componentize a
//! core module, compose dependencies, compile (or load from the compile
//! cache), and link against the host's interfaces.

use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::{Component as WasmComponent, Linker};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::handler::ProxyPre;

use crate::engine::compile_cache::CompileCache;
use crate::engine::componentize::{self, Entry, WasmKind};
use crate::host::HostState;
use crate::manifest::Component;

/// Which WASI HTTP generation a component speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAbi {
    /// `wasi:http/incoming-handler@0.2.x`.
    P2,
    /// `wasi:http/handler@0.3.x`.
    P3,
    /// Not a handler: a WASI command (`wasi:cli/run@0.2.x`) run per
    /// request by the Wagi executor.
    Command,
}

/// Problems that stop an app or a component from loading, each naming the
/// component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest has no triggers, so there is nothing to run.
    #[error("{}: the app has no [[trigger.http]], [[trigger.redis]] or [[trigger.cron]] entries, so there is nothing to run", .0.display())]
    NoHttpTriggers(std::path::PathBuf),
    /// A route could not be built.
    #[error(transparent)]
    Route(#[from] crate::router::RouteError),
    /// The component's Wasm file is missing or unreadable.
    #[error(
        "component {component:?}: cannot read {path}: {source} (run `trib build` if it is built from source)"
    )]
    Source {
        /// The component ID.
        component: String,
        /// The path from `source`.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a Wasm binary.
    #[error("component {component:?}: {path} is not a WebAssembly binary")]
    NotWasm {
        /// The component ID.
        component: String,
        /// The path from `source`.
        path: String,
    },
    /// Compiling, componentizing or linking failed.
    #[error("component {component:?}: {message}")]
    Component {
        /// The component ID.
        component: String,
        /// What went wrong.
        message: String,
    },
}

/// Fails unless the component's file exists and is Wasm, so a typo in
/// `source` stops startup rather than the first request.
pub fn check_source(component: &Component) -> Result<(), LoadError> {
    use std::io::Read as _;
    let path = component.source.display().to_string();
    let mut header = [0u8; 8];
    std::fs::File::open(&component.source)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|source| LoadError::Source {
            component: component.id.clone(),
            path: path.clone(),
            source,
        })?;
    if componentize::kind(&header) == WasmKind::Unknown {
        return Err(LoadError::NotWasm {
            component: component.id.clone(),
            path,
        });
    }
    Ok(())
}

/// The compiled component (and whether the cache served it).
pub fn compile(
    engine: &Engine,
    cache: &CompileCache,
    component: &Component,
    entry: Entry,
) -> Result<(WasmComponent, bool), LoadError> {
    let bytes = component_bytes(component, cache.dir(), entry)?;
    cache
        .load(engine, &bytes)
        .map_err(|e| LoadError::Component {
            component: component.id.clone(),
            message: e.to_string(),
        })
}

/// The component to compile: the file, componentized (with the adapter
/// `entry` needs) if it is a core module, composed with its dependencies
/// if it has any.
pub fn component_bytes(
    component: &Component,
    cache_dir: Option<&Path>,
    entry: Entry,
) -> Result<Vec<u8>, LoadError> {
    let path = component.source.display().to_string();
    let bytes = std::fs::read(&component.source).map_err(|source| LoadError::Source {
        component: component.id.clone(),
        path: path.clone(),
        source,
    })?;
    let err = |message: String| LoadError::Component {
        component: component.id.clone(),
        message,
    };
    let bytes = match componentize::kind(&bytes) {
        WasmKind::Component => bytes,
        WasmKind::CoreModule => {
            tracing::info!(component = %component.id, "componentizing core module");
            componentize::componentize(&bytes, entry).map_err(|e| err(e.to_string()))?
        }
        WasmKind::Unknown => {
            return Err(LoadError::NotWasm {
                component: component.id.clone(),
                path,
            });
        }
    };
    let bytes = crate::engine::compose::compose(component, bytes, cache_dir)
        .map_err(|e| err(e.to_string()))?;
    // WASI release candidates Wasmtime links under the release's name.
    Ok(match crate::engine::wasi_rc::rename(&bytes) {
        std::borrow::Cow::Owned(renamed) => renamed,
        std::borrow::Cow::Borrowed(_) => bytes,
    })
}

/// Links `compiled` against the host and tells which HTTP generation it
/// exports.
pub fn link(
    linker: &Linker<HostState>,
    compiled: &WasmComponent,
    id: &str,
) -> Result<(ProxyPre<HostState>, HttpAbi), LoadError> {
    let pre = instance_pre(linker, compiled, id)?;
    if let Ok(p3) = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
        return Ok((ProxyPre::P3(p3), HttpAbi::P3));
    }
    match wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre) {
        Ok(p2) => Ok((ProxyPre::P2(p2), HttpAbi::P2)),
        Err(e) => Err(component_error(
            id,
            format!(
                "exports neither wasi:http/handler@0.3 nor wasi:http/incoming-handler@0.2: {e:#}"
            ),
        )),
    }
}

/// Links `compiled` as a WASI command (Wagi's executor runs its
/// `wasi:cli/run` once per request).
pub fn link_command(
    linker: &Linker<HostState>,
    compiled: &WasmComponent,
    id: &str,
) -> Result<CommandPre<HostState>, LoadError> {
    let pre = instance_pre(linker, compiled, id)?;
    CommandPre::new(pre).map_err(|e| {
        component_error(id, format!(
            "has executor = {{ type = \"wagi\" }} but does not export wasi:cli/run@0.2 (build it as a program with a main function): {e:#}"
        ))
    })
}

fn component_error(id: &str, message: String) -> LoadError {
    LoadError::Component {
        component: id.to_owned(),
        message,
    }
}

/// `compiled` linked against the host, or the import it lacks.
fn instance_pre(
    linker: &Linker<HostState>,
    compiled: &WasmComponent,
    id: &str,
) -> Result<wasmtime::component::InstancePre<HostState>, LoadError> {
    linker.instantiate_pre(compiled).map_err(|e| {
        component_error(
            id,
            format!("imports something this host does not provide: {e:#}"),
        )
    })
}
