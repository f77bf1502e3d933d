//! A manifest turned into something that serves: a router in front of one
//! lazily loaded [`ComponentSlot`] per component, behind admission control.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;

use crate::admission::{Admission, QueueSettings};
use crate::engine::compile_cache::CompileCache;
use crate::engine::loader::{LoadError, check_source, component_bytes};
use crate::engine::{EngineSettings, build_engine};
use crate::host::linker;
use crate::loader::{Loader, allowed_hosts};
use crate::manifest::App;
use crate::manifest::HttpExecutor;
use crate::outbound::AppHandle;
use crate::router::Router;
use crate::runtime_config::RuntimeConfig;
use crate::scaling::ComponentSlot;
use crate::spin_apis::key_value::KeyValueStores;
use crate::spin_apis::mysql::MysqlPools;
use crate::spin_apis::outbound_redis::RedisPools;
use crate::spin_apis::postgres::PostgresPools;
use crate::spin_apis::sqlite::Databases;
use crate::variables::Providers;

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
    pub sqlite_statements: Vec<crate::spin_apis::sqlite::StartupSql>,
    /// Guests' stdout and stderr: log files and which are echoed.
    pub output: crate::guest_output::OutputSettings,
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
            output: crate::guest_output::OutputSettings::default(),
        }
    }
}

/// An app ready to serve.
pub struct LoadedApp {
    app: App,
    router: Router,
    /// Components by ID (only those reachable by a trigger).
    components: HashMap<String, Arc<ComponentSlot>>,
    /// `static_response` triggers by their route key.
    static_responses: HashMap<String, crate::manifest::StaticResponse>,
    /// Shared with the apps that replace this one (`trib watch`), so old
    /// and new requests count against one instance pool.
    admission: Arc<Admission>,
    engine: Engine,
    max_request_body: u64,
    max_instance_memory: usize,
    request_timeout: Option<Duration>,
    /// Lets chained requests find this app once it is shared.
    handle: AppHandle,
    /// The app's key-value stores (for `--key-value`).
    key_value: Arc<KeyValueStores>,
    /// What a reload keeps (stores, pools, compile cache), so reloading
    /// loses no data and no connections.
    kept: Kept,
    /// `[[trigger.redis]]` subscriptions and their loaded handlers.
    redis_triggers: crate::redis_trigger::RedisTriggers,
    /// `[[trigger.cron]]` schedules and their loaded handlers.
    cron_triggers: crate::cron_trigger::CronTriggers,
}

impl LoadedApp {
    /// Shares the app and lets its components chain requests to each other.
    pub fn into_shared(self) -> Arc<Self> {
        let app = Arc::new(self);
        let chain: Arc<dyn crate::outbound::Chain> = app.clone();
        app.handle.bind(Arc::downgrade(&chain));
        app
    }

    /// `application.name`.
    pub fn name(&self) -> &str {
        &self.app.name
    }

    /// `application.version`.
    pub fn version(&self) -> Option<&str> {
        self.app.version.as_deref()
    }

    /// The static response a route key leads to, if it is a
    /// `static_response` trigger rather than a component.
    pub fn static_response(&self, key: &str) -> Option<&crate::manifest::StaticResponse> {
        self.static_responses.get(key)
    }

    /// Routes to component IDs.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The slot of a component a trigger serves.
    pub fn component(&self, id: &str) -> Option<&Arc<ComponentSlot>> {
        self.components.get(id)
    }

    /// Every served component's slot.
    pub fn components(&self) -> impl Iterator<Item = &Arc<ComponentSlot>> {
        self.components.values()
    }

    /// The shared request pool and its queue.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The engine (for the epoch ticker).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Largest request body accepted, in bytes.
    pub fn max_request_body(&self) -> u64 {
        self.max_request_body
    }

    /// Linear-memory limit per instance, in bytes.
    pub fn max_instance_memory(&self) -> usize {
        self.max_instance_memory
    }

    /// Wall-clock limit for producing a response.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }

