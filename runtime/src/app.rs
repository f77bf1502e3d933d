//! A manifest turned into something that serves: compiled, linked components
//! behind a router.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime::component::Component as WasmComponent;
use wasmtime_wasi_http::handler::ProxyPre;

use crate::engine::compile_cache::CompileCache;
use crate::engine::componentize::{self, WasmKind};
use crate::engine::{EngineSettings, build_engine};
use crate::host::{HostState, InstanceTemplate, linker};
use crate::instances::{ComponentHandler, ComponentInstances, InstancePolicy};
use crate::manifest::{App, Component};
use crate::router::Router;

/// Runtime settings that come from flags rather than the manifest.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Engine and allocator settings.
    pub engine: EngineSettings,
    /// Where compiled components are cached (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Instance reuse and time limits, for every component.
    pub instances: InstancePolicy,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            engine: EngineSettings::default(),
            cache_dir: CompileCache::default_dir(),
            instances: InstancePolicy::default(),
        }
    }
}

/// Which WASI HTTP generation a component speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAbi {
    /// `wasi:http/incoming-handler@0.2.x`.
    P2,
    /// `wasi:http/handler@0.3.x`.
    P3,
}

/// One component ready to serve.
pub struct LoadedComponent {
    /// The request scheduler for this component.
    pub handler: ComponentHandler,
    /// The WASI HTTP generation it exports.
    pub abi: HttpAbi,
}

/// An app ready to serve.
pub struct LoadedApp {
    /// The validated manifest.
    pub app: App,
    /// Routes to component IDs.
    pub router: Router,
    /// Components by ID.
    pub components: HashMap<String, LoadedComponent>,
    /// Compile-cache counters.
    pub cache: Arc<CompileCache>,
    /// The engine; kept for the epoch ticker.
    pub engine: Engine,
}

/// Problems that stop an app from loading, each naming the component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest has no HTTP triggers, so there is nothing to serve.
    #[error("{}: the app has no [[trigger.http]] entries, so there is nothing to serve", .0.display())]
    NoHttpTriggers(PathBuf),
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

/// Compiles and links every component of `app` and builds its router.
pub fn load(app: App, settings: &RuntimeSettings) -> anyhow::Result<LoadedApp> {
    if app.http_triggers.is_empty() {
        return Err(LoadError::NoHttpTriggers(app.manifest_path.clone()).into());
    }
    let (router, duplicates) = Router::build(
        &app.http_base,
        app.http_triggers
            .iter()
            .map(|t| (t.component.as_str(), &t.route)),
    )?;
    for dup in duplicates {
        tracing::warn!(
            route = %dup.route,
            unreachable = %dup.replaced,
            serving = %dup.effective,
            "duplicate route: the later trigger wins"
        );
    }
    let engine = build_engine(&settings.engine)?;
    let linker = linker(&engine).context("cannot set up host interfaces")?;
    let cache = Arc::new(CompileCache::new(settings.cache_dir.clone()));
    let mut components = HashMap::new();
    let served: std::collections::HashSet<&str> = app
        .http_triggers
        .iter()
        .map(|t| t.component.as_str())
        .collect();
    for component in app
        .components
        .values()
        .filter(|c| served.contains(c.id.as_str()))
    {
        let started = Instant::now();
        let (compiled, cached) = compile(&engine, &cache, component)?;
        let (pre, abi) = link(&linker, &compiled, &component.id)?;
        let template = InstanceTemplate::new(component, settings.engine.max_instance_memory);
        let handler =
            ComponentInstances::handler(engine.clone(), pre, template, settings.instances.clone());
        tracing::info!(
            component = %component.id,
            abi = ?abi,
            cached,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component ready"
        );
        components.insert(component.id.clone(), LoadedComponent { handler, abi });
    }
    Ok(LoadedApp {
        app,
        router,
        components,
        cache,
        engine,
    })
}

fn compile(
    engine: &Engine,
    cache: &CompileCache,
    component: &Component,
) -> Result<(WasmComponent, bool), LoadError> {
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
            componentize::componentize(&bytes).map_err(|e| err(e.to_string()))?
        }
        WasmKind::Unknown => {
            return Err(LoadError::NotWasm {
                component: component.id.clone(),
                path,
            });
        }
    };
    cache.load(engine, &bytes).map_err(|e| err(e.to_string()))
}

fn link(
    linker: &wasmtime::component::Linker<HostState>,
    compiled: &WasmComponent,
    id: &str,
) -> Result<(ProxyPre<HostState>, HttpAbi), LoadError> {
    let err = |message: String| LoadError::Component {
        component: id.to_owned(),
        message,
    };
    let pre = linker.instantiate_pre(compiled).map_err(|e| {
        err(format!(
            "imports something this host does not provide: {e:#}"
        ))
    })?;
    if let Ok(p3) = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
        return Ok((ProxyPre::P3(p3), HttpAbi::P3));
    }
    match wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre) {
        Ok(p2) => Ok((ProxyPre::P2(p2), HttpAbi::P2)),
        Err(e) => Err(err(format!(
            "exports neither wasi:http/handler@0.3 nor wasi:http/incoming-handler@0.2: {e:#}"
        ))),
    }
}
