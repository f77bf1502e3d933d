//! Host calls (Spin's APIs) as spans and as the `trib_host_call_duration_seconds`
//! histogram, by API.
//!
//! The bindings generated from our WIT (`spin_apis::p2`, `p3`) wrap every
//! import in a `tracing` span named `wit-bindgen import` with the
//! interface and function as fields. [`HostCallLayer`] times those spans;
//! the component and the request they belong to are not known to the
//! bindings, so the store's view function (called by the generated code
//! while the span is entered) leaves them in a thread-local
//! ([`note_caller`]) that the layer picks up when the span is exited.
//! With neither metrics nor export on, the layer is not installed and the
//! spans are disabled at their call sites.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use super::request::{StoreTrace, child_span};

/// The span name the WIT bindings give every import call.
const IMPORT_SPAN: &str = "wit-bindgen import";

/// Whether host calls are being timed (the layer is installed).
static ON: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The caller of the host call now running on this thread.
    static CALLER: RefCell<Option<Caller>> = const { RefCell::new(None) };
}

/// Who made a host call.
struct Caller {
    component: Arc<str>,
    parent: Option<Context>,
}

/// Whether host calls are timed (metrics or trace export is on).
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Called from the store's view of Spin's APIs, inside the generated
/// import's span: says which component and request the call is for.
pub fn note_caller(store: &StoreTrace) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    CALLER.with(|caller| {
        *caller.borrow_mut() = Some(Caller {
            component: store.component().clone(),
            parent: store.context(),
        });
    });
}

/// Times the generated import spans; see the module documentation.
#[derive(Debug, Default)]
pub struct HostCallLayer {
    _private: (),
}

impl HostCallLayer {
    /// The layer; installing it turns host-call timing on.
    pub fn new() -> Self {
        ON.store(true, Ordering::Relaxed);
        Self { _private: () }
    }

    /// Only the import spans of our bindings reach the layer.
    pub fn wants(metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_span()
            && metadata.name() == IMPORT_SPAN
            && metadata.target().starts_with("trib::spin_apis")
    }
}

/// One call in progress.
struct Call {
    interface: String,
    function: String,
    started: Instant,
    started_at: SystemTime,
    caller: Option<Caller>,
}

#[derive(Default)]
struct Fields {
    interface: Option<String>,
    function: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "module" => self.interface = Some(value.to_owned()),
            "function" => self.function = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let value = format!("{value:?}");
        self.record_str(field, value.trim_matches('"'));
    }
}

impl<S> Layer<S> for HostCallLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if !Self::wants(attrs.metadata()) {
            return;
        }
        // A caller noted outside any import span is stale by now.
        CALLER.with(|c| c.borrow_mut().take());
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Call {
                interface: fields.interface.unwrap_or_default(),
                function: fields.function.unwrap_or_default(),
                started: Instant::now(),
                started_at: SystemTime::now(),
                caller: None,
            });
        }
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(call) = extensions.get_mut::<Call>()
            && call.caller.is_none()
        {
            call.caller = CALLER.with(|c| c.borrow_mut().take());
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(call) = span.extensions_mut().remove::<Call>() else {
            return;
        };
        let api = api_of(&call.interface, &call.function);
        let component = call
            .caller
            .as_ref()
            .map_or_else(|| Arc::from("unknown"), |c| c.component.clone());
        crate::metrics::host_call_done(&component, api, call.started.elapsed());
        if let Some(parent) = call.caller.and_then(|c| c.parent) {
            child_span(
                &parent,
                format!("{api} {}", operation(&call.function)),
                SpanKind::Client,
                call.started_at,
                SystemTime::now(),
                vec![
                    KeyValue::new("spin.api", api),
                    KeyValue::new("spin.component", component.to_string()),
                    KeyValue::new("wit.interface", call.interface),
                    KeyValue::new("wit.function", call.function),
                ],
            );
        }
    }
}

/// The API label of a WIT import: which of Spin's host APIs it belongs to
/// (both SDK generations and the WASI interfaces Spin also serves).
pub fn api_of(interface: &str, function: &str) -> &'static str {
    match interface {
        "key-value" | "atomics" | "batch" => "key_value",
        // `wasi:keyvalue/store` and `wasi:config/store` share a name.
        "store" if function == "open" || function.starts_with("[method]bucket") => "key_value",
        "store" | "variables" => "variables",
        "sqlite" => "sqlite",
        "postgres" | "rdbms-types" => "postgres",
        "mysql" => "mysql",
        "redis" => "redis",
        "mqtt" => "mqtt",
        _ => "other",
    }
}

/// `[method]store.get` → `store.get`; `open` stays `open`.
fn operation(function: &str) -> &str {
    function
        .strip_prefix("[method]")
        .or_else(|| function.strip_prefix("[static]"))
        .or_else(|| function.strip_prefix("[constructor]"))
        .unwrap_or(function)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_map_to_their_api() {
        assert_eq!(api_of("key-value", "[method]store.get"), "key_value");
        assert_eq!(api_of("store", "open"), "key_value");
        assert_eq!(api_of("store", "[method]bucket.get"), "key_value");
        assert_eq!(api_of("store", "get"), "variables");
        assert_eq!(api_of("variables", "get"), "variables");
        assert_eq!(api_of("sqlite", "[method]connection.execute"), "sqlite");
        assert_eq!(api_of("rdbms-types", "x"), "postgres");
        assert_eq!(api_of("nope", "x"), "other");
        assert_eq!(operation("[method]store.get"), "store.get");
        assert_eq!(operation("[static]connection.open"), "connection.open");
        assert_eq!(operation("open"), "open");
    }
}
