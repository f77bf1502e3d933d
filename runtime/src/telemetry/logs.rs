//! trib's own log lines: human text (the default) or one JSON object per
//! line (`--log-format json`) for log pipelines, with an access line per
//! request and guest output carrying the request's trace ID.
//!
//! `TRIB_LOG` filters as `RUST_LOG` does (default `info`). The access line
//! (target `trib::access`) is on by default in JSON and off in text, where
//! it would drown the rest; `TRIB_LOG=info,trib::access=info` turns it on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing_log::AsLog as _;
use tracing_subscriber::filter::{EnvFilter, FilterFn, LevelFilter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{Layer as _, fmt};

use super::host_calls::HostCallLayer;
use super::request::RequestTrace;

/// How trib writes its log lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Whether logs are JSON (guest output is then logged as JSON too).
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Directives always added: the WIT bindings' per-call events carry
/// argument values (secrets among them) and never reach the log.
const QUIET_BINDINGS: [&str; 1] = ["trib::spin_apis=warn"];

/// The filter from `TRIB_LOG`, or the default for `format`.
pub fn filter(from_env: Option<&str>, format: LogFormat) -> EnvFilter {
    let default = match format {
        LogFormat::Text => "info,trib::access=warn",
        LogFormat::Json => "info",
    };
    let mut filter = from_env
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    for directive in QUIET_BINDINGS {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the process's subscriber: the log lines on stderr and, with
/// `host_calls`, the timing of Spin API calls (metrics, spans).
pub fn init(format: LogFormat, host_calls: bool) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let filter = filter(std::env::var("TRIB_LOG").ok().as_deref(), format);
    let log_level = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let lines = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter);
    let calls =
        host_calls.then(|| HostCallLayer::new().with_filter(FilterFn::new(HostCallLayer::wants)));
    // A second subscriber (tests calling `init` twice) is refused quietly.
    let subscriber = tracing_subscriber::registry().with(lines).with(calls);
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        // The host-call layer wants TRACE-level spans, which lifts
        // tracing's max level to TRACE; log records (Wasmtime logs
        // through `log` on every instantiation) must still stop at the
        // log filter's level, in the `log` macro, or each one costs a
        // dispatcher lookup (about 10% of a fresh-instance request).
        let _ = tracing_log::LogTracer::builder()
            .with_max_level(log_level.as_log())
            .init();
    }
}

/// The access line of one request.
pub fn request_done(
    component: &str,
    route: &str,
    status: u16,
    elapsed: Duration,
    trace: &RequestTrace,
) {
    tracing::info!(
        target: "trib::access",
        component,
        route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        trace_id = trace.trace_id().as_deref(),
        "request"
    );
}

/// One line a guest wrote, as a JSON log line.
pub fn guest_line(component: &str, stream: &'static str, line: &str, trace_id: Option<&str>) {
    tracing::info!(target: "trib::guest", component, stream, trace_id, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_stay_quiet_whatever_trib_log_says() {
        let f = filter(Some("trace"), LogFormat::Text).to_string();
        assert!(f.contains("trib::spin_apis=warn"), "{f}");
        let f = filter(Some("trib::spin_apis=trace"), LogFormat::Json).to_string();
        assert!(f.contains("trib::spin_apis=warn"), "{f}");
        assert!(!f.contains("trib::spin_apis=trace"), "{f}");
    }

    #[test]
    fn access_lines_are_on_by_default_only_in_json() {
        assert!(
            filter(None, LogFormat::Text)
                .to_string()
                .contains("trib::access=warn")
        );
        assert!(
            !filter(None, LogFormat::Json)
                .to_string()
                .contains("trib::access")
        );
    }
}
