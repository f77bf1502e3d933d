//! The trace of one request: a server span that continues an incoming W3C
//! `traceparent`, with children for the phases trib runs it through (queue
//! wait, component load, instantiation, the guest) and for the guest's
//! host calls. Everything here is a no-op costing one branch when export
//! is off.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;

use super::export::tracer;

/// One request's span (none when export is off or the sampler said no).
#[derive(Clone, Default, Debug)]
pub struct RequestTrace(Option<Context>);

/// What a request span says about where it went.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The HTTP method.
    pub method: &'a http::Method,
    /// The request path (no query: it may carry tokens).
    pub path: &'a str,
    /// The route pattern that matched.
    pub route: &'a str,
    /// The component serving it.
    pub component: &'a str,
}

impl RequestTrace {
    /// Starts the server span of a request, continuing the trace named by
    /// its `traceparent` header (from a client, or from a component that
    /// chained this request).
    pub fn start(headers: &http::HeaderMap, info: RequestInfo<'_>) -> Self {
        let Some(tracer) = tracer() else {
            return Self(None);
        };
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        Self::root(
            tracer,
            &parent,
            format!("{} {}", info.method, info.route),
            SpanKind::Server,
            vec![
                KeyValue::new("http.request.method", info.method.to_string()),
                KeyValue::new("http.route", info.route.to_owned()),
                KeyValue::new("url.path", info.path.to_owned()),
                KeyValue::new("spin.component", info.component.to_owned()),
            ],
        )
    }

    /// The span of one request or run under `parent`; none when the
    /// sampler said no.
    fn root(
        tracer: &SdkTracer,
        parent: &Context,
        name: String,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Self {
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        let cx = parent.with_span(span);
        if !cx.span().span_context().is_sampled() {
            return Self(None);
        }
        Self(Some(cx))
    }

    /// Starts the root span of a trigger run that no request caused (a
    /// Redis message, a cron tick): a new trace.
    pub fn start_run(name: &str, kind: SpanKind, attributes: Vec<KeyValue>) -> Self {
        let Some(tracer) = tracer() else {
            return Self(None);
        };
        Self::root(tracer, &Context::new(), name.to_owned(), kind, attributes)
    }

    /// Ends a trigger run's span with how it ended (`spin.outcome`; any
    /// outcome but `ok` marks it failed).
    pub fn finish_run(&self, outcome: &'static str) {
        let Some(cx) = &self.0 else {
            return;
        };
        let span = cx.span();
        span.set_attribute(KeyValue::new("spin.outcome", outcome));
        if outcome != "ok" {
            span.set_status(Status::error(outcome));
        }
        span.end();
    }

    /// The span's context, when the request is traced.
    pub fn context(&self) -> Option<&Context> {
        self.0.as_ref()
    }

    /// The trace ID in hex, for logs.
    pub fn trace_id(&self) -> Option<String> {
        trace_id(self.0.as_ref()?)
    }

    /// A clock reading to start a phase with, taken only when traced.
    pub fn now(&self) -> Option<SystemTime> {
        self.0.as_ref().map(|_| SystemTime::now())
    }

    /// Records a phase that ran from `start` until now as a child span.
    pub fn phase(&self, name: &'static str, start: Option<SystemTime>) {
        if let (Some(cx), Some(start)) = (&self.0, start) {
            child_span(
                cx,
                name,
                SpanKind::Internal,
                start,
                SystemTime::now(),
                Vec::new(),
            );
        }
    }

    /// Records a phase that ran from `start` to `end` as a child span.
    pub fn phase_between(&self, name: &'static str, start: SystemTime, end: SystemTime) {
        if let Some(cx) = &self.0 {
            child_span(cx, name, SpanKind::Internal, start, end, Vec::new());
        }
    }

    /// Ends the span with the response status (5xx marks it failed).
    pub fn finish(&self, status: u16) {
        let Some(cx) = &self.0 else {
            return;
        };
        let span = cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
    }
}

/// A context's trace ID in hex.
pub(crate) fn trace_id(cx: &Context) -> Option<String> {
    let span = cx.span();
    let id = span.span_context().trace_id();
    (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_string())
}

/// A child of `parent` that ran from `start` to `end`.
pub(crate) fn child_span(
    parent: &Context,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
) {
    let Some(tracer) = tracer() else {
        return;
    };
    let mut span = tracer
        .span_builder(name)
        .with_kind(kind)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(tracer, parent);
    span.end_with_timestamp(end);
}

/// Starts a client span under `parent` (an outbound request) and writes
/// its `traceparent` into `headers`, so the server it calls continues the
/// trace.
pub(crate) fn start_client_span(
    parent: &Context,
    name: String,
    attributes: Vec<KeyValue>,
    headers: &mut http::HeaderMap,
) -> Option<Context> {
    let tracer = tracer()?;
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Client)
        .with_attributes(attributes)
        .start_with_context(tracer, parent);
    let cx = parent.with_span(span);
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
    Some(cx)
}

/// Which request a store is working for, for its host calls, outbound
/// requests and output lines (set as each request starts on it).
#[derive(Debug)]
pub struct StoreTrace {
    component: Arc<str>,
    current: Mutex<Option<Context>>,
}

impl StoreTrace {
    /// The trace cell of a new store of `component`.
    pub fn new(component: Arc<str>) -> Self {
        Self {
            component,
            current: Mutex::new(None),
        }
    }

    /// The component the store runs.
    pub fn component(&self) -> &Arc<str> {
        &self.component
    }

    /// The store now works for `request`.
    pub fn set(&self, request: &RequestTrace) {
        if let Some(cx) = request.context()
            && let Ok(mut current) = self.current.lock()
        {
            *current = Some(cx.clone());
        }
    }

    /// The span context of the request the store works for.
    pub fn context(&self) -> Option<Context> {
        self.current.lock().ok()?.clone()
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
