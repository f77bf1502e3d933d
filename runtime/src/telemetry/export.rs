//! OTLP export of traces, switched on by the standard `OTEL_*` environment
//! variables as Spin's is: nothing is set up (and nothing costs) unless an
//! endpoint is given.
//!
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
//!   turns export on;
//! - `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`:
//!   `http/protobuf` (the default) or `grpc`;
//! - `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off;
//! - the exporter reads `OTEL_EXPORTER_OTLP_*_HEADERS` and `_TIMEOUT`, the
//!   SDK `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`, `OTEL_SERVICE_NAME` and
//!   `OTEL_RESOURCE_ATTRIBUTES`.
//!
//! Spans are queued by the SDK's batch thread and sent from trib's own
//! tokio runtime ([`super::on_runtime`]).

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithHttpConfig as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// The tracer every span comes from; unset when export is off.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The tracer, when export is on.
pub(crate) fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// Whether spans are exported: what per-request work that only feeds a
/// trace checks first.
pub fn on() -> bool {
    TRACER.get().is_some()
}

/// Why tracing could not be set up (a bad `OTEL_*` value).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The protocol is not one trib speaks.
    #[error(
        "{variable}={value:?} is not supported: use \"http/protobuf\" (the default) or \"grpc\""
    )]
    Protocol {
        /// The variable that named it.
        variable: &'static str,
        /// What it said.
        value: String,
    },
    /// The exporter could not be built (a malformed endpoint, say).
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Exporter(String),
}

/// How spans travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over HTTP with protobuf bodies (`/v1/traces`).
    HttpProtobuf,
    /// OTLP over gRPC.
    Grpc,
}

/// What the environment asks for: `None` when export is off.
pub fn configured(env: impl Fn(&str) -> Option<String>) -> Result<Option<Protocol>, ExportError> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    if set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        && set("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
    {
        return Ok(None);
    }
    let (variable, value) = match set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
        Some(v) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", v),
        None => match set("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(v) => ("OTEL_EXPORTER_OTLP_PROTOCOL", v),
            None => return Ok(Some(Protocol::HttpProtobuf)),
        },
    };
    match value.trim() {
        "http/protobuf" => Ok(Some(Protocol::HttpProtobuf)),
        "grpc" => Ok(Some(Protocol::Grpc)),
        _ => Err(ExportError::Protocol { variable, value }),
    }
}

/// Keeps export running; dropping it sends what is buffered.
pub struct Exporting {
    provider: SdkTracerProvider,
}

impl Exporting {
    /// Sends the spans still buffered and stops the exporter (without
    /// blocking the async runtime's threads).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

/// Starts OTLP export if the environment asks for it; must run inside the
/// tokio runtime that will carry the exports.
pub fn init_from_env() -> Result<Option<Exporting>, ExportError> {
    let Some(protocol) = configured(|name| std::env::var(name).ok())? else {
        return Ok(None);
    };
    let exporter = match protocol {
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(http_client())
            .build(),
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build(),
    }
    .map_err(|e| ExportError::Exporter(e.to_string()))?;
    let exporter = super::on_runtime::OnRuntime::new(exporter, tokio::runtime::Handle::current());
    let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter).build();
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("trib");
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build();
    // Set once per process; a second call keeps the first tracer.
    let _ = TRACER.set(provider.tracer("trib"));
    tracing::info!(?protocol, "exporting traces over OTLP");
    Ok(Some(Exporting { provider }))
}

/// How long one export may take (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, then
/// `OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds; 10 s by default).
fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.trim().parse::<u64>().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// Our hyper stack with rustls (HTTP and HTTPS collectors alike).
fn http_client() -> opentelemetry_http::hyper::HyperClient<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    opentelemetry_http::hyper::HyperClient::new(connector, export_timeout(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn export_is_off_without_an_endpoint_and_when_disabled() {
        assert_eq!(configured(env(&[])).expect("read"), None);
        assert_eq!(
            configured(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).expect("read"),
            None
        );
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(
            configured(env(&[endpoint, ("OTEL_SDK_DISABLED", "true")])).expect("read"),
            None
        );
        assert_eq!(
            configured(env(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")])).expect("read"),
            None
        );
    }

    #[test]
    fn protocol_comes_from_the_traces_variable_first() {
        let endpoint = (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:4317",
        );
        assert_eq!(
            configured(env(&[endpoint])).expect("read"),
            Some(Protocol::HttpProtobuf)
        );
        assert_eq!(
            configured(env(&[
                endpoint,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ]))
            .expect("read"),
            Some(Protocol::Grpc)
        );
        let err = configured(env(&[
            endpoint,
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]))
        .expect_err("refused")
        .to_string();
        assert!(
            err.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && err.contains("grpc"),
            "{err}"
        );
    }
}
