//! The Redis trigger: `[[trigger.redis]]` subscribes to a channel and runs
//! a component for every message published on it, as Spin's
//! `trigger-redis` does.
//!
//! - At startup ([`RedisTriggers::prepare`]) each trigger's address and
//!   channel are expanded from variables, and each component is compiled,
//!   linked and checked to export `fermyon:spin/inbound-redis` (spin-sdk
//!   5.x) or `spin:redis/inbound-redis@3.0.0` (spin-sdk 7): a wrong
//!   component stops `trib up` instead of failing every message.
//! - [`run`] keeps one pub/sub connection per server. Messages are handled
//!   in the order they arrive, one at a time per server (Spin's order);
//!   the components subscribed to the same channel run side by side.
//! - Each message gets a fresh instance with what an HTTP request gets: the
//!   same instance template (memory limit, Spin APIs, allowed hosts), the
//!   request timeout, a slot of the shared instance pool and the
//!   component's `max_concurrency`, metrics and logs. A guest that traps or
//!   returns an error is logged and counted; the next message still runs.
//! - A dropped connection (Redis restarted, `CLIENT KILL`) is reconnected
//!   with exponential backoff and every channel subscribed again.
//!
//! Addresses may carry a password: only `host:port` is ever logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use indexmap::IndexMap;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use redis::IntoConnectionInfo as _;
use tokio::sync::{Semaphore, watch};
use wasmtime::Store;

use crate::admission::Admission;
use crate::app::LoadedApp;
use crate::engine::loader::LoadError;
use crate::host::HostState;
use crate::invocation::{Invoker, Live, RunSpan};
use crate::loader::Loader;
use crate::manifest::App;
use crate::runtime_config::RuntimeConfig;

/// Export-side bindings of the two Redis handler generations.
#[expect(missing_docs, reason = "generated from WIT; the WIT files document it")]
pub mod bindings {
    /// `fermyon:spin/inbound-redis` (spin-sdk 5.x `#[redis_component]`).
    pub mod p2 {
        wasmtime::component::bindgen!({
            path: "../wit/triggers",
            world: "tributary:triggers/redis-trigger-p2",
            exports: { default: async },
        });
    }

    /// `spin:redis/inbound-redis@3.0.0` (spin-sdk 7 `#[redis_subscriber]`).
    pub mod p3 {
        wasmtime::component::bindgen!({
            path: "../wit/triggers",
            world: "tributary:triggers/redis-trigger-p3",
            exports: { default: async | store },
            with: {
                "spin:redis/redis@3.0.0": crate::spin_apis::p3::spin::redis::redis,
            },
        });
    }
}

use bindings::p2::RedisTriggerP2Pre;
use bindings::p3::RedisTriggerP3Pre;

/// Shortest wait before reconnecting after a failure.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Problems with a Redis trigger found at startup.
#[derive(Debug, thiserror::Error)]
pub enum RedisTriggerError {
    /// A trigger's address or channel could not be expanded.
    #[error("[[trigger.redis]] for component {component:?}: {field}: {message}")]
    Config {
        /// The component the trigger runs.
        component: String,
        /// `address` or `channel`.
        field: &'static str,
        /// What is wrong (never the address itself: it may hold a password).
        message: String,
    },
    /// The component cannot be loaded as a Redis handler.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// Which inbound-redis generation a component exports.
enum HandlerPre {
    P2(RedisTriggerP2Pre<HostState>),
    P3(RedisTriggerP3Pre<HostState>),
}

pub use crate::invocation::Outcome;

/// One component ready to handle messages.
struct Handler {
    invoker: Invoker,
    pre: HandlerPre,
}

/// One server's subscriptions: channel to the components it runs.
struct Server {
    /// `host:port`, for logs.
    shown: String,
    client: redis::Client,
    channels: IndexMap<String, Vec<Arc<Handler>>>,
}

/// Every Redis trigger of an app, resolved and loaded.
#[derive(Default)]
pub struct RedisTriggers {
    servers: Vec<Arc<Server>>,
}

impl RedisTriggers {
    /// Resolves addresses and channels and loads each handler component.
    /// `concurrency` gives the semaphore of components that also serve
    /// HTTP, so both triggers count against one `max_concurrency`.
    pub fn prepare(
        app: &App,
        loader: &Loader,
        runtime_config: &RuntimeConfig,
        concurrency: impl Fn(&str) -> Option<Arc<Semaphore>>,
    ) -> Result<Self, RedisTriggerError> {
        let mut handlers: IndexMap<String, Arc<Handler>> = IndexMap::new();
        let mut servers: IndexMap<String, Server> = IndexMap::new();
        for trigger in &app.redis_triggers {
            let config = |field: &'static str, message: String| RedisTriggerError::Config {
                component: trigger.component.clone(),
                field,
                message,
            };
            let address = loader
                .variables
                .expand(&trigger.address)
                .map_err(|e| config("address", e))?;
            let channel = loader
                .variables
                .expand(&trigger.channel)
                .map_err(|e| config("channel", e))?;
            if channel.is_empty() {
                return Err(config("channel", "is empty once expanded".into()));
            }
            let (client, shown) = client(&address).map_err(|m| config("address", m))?;
            let handler = match handlers.get(&trigger.component) {
                Some(h) => h.clone(),
                None => {
                    let component = app
                        .component(&trigger.component)
                        .ok_or_else(|| config("component", "no such component".into()))?;
                    let semaphore = concurrency(&component.id).or_else(|| {
                        runtime_config
                            .scaling(component)
                            .max_concurrency
                            .map(|n| Arc::new(Semaphore::new(n)))
                    });
                    let h = Arc::new(load(loader, component, semaphore)?);
                    handlers.insert(component.id.clone(), h.clone());
                    h
                }
            };
            servers
                .entry(address)
                .or_insert_with(|| Server {
                    shown,
                    client,
                    channels: IndexMap::new(),
                })
                .channels
                .entry(channel)
                .or_default()
                .push(handler);
        }
        Ok(Self {
            servers: servers.into_values().map(Arc::new).collect(),
        })
    }

