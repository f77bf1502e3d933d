//! The HTTP front door: accepts connections, routes requests, sets Spin's
//! headers and turns failures into status codes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::app::LoadedApp;
use crate::body::LimitedBody;
use crate::dispatch::{ResponseBody, empty, invoke, static_response, text};
use crate::engine::epoch::EpochTicker;
use crate::live::LiveApp;
use crate::outcome::RequestOutcome;
use crate::spin_headers::prepare;

/// Paths Spin answers itself (`health`, `info`; anything else is 404).
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// How the listener treats connections.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// How long open connections may finish after shutdown starts; past
    /// it, running instances are stopped.
    pub shutdown_grace: Duration,
    /// Time allowed to receive a request's head, counted from when the
    /// connection is ready for one (so it also bounds how long an HTTP/1
    /// keep-alive connection waits for its next request). Slow-loris
    /// clients are cut off here.
    pub header_read_timeout: Duration,
    /// A connection that starts no request for this long is closed
    /// (gracefully: a response still streaming finishes first).
    pub idle_timeout: Duration,
    /// Connections open at once; past it, new ones wait in the kernel's
    /// accept queue.
    pub max_connections: usize,
    /// Serve HTTPS with this configuration (`--tls-cert`, `--tls-key`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            tls: None,
        }
    }
}

/// How long shutdown waits for stopped instances to be gone.
const HALT_WAIT: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `shutdown` flips to `true`, then stops
/// accepting, waits up to the grace period for open connections to finish,
/// and stops whatever instances are still running.
pub async fn serve(
    app: Arc<LoadedApp>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
    settings: ConnectionSettings,
) -> std::io::Result<()> {
    serve_live(Arc::new(LiveApp::new(app)), listener, shutdown, settings).await
}

/// [`serve`] for an app that may be replaced while it serves (`trib
/// watch`): each request reads `live`'s current app once and keeps it, so
/// requests in flight finish on the version they started on. A replacement
/// must share the first app's engine ([`crate::app::reload`] does), which
/// the epoch ticker advances.
pub async fn serve_live(
    live: Arc<LiveApp>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    settings: ConnectionSettings,
) -> std::io::Result<()> {
    let epoch = EpochTicker::start(live.current().engine().clone());
    let reaper = {
        let live = live.clone();
        crate::scaling::spawn_reaper(move || live.current().components().cloned().collect())
    };
    let connections = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    // Every connection task holds a clone of `open`; `closed.recv()` ends
    // once all of them are gone.
    let (open, mut closed) = tokio::sync::mpsc::channel::<()>(1);
    let builder = connection_builder(&settings);
    loop {
        let (permit, stream, client) = tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() { break; }
                continue;
            }
            accepted = accept(&listener, &connections) => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        metrics::counter!(crate::metrics::CONNECTIONS).increment(1);
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).increment(1.0);
        let app = live.clone();
        let open = open.clone();
        let conn_shutdown = shutdown.clone();
        let builder = builder.clone();
        let idle_timeout = settings.idle_timeout;
        let tls = settings.tls.clone();
        let handshake_timeout = settings.header_read_timeout;
        tokio::spawn(async move {
            match tls {
                None => {
                    let conn = Connection {
                        app,
                        builder,
                        client,
                        idle_timeout,
                        shutdown: conn_shutdown,
                        https: false,
                    };
                    conn.serve(stream).await;
                }
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let conn = Connection {
                                app,
                                builder,
                                client,
                                idle_timeout,
                                shutdown: conn_shutdown,
                                https: true,
                            };
                            conn.serve(stream).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %client, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%client, "TLS handshake timed out"),
                    }
                }
            }
            metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).decrement(1.0);
            drop(permit);
            drop(open);
        });
    }
    drop(open);
    drop(listener);
    if tokio::time::timeout(settings.shutdown_grace, closed.recv())
        .await
        .is_err()
    {
        // The grace is over: stop the guests still running (while the
        // epoch still ticks, so busy ones notice), then leave.
        let left = crate::instances::halt_all(HALT_WAIT).await;
        tracing::warn!(
            grace_ms = settings.shutdown_grace.as_millis() as u64,
            instances_left = left,
            "connections still open after the grace period: stopped their instances"
        );
    }
    drop(epoch);
    reaper.abort();
    Ok(())
}

