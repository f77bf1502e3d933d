//! Outbound HTTP from guests: the allow-list, one pooled client for the whole
//! app, and service chaining.
//!
//! Every request a guest sends passes [`OutboundHttp::send`]:
//! - `http://NAME.spin.internal/...` (when allowed) is handed to component
//!   NAME in this process, as Spin does: no socket, no network hop;
//! - a request to `self` (or with no host) goes through the app's own router
//!   when `http://self` is allowed;
//! - anything else must match `allowed_outbound_hosts`, then goes out on the
//!   shared pooled client (HTTP/1.1 and HTTP/2, TLS with the webpki roots,
//!   or the runtime config's `[[client_tls]]` for the hosts it names);
//! - a denied request fails in the guest with `HTTP-request-denied` and one
//!   warning in the log; it is never sent;
//! - an address in the runtime config's `block_networks` (an IP literal, or
//!   every address a name resolves to) fails with
//!   `destination-IP-prohibited`, as in Spin.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error as HttpError, WasiBody, WasiHttpHooks};

use crate::allowed_hosts::{AllowedHosts, Destination, default_port};
use crate::blocked_networks::BlockedNetworks;
use crate::client_tls::ClientTls;
use crate::runtime_config::RuntimeConfig;

/// The suffix of hosts that name components of this app.
pub const CHAINING_SUFFIX: &str = ".spin.internal";

/// A pooled client.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector<Resolver>>, WasiBody>;

/// The app's outbound clients: one pooled client for everything, and one
/// per `[[client_tls]]` entry; idle connections are kept and reused by every
/// instance of every component.
#[derive(Clone)]
pub struct Clients {
    default: HttpClient,
    tls: Vec<(ClientTls, HttpClient)>,
    blocked: Arc<BlockedNetworks>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("client_tls", &self.tls.len())
            .field("blocked", &self.blocked)
            .finish_non_exhaustive()
    }
}

impl Clients {
    /// The clients the runtime config asks for.
    pub fn new(config: &RuntimeConfig) -> Self {
        let blocked = Arc::new(config.blocked_networks.clone());
        let build = |tls: Option<Arc<rustls::ClientConfig>>| {
            let mut http = HttpConnector::new_with_resolver(Resolver {
                inner: GaiResolver::new(),
                blocked: blocked.clone(),
            });
            http.enforce_http(false);
            let builder = hyper_rustls::HttpsConnectorBuilder::new();
            let https = match tls {
                Some(config) => builder.with_tls_config((*config).clone()),
                None => builder.with_webpki_roots(),
            }
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
            Client::builder(TokioExecutor::new()).build(https)
        };
        Self {
            default: build(None),
            tls: config
                .client_tls
                .iter()
                .map(|entry| (entry.clone(), build(Some(entry.config()))))
                .collect(),
            blocked,
        }
    }

    /// The runtime config's blocked networks (also for sockets).
    pub fn blocked(&self) -> Arc<BlockedNetworks> {
        self.blocked.clone()
    }

    /// The client for `component` calling `host:port` over HTTPS: the first
    /// `[[client_tls]]` entry naming both, or the default one.
    fn for_destination(&self, component: &str, https: bool, host: &str, port: u16) -> &HttpClient {
        if https {
            for (entry, client) in &self.tls {
                if entry.applies(component, host, port) {
                    return client;
                }
            }
        }
        &self.default
    }
}

/// Name lookup that drops addresses in `block_networks` (and fails when
/// nothing is left), so a name cannot lead into a blocked network.
#[derive(Clone)]
pub struct Resolver {
    inner: GaiResolver,
    blocked: Arc<BlockedNetworks>,
}

/// The marker of a lookup whose every address is blocked.
#[derive(Debug, thiserror::Error)]
#[error("every address of this host is in block_networks")]
struct Blocked;

type ResolveFuture =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, std::io::Error>> + Send>>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = ResolveFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let lookup = self.inner.call(name);
        let blocked = self.blocked.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = lookup.await?.collect();
            let open: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| !blocked.blocks(a.ip()))
                .collect();
            if open.is_empty() && !found.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    Blocked,
                ));
            }
            Ok(open.into_iter())
        })
    }
}

/// Whether `error` (a client error) came from [`Blocked`].
fn is_blocked(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<Blocked>())
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// What answers chained requests: the running app, which owns the
/// components whose instances send them (so this crate's layers stay one
/// way: the app's dispatcher implements it, outbound only calls it).
pub trait Chain: Send + Sync {
    /// Runs `request` on `component` (or, with `None`, the component the
    /// app's router picks), on behalf of `caller`.
    fn chain(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
        component: Option<String>,
        caller: Arc<str>,
    ) -> ChainFuture;
}

