//! Turns a manifest component into a request handler: the linked code from
//! [`crate::engine::loader`], plus what each of its instances gets from the
//! host (Spin's APIs, outbound HTTP, files) and the instance policy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::allowed_hosts::AllowedHosts;
use crate::engine::compile_cache::CompileCache;
use crate::engine::componentize::Entry;
use crate::engine::loader::{HttpAbi, LoadError, compile, link, link_command};
use crate::host::{HostState, InstanceTemplate};
use crate::instances::{ComponentHandler, ComponentInstances, InstancePolicy};
use crate::manifest::{Component, HttpExecutor};
use crate::outbound::{AppHandle, Clients, OutboundHttp};
use crate::outcome::RequestOutcome;
use crate::runtime_config::ScalingPolicy;
use crate::spin_apis::SpinCtx;
use crate::spin_apis::key_value::{KeyValueAccess, KeyValueStores};
use crate::spin_apis::mysql::{MysqlAccess, MysqlPools};
use crate::spin_apis::outbound_mqtt::MqttAccess;
use crate::spin_apis::outbound_redis::{RedisAccess, RedisPools};
use crate::spin_apis::postgres::{PostgresAccess, PostgresPools};
use crate::spin_apis::sqlite::{Databases, SqliteAccess};
use crate::variables::Resolved;
use crate::wagi::WagiHandler;

/// One component compiled, linked and ready to serve.
pub struct LoadedComponent {
    /// Runs the component's requests.
    pub handler: RequestHandler,
    /// The WASI HTTP generation it exports (or that it is a command).
    pub abi: HttpAbi,
}

/// How a component's requests run, by its trigger's `executor`.
pub enum RequestHandler {
    /// A `wasi:http` handler, scheduled onto instances.
    Http(ComponentHandler),
    /// A WASI command run once per request as a CGI program.
    Wagi(Box<WagiHandler>),
}

impl RequestHandler {
    /// Runs `req`; `outcome` learns of limits hit on the way.
    pub async fn handle(
        &self,
        outcome: Arc<RequestOutcome>,
        req: wasmtime_wasi_http::handler::Request,
    ) -> Result<wasmtime_wasi_http::handler::Response, wasmtime::Error> {
        match self {
            Self::Http(handler) => handler.handle(outcome, req).await,
            Self::Wagi(handler) => handler.handle(outcome, req).await,
        }
    }
}

/// Compiles (or loads from cache), links and wraps components on demand.
pub struct Loader {
    /// The app directory.
    pub root: PathBuf,
    /// The app-wide outbound HTTP clients.
    pub http_clients: Clients,
    /// Where chained requests go.
    pub handle: AppHandle,
    /// The app's resolved variables.
    pub variables: Resolved,
    /// Key-value stores by label.
    pub key_value: Arc<KeyValueStores>,
    /// SQLite databases by label.
    pub sqlite: Arc<Databases>,
    /// PostgreSQL connection pools.
    pub postgres: Arc<PostgresPools>,
    /// Redis connections.
    pub redis: Arc<RedisPools>,
    /// MySQL connection pools.
    pub mysql: Arc<MysqlPools>,
    /// The engine.
    pub engine: Engine,
    /// The host's interfaces.
    pub linker: Linker<HostState>,
    /// Compiled components on disk.
    pub cache: Arc<CompileCache>,
    /// Linear-memory limit per instance, in bytes.
    pub max_memory: usize,
    /// Where guests' stdout and stderr go.
    pub output: crate::guest_output::OutputSettings,
    /// Wall-clock limit for producing a response.
    pub request_timeout: Option<Duration>,
}

impl Loader {
    /// Loads `component` with its scaling `policy`, to be called as
    /// `executor` says.
    pub fn load(
        &self,
        component: &Component,
        policy: &ScalingPolicy,
        executor: &HttpExecutor,
    ) -> Result<LoadedComponent, LoadError> {
        let started = Instant::now();
        if let HttpExecutor::Wagi { argv } = executor {
            let (compiled, cached) = compile(&self.engine, &self.cache, component, Entry::Command)?;
            let pre = link_command(&self.linker, &compiled, &component.id)?;
            let handler = WagiHandler::new(
                self.engine.clone(),
                pre,
                self.template(component)?,
                argv.clone(),
                self.request_timeout,
            );
            return Ok(self.loaded(
                component,
                RequestHandler::Wagi(Box::new(handler)),
                HttpAbi::Command,
                cached,
                started,
            ));
        }
        let (compiled, cached) = compile(&self.engine, &self.cache, component, Entry::Exports)?;
        let (pre, abi) = link(&self.linker, &compiled, &component.id)?;
        let template = self.template(component)?;
        let instances = InstancePolicy {
            max_requests_per_instance: policy.max_requests_per_instance,
            max_concurrent_per_instance: if abi == HttpAbi::P3 {
                policy.max_concurrent_requests_per_instance
            } else {
                1
            },
            request_timeout: self.request_timeout,
            spare_instances: policy.spare_instances,
            ..InstancePolicy::default()
        };
        let handler = ComponentInstances::handler(self.engine.clone(), pre, template, instances);
        Ok(self.loaded(
            component,
            RequestHandler::Http(handler),
            abi,
            cached,
            started,
        ))
    }

    fn loaded(
        &self,
        component: &Component,
        handler: RequestHandler,
        abi: HttpAbi,
        cached: bool,
        started: Instant,
    ) -> LoadedComponent {
        tracing::info!(
            component = %component.id,
            abi = ?abi,
            cached,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "component loaded"
        );
        crate::metrics::component_loaded(&component.id, cached);
        LoadedComponent { handler, abi }
    }

    /// What every instance of `component` starts with: its Spin APIs,
    /// outbound HTTP, files and memory limit (shared by every trigger type,
    /// so a Redis message gets what an HTTP request gets).
    pub fn template(&self, component: &Component) -> Result<InstanceTemplate, LoadError> {
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
            redis: RedisAccess::new(&component.id, Arc::new(allowed.clone()), self.redis.clone()),
            mqtt: MqttAccess::new(&component.id, Arc::new(allowed.clone())),
            mysql: MysqlAccess::new(&component.id, Arc::new(allowed.clone()), self.mysql.clone()),
        };
        let sockets = Arc::new(allowed.clone());
        let outbound = Arc::new(OutboundHttp::new(
            component.id.as_str().into(),
            allowed,
            self.http_clients.clone(),
            self.handle.clone(),
        ));
        let mounts =
            crate::files::mounts(&self.root, component).map_err(|e| LoadError::Component {
                component: component.id.clone(),
                message: e.to_string(),
            })?;
        let output =
            self.output
                .for_component(&component.id)
                .map_err(|e| LoadError::Component {
                    component: component.id.clone(),
                    message: e.to_string(),
                })?;
        Ok(
            InstanceTemplate::new(component, self.max_memory, spin, outbound, mounts)
                .with_output(output)
                .with_sockets(sockets, self.http_clients.blocked()),
        )
    }
}

/// The component's `allowed_outbound_hosts`, templates expanded.
pub fn allowed_hosts(
    variables: &Resolved,
    component: &Component,
) -> Result<AllowedHosts, LoadError> {
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
