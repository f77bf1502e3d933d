//! Traces over OTLP, checked by a real receiver in the test that decodes
//! the official protobuf definitions (`opentelemetry-proto`), over
//! HTTP/protobuf and gRPC; the JSON log lines that carry the trace ID; and
//! the host-call histogram.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as Status;
use prost::Message as _;

use crate::outbound::Upstream;
use crate::support::{AppDir, Trib, client, guests, shared_cache};

/// Spans received so far, with a signal for each export.
#[derive(Default)]
struct Received {
    spans: Mutex<Vec<Span>>,
    arrived: Condvar,
}

impl Received {
    fn add(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().expect("lock");
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        self.arrived.notify_all();
    }

    /// Waits (on the export signal, up to `limit`) until `done` holds for
    /// the spans received, and returns them.
    fn wait_for(&self, limit: Duration, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + limit;
        let mut spans = self.spans.lock().expect("lock");
        while !done(&spans) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "spans not received within {limit:?}; got: {:#?}",
                spans
                    .iter()
                    .map(|s| (&s.name, hex(&s.trace_id)))
                    .collect::<Vec<_>>()
            );
            spans = self.arrived.wait_timeout(spans, left).expect("lock").0;
        }
        spans.clone()
    }
}

/// An OTLP receiver on loopback: HTTP/protobuf (`POST /v1/traces`) or gRPC.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Received>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn http() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Received::default());
        let sink = received.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let sink = sink.clone();
                            async move {
                                use http_body_util::BodyExt as _;
                                let path = req.uri().path().to_owned();
                                let body = req.into_body().collect().await?.to_bytes();
                                let status = match ExportTraceServiceRequest::decode(body) {
                                    Ok(export) if path == "/v1/traces" => {
                                        sink.add(export);
                                        200
                                    }
                                    _ => 400,
                                };
                                let reply = ExportTraceServiceResponse::default().encode_to_vec();
                                let mut resp = http::Response::new(http_body_util::Full::new(
                                    bytes::Bytes::from(reply),
                                ));
                                *resp.status_mut() =
                                    http::StatusCode::from_u16(status).expect("status");
                                resp.headers_mut().insert(
                                    http::header::CONTENT_TYPE,
                                    http::HeaderValue::from_static("application/x-protobuf"),
                                );
                                Ok::<_, hyper::Error>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            received,
            _runtime: runtime,
        }
    }

    fn grpc() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Received::default());
        let service = TraceServiceServer::new(GrpcSink(received.clone()));
        runtime.spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Self {
            addr,
            received,
            _runtime: runtime,
        }
    }

    fn env(&self, protocol: &'static str) -> Vec<(&'static str, String)> {
        vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", self.addr),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
            ("OTEL_SERVICE_NAME", "trib-tracing-test".to_owned()),
        ]
    }
}

struct GrpcSink(Arc<Received>);