    /// Whether the app has any Redis trigger.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// `host:port/channel` and the components each runs, as `spin up`
    /// prints them.
    pub fn channels(&self) -> Vec<(String, Vec<String>)> {
        self.servers
            .iter()
            .flat_map(|server| {
                server.channels.iter().map(|(channel, handlers)| {
                    (
                        format!("{}/{channel}", server.shown),
                        handlers
                            .iter()
                            .map(|h| h.invoker.component.to_string())
                            .collect(),
                    )
                })
            })
            .collect()
    }
}

/// A client for `address`, and its `host:port` to show.
fn client(address: &str) -> Result<(redis::Client, String), String> {
    let scheme = address.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("redis" | "rediss" | "redis+unix" | "unix")) {
        return Err(
            "is not a Redis URL once expanded: use redis://HOST:PORT (or rediss:// for TLS)".into(),
        );
    }
    let info = address
        .into_connection_info()
        .map_err(|_| "is not a valid Redis URL once expanded".to_owned())?;
    let shown = info.addr().to_string();
    let client = redis::Client::open(info).map_err(|_| "is not a valid Redis URL".to_owned())?;
    Ok((client, shown))
}

/// Compiles and links `component` and checks that it exports a Redis
/// handler.
fn load(
    loader: &Loader,
    component: &crate::manifest::Component,
    concurrency: Option<Arc<Semaphore>>,
) -> Result<Handler, LoadError> {
    let linked = crate::invocation::link(loader, component)?;
    let err = |message: &str| crate::invocation::load_error(component, message.into());
    let pre = match (
        RedisTriggerP2Pre::new(linked.pre.clone()),
        RedisTriggerP3Pre::new(linked.pre.clone()),
    ) {
        (Ok(p2), Err(_)) => HandlerPre::P2(p2),
        (Err(_), Ok(p3)) => HandlerPre::P3(p3),
        (Ok(_), Ok(_)) => {
            return Err(err(
                "exports both fermyon:spin/inbound-redis and spin:redis/inbound-redis@3.0.0: a Redis trigger's component exports one of them",
            ));
        }
        (Err(_), Err(_)) => {
            return Err(err(
                "is run by a Redis trigger but exports neither fermyon:spin/inbound-redis (spin-sdk 5 #[redis_component]) nor spin:redis/inbound-redis@3.0.0 (spin-sdk 7 #[redis_subscriber])",
            ));
        }
    };
    Ok(Handler {
        invoker: linked.invoker(loader, component, concurrency, "Redis handler")?,
        pre,
    })
}

impl Handler {
    /// Runs one message on a fresh instance, once capacity allows (it
    /// waits, and so does the subscription behind it: Redis buffers).
    async fn handle(&self, admission: &Admission, channel: &str, payload: Vec<u8>) -> Outcome {
        let what = format!("Redis message on {channel}");
        let mut run = self
            .invoker
            .begin(admission, &what, || RunSpan {
                kind: SpanKind::Consumer,
                attributes: vec![
                    KeyValue::new("messaging.system", "redis"),
                    KeyValue::new("messaging.destination.name", channel.to_owned()),
                ],
            })
            .await;
        let result = self.invoker.limit(self.run(&mut run.store, payload)).await;
        let (outcome, elapsed) = self.invoker.finish(run, &what, result);
        crate::metrics::redis_message_done(
            &self.invoker.component,
            channel,
            outcome.label(),
            elapsed,
        );
        outcome
    }