    /// Writes `--key-value` pairs into the `default` store before serving,
    /// overwriting what is there, as `spin up` does.
    pub async fn set_default_key_values(&self, pairs: &[(String, String)]) -> anyhow::Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let access = crate::spin_apis::key_value::KeyValueAccess::new(
            &["default".to_owned()],
            self.key_value.clone(),
        );
        let store = access
            .open("default")
            .map_err(|e| anyhow::anyhow!("--key-value: cannot open the default store: {e}"))?;
        for (key, value) in pairs {
            store
                .set(key.clone(), value.clone().into_bytes())
                .await
                .map_err(|e| anyhow::anyhow!("--key-value {key}: {e}"))?;
        }
        Ok(())
    }

    /// Whether the app has HTTP triggers (and so needs a listener).
    pub fn has_http_triggers(&self) -> bool {
        !self.app.http_triggers.is_empty()
    }

    /// The app's Redis triggers.
    pub fn redis_triggers(&self) -> &crate::redis_trigger::RedisTriggers {
        &self.redis_triggers
    }

    /// The app's cron triggers.
    pub fn cron_triggers(&self) -> &crate::cron_trigger::CronTriggers {
        &self.cron_triggers
    }
}

/// The parts of a running app that the app replacing it on a reload
/// (`trib watch`) takes over rather than making anew: the stores (an
/// in-memory store keeps its data), the connection pools and the compile
/// cache. The runtime config is read once, so what it defines stays valid.
#[derive(Clone)]
struct Kept {
    cache: Arc<CompileCache>,
    sqlite: Arc<Databases>,
    http_clients: crate::outbound::Clients,
    postgres: Arc<PostgresPools>,
    redis: Arc<RedisPools>,
    mysql: Arc<MysqlPools>,
}

/// Fails, naming the import, if a component imports an interface the
/// host does not link (core modules get theirs from the WASI adapter).
pub(crate) fn check_imports(
    component: &crate::manifest::Component,
    bytes: &[u8],
) -> Result<(), LoadError> {
    if !wasmparser::Parser::is_component(bytes) {
        return Ok(());
    }
    let err = |message: String| LoadError::Component {
        component: component.id.clone(),
        message,
    };
    let imports = crate::engine::imports::component_imports(bytes)
        .map_err(|e| err(format!("is not a valid component: {e}")))?;
    crate::engine::imports::check(&imports).map_err(|e| err(e.to_string()))
}

/// Fails, saying what to build instead, unless a Wagi component is a WASI
/// command (a component exporting `wasi:cli/run@0.2`, or a core module
/// exporting `_start` or that interface's `run`).
fn check_command(component: &crate::manifest::Component, bytes: &[u8]) -> Result<(), LoadError> {
    let exports = crate::engine::imports::exports(bytes).unwrap_or_default();
    let command = if wasmparser::Parser::is_component(bytes) {
        exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2"))
    } else {
        // `_start` (wasip1, given the command adapter) or the run export
        // of a module linked for wasip2 without componentization.
        exports
            .iter()
            .any(|e| e == "_start" || e.starts_with("wasi:cli/run@0.2") && e.ends_with("#run"))
    };
    if command {
        return Ok(());
    }
    Err(LoadError::Component {
        component: component.id.clone(),
        message: "has executor = { type = \"wagi\" } but does not export wasi:cli/run@0.2 (a component) or _start (a module): build it as a program with a main function, or drop the executor to serve it as a wasi:http handler".into(),
    })
}

/// Fails on a `--follow` naming a component the app does not define, as
/// Spin does, listing the ones it does.
fn check_follow(app: &App, follow: &crate::guest_output::Follow) -> anyhow::Result<()> {
    let defined: std::collections::HashSet<&str> =
        app.components.keys().map(String::as_str).collect();
    let unknown = follow.unknown(&defined);
    if unknown.is_empty() {
        return Ok(());
    }
    let mut known: Vec<&str> = defined.into_iter().collect();
    known.sort_unstable();
    anyhow::bail!(
        "--follow names component(s) the application does not define: {}; it defines: {}",
        unknown.join(", "),
        known.join(", ")
    )
}

