//! Runs a routed request on its component: admission, loading, the
//! instance, and the mapping of every failure to a status. Below the
//! server, so that requests from the network and chained requests from
//! other components (see [`crate::outbound::Chain`]) take one path.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use wasmtime_wasi_http::handler::ExpirationError;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::app::LoadedApp;
use crate::body::{Finish, TrackedBody};
use crate::outbound::{Chain, ChainFuture, IoFuture};
use crate::outcome::{Delivery, RequestOutcome};
use crate::router::RouteMatch;
use crate::scaling::ComponentSlot;
use crate::telemetry::{RequestInfo, RequestRecord, RequestTrace};

/// The body type of every response we send.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a prepared request on `slot`'s component: admission, loading, the
/// instance, and the mapping of every failure to a status. Shared by
/// requests from the network and chained requests from other components.
pub async fn invoke(
    app: &LoadedApp,
    slot: &ComponentSlot,
    component: &str,
    route: Arc<str>,
    req: wasmtime_wasi_http::handler::Request,
    outcome: Arc<RequestOutcome>,
    started: Instant,
) -> Response<ResponseBody> {
    let trace = RequestTrace::start(
        req.headers(),
        RequestInfo {
            method: req.method(),
            path: req.uri().path(),
            route: &route,
            component,
        },
    );
    if trace.context().is_some() {
        outcome.set_trace(trace.clone());
    }
    let record = RequestRecord {
        metrics: slot.metrics().clone(),
        trace,
        route,
        started,
    };
    let trace = &record.trace;
    let done = |status: StatusCode, body: &'static str| {
        record.done(status.as_u16());
        text(status, body)
    };
    let queued_at = trace.now();
    let admitted = app.admission().admit(slot.concurrency()).await;
    trace.phase("queue_wait", queued_at);
    match admitted {
        // Held by the outcome: until the response is done and no instance
        // works for the request any more.
        Ok(admitted) => outcome.hold(admitted),
        Err(rejected) => {
            tracing::warn!(component, reason = %rejected, queued = app.admission().queued(), "no capacity: 503");
            crate::metrics::limit_hit(component, rejected.limit());
            let mut resp = done(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: at capacity, retry later",
            );
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(app.admission().retry_after_secs()),
            );
            return resp;
        }
    }
    let in_flight = slot.enter();
    let load_at = trace.now();
    let ready = match slot.get().await {
        Ok((ready, cold)) => {
            if cold {
                crate::metrics::cold_start(component);
                trace.phase("load_component", load_at);
            }
            ready
        }
        Err(e) => {
            tracing::error!(component, "cannot load component: {e:#}");
            return done(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let handle_started = Instant::now();
    // Kept for the log line of a failed request; the request moves on.
    let path = failed_path(&req);
    // If this future is dropped while the guest works (the client went
    // away), the guest is stopped: nobody is left to answer.
    let mut delivery = Delivery::new(outcome.clone());
    let guest_at = trace.now();
    let result = ready.handler.handle(outcome.clone(), req).await;
    trace.phase("execute_wasm_component", guest_at);
    if result.is_err() {
        // The client will hear of it: an error status follows.
        delivery.delivered();
    }
    // A guest that never yields is stopped from outside its event loop, and
    // its request then fails as "trapped" rather than "expired"; a failure at
    // or past the deadline is a timeout either way.
    let past_deadline = app
        .request_timeout()
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
            tracing::error!(component, path = %path.path(), "request failed: {e:#}");
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
        record,
        status,
    };
    resp.map(|body| {
        TrackedBody::new(body, finish)
            .map_err(|e| Box::new(e) as BoxError)
            .boxed_unsync()
    })
}

/// The path to name in the log if the request fails (most do not, and
/// an `http::Uri` clone shares its bytes).
fn failed_path(req: &wasmtime_wasi_http::handler::Request) -> http::Uri {
    req.uri().clone()
}

fn too_large(
    app: &LoadedApp,
    component: &str,
    done: impl FnOnce(StatusCode, &'static str) -> Response<ResponseBody>,
) -> Response<ResponseBody> {
    tracing::warn!(
        component,
        limit_bytes = app.max_request_body(),
        "request body too large: 413"
    );
    crate::metrics::limit_hit(component, "body_size");
    done(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large")
}

fn slot_memory_mib(app: &LoadedApp) -> usize {
    app.max_instance_memory() >> 20
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

/// A status with no body (Spin's 404).
pub fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut resp = text(status, "");
    resp.headers_mut().remove(http::header::CONTENT_TYPE);
    resp
}

/// A trigger's `static_response`.
pub fn static_response(r: &crate::manifest::StaticResponse) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(r.status_code).unwrap_or(StatusCode::OK);
    let mut resp = empty(status);
    if let Some(body) = &r.body {
        resp = text(status, body.clone());
        resp.headers_mut().remove(http::header::CONTENT_TYPE);
    }
    for (name, value) in &r.headers {
        // Checked when the manifest was read.
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp
}

/// Chained requests (`http://NAME.spin.internal`, `self`) run here, in
/// process, on the app's own components.
impl Chain for LoadedApp {
    fn chain(
        self: Arc<Self>,
        request: http::Request<WasiBody>,
        component: Option<String>,
        caller: Arc<str>,
    ) -> ChainFuture {
        Box::new(async move {
            let app = self;
            let path = request.uri().path().to_owned();
            let route = match &component {
                Some(name) => RouteMatch::synthetic(name, &path),
                None => app
                    .router()
                    .route(&path)
                    .ok_or(HttpError::DestinationNotFound)?,
            };
            if let Some(r) = app.static_response(&route.component) {
                let response = static_response(r).map(|body| {
                    body.map_err(|e| HttpError::InternalError(Some(e.to_string())))
                        .boxed_unsync()
                });
                return Ok((response, Box::new(async { Ok(()) }) as IoFuture));
            }
            let Some(slot) = app.component(&route.component).cloned() else {
                tracing::warn!(component = %caller, target = %route.component, "chained request to an unknown component");
                return Err(HttpError::DestinationNotFound);
            };
            let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let mut request =
                crate::spin_headers::prepare(request, &route, loopback, app.router().base())
                    .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
            request.headers_mut().remove(http::header::HOST);
            tracing::debug!(from = %caller, to = %route.component, "chained request");
            let outcome = Arc::new(RequestOutcome::default());
            let response = invoke(
                &app,
                &slot,
                &route.component,
                route.raw_route.clone(),
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
