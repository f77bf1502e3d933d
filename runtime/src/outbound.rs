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
use std::time::Instant;

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::{Error as HttpError, WasiBody, WasiHttpHooks};

use crate::allowed_hosts::{AllowedHosts, Destination, default_port};
use crate::app::LoadedApp;
use crate::outcome::RequestOutcome;
use crate::router::RouteMatch;

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

/// A late-bound reference to the running app, for chained requests (the app
/// owns the components whose instances hold this).
#[derive(Debug, Clone, Default)]
pub struct AppHandle(Arc<OnceLock<Weak<LoadedApp>>>);

impl AppHandle {
    /// Points the handle at the running app.
    pub fn bind(&self, app: &Arc<LoadedApp>) {
        let _ = self.0.set(Arc::downgrade(app));
    }

    fn get(&self) -> Option<Arc<LoadedApp>> {
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

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

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
        let app = self.app.get();
        let caller = self.component.clone();
        Box::new(async move {
            let app = app.ok_or(HttpError::ConfigurationError)?;
            let path = request.uri().path().to_owned();
            let route = match &component {
                Some(name) => RouteMatch::synthetic(name, &path),
                None => app
                    .router
                    .route(&path)
                    .ok_or(HttpError::DestinationNotFound)?,
            };
            let Some(slot) = app.components.get(&route.component).cloned() else {
                tracing::warn!(component = %caller, target = %route.component, "chained request to an unknown component");
                return Err(HttpError::DestinationNotFound);
            };
            let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let mut request = crate::server::prepare(request, &route, loopback, app.router.base())
                .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
            request.headers_mut().remove(http::header::HOST);
            tracing::debug!(from = %caller, to = %route.component, "chained request");
            let outcome = Arc::new(RequestOutcome::default());
            let response = crate::server::invoke(
                &app,
                &slot,
                &route.component,
                request,
                outcome,
                Instant::now(),
            )
            .await;
            let response = response.map(|body| {
                body.map_err(|e| HttpError::InternalError(Some(e.to_string())))
                    .boxed_unsync()
            });
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
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
