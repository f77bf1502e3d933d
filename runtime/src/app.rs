//! A manifest turned into something that serves: a router in front of one
//! lazily loaded [`ComponentSlot`] per component, behind admission control.

use std::collections::HashMap;

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::{Component as WasmComponent, Linker};
use wasmtime_wasi_http::handler::ProxyPre;

use crate::admission::{Admission, QueueSettings};
use crate::allowed_hosts::AllowedHosts;
use crate::engine::compile_cache::CompileCache;
use crate::engine::componentize::{self, WasmKind};
use crate::engine::{EngineSettings, build_engine};
use crate::host::{HostState, InstanceTemplate, linker};
use crate::instances::{ComponentHandler, ComponentInstances, InstancePolicy};
use crate::manifest::{App, Component};
use crate::outbound::{AppHandle, HttpClient, OutboundHttp};
use crate::router::Router;
use crate::runtime_config::KeyValueStoreConfig;
use crate::runtime_config::{RuntimeConfig, ScalingPolicy};
use crate::scaling::ComponentSlot;
use crate::spin_apis::SpinCtx;
use crate::spin_apis::key_value::{KeyValueAccess, KeyValueStores, SqliteStore};
use crate::spin_apis::postgres::{PostgresAccess, PostgresPools};
use crate::spin_apis::sqlite::{AttachPolicy, Database, Databases, SqliteAccess};
use crate::variables::{Providers, Resolved};

/// Runtime settings that come from flags rather than the manifest.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Engine and allocator settings.
    pub engine: EngineSettings,
    /// Where compiled components are cached (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    /// Wall-clock limit for producing a response.
    pub request_timeout: Option<Duration>,
    /// The queue in front of the instance pool.
    pub queue: QueueSettings,
    /// Largest request body accepted, in bytes.
    pub max_request_body: u64,
    /// Per-component settings from `runtime-config.toml`.
    pub runtime_config: RuntimeConfig,
    /// Where variable values come from.
    pub providers: Providers,
    /// `--sqlite` statements to run before serving.
    pub sqlite_statements: Vec<String>,
}

/// Default request body limit: large enough for bulk uploads, small enough
/// that one client cannot fill memory through a buffering guest.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 100 << 20;

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            engine: EngineSettings::default(),
            cache_dir: CompileCache::default_dir(),
            request_timeout: None,
            queue: QueueSettings::default(),
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
            runtime_config: RuntimeConfig::default(),
            providers: Providers::default(),
            sqlite_statements: Vec::new(),
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

/// One component compiled, linked and ready to serve.
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
    /// Components by ID (only those reachable by a trigger).
    pub components: HashMap<String, Arc<ComponentSlot>>,
    /// The shared request pool and its queue.
    pub admission: Admission,
    /// Compile-cache counters.
    pub cache: Arc<CompileCache>,
    /// The engine; kept for the epoch ticker.
    pub engine: Engine,
    /// Largest request body accepted, in bytes.
    pub max_request_body: u64,
    /// Linear-memory limit per instance, in bytes.
    pub max_instance_memory: usize,
    /// Wall-clock limit for producing a response.
    pub request_timeout: Option<Duration>,
    /// Lets chained requests find this app once it is shared.
    handle: AppHandle,
}

impl LoadedApp {
    /// Shares the app and lets its components chain requests to each other.
    pub fn into_shared(self) -> Arc<Self> {
        let app = Arc::new(self);
        app.handle.bind(&app);
        app
    }
}

/// Problems that stop an app or a component from loading, each naming the
/// component.
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

