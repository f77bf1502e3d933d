//! The ingest function (functions/ingest) on `trib`: Segment's HTTP Tracking
//! API, driven by Segment's own Python client and by raw requests for each
//! error case; results read back from the SQLite file it writes. Its four
//! transform slots hold pass-through filters here (the chain itself is
//! tested in `pipeline.rs`).

use std::io::Write as _;
use std::process::Command;

use crate::support::{AppDir, Trib, client, repo_root, shared_cache};

/// The data app with a pass-through filter in each transform slot.
fn app() -> AppDir {
    crate::support::data_app(
        "ingest-test",
        "test-key=web,other-key=mobile",
        Some("web-token=web"),
        [("transform_filter", "{}"); 4],
    )
}

fn post(trib: &Trib, path: &str, key: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut req = client().post(trib.url(path)).body(body.to_owned());
    if let Some(key) = key {
        req = req.basic_auth(key, Some(""));
    }
    let resp = req.send().expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// One integer from the app's SQLite file. The file and its tables must
/// exist: a 0 only ever comes from a real, empty result.
fn count(app: &AppDir, sql: &str) -> i64 {
    app.sqlite()
        .query_row(sql, [], |row| row.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn segments_python_client_delivers_every_event() {
    let app = app();
    let trib = Trib::start(&app);
    let count = |sql: &str| count(&app, sql);
    deliver_and_read_back(&trib, count);
}

/// The same app on the machine's PostgreSQL, in a database of its own.
#[test]
fn events_are_stored_and_queried_on_postgresql() {
    if !crate::support::backend_available("PostgreSQL", "127.0.0.1:5432") {
        return;
    }
    let name = crate::support::unique_name("trib_ingest", '_');
    let admin = "host=127.0.0.1 user=postgres dbname=postgres";
    let mut server = postgres::Client::connect(admin, postgres::NoTls).expect("connect");
    server
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}?sslmode=disable");
    let app = app();
    let env = [("SPIN_VARIABLE_DATABASE_URL", url.as_str())];
    let trib = Trib::start_with_env(&app, &shared_cache(), &[], &env);
    let direct = std::cell::RefCell::new(
        postgres::Client::connect(
            &format!("host=127.0.0.1 user=postgres dbname={name}"),
            postgres::NoTls,
        )
        .expect("connect to the test database"),
    );
    // Every error (a missing table, a lost connection) fails the test: only
    // a real row count is a count.
    let count = |sql: &str| -> i64 {
        let row = direct
            .borrow_mut()
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql} on {name}: {e}"));
        row.try_get(0)
            .unwrap_or_else(|e| panic!("{sql} on {name}: {e}"))
    };
    deliver_and_read_back(&trib, count);
    // Nothing went to SQLite, and a restart reads the same data back.
    assert!(!app.path().join(".spin/sqlite_db.db").exists());
    drop(trib);
    let trib = Trib::start_with_env(&app, &shared_cache(), &[], &env);
    let resp = client()
        .get(trib.url("/api/counts?bucket=day"))
        .bearer_auth("web-token")
        .send()
        .expect("request");
    let counts: serde_json::Value = resp.json().expect("json");
    assert_eq!(counts["buckets"][0]["count"], 54, "{counts}");
    let keys: serde_json::Value = client()
        .get(trib.url("/api/property-keys?event=Order%20Completed"))
        .bearer_auth("web-token")
        .send()
        .expect("request")
        .json()
        .expect("json");
    assert!(
        keys["property_keys"]
            .as_array()
            .is_some_and(|k| k.contains(&serde_json::json!("amount"))),
        "{keys}"
    );
    drop(trib);
    drop(direct);
    server
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .expect("drop database");
}

/// Sends 50 track events and one of each other type with Segment's Python
/// client, then checks the stored rows (`count` runs SQL on the store) and
/// the query API's answers.
fn deliver_and_read_back(trib: &Trib, count: impl Fn(&str) -> i64) {
    let script = repo_root().join("tests/clients/segment_send.py");
    let status = Command::new("python3")
        .arg(script)
        .args([&trib.base, "test-key", "50"])
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "the Segment client reported failures:\n{}",
        trib.log()
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE source = 'web'"),
        54
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE type = 'track'"),
        50
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE name = 'Order Completed'"),
        25
    );
    for kind in ["identify", "page", "group", "alias"] {
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM events WHERE type = '{kind}'"
            )),
            1,
            "{kind}"
        );
    }
    assert_eq!(count("SELECT count(*) FROM dead_letters"), 0);

    // The same counts through the query API.
    let api = |path: &str| -> serde_json::Value {
        let resp = client()
            .get(trib.url(path))
            .bearer_auth("web-token")
            .send()
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.json().expect("json")
    };
    let counts = api("/api/counts?bucket=day&group_by=event");
    let by_event: std::collections::HashMap<String, i64> = counts["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(|b| Some((b["group"].as_str()?.to_owned(), b["count"].as_i64()?)))
        .collect();
    assert_eq!(by_event.get("Order Completed"), Some(&25), "{counts}");
    assert_eq!(by_event.get("Product Viewed"), Some(&25), "{counts}");
    let total: i64 = counts["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(|b| b["count"].as_i64())
        .sum();
    assert_eq!(total, 54);
    let amounts = api("/api/aggregate?property=amount&event=Order%20Completed");
    // Order Completed carries the odd amounts 1, 3, ..., 49.
    assert_eq!(
        (
            amounts["count"].as_i64(),
            amounts["sum"].as_f64(),
            amounts["max"].as_f64()
        ),
        (Some(25), Some(625.0), Some(49.0))
    );
    assert_eq!(
        api("/api/event-names")["event_names"],
        serde_json::json!(["Order Completed", "Product Viewed"])
    );
    let unique = api("/api/counts?bucket=day&event=Order%20Completed");
    assert_eq!(unique["buckets"][0]["unique_users"], 3);
}

#[test]
fn the_query_api_checks_tokens_and_inputs() {
    let app = app();
    let trib = Trib::start(&app);
    let body = r#"{"userId":"u","event":"x","messageId":"q1","properties":{"amount":3}}"#;
    assert_eq!(post(&trib, "/v1/track", Some("test-key"), body).0, 200);
    let get = |path: &str, token: Option<&str>| {
        let mut req = client().get(trib.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        (status, resp.json::<serde_json::Value>().expect("json"))
    };
    assert_eq!(get("/api/counts", None).0, 401);
    assert_eq!(get("/api/counts", Some("wrong")).0, 403);
    let (status, json) = get("/api/counts?group_by=property:nope", Some("web-token"));
    assert_eq!(
        (status, json["code"].as_str()),
        (400, Some("unknown_property"))
    );
    let (status, json) = get(
        "/api/aggregate?property=a')%3BDROP%20TABLE%20events%3B--",
        Some("web-token"),
    );
    assert_eq!(
        (status, json["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    assert_eq!(get("/api/counts?bucket=week", Some("web-token")).0, 400);
    // Nothing was dropped, and paging works.
    let (status, page) = get("/api/events?limit=1", Some("web-token"));
    assert_eq!(status, 200);
    assert_eq!(page["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(count(&app, "SELECT count(*) FROM events"), 1);
}

#[test]
fn bad_requests_are_400_with_the_field_and_store_nothing() {
    let app = app();
    let trib = Trib::start(&app);
    // One good event first: the store exists, so the counts below are real
    // counts of real tables.
    let good = r#"{"userId":"u","event":"good","messageId":"good-1"}"#;
    assert_eq!(post(&trib, "/v1/track", Some("test-key"), good).0, 200);
    assert_eq!(count(&app, "SELECT count(*) FROM events"), 1);
    let cases = [
        (
            "/v1/track",
            r#"{"event":"x","messageId":"m"}"#,
            "userId or anonymousId is required",
        ),
        (
            "/v1/track",
            r#"{"userId":"u","messageId":"m"}"#,
            "event is required for track",
        ),
        (
            "/v1/group",
            r#"{"userId":"u","messageId":"m"}"#,
            "groupId is required for group",
        ),
        (
            "/v1/alias",
            r#"{"userId":"u","messageId":"m"}"#,
            "previousId is required for alias",
        ),
        (
            "/v1/track",
            r#"{"userId":"u","event":"x","messageId":"m","timestamp":"soon"}"#,
            "timestamp \"soon\" is not an ISO 8601 time",
        ),
        // (A missing `messageId` is not an error: Segment's API makes it
        // optional; see `segment_compat.rs`.)
        ("/v1/track", "not json", "body is not valid JSON"),
        (
            "/v1/batch",
            r#"{"batch":{}}"#,
            "batch must be an array of messages",
        ),
    ];
    for (path, body, message) in cases {
        let (status, json) = post(&trib, path, Some("test-key"), body);
        assert_eq!(status, 400, "{path} {body}: {json}");
        let got = json["message"].as_str().unwrap_or_default();
        assert!(got.starts_with(message), "{path} {body}: {json}");
        assert!(json["code"].is_string(), "{json}");
    }
    // Oversized: one event over 32 KB, a request over 500 KB, a batch over 2,500.
    let big_event = format!(
        r#"{{"userId":"u","event":"x","messageId":"m","properties":{{"b":"{}"}}}}"#,
        "x".repeat(33 * 1024)
    );
    assert_eq!(
        post(&trib, "/v1/track", Some("test-key"), &big_event).0,
        400
    );
    let huge = format!(r#"{{"batch":[],"pad":"{}"}}"#, "x".repeat(501 * 1024));
    assert_eq!(
        post(&trib, "/v1/batch", Some("test-key"), &huge).1["code"],
        "too_large"
    );
    let many: Vec<String> = (0..2501)
        .map(|i| format!(r#"{{"type":"track","userId":"u","event":"e","messageId":"m{i}"}}"#))
        .collect();
    let (status, json) = post(
        &trib,
        "/v1/batch",
        Some("test-key"),
        &format!(r#"{{"batch":[{}]}}"#, many.join(",")),
    );
    assert_eq!((status, json["code"].as_str()), (400, Some("too_large")));
    // Only the good event is stored; no bad request left a row anywhere.
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE message_id <> 'good-1'"
        ),
        0
    );
    assert_eq!(count(&app, "SELECT count(*) FROM events"), 1);
    assert_eq!(count(&app, "SELECT count(*) FROM dead_letters"), 0);
}

#[test]
fn auth_is_401_without_a_key_and_403_with_a_wrong_one() {
    let app = app();
    let trib = Trib::start(&app);
    let body = r#"{"userId":"u","event":"x","messageId":"m"}"#;
    assert_eq!(post(&trib, "/v1/track", None, body).0, 401);
    assert_eq!(post(&trib, "/v1/track", Some("nope"), body).0, 403);
    let with_body_key = r#"{"writeKey":"other-key","userId":"u","event":"x","messageId":"m"}"#;
    assert_eq!(post(&trib, "/v1/track", None, with_body_key).0, 200);
    assert_eq!(
        count(&app, "SELECT count(*) FROM events WHERE source = 'mobile'"),
        1
    );
}

#[test]
fn a_mixed_batch_keeps_the_valid_events_and_dead_letters_the_rest() {
    let app = app();
    let trib = Trib::start(&app);
    let batch = r#"{"batch":[
        {"type":"track","userId":"u","event":"ok-1","messageId":"b1"},
        {"type":"track","event":"no-user","messageId":"b2"},
        {"type":"identify","anonymousId":"a","messageId":"b3","traits":{"x":1}},
        {"type":"teleport","userId":"u","messageId":"b4"}
    ]}"#;
    let (status, json) = post(&trib, "/v1/batch", Some("test-key"), batch);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["stored"], 2);
    let rejected = json["rejected"].as_array().expect("rejected list");
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(rejected[0]["message"], "userId or anonymousId is required");
    assert_eq!(rejected[1]["messageId"], "b4");
    assert_eq!(count(&app, "SELECT count(*) FROM events"), 2);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM dead_letters WHERE reason LIKE 'type \"teleport\"%'"
        ),
        1
    );
}

#[test]
fn retries_are_deduplicated_and_gzip_bodies_accepted() {
    let app = app();
    let trib = Trib::start(&app);
    let body = r#"{"batch":[{"type":"track","userId":"u","event":"e","messageId":"same"}]}"#;
    let mut gz = gzip(body.as_bytes());
    let send = |b: Vec<u8>| {
        client()
            .post(trib.url("/v1/batch"))
            .basic_auth("test-key", Some(""))
            .header("content-encoding", "gzip")
            .body(b)
            .send()
            .expect("request")
            .status()
            .as_u16()
    };
    assert_eq!(send(gz.clone()), 200);
    assert_eq!(send(std::mem::take(&mut gz)), 200);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE message_id = 'same'"
        ),
        1
    );
}

#[test]
fn events_written_before_a_restart_are_there_after_it() {
    let app = app();
    let first = Trib::start(&app);
    let body = r#"{"userId":"u","event":"before-restart","messageId":"r1"}"#;
    assert_eq!(post(&first, "/v1/track", Some("test-key"), body).0, 200);
    drop(first);
    let second = Trib::start(&app);
    // The retry after the restart is still recognised as a duplicate.
    let (status, json) = post(&second, "/v1/track", Some("test-key"), body);
    assert_eq!((status, json["duplicates"].as_u64()), (200, Some(1)));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM events WHERE name = 'before-restart'"
        ),
        1
    );
}

/// Gzips `data` with the system's `gzip` (no compression crate needed here).
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    child.wait_with_output().expect("gzip output").stdout
}