/// How each HTTP-triggered component is called. One component serves one
/// executor: an instance is either a `wasi:http` handler or a command.
fn executors(app: &App) -> Result<HashMap<&str, HttpExecutor>, LoadError> {
    let mut executors: HashMap<&str, HttpExecutor> = HashMap::new();
    for trigger in &app.http_triggers {
        match executors.get(trigger.component.as_str()) {
            Some(seen) if *seen != trigger.executor => {
                return Err(LoadError::Component {
                    component: trigger.component.clone(),
                    message: "is used by HTTP triggers with different executors (or Wagi argv); give each executor its own component".into(),
                });
            }
            Some(_) => {}
            None => {
                executors.insert(&trigger.component, trigger.executor.clone());
            }
        }
    }
    Ok(executors)
}

/// Builds the router and component slots of `app`. Components with
/// `min_warm > 0` are loaded now; the rest on their first request. Every
/// component's Wasm file must exist and be Wasm, so a typo in `source`
/// fails startup rather than the first request.
pub fn load(app: App, settings: &RuntimeSettings) -> anyhow::Result<LoadedApp> {
    assemble(app, settings, None, &|_| false)
}

/// Loads `app` (the manifest read again) to replace `previous`, which keeps
/// serving meanwhile (`trib watch`). The new app shares `previous`'s engine
/// (so its epoch ticker), instance pool and queue, compile cache, stores
/// and connection pools. The `changed` components, and every component
/// `previous` has loaded, are compiled and linked now, so the first request
/// after the swap pays no cold start. `settings` should run no `--sqlite`
/// statements and truncate no logs again. Any error leaves `previous` as
/// it was.
pub fn reload(
    app: App,
    settings: &RuntimeSettings,
    previous: &LoadedApp,
    changed: &[String],
) -> anyhow::Result<LoadedApp> {
    let warm = |id: &str| {
        changed.iter().any(|c| c == id) || previous.component(id).is_some_and(|s| s.is_loaded())
    };
    assemble(app, settings, Some(previous), &warm)
}