#[tonic::async_trait]
impl TraceService for GrpcSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.add(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?;
    Some(match value.value.as_ref()? {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "tracing"
[variables]
upstream_port = { required = true }
[[trigger.http]]
route = "/front/..."
component = "front"
[[trigger.http]]
route = "/back/..."
component = "back"
[component.front]
source = "{p3}"
key_value_stores = ["default"]
allowed_outbound_hosts = ["http://back.spin.internal"]
[component.back]
source = "{p3}"
allowed_outbound_hosts = ["http://127.0.0.1:{{ upstream_port }}"]
"#;

fn start(env: Vec<(&'static str, String)>, upstream: &Upstream, extra: &[&str]) -> (AppDir, Trib) {
    let app = AppDir::new(&APP.replace("{p3}", &guests().p3.display().to_string()));
    let port = upstream.addr.port().to_string();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("SPIN_VARIABLE_UPSTREAM_PORT", &port));
    let trib = Trib::start_with_env(&app, &shared_cache(), extra, &env);
    (app, trib)
}

/// The incoming trace the test continues.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[test]
fn a_chained_request_is_one_trace_from_the_incoming_traceparent_to_the_upstream() {
    let receiver = Receiver::http();
    let upstream = Upstream::start();
    let (_app, trib) = start(
        receiver.env("http/protobuf"),
        &upstream,
        &["--log-format", "json", "--admin-listen", "127.0.0.1:0"],
    );
    let upstream_url = format!("http://127.0.0.1:{}/up", upstream.addr.port());
    let resp = client()
        .get(trib.url("/front/relay"))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .header(
            "x-relay",
            format!("http://back.spin.internal/back/fetch?url={upstream_url}"),
        )
        .send()
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().expect("body"),
        "200 200 upstream ok /up",
        "front chained to back, which reached the upstream"
    );

    let in_trace = |spans: &[Span]| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| hex(&s.trace_id) == TRACE)
            .cloned()
            .collect()
    };
    // Both server spans, both outbound spans and the key-value calls.
    let spans = receiver
        .received
        .wait_for(Duration::from_secs(20), |spans| {
            let spans = in_trace(spans);
            let servers = spans
                .iter()
                .filter(|s| s.kind == SpanKind::Server as i32)
                .count();
            let outbound = spans
                .iter()
                .filter(|s| attribute(s, "spin.api").as_deref() == Some("outbound_http"))
                .count();
            servers == 2 && outbound == 2
        });
    let spans = in_trace(&spans);
    let by_id: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    let server = |component: &str| {
        spans
            .iter()
            .find(|s| {
                s.kind == SpanKind::Server as i32
                    && attribute(s, "spin.component").as_deref() == Some(component)
            })
            .unwrap_or_else(|| panic!("no server span for {component}"))
    };
    let children = |parent: &Span| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.parent_span_id == parent.span_id)
            .collect()
    };
    let names = |parent: &Span| -> Vec<String> {
        let mut names: Vec<String> = children(parent).iter().map(|s| s.name.clone()).collect();
        names.sort();
        names
    };

    // The front span continues the incoming trace under the given parent.
    let front = server("front");
    assert_eq!(hex(&front.parent_span_id), PARENT);
    assert_eq!(front.name, "GET /front/...");
    assert_eq!(
        attribute(front, "http.route").as_deref(),
        Some("/front/...")
    );
    assert_eq!(
        attribute(front, "http.response.status_code").as_deref(),
        Some("200")
    );
    let front_children = names(front);
    for phase in ["queue_wait", "instantiate", "execute_wasm_component"] {
        assert!(
            front_children.iter().any(|n| n == phase),
            "{phase} in {front_children:?}"
        );
    }
    // Key-value calls (open, set) are children of the request, by API.
    let kv: Vec<&Span> = children(front)
        .into_iter()
        .filter(|s| attribute(s, "spin.api").as_deref() == Some("key_value"))
        .collect();
    assert!(
        kv.iter().any(|s| s.name.contains("set")),
        "a key-value set span under front: {front_children:?}"
    );
    assert!(kv.iter().all(|s| s.kind == SpanKind::Client as i32));

    // The chained request: front's outbound span is the parent of back's
    // server span (the same trace, in process).
    let chained = children(front)
        .into_iter()
        .find(|s| attribute(s, "server.address").as_deref() == Some("back.spin.internal"))
        .expect("an outbound span to back.spin.internal under front");
    let back = server("back");
    assert_eq!(
        back.parent_span_id, chained.span_id,
        "back continues front's outbound span"
    );
    // The client span ends with the response head; back's body may still
    // be streaming then, so only its start must fall inside.
    assert!(
        back.start_time_unix_nano >= chained.start_time_unix_nano
            && back.start_time_unix_nano <= chained.end_time_unix_nano,
        "back starts within front's outbound call"
    );

    // back's outbound span carried its traceparent to the upstream.
    let out = children(back)
        .into_iter()
        .find(|s| attribute(s, "server.address").as_deref() == Some("127.0.0.1"))
        .expect("an outbound span to the upstream under back");
    assert_eq!(
        attribute(out, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        upstream.traceparents(),
        vec![format!("00-{TRACE}-{}-01", hex(&out.span_id))],
        "the upstream received the outbound span's traceparent"
    );
    // Every span in the trace hangs off one the trace has, or the caller's.
    for span in &spans {
        let parent = hex(&span.parent_span_id);
        assert!(
            parent == PARENT || by_id.contains_key(&parent),
            "{} has an unknown parent {parent}",
            span.name
        );
    }

    // The JSON access lines carry the trace ID.
    let log = trib.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let access = |component: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "trib::access" && l["component"] == component)
            .unwrap_or_else(|| panic!("no access line for {component} in:\n{log}"))
            .clone()
    };
    // A request chained by component name (`back.spin.internal`) is routed
    // to the whole component, as Spin does: its route is `/...`.
    for (component, route) in [("front", "/front/..."), ("back", "/...")] {
        let line = access(component);
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["status"], 200, "{line}");
        assert_eq!(line["trace_id"], TRACE, "{line}");
        assert!(
            line["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
            "{line}"
        );
    }

    // Host-call durations by API, in the metrics.
    let metrics = trib.scrape();
    for (component, api) in [
        ("front", "key_value"),
        ("front", "outbound_http"),
        ("back", "outbound_http"),
    ] {
        let count = metrics.get(
            "trib_host_call_duration_seconds_count",
            &format!("api=\"{api}\",component=\"{component}\""),
        );
        assert!(count >= 1.0, "{component} {api}: {count}");
    }
}

