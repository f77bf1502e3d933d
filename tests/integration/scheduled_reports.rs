//! Scheduled reports: the data app's `reports` component on a cron
//! trigger every second (Spin's cron plugin manifest), building each
//! report through the query API, storing it, posting it to a webhook, and
//! serving the stored reports at `/api/reports` as JSON and CSV.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{AppDir, Trib, client, functions, shared_cache};

const WRITE_KEY: &str = "report-key";
const TOKEN: &str = "report-token";

/// A loopback webhook that keeps the JSON bodies posted to it.
struct Hook {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Hook {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let kept = kept.clone();
                            async move {
                                use http_body_util::BodyExt as _;
                                let body = req.into_body().collect().await?.to_bytes();
                                if let Ok(json) = serde_json::from_slice(&body) {
                                    kept.lock().expect("lock").push(json);
                                }
                                Ok::<_, hyper::Error>(http::Response::new(
                                    http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                                ))
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
            port,
            bodies,
            _runtime: runtime,
        }
    }
}

fn app(hook: &Hook) -> AppDir {
    let app = crate::support::data_app(
        "scheduled-reports",
        &format!("{WRITE_KEY}=web"),
        Some(&format!("{TOKEN}=web")),
        [
            ("transform_filter", "{}"),
            ("transform_filter", "{}"),
            ("transform_filter", "{}"),
            (
                "transform_validate",
                r#"{"rules": {"Order Completed": {"properties": {"total": {"type": "number", "minimum": 0}}}}}"#,
            ),
        ],
    );
    let manifest = app.manifest();
    let mut text = std::fs::read_to_string(&manifest).expect("manifest");
    text.push_str(&format!(
        r#"
[[trigger.cron]]
component = "reports"
cron_expression = "*/1 * * * * *"
[[trigger.http]]
route = "/api/reports/..."
component = "reports"
[component.reports]
source = "{reports}"
key_value_stores = ["default"]
allowed_outbound_hosts = ["http://query.spin.internal", "http://127.0.0.1:{port}"]
[component.reports.variables]
read_tokens = "{{{{ read_tokens }}}}"
report_funnel = "Signed Up,Order Completed"
report_webhook_url = "http://127.0.0.1:{port}/hook"
"#,
        reports = functions().join("reports.wasm").display(),
        port = hook.port,
    ));
    std::fs::write(&manifest, text).expect("manifest");
    app
}

fn get(trib: &Trib, path: &str) -> (u16, String) {
    let resp = client()
        .get(trib.url(path))
        .bearer_auth(TOKEN)
        .send()
        .expect("request");
    (resp.status().as_u16(), resp.text().expect("body"))
}

fn json_get(trib: &Trib, path: &str) -> Value {
    let (status, body) = get(trib, path);
    assert_eq!(status, 200, "{path}: {body}\n{}", trib.log());
    serde_json::from_str(&body).expect("JSON")
}

#[test]
fn a_cron_report_every_second_matches_the_query_api_and_is_served_as_json_and_csv() {
    let hook = Hook::start();
    let app = app(&hook);
    let trib = Trib::start_with(&app, &shared_cache(), &["--admin-listen", "127.0.0.1:0"]);
    // Three users sign up, two of them order; one order is rejected (a
    // negative total).
    let (signed_up, ordered) = (
        iso_ago(Duration::from_secs(60)),
        iso_ago(Duration::from_secs(30)),
    );
    let mut batch = Vec::new();
    for user in ["u1", "u2", "u3"] {
        batch.push(
            json!({"type": "track", "event": "Signed Up", "userId": user, "timestamp": signed_up}),
        );
    }
    for user in ["u1", "u2"] {
        batch.push(json!({"type": "track", "event": "Order Completed", "userId": user, "timestamp": ordered,
            "properties": {"total": 10, "order_id": format!("o-{user}")}}));
    }
    batch.push(
        json!({"type": "track", "event": "Order Completed", "userId": "u3", "timestamp": ordered,
        "properties": {"total": -1, "order_id": "bad"}}),
    );
    let resp = client()
        .post(trib.url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&json!({ "batch": batch }))
        .send()
        .expect("ingest");
    assert_eq!(resp.status().as_u16(), 200, "{}", trib.log());

    // Three reports, from three ticks, each counting every stored event.
    let deadline = Instant::now() + Duration::from_secs(60);
    let reports = loop {
        let answer = json_get(&trib, "/api/reports");
        let reports: Vec<Value> = answer["reports"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["events"] == 5)
            .collect();
        if reports.len() >= 3 {
            break reports;
        }
        assert!(
            Instant::now() < deadline,
            "three reports of the 5 events within 60 s; got {answer}\n{}",
            trib.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let ticks: Vec<u64> = reports.iter().filter_map(|r| r["tick"].as_u64()).collect();
    assert!(
        ticks.windows(2).all(|w| w[0] > w[1]),
        "newest first, one per tick: {ticks:?}"
    );

    // One report against the query API over the same window.
    let report = &reports[0];
    let (from, to) = (
        report["from"].as_i64().expect("from"),
        report["to"].as_i64().expect("to"),
    );
    let funnel = json_get(
        &trib,
        &format!("/api/v1/funnel?steps=Signed%20Up,Order%20Completed&from={from}&to={to}"),
    );
    assert_eq!(report["funnel"]["steps"], funnel["steps"], "{report}");
    assert_eq!(funnel["steps"][1]["users"], 2, "{funnel}");
    let conversion = report["funnel"]["conversion"].as_f64().expect("conversion");
    assert!((conversion - 2.0 / 3.0).abs() < 1e-9, "{report}");
    let by_event = json_get(
        &trib,
        &format!(
            "/api/v1/counts?bucket=day&group_by=event&from={}&to={to}",
            from - 86_400_000 + 1
        ),
    );
    let total: i64 = by_event["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(|b| b["count"].as_i64())
        .sum();
    assert_eq!(report["events"], total, "{report} vs {by_event}");
    assert_eq!(
        report["top_events"],
        json!([{"event": "Signed Up", "count": 3}, {"event": "Order Completed", "count": 2}])
    );
    assert_eq!(report["dead_letters"], 1, "{report}");
    assert_eq!(report["events_previous_week"], 0);
    assert_eq!(report["week_over_week"], Value::Null);

    // The same reports as CSV.
    let (status, csv) = get(&trib, "/api/reports?format=csv");
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "id,source,tick,from,to,events,events_previous_week,week_over_week,funnel_conversion,dead_letters"
        )
    );
    let first = lines.find(|l| l.starts_with(report["id"].as_str().expect("id")));
    assert!(
        first.is_some_and(|l| l.ends_with(",5,0,,0.6666666666666666,1")),
        "{csv}"
    );

    // The webhook got chat messages.
    let posted = hook.bodies.lock().expect("lock").clone();
    assert!(
        posted.iter().any(|b| b["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Tributary weekly report for web: 5 events"))),
        "{posted:?}"
    );

    // Another source's token sees none of them; no token is refused.
    assert_eq!(
        client()
            .get(trib.url("/api/reports"))
            .send()
            .expect("request")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        client()
            .get(trib.url("/api/reports"))
            .bearer_auth("nope")
            .send()
            .expect("request")
            .status()
            .as_u16(),
        403
    );
    let ok = trib.scrape().get(
        "trib_cron_runs_total",
        "component=\"reports\",outcome=\"ok\"",
    );
    assert!(ok >= 3.0, "{ok}");
}

/// `ago` before now, as Segment's ISO 8601 timestamp.
fn iso_ago(ago: Duration) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    crate::rollups::iso(i64::try_from((now - ago).as_millis()).expect("ms"))
}