/// A late-bound reference to the running app, for chained requests (the app
/// owns the components whose instances hold this).
#[derive(Clone, Default)]
pub struct AppHandle(Arc<OnceLock<Weak<dyn Chain>>>);

impl std::fmt::Debug for AppHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppHandle")
            .field("bound", &self.0.get().is_some())
            .finish()
    }
}

impl AppHandle {
    /// Points the handle at the running app.
    pub fn bind(&self, app: Weak<dyn Chain>) {
        let _ = self.0.set(app);
    }

    fn get(&self) -> Option<Arc<dyn Chain>> {
        self.0.get()?.upgrade()
    }
}

/// One component's outbound policy, shared by its instances.
pub struct OutboundHttp {
    component: Arc<str>,
    allowed: AllowedHosts,
    clients: Clients,
    app: AppHandle,
}

impl std::fmt::Debug for OutboundHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundHttp")
            .field("component", &self.component)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// What `wasmtime-wasi-http` awaits after the response head: the body's
/// I/O (nothing more, for us).
pub type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
pub(crate) type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;
/// A chained request's response, as the guest's HTTP client receives it.
pub type ChainFuture = SendFuture;

impl OutboundHttp {
    /// The policy for `component`.
    pub fn new(
        component: Arc<str>,
        allowed: AllowedHosts,
        clients: Clients,
        app: AppHandle,
    ) -> Self {
        Self {
            component,
            allowed,
            clients,
            app,
        }
    }

    fn deny(&self, what: &dyn std::fmt::Display) -> SendFuture {
        tracing::warn!(component = %self.component, destination = %what, "outbound HTTP denied: not in allowed_outbound_hosts");
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }

    fn prohibit(&self, what: &dyn std::fmt::Display) -> SendFuture {
        tracing::warn!(component = %self.component, destination = %what, "outbound HTTP refused: the address is in block_networks");
        Box::new(async { Err(HttpError::DestinationIpProhibited) })
    }

    /// Sends (or refuses, or chains) one request.
    pub fn send(&self, request: http::Request<WasiBody>) -> SendFuture {
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let host = uri
            .host()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase());
        let Some(host) = host.filter(|h| h != "self") else {
            if !self.allowed.allows_self() {
                return self.deny(&"self");
            }
            return self.chain(request, None);
        };
        let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else {
            return self.deny(&uri);
        };
        let dest = Destination {
            scheme: &scheme,
            host: &host,
            port,
        };
        if !self.allowed.allows(&dest) {
            return self.deny(&dest);
        }
        if let Some(component) = host.strip_suffix(CHAINING_SUFFIX) {
            return self.chain(request, Some(component.to_owned()));
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && self.clients.blocked.blocks(ip)
        {
            return self.prohibit(&dest);
        }
        let client = self
            .clients
            .for_destination(&self.component, scheme == "https", &host, port)
            .clone();
        let component = self.component.clone();
        Box::new(async move {
            let response = client.request(request).await.map_err(|e| {
                tracing::debug!(error = %e, "outbound request failed");
                if is_blocked(&e) {
                    tracing::warn!(%component, "outbound HTTP refused: the host resolves only into block_networks");
                    HttpError::DestinationIpProhibited
                } else if e.is_connect() {
                    HttpError::ConnectionRefused
                } else {
                    HttpError::InternalError(Some(e.to_string()))
                }
            })?;
            let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }

    /// Runs the request on a component of this app, in process: `component`
    /// by name, or (for `self`) whichever the router picks.
    fn chain(&self, request: http::Request<WasiBody>, component: Option<String>) -> SendFuture {
        match self.app.get() {
            Some(app) => app.chain(request, component, self.component.clone()),
            None => Box::new(async { Err(HttpError::ConfigurationError) }),
        }
    }
}

/// The per-instance hook object `wasmtime-wasi-http` calls.
pub struct OutboundHooks {
    /// The component's outbound policy and clients.
    pub http: Arc<OutboundHttp>,
    /// The request the instance works for (its span is the parent of the
    /// outbound one, whose `traceparent` goes out with the request).
    pub trace: Arc<crate::telemetry::StoreTrace>,
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        crate::telemetry::outbound::traced(&self.trace, request, |request| self.http.send(request))
    }
}