/// Builds the router and component slots of `app`. Components with
/// `min_warm > 0` are loaded now; the rest on their first request. Every
/// component's Wasm file must exist and be Wasm, so a typo in `source`
/// fails startup rather than the first request.
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
    let variables = crate::variables::resolve(&app, &settings.providers)?;
    let key_value = Arc::new(key_value_stores(&app, &settings.runtime_config)?);
    let sqlite = Arc::new(sqlite_databases(&app, &settings.runtime_config)?);
    for statement in &settings.sqlite_statements {
        sqlite.run_startup_statement(statement)?;
    }
    for component in app.components.values() {
        allowed_hosts(&variables, component)?;
    }
    let handle = AppHandle::default();
    let engine = build_engine(&settings.engine)?;
    let cache = Arc::new(CompileCache::new(settings.cache_dir.clone()));
    for component in app.components.values() {
        crate::files::mounts(&app.root, component)?;
    }
    let loader = Arc::new(Loader {
        root: app.root.clone(),
        http_client: crate::outbound::client()?,
        handle: handle.clone(),
        variables,
        key_value,
        sqlite,
        postgres: Arc::default(),
        linker: linker(&engine)?,
        engine: engine.clone(),
        cache: cache.clone(),
        max_memory: settings.engine.max_instance_memory,
        request_timeout: settings.request_timeout,
    });
    let served: std::collections::HashSet<&str> = app
        .http_triggers
        .iter()
        .map(|t| t.component.as_str())
        .collect();
    let mut components = HashMap::new();
    for component in app
        .components
        .values()
        .filter(|c| served.contains(c.id.as_str()))
    {
        check_source(component)?;
        if !component.dependencies.is_empty() {
            // Composition errors stop startup rather than the first request;
            // the result is cached for the component's first load.
            component_bytes(component, cache.dir())?;
        }
        let policy = settings.runtime_config.scaling(&component.id);
        let slot = ComponentSlot::new(component.clone(), policy.clone(), loader.clone());
        components.insert(component.id.clone(), Arc::new(slot));
    }
    for slot in components.values().filter(|s| s.policy().min_warm > 0) {
        let ready = loader.load(&app.components[slot.id()], slot.policy())?;
        slot.preload(Arc::new(ready));
    }
    let admission = Admission::new(
        settings.engine.max_instances as usize,
        settings.queue.clone(),
    );
    Ok(LoadedApp {
        app,
        router,
        components,
        admission,
        cache,
        engine,
        max_request_body: settings.max_request_body,
        max_instance_memory: settings.engine.max_instance_memory,
        request_timeout: settings.request_timeout,
        handle,
    })
}

/// The app's key-value stores: the runtime config's, plus `default` under
/// the app's `.spin/` directory (where `spin up` keeps it). A component that
/// names an undefined store stops startup.
fn key_value_stores(app: &App, config: &RuntimeConfig) -> anyhow::Result<KeyValueStores> {
    let stores = config
        .key_value_stores
        .iter()
        .map(|(label, store)| {
            let KeyValueStoreConfig::Spin { path } = store;
            (label.clone(), Arc::new(SqliteStore::new(path.clone())))
        })
        .collect();
    let stores = KeyValueStores::new(stores, app.root.join(".spin/sqlite_key_value.db"));
    for component in app.components.values() {
        for label in &component.key_value_stores {
            if !stores.contains(label) {
                anyhow::bail!(
                    "component {:?} uses key-value store {label:?}, which is not defined: add [key_value_store.{label}] to the runtime config (--runtime-config-file)",
                    component.id
                );
            }
        }
    }
    if app
        .components
        .values()
        .any(|c| c.key_value_stores.iter().any(|l| l == "default"))
        && let Some(path) = stores.get("default").and_then(|s| s.path())
    {
        tracing::info!(path = %path.display(), "storing default key-value data");
    }
    Ok(stores)
}

/// The app's SQLite databases: the runtime config's, plus `default` under
/// the app's `.spin/` directory. A component naming an undefined database
/// stops startup.
fn sqlite_databases(app: &App, config: &RuntimeConfig) -> anyhow::Result<Databases> {
    let mut dbs = std::collections::HashMap::new();
    for (label, db) in &config.sqlite_databases {
        let attach = if db.allow_attach_file {
            let root = app.root.canonicalize().with_context(|| {
                format!("cannot resolve the app directory {}", app.root.display())
            })?;
            AttachPolicy::InsideApp(root)
        } else {
            AttachPolicy::Refuse
        };
        dbs.insert(
            label.clone(),
            Arc::new(Database::new(db.path.clone(), attach)?),
        );
    }
    let dbs = Databases::new(dbs, app.root.join(".spin/sqlite_db.db"))?;
    for component in app.components.values() {
        for label in &component.sqlite_databases {
            if dbs.get(label).is_none() {
                anyhow::bail!(
                    "component {:?} uses SQLite database {label:?}, which is not defined: add [sqlite_database.{label}] to the runtime config (--runtime-config-file)",
                    component.id
                );
            }
        }
    }
    Ok(dbs)
}

