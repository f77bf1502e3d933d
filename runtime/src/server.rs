//! The HTTP front door: accepts connections, routes requests, sets Spin's
//! headers and turns failures into status codes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime_wasi_http::handler::ExpirationError;

use crate::app::LoadedApp;
use crate::body::{Finish, LimitedBody, TrackedBody};
use crate::outcome::{Delivery, RequestOutcome};
use crate::router::RouteMatch;
use crate::scaling::ComponentSlot;

/// Where Spin answers health checks.
pub const HEALTH_PATH: &str = "/.well-known/spin/health";
/// Where Spin describes itself.
pub const INFO_PATH: &str = "/.well-known/spin/info";

// The headers Spin sets on every request it routes.
const FULL_URL: HeaderName = HeaderName::from_static("spin-full-url");
const PATH_INFO: HeaderName = HeaderName::from_static("spin-path-info");
const MATCHED_ROUTE: HeaderName = HeaderName::from_static("spin-matched-route");
const BASE_PATH: HeaderName = HeaderName::from_static("spin-base-path");
const RAW_COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-raw-component-route");
const COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-component-route");
const CLIENT_ADDR: HeaderName = HeaderName::from_static("spin-client-addr");

/// The body type of every response we send.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
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
    mut shutdown: watch::Receiver<bool>,
    settings: ConnectionSettings,
) -> std::io::Result<()> {
    let epoch = EpochTicker::start(app.engine.clone());
    let reaper = crate::scaling::spawn_reaper(app.components.values().cloned().collect());
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
        let app = app.clone();
        let open = open.clone();
        let mut conn_shutdown = shutdown.clone();
        let builder = builder.clone();
        let idle_timeout = settings.idle_timeout;
        tokio::spawn(async move {
            // When the connection last started a request, in milliseconds
            // since it opened.
            let opened = tokio::time::Instant::now();
            let last_request = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let stamp = last_request.clone();
            let service = hyper::service::service_fn(move |req| {
                stamp.store(opened.elapsed().as_millis() as u64, Ordering::Relaxed);
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(&app, req, client).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
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
                        // Graceful: a response still on its way finishes.
                        tracing::debug!(%client, "closing an idle connection");
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.as_mut().await;
                        break;
                    }
                    _ = async { let _ = conn_shutdown.wait_for(|stop| *stop).await; } => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.as_mut().await;
                        break;
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
    if let Some(reaper) = reaper {
        reaper.abort();
    }
    Ok(())
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
    let path = req.uri().path().to_owned();
    if path == HEALTH_PATH {
        return text(StatusCode::OK, "OK");
    }
    if path == INFO_PATH {
        let info = format!(
            "{{\"name\":{:?},\"runtime\":\"trib\",\"version\":{:?}}}",
            app.app.name,
            env!("CARGO_PKG_VERSION")
        );
        return text(StatusCode::OK, info);
    }
    let Some(route) = app.router.route(&path) else {
        return text(StatusCode::NOT_FOUND, "Not Found");
    };
    let Some(slot) = app.components.get(&route.component) else {
        tracing::error!(component = %route.component, "routed to a component that is not loaded");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let component = route.component.as_str();
    let started = Instant::now();
    let done = |status: StatusCode, body: &'static str| {
        crate::metrics::request_done(component, status.as_u16(), started.elapsed());
        text(status, body)
    };

    if content_length(&req).is_some_and(|len| len > app.max_request_body) {
        tracing::warn!(
            component,
            limit_bytes = app.max_request_body,
            "request body too large: 413"
        );
        crate::metrics::limit_hit(component, "body_size");
        return done(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large");
    }
    let outcome = Arc::new(RequestOutcome::default());
    let req = req
        .map(|body| LimitedBody::new(body, app.max_request_body, outcome.clone()).boxed_unsync());
    let req = match prepare(req, &route, client, app.router.base()) {
        Ok(req) => req,
        Err(e) => {
            tracing::debug!(error = %e, "bad request");
            return done(StatusCode::BAD_REQUEST, "Bad Request");
        }
    };
    invoke(app, slot, component, req, outcome, started).await
}

/// Runs a prepared request on `slot`'s component: admission, loading, the
/// instance, and the mapping of every failure to a status. Shared by
/// requests from the network and chained requests from other components.
pub async fn invoke(
    app: &LoadedApp,
    slot: &ComponentSlot,
    component: &str,
    req: wasmtime_wasi_http::handler::Request,
    outcome: Arc<RequestOutcome>,
    started: Instant,
) -> Response<ResponseBody> {
    let path = req.uri().path().to_owned();
    let done = |status: StatusCode, body: &'static str| {
        crate::metrics::request_done(component, status.as_u16(), started.elapsed());
        text(status, body)
    };
    match app.admission.admit(slot.concurrency()).await {
        // Held by the outcome: until the response is done and no instance
        // works for the request any more.
        Ok(admitted) => outcome.hold(admitted),
        Err(rejected) => {
            tracing::warn!(component, reason = %rejected, queued = app.admission.queued(), "no capacity: 503");
            crate::metrics::limit_hit(component, rejected.limit());
            let mut resp = done(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: at capacity, retry later",
            );
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(app.admission.retry_after_secs()),
            );
            return resp;
        }
    }
    let in_flight = slot.enter();
    let ready = match slot.get().await {
        Ok((ready, cold)) => {
            if cold {
                crate::metrics::cold_start(component);
            }
            ready
        }
        Err(e) => {
            tracing::error!(component, "cannot load component: {e:#}");
            return done(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let handle_started = Instant::now();
    // If this future is dropped while the guest works (the client went
    // away), the guest is stopped: nobody is left to answer.
    let mut delivery = Delivery::new(outcome.clone());
    let result = ready.handler.handle(outcome.clone(), req).await;
    if result.is_err() {
        // The client will hear of it: an error status follows.
        delivery.delivered();
    }
    // A guest that never yields is stopped from outside its event loop, and
    // its request then fails as "trapped" rather than "expired"; a failure at
    // or past the deadline is a timeout either way.
    let past_deadline = app
        .request_timeout
        .is_some_and(|limit| handle_started.elapsed() >= limit);
    let resp = match result {
        Ok(_) if outcome.body_too_large.load(Ordering::Acquire) => {
            return too_large(app, component, done);
        }
        Ok(resp) => resp,
        Err(_) if outcome.body_too_large.load(Ordering::Acquire) => {
            return too_large(app, component, done);
        }
        Err(_) if outcome.memory_exceeded.load(Ordering::Acquire) => {
            tracing::error!(
                component,
                limit_mib = slot_memory_mib(app),
                "memory limit exceeded: the instance was stopped; 500"
            );
            crate::metrics::limit_hit(component, "memory");
            return done(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error: memory limit exceeded",
            );
        }
        Err(e) if e.is::<ExpirationError>() || past_deadline => {
            tracing::error!(
                component,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request timed out: 504"
            );
            crate::metrics::limit_hit(component, "timeout");
            return done(
                StatusCode::GATEWAY_TIMEOUT,
                "Gateway Timeout: the component did not answer in time",
            );
        }
        Err(e) => {
            tracing::error!(component, path = %path, "request failed: {e:#}");
            return done(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let status = resp.status().as_u16();
    tracing::debug!(
        component,
        status,
        elapsed_us = started.elapsed().as_micros() as u64,
        "response started"
    );
    let finish = Finish {
        guards: Box::new((in_flight, ready)),
        delivery,
        component: component.to_owned(),
        status,
        started,
    };
    resp.map(|body| {
        TrackedBody::new(body, finish)
            .map_err(|e| Box::new(e) as BoxError)
            .boxed_unsync()
    })
}

fn too_large(
    app: &LoadedApp,
    component: &str,
    done: impl FnOnce(StatusCode, &'static str) -> Response<ResponseBody>,
) -> Response<ResponseBody> {
    tracing::warn!(
        component,
        limit_bytes = app.max_request_body,
        "request body too large: 413"
    );
    crate::metrics::limit_hit(component, "body_size");
    done(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large")
}

fn slot_memory_mib(app: &LoadedApp) -> usize {
    app.max_instance_memory >> 20
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Gives the request an absolute URI and Spin's routing headers (replacing
/// any `spin-*` header the caller sent).
pub fn prepare<B>(
    req: Request<B>,
    route: &RouteMatch,
    client: SocketAddr,
    base: &str,
) -> Result<Request<B>, http::Error> {
    let (mut parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let scheme = parts.uri.scheme_str().unwrap_or("http").to_owned();
    parts.uri = Uri::builder()
        .scheme(scheme.as_str())
        .authority(host.as_str())
        .path_and_query(path_and_query.as_str())
        .build()?;
    let full_url = format!("{scheme}://{host}{path_and_query}");

    // Clients must not be able to forge what the host asserts.
    let forged: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in forged {
        parts.headers.remove(name);
    }
    let mut set = |name: HeaderName, value: &str| -> Result<(), http::Error> {
        let value = HeaderValue::from_str(value).map_err(http::Error::from)?;
        parts.headers.insert(name, value);
        Ok(())
    };
    set(FULL_URL, &full_url)?;
    set(PATH_INFO, &route.path_info)?;
    set(MATCHED_ROUTE, &route.based_route)?;
    set(BASE_PATH, base)?;
    set(RAW_COMPONENT_ROUTE, &route.raw_route)?;
    set(COMPONENT_ROUTE, route.component_route())?;
    set(CLIENT_ADDR, &client.to_string())?;
    for (name, value) in &route.params {
        let name = format!("spin-path-match-{}", name.to_ascii_lowercase());
        set(HeaderName::from_bytes(name.as_bytes())?, value)?;
    }
    Ok(Request::from_parts(parts, body))
}

/// A small plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// One thread for the whole process that advances the engine's epoch, so
/// busy guests yield and deadlines can be enforced without a timer per
/// request.
struct EpochTicker {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the epoch advances: the time slice a busy guest gets before it
/// yields its worker thread.
const EPOCH_TICK: Duration = Duration::from_millis(10);

impl EpochTicker {
    fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("trib-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
