//! Outbound HTTP from guests: the allow-list, one pooled client for the whole
//! app, and service chaining.
//!
//! Every request a guest sends passes [`OutboundHttp::send`]:
//! - `http://NAME.spin.internal/...` (when allowed) is handed to component
//!   NAME in this process, as Spin does: no socket, no network hop;
//! - a request to `self` (or with no host) goes through the app's own router
//!   when `http://self` is allowed;
//! - anything else must match `allowed_outbound_hosts`, then goes out on the
//!   shared pooled client (HTTP/1.1 and HTTP/2, TLS with the webpki roots);
//! - a denied request fails in the guest with `HTTP-request-denied` and one
//!   warning in the log; it is never sent.

use std::sync::{Arc, OnceLock, Weak};

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error as HttpError, WasiBody, WasiHttpHooks};

use crate::allowed_hosts::{AllowedHosts, Destination, default_port};

/// The suffix of hosts that name components of this app.
pub const CHAINING_SUFFIX: &str = ".spin.internal";

/// The app-wide pooled client.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, WasiBody>;

/// Builds the pooled client; idle connections are kept and reused by every
/// instance of every component.
pub fn client() -> anyhow::Result<HttpClient> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
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
    client: HttpClient,
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
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;
/// A chained request's response, as the guest's HTTP client receives it.
pub type ChainFuture = SendFuture;

impl OutboundHttp {
    /// The policy for `component`.
    pub fn new(
        component: Arc<str>,
        allowed: AllowedHosts,
        client: HttpClient,
        app: AppHandle,
    ) -> Self {
        Self {
            component,
            allowed,
            client,
            app,
        }
    }

    fn deny(&self, what: &dyn std::fmt::Display) -> SendFuture {
        tracing::warn!(component = %self.component, destination = %what, "outbound HTTP denied: not in allowed_outbound_hosts");
        Box::new(async { Err(HttpError::HttpRequestDenied) })
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
        let client = self.client.clone();
        Box::new(async move {
            let response = client.request(request).await.map_err(|e| {
                tracing::debug!(error = %e, "outbound request failed");
                if e.is_connect() {
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
pub struct OutboundHooks(pub Arc<OutboundHttp>);

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        self.0.send(request)
    }
}