/// [`load`] and [`reload`]: `previous` is the app being replaced, and
/// `warm` says which components to load before serving.
fn assemble(
    app: App,
    settings: &RuntimeSettings,
    previous: Option<&LoadedApp>,
    warm: &dyn Fn(&str) -> bool,
) -> anyhow::Result<LoadedApp> {
    if app.http_triggers.is_empty() && app.redis_triggers.is_empty() && app.cron_triggers.is_empty()
    {
        return Err(LoadError::NoHttpTriggers(app.manifest_path.clone()).into());
    }
    let executors = executors(&app)?;
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
    check_follow(&app, &settings.output.follow)?;
    settings.output.prepare()?;
    let variables = crate::variables::resolve(&app, &settings.providers)?;
    let (key_value, kept) = match previous {
        Some(previous) => {
            check_store_labels(&app, &previous.key_value, &previous.kept.sqlite)?;
            (previous.key_value.clone(), previous.kept.clone())
        }
        None => {
            let key_value = Arc::new(KeyValueStores::for_app(&app, &settings.runtime_config)?);
            let sqlite = Arc::new(Databases::for_app(&app, &settings.runtime_config)?);
            for statement in &settings.sqlite_statements {
                sqlite.run_startup_sql(statement)?;
            }
            let blocked = &settings.runtime_config.blocked_networks;
            let kept = Kept {
                cache: Arc::new(CompileCache::new(settings.cache_dir.clone())),
                sqlite,
                http_clients: crate::outbound::Clients::new(&settings.runtime_config),
                postgres: Arc::new(PostgresPools::default().with_blocked(blocked.clone())),
                redis: Arc::new(RedisPools::default().with_blocked(blocked.clone())),
                mysql: Arc::new(MysqlPools::default().with_blocked(blocked.clone())),
            };
            (key_value, kept)
        }
    };
    for component in app.components.values() {
        allowed_hosts(&variables, component)?;
    }
    let handle = AppHandle::default();
    let engine = match previous {
        Some(previous) => previous.engine.clone(),
        None => build_engine(&settings.engine)?,
    };
    let cache = kept.cache.clone();
    for component in app.components.values() {
        crate::files::mounts(&app.root, component)?;
    }
    let loader = Arc::new(Loader {
        root: app.root.clone(),
        http_clients: kept.http_clients.clone(),
        handle: handle.clone(),
        variables,
        key_value: key_value.clone(),
        sqlite: kept.sqlite.clone(),
        postgres: kept.postgres.clone(),
        redis: kept.redis.clone(),
        mysql: kept.mysql.clone(),
        linker: linker(&engine)?,
        engine: engine.clone(),
        cache: cache.clone(),
        max_memory: settings.engine.max_instance_memory,
        request_timeout: settings.request_timeout,
        output: settings.output.clone(),
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
        let executor = executors
            .get(component.id.as_str())
            .cloned()
            .unwrap_or_default();
        check_source(component)?;
        // Composition errors stop startup rather than the first request
        // (the result is cached for the component's first load), and so
        // does an import the host lacks.
        let bytes = if component.dependencies.is_empty() {
            std::fs::read(&component.source).map_err(|source| LoadError::Source {
                component: component.id.clone(),
                path: component.source.display().to_string(),
                source,
            })?
        } else {
            component_bytes(component, cache.dir(), executor.entry())?
        };
        check_imports(component, &bytes)?;
        if matches!(executor, HttpExecutor::Wagi { .. }) {
            check_command(component, &bytes)?;
        }
        let policy = settings.runtime_config.scaling(component);
        let slot = ComponentSlot::new(
            component.clone(),
            executor.clone(),
            policy.clone(),
            loader.clone(),
        );
        components.insert(component.id.clone(), Arc::new(slot));
    }
    for slot in components
        .values()
        .filter(|s| s.policy().min_warm > 0 || warm(s.id()))
    {
        let ready = loader.load(&app.components[slot.id()], slot.policy(), slot.executor())?;
        slot.preload(Arc::new(ready));
    }
    let redis_triggers = crate::redis_trigger::RedisTriggers::prepare(
        &app,
        &loader,
        &settings.runtime_config,
        |id| components.get(id).and_then(|s| s.concurrency().cloned()),
    )?;
    let cron_triggers = crate::cron_trigger::CronTriggers::prepare(
        &app,
        &loader,
        &settings.runtime_config,
        |id| components.get(id).and_then(|s| s.concurrency().cloned()),
    )?;
    let admission = match previous {
        Some(previous) => previous.admission.clone(),
        None => {
            // Spares may use half of the pool's headroom (see `build_engine`).
            crate::instances::set_spare_budget(
                crate::engine::pool_headroom(settings.engine.max_instances) as usize / 2,
            );
            Arc::new(Admission::new(
                settings.engine.max_instances as usize,
                settings.queue.clone(),
            ))
        }
    };
    let static_responses = app
        .http_triggers
        .iter()
        .filter_map(|t| Some((t.component.clone(), t.static_response.clone()?)))
        .collect();
    Ok(LoadedApp {
        app,
        router,
        components,
        static_responses,
        admission,
        engine,
        max_request_body: settings.max_request_body,
        max_instance_memory: settings.engine.max_instance_memory,
        request_timeout: settings.request_timeout,
        handle,
        key_value,
        kept,
        redis_triggers,
        cron_triggers,
    })
}

/// Fails, naming the label, if a component of a reloaded manifest uses a
/// store or database the (unchanged) runtime config does not define.
fn check_store_labels(
    app: &App,
    key_value: &KeyValueStores,
    sqlite: &Databases,
) -> anyhow::Result<()> {
    for component in app.components.values() {
        if let Some(label) = component
            .key_value_stores
            .iter()
            .find(|l| !key_value.contains(l))
        {
            anyhow::bail!(
                "component {:?} uses key-value store {label:?}, which is not defined: add [key_value_store.{label}] to the runtime config (--runtime-config-file)",
                component.id
            );
        }
        if let Some(label) = component
            .sqlite_databases
            .iter()
            .find(|l| sqlite.get(l).is_none())
        {
            anyhow::bail!(
                "component {:?} uses SQLite database {label:?}, which is not defined: add [sqlite_database.{label}] to the runtime config (--runtime-config-file)",
                component.id
            );
        }
    }
    Ok(())
}