#[test]
fn guest_output_in_json_logs_carries_the_trace_id() {
    let receiver = Receiver::http();
    let upstream = Upstream::start();
    let (_app, trib) = start(
        receiver.env("http/protobuf"),
        &upstream,
        &["--log-format", "json"],
    );
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let resp = client()
        .get(trib.url("/front/print?out=to-stdout&err=to-stderr"))
        .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
        .send()
        .expect("request");
    assert_eq!(resp.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = trib.log();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|l: &serde_json::Value| l["target"] == "trib::guest")
            .collect();
        let found = |stream: &str, text: &str| {
            lines.iter().any(|l| {
                l["component"] == "front"
                    && l["stream"] == stream
                    && l["message"] == text
                    && l["trace_id"] == trace
            })
        };
        if found("stdout", "to-stdout") && found("stderr", "to-stderr") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "guest lines with the trace ID in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A cron tick has no request behind it: each is a trace of its own, with
/// the guest's SQLite calls under it and a failed tick marked failed.
#[test]
fn each_cron_tick_is_a_trace_with_its_host_calls() {
    let receiver = Receiver::http();
    // The cron test's app: every second, trapping on even ticks.
    let app = crate::cron_trigger::app(r#"{ CRON_TRAP_EVEN = "1" }"#);
    let env = receiver.env("http/protobuf");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _trib = Trib::start_with_env(&app, &shared_cache(), &[], &env);
    let ticks = |spans: &[Span]| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| s.name == "cron tick")
            .cloned()
            .collect()
    };
    let spans = receiver
        .received
        .wait_for(Duration::from_secs(30), |spans| {
            let ticks = ticks(spans);
            ["ok", "trap"].iter().all(|outcome| {
                ticks
                    .iter()
                    .any(|t| attribute(t, "spin.outcome").as_deref() == Some(*outcome))
            })
        });
    for tick in ticks(&spans) {
        assert!(tick.parent_span_id.is_empty(), "a tick starts a trace");
        assert_eq!(
            attribute(&tick, "spin.component").as_deref(),
            Some("ticker")
        );
        assert!(attribute(&tick, "spin.cron.timestamp").is_some());
        let children: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == tick.span_id)
            .collect();
        // Open, create table, insert: in the tick's trace, under it.
        let sqlite = children
            .iter()
            .filter(|s| attribute(s, "spin.api").as_deref() == Some("sqlite"))
            .count();
        assert!(sqlite >= 2, "SQLite calls under the tick: {children:#?}");
        assert!(children.iter().any(|s| s.name == "queue_wait"));
        assert!(children.iter().all(|s| s.trace_id == tick.trace_id));
        let failed = tick
            .status
            .as_ref()
            .is_some_and(|s| s.code == Status::Error as i32);
        let trapped = attribute(&tick, "spin.outcome").as_deref() == Some("trap");
        assert_eq!(
            failed, trapped,
            "only the trapped tick is failed: {tick:#?}"
        );
    }
}

/// Spans still queued when trib stops (the batch delay far away) are
/// sent before it exits.
#[test]
fn spans_queued_at_shutdown_are_sent_before_exit() {
    let receiver = Receiver::http();
    let upstream = Upstream::start();
    let mut env = receiver.env("http/protobuf");
    env.retain(|(k, _)| *k != "OTEL_BSP_SCHEDULE_DELAY");
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "600000".to_owned()));
    let (_app, mut trib) = start(env, &upstream, &[]);
    assert_eq!(trib.get("/front/hello").0, 200);
    assert!(
        receiver.received.spans.lock().expect("lock").is_empty(),
        "nothing is sent before the delay or a full batch"
    );
    trib.terminate();
    let status = trib.wait_exit(Duration::from_secs(20)).expect("trib exits");
    assert!(status.success(), "{status:?}\n{}", trib.log());
    let spans = receiver.received.spans.lock().expect("lock").clone();
    assert!(
        spans
            .iter()
            .any(|s| s.kind == SpanKind::Server as i32 && s.name == "GET /front/..."),
        "the request's server span arrived at shutdown: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
}

#[test]
fn spans_go_over_grpc_too() {
    let receiver = Receiver::grpc();
    let upstream = Upstream::start();
    let (_app, trib) = start(receiver.env("grpc"), &upstream, &[]);
    assert_eq!(trib.get("/front/hello").0, 200);
    let spans = receiver
        .received
        .wait_for(Duration::from_secs(20), |spans| {
            spans.iter().any(|s| s.kind == SpanKind::Server as i32)
        });
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("a server span");
    assert_eq!(
        attribute(server, "spin.component").as_deref(),
        Some("front")
    );
    assert_eq!(
        attribute(server, "url.path").as_deref(),
        Some("/front/hello")
    );
    assert!(
        server.parent_span_id.is_empty(),
        "a new trace without a traceparent"
    );
}

#[test]
fn without_an_endpoint_nothing_is_traced_or_propagated() {
    let upstream = Upstream::start();
    let (_app, trib) = start(Vec::new(), &upstream, &[]);
    let url = format!("http://127.0.0.1:{}/up", upstream.addr.port());
    let (status, body) = trib.get(&format!("/back/fetch?url={url}"));
    assert_eq!((status, body.as_str()), (200, "200 upstream ok /up"));
    assert!(
        upstream.traceparents().is_empty(),
        "{:?}",
        upstream.traceparents()
    );
    assert!(!trib.log().contains("exporting traces"), "{}", trib.log());
}