    /// Instantiates and calls the handler; the inner error is the guest's
    /// own `error` variant.
    async fn run(
        &self,
        store: &mut Store<HostState>,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        let started = Instant::now();
        let component = &*self.invoker.component;
        match &self.pre {
            HandlerPre::P2(pre) => {
                let guest = pre.instantiate_async(&mut *store).await?;
                let _live = Live::new(component, started);
                let result = guest
                    .fermyon_spin_inbound_redis()
                    .call_handle_message(&mut *store, &payload)
                    .await?;
                Ok(result.map_err(|e| format!("{e:?}")))
            }
            HandlerPre::P3(pre) => {
                let guest = pre.instantiate_async(&mut *store).await?;
                let _live = Live::new(component, started);
                let result = store
                    .run_concurrent(async |accessor| {
                        guest
                            .spin_redis_inbound_redis()
                            .call_handle_message(accessor, payload)
                            .await
                    })
                    .await??;
                Ok(result.map_err(|e| format!("{e:?}")))
            }
        }
    }
}

/// Subscribes to every server's channels and handles messages until `stop`
/// turns `true`; the message being handled then finishes first.
pub async fn run(app: Arc<LoadedApp>, stop: watch::Receiver<bool>) {
    // The HTTP server ticks the epoch when there is one; otherwise we do,
    // so busy handlers still yield and time out.
    let _epoch = (!app.has_http_triggers())
        .then(|| crate::engine::epoch::EpochTicker::start(app.engine().clone()));
    let tasks: Vec<_> = app
        .redis_triggers()
        .servers
        .iter()
        .map(|server| tokio::spawn(subscribe(server.clone(), app.clone(), stop.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// One server's subscription loop: connect, subscribe, handle messages;
/// on a lost connection, back off and start again.
async fn subscribe(server: Arc<Server>, app: Arc<LoadedApp>, mut stop: watch::Receiver<bool>) {
    let mut backoff = MIN_BACKOFF;
    let mut first = true;
    loop {
        let connect = async {
            let mut pubsub = server.client.get_async_pubsub().await?;
            for channel in server.channels.keys() {
                pubsub.subscribe(channel).await?;
            }
            Ok::<_, redis::RedisError>(pubsub)
        };
        let connected = tokio::select! {
            c = connect => c,
            _ = stop.wait_for(|s| *s) => return,
        };
        let mut pubsub = match connected {
            Ok(pubsub) => pubsub,
            Err(e) => {
                tracing::warn!(
                    server = %server.shown,
                    retry_ms = backoff.as_millis() as u64,
                    "Redis trigger cannot subscribe: {}",
                    describe(&e),
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if !first {
            crate::metrics::redis_reconnected(&server.shown);
        }
        first = false;
        backoff = MIN_BACKOFF;
        tracing::info!(
            server = %server.shown,
            channels = ?server.channels.keys().collect::<Vec<_>>(),
            "Redis trigger subscribed"
        );
        let mut messages = pubsub.on_message();
        loop {
            let message = tokio::select! {
                m = messages.next() => m,
                _ = stop.wait_for(|s| *s) => return,
            };
            let Some(message) = message else { break };
            dispatch(&server, app.admission(), &message).await;
        }
        tracing::warn!(server = %server.shown, "Redis trigger lost its connection; subscribing again");
    }
}

/// Runs every component subscribed to the message's channel.
async fn dispatch(server: &Server, admission: &Admission, message: &redis::Msg) {
    let channel = message.get_channel_name();
    let Some(handlers) = server.channels.get(channel) else {
        tracing::warn!(server = %server.shown, channel, "message from a channel not subscribed to");
        return;
    };
    let payload = message.get_payload_bytes();
    futures::future::join_all(
        handlers
            .iter()
            .map(|h| h.handle(admission, channel, payload.to_vec())),
    )
    .await;
}

/// A Redis error without anything from the address: its kind and, for
/// I/O errors, the OS's words.
fn describe(e: &redis::RedisError) -> String {
    match e.kind() {
        redis::ErrorKind::Io => format!(
            "connection failed ({})",
            e.to_string().lines().next().unwrap_or_default()
        ),
        kind => format!("{kind:?}"),
    }
}