/// The component's `allowed_outbound_hosts`, templates expanded.
fn allowed_hosts(variables: &Resolved, component: &Component) -> Result<AllowedHosts, LoadError> {
    let err = |message: String| LoadError::Component {
        component: component.id.clone(),
        message,
    };
    let expanded = component
        .allowed_outbound_hosts
        .iter()
        .map(|entry| variables.expand(entry))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("allowed_outbound_hosts: {e}")))?;
    AllowedHosts::parse(&expanded).map_err(|e| err(e.to_string()))
}

fn check_source(component: &Component) -> Result<(), LoadError> {
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

/// Compiles (or loads from cache), links and wraps components on demand.
pub struct Loader {
    root: PathBuf,
    http_client: HttpClient,
    handle: AppHandle,
    variables: Resolved,
    key_value: Arc<KeyValueStores>,
    sqlite: Arc<Databases>,
    postgres: Arc<PostgresPools>,
    engine: Engine,
    linker: Linker<HostState>,
    cache: Arc<CompileCache>,
    max_memory: usize,
    request_timeout: Option<Duration>,
}

impl Loader {
    /// Loads `component` with its scaling `policy`.
    pub fn load(
        &self,
        component: &Component,
        policy: &ScalingPolicy,
    ) -> Result<LoadedComponent, LoadError> {
        let started = Instant::now();
        let (compiled, cached) = compile(&self.engine, &self.cache, component)?;
        let (pre, abi) = link(&self.linker, &compiled, &component.id)?;
        let allowed = allowed_hosts(&self.variables, component)?;
        let spin = SpinCtx {
            variables: self.variables.for_component(component),
            key_value: KeyValueAccess::new(&component.key_value_stores, self.key_value.clone()),
            sqlite: SqliteAccess::new(
                &component.id,
                &component.sqlite_databases,
                self.sqlite.clone(),
            ),
            postgres: PostgresAccess::new(
                &component.id,
                Arc::new(allowed.clone()),
                self.postgres.clone(),
            ),
        };
        let outbound = Arc::new(OutboundHttp::new(
            component.id.as_str().into(),
            allowed,
            self.http_client.clone(),
            self.handle.clone(),
        ));
        let mounts =
            crate::files::mounts(&self.root, component).map_err(|e| LoadError::Component {
                component: component.id.clone(),
                message: e.to_string(),
            })?;
        let template = InstanceTemplate::new(component, self.max_memory, spin, outbound, mounts);
        let instances = InstancePolicy {
            max_requests_per_instance: policy.max_requests_per_instance,
            max_concurrent_per_instance: if abi == HttpAbi::P3 {
                policy.max_concurrent_requests_per_instance
            } else {
                1
            },
            request_timeout: self.request_timeout,
            ..InstancePolicy::default()
        };
        let handler = ComponentInstances::handler(self.engine.clone(), pre, template, instances);
        tracing::info!(
            component = %component.id,
            abi = ?abi,
            cached,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component loaded"
        );
        crate::metrics::component_loaded(&component.id, cached);
        Ok(LoadedComponent { handler, abi })
    }
}

fn compile(
    engine: &Engine,
    cache: &CompileCache,
    component: &Component,
) -> Result<(WasmComponent, bool), LoadError> {
    let bytes = component_bytes(component, cache.dir())?;
    cache
        .load(engine, &bytes)
        .map_err(|e| LoadError::Component {
            component: component.id.clone(),
            message: e.to_string(),
        })
}

/// The component to compile: the file, componentized if it is a core
/// module, composed with its dependencies if it has any.
fn component_bytes(component: &Component, cache_dir: Option<&Path>) -> Result<Vec<u8>, LoadError> {
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
    crate::engine::compose::compose(component, bytes, cache_dir).map_err(|e| err(e.to_string()))
}

fn link(
    linker: &Linker<HostState>,
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
