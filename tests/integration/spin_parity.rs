//! Spin's smaller behaviours that real apps meet: well-known paths, empty
//! 404s, static responses, parameter header names, `allowed_http_hosts`,
//! the canonical `http` executor.

use crate::outbound::Upstream;
use crate::support::{AppDir, Trib, client};

fn app(upstream: &Upstream) -> AppDir {
    AppDir::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "parity"
version = "1.2.3"

[[trigger.http]]
route = "/..."
component = "p3"
executor = {{ type = "http" }}

[[trigger.http]]
route = "/base/:path_segment/:path_end/..."
component = "p3"

[[trigger.http]]
route = "/static"
static_response = {{ status_code = 201, headers = {{ x-static = "yes", content-type = "text/plain" }}, body = "made by the host" }}

[[trigger.http]]
id = "gone"
route = "/gone"
static_response = {{ status_code = 410 }}

[[trigger.http]]
route = "/old/..."
component = "old"
executor = {{ type = "spin" }}

[component.p3]
source = "{{p3}}"

[component.old]
source = "{{p2}}"
allowed_http_hosts = ["127.0.0.1:{port}", "self"]
"#,
        port = upstream.addr.port()
    ))
}

#[test]
fn well_known_paths_are_the_hosts_even_under_a_catch_all() {
    let upstream = Upstream::start();
    let app = app(&upstream);
    let trib = Trib::start(&app);
    let resp = client()
        .get(trib.url("/.well-known/spin/info"))
        .send()
        .expect("info");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let info: serde_json::Value = resp.json().expect("json");
    assert_eq!(
        info,
        serde_json::json!({"name": "parity", "version": "1.2.3"})
    );
    trib.assert_gets(&[
        ("/.well-known/spin/health", 200, "OK"),
        ("/.well-known/spin/other", 404, ""),
        ("/.well-known/spin/", 404, ""),
        // The catch-all still gets everything else.
        (
            "/.well-known/other",
            200,
            "hello from p3 at /.well-known/other\n",
        ),
    ]);
}

#[test]
fn static_responses_are_sent_by_the_host() {
    let upstream = Upstream::start();
    let app = app(&upstream);
    let trib = Trib::start(&app);
    let resp = client().get(trib.url("/static")).send().expect("static");
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers().get("x-static").and_then(|v| v.to_str().ok()),
        Some("yes")
    );
    assert_eq!(resp.text().expect("body"), "made by the host");
    trib.assert_gets(&[("/gone", 410, "")]);
    // Printed by trigger id, as Spin prints them.
    assert!(
        trib.banner
            .contains(&format!("  gone: {}/gone\n", trib.base)),
        "{}",
        trib.banner
    );
    // A chained `self` request reaches a static route too.
    trib.assert_gets(&[(
        "/old/fetch?url=http://self/static",
        200,
        "201 made by the host",
    )]);
}

#[test]
fn parameter_headers_turn_underscores_into_hyphens() {
    let upstream = Upstream::start();
    let app = app(&upstream);
    let trib = Trib::start(&app);
    let (status, body) = trib.get("/base/one/two/three/headers");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("spin-path-match-path-segment: one\n"),
        "{body}"
    );
    assert!(body.contains("spin-path-match-path-end: two\n"), "{body}");
    assert!(!body.contains("path_segment:"), "{body}");
}

#[test]
fn allowed_http_hosts_is_converted_with_a_warning() {
    let upstream = Upstream::start();
    let app = app(&upstream);
    let trib = Trib::start(&app);
    let url = format!("http://127.0.0.1:{}/data", upstream.addr.port());
    trib.assert_gets(&[(
        &format!("/old/fetch?url={url}"),
        200,
        "200 upstream ok /data",
    )]);
    let log = trib.log();
    let warning = log
        .lines()
        .find(|l| l.contains("allowed_http_hosts is deprecated"))
        .unwrap_or_else(|| panic!("no deprecation warning in:\n{log}"));
    assert!(warning.contains("old"), "{warning}");
}

#[test]
fn an_unmatched_route_is_an_empty_404() {
    let app = AppDir::new(
        r#"
spin_manifest_version = 2
[application]
name = "no-catch-all"
[[trigger.http]]
route = "/api/..."
component = { source = "{p3}" }
"#,
    );
    let trib = Trib::start(&app);
    trib.assert_gets(&[
        ("/nowhere", 404, ""),
        ("/api", 200, "hello from p3 at /api\n"),
    ]);
}
