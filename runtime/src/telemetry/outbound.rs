//! Outbound HTTP (and requests chained to other components) as a host
//! call: timed into `trib_host_call_duration_seconds{api="outbound_http"}`
//! and, when traced, a client span whose W3C `traceparent` travels with
//! the request, so the callee (another service, or a chained component
//! in this process) continues the same trace.

use std::sync::Arc;
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Status, TraceContextExt as _};
use wasmtime_wasi_http::WasiBody;

use super::host_calls;
use super::request::{StoreTrace, start_client_span};
use crate::outbound::SendFuture;

/// Sends `request` with `send`, timing it and tracing it under the
/// store's request.
pub(crate) fn traced(
    store: &Arc<StoreTrace>,
    mut request: http::Request<WasiBody>,
    send: impl FnOnce(http::Request<WasiBody>) -> SendFuture,
) -> SendFuture {
    if !host_calls::on() && super::export::tracer().is_none() {
        return send(request);
    }
    let span = store.context().and_then(|parent| {
        let method = request.method().to_string();
        let uri = request.uri();
        let attributes = vec![
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("server.address", uri.host().unwrap_or_default().to_owned()),
            KeyValue::new("url.path", uri.path().to_owned()),
            KeyValue::new("spin.api", "outbound_http"),
        ];
        start_client_span(&parent, method, attributes, request.headers_mut())
    });
    let component = store.component().clone();
    let started = Instant::now();
    let sent = Box::into_pin(send(request));
    Box::new(async move {
        let result = sent.await;
        crate::metrics::host_call_done(&component, "outbound_http", started.elapsed());
        if let Some(cx) = span {
            let span = cx.span();
            match &result {
                Ok((response, _)) => {
                    let status = response.status().as_u16();
                    span.set_attribute(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status),
                    ));
                    if status >= 500 {
                        span.set_status(Status::error(format!("HTTP {status}")));
                    }
                }
                Err(e) => span.set_status(Status::error(e.to_string())),
            }
            span.end();
        }
        result
    })
}