/// One accepted connection (plain or after its TLS handshake).
struct Connection {
    /// Read once per request.
    app: Arc<LiveApp>,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    client: SocketAddr,
    idle_timeout: Duration,
    shutdown: watch::Receiver<bool>,
    /// Requests arrived over TLS (`spin-full-url` says `https://`).
    https: bool,
}

impl Connection {
    /// Serves requests until the client leaves, the connection idles out or
    /// shutdown starts (gracefully: a response on its way finishes).
    async fn serve<I>(self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            app,
            builder,
            client,
            idle_timeout,
            mut shutdown,
            https,
        } = self;
        // When the connection last started a request, in milliseconds
        // since it opened.
        let opened = tokio::time::Instant::now();
        let last_request = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stamp = last_request.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            stamp.store(opened.elapsed().as_millis() as u64, Ordering::Relaxed);
            if https {
                req.extensions_mut().insert(http::uri::Scheme::HTTPS);
            }
            // One atomic load: this request keeps this version of the app.
            let app = app.current();
            async move { Ok::<_, Infallible>(handle(&app, req, client).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        loop {
            let last = last_request.load(Ordering::Relaxed);
            let idle_until = opened + Duration::from_millis(last) + idle_timeout;
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, %client, "connection ended with an error");
                    }
                    break;
                }
                _ = tokio::time::sleep_until(idle_until) => {
                    if last_request.load(Ordering::Relaxed) != last {
                        continue;
                    }
                    tracing::debug!(%client, "closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                    break;
                }
                _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                    break;
                }
            }
        }
    }
}

/// The next connection, once there is room for one.
async fn accept(
    listener: &TcpListener,
    connections: &Arc<tokio::sync::Semaphore>,
) -> std::io::Result<(
    tokio::sync::OwnedSemaphorePermit,
    tokio::net::TcpStream,
    SocketAddr,
)> {
    let permit = connections
        .clone()
        .acquire_owned()
        .await
        .map_err(std::io::Error::other)?;
    let (stream, client) = listener.accept().await?;
    Ok((permit, stream, client))
}

/// HTTP/1.1 and h2c with our timeouts.
fn connection_builder(
    settings: &ConnectionSettings,
) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Handles one request end to end; never fails (errors become statuses).
pub async fn handle(
    app: &LoadedApp,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<ResponseBody> {
    let path = req.uri().path();
    // Spin answers its own paths before routing, so even a catch-all
    // route never sees them.
    if let Some(well_known) = path.strip_prefix(WELL_KNOWN_PREFIX) {
        return match well_known {
            "health" => text(StatusCode::OK, "OK"),
            "info" => app_info(app),
            _ => empty(StatusCode::NOT_FOUND),
        };
    }
    let Some(route) = app.router().route(path) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if let Some(response) = app.static_response(&route.component) {
        crate::metrics::request_done(&route.component, response.status_code, Duration::ZERO);
        return static_response(response);
    }
    let Some(slot) = app.component(&route.component) else {
        tracing::error!(component = %route.component, "routed to a component that is not loaded");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let component = &*route.component;
    let started = Instant::now();
    let done = |status: StatusCode, body: &'static str| {
        slot.metrics()
            .request_done(status.as_u16(), started.elapsed());
        text(status, body)
    };

    if content_length(&req).is_some_and(|len| len > app.max_request_body()) {
        tracing::warn!(
            component,
            limit_bytes = app.max_request_body(),
            "request body too large: 413"
        );
        crate::metrics::limit_hit(component, "body_size");
        return done(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large");
    }
    let outcome = Arc::new(RequestOutcome::default());
    let req = req
        .map(|body| LimitedBody::new(body, app.max_request_body(), outcome.clone()).boxed_unsync());
    let req = match prepare(req, &route, client, app.router().base()) {
        Ok(req) => req,
        Err(e) => {
            tracing::debug!(error = %e, "bad request");
            return done(StatusCode::BAD_REQUEST, "Bad Request");
        }
    };
    let raw_route = route.raw_route.clone();
    invoke(app, slot, component, raw_route, req, outcome, started).await
}

/// `/.well-known/spin/info`: Spin's app info (name, and version when the
/// manifest has one), pretty-printed JSON as Spin sends it.
fn app_info(app: &LoadedApp) -> Response<ResponseBody> {
    let mut info = serde_json::Map::new();
    info.insert("name".into(), app.name().into());
    if let Some(version) = app.version() {
        info.insert("version".into(), version.into());
    }
    let body = serde_json::to_string_pretty(&info).unwrap_or_default();
    let mut resp = text(StatusCode::OK, body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
