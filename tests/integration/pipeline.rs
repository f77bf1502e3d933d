//! The ingest chain (issue: transforms behind a WIT contract): real
//! transform components composed into the ingest function through Spin's
//! component dependencies, driven over HTTP; results read back from the
//! SQLite file and the query API.

use serde_json::{Value, json};

use crate::support::{AppDir, Trib, client};

const RULES: &str = r#"{"rules": {"Order Completed": {"required": ["order_id"], "properties": {"total": {"type": "number", "minimum": 0}}}}}"#;

/// redact -> enrich -> filter -> `stage4` (a transform file name), each
/// with its settings, `settings` the last one's.
fn app(stage4: &str, settings: &str) -> AppDir {
    crate::support::data_app(
        "pipeline-test",
        "k=web",
        Some("t=web"),
        [
            (
                "transform_redact",
                r#"{"paths": "email,ip", "mode": "hash"}"#,
            ),
            ("transform_enrich", "{}"),
            ("transform_filter", r#"{"drop_events": "Heartbeat"}"#),
            (stage4, settings),
        ],
    )
}

fn post(trib: &Trib, path: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .post(trib.url(path))
        .basic_auth("k", Some(""))
        .json(body)
        .send()
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// Rows of one statement on the app's SQLite file, as JSON text per cell.
/// The file and its tables must exist: no rows only ever means a real,
/// empty result.
fn rows(app: &AppDir, sql: &str) -> Vec<Vec<String>> {
    let db = app.sqlite();
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let width = stmt.column_count();
    stmt.query_map([], |row| {
        (0..width)
            .map(|i| {
                row.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_chain_redacts_enriches_filters_and_dead_letters_what_it_rejects() {
    let app = app("transform_validate", RULES);
    let trib = Trib::start(&app);
    let batch = json!({"batch": [
        {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "ok-1",
         "timestamp": "2026-11-26T10:00:00Z",
         "properties": {"order_id": "o-1", "total": 30, "email": "ann@example.com", "url": "https://shop.example.com/cart?step=2"},
         "context": {"ip": "10.1.2.3", "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}},
        {"type": "track", "event": "Order Completed", "userId": "u2", "messageId": "bad-1",
         "properties": {"total": -5, "email": "bob@example.com"}},
        {"type": "track", "event": "Heartbeat", "userId": "u3", "messageId": "hb-1"},
        {"type": "track", "event": 7, "userId": "u4", "messageId": "invalid-1", "properties": {"email": "eve@example.com"}}
    ]});
    let (status, body) = post(&trib, "/v1/batch", &batch);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], 1, "{body}");
    assert_eq!(body["filtered"], 1, "{body}");
    let rejected = body["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 2, "{body}");
    let schema = rejected
        .iter()
        .find(|r| r["messageId"] == "bad-1")
        .expect("bad-1 is rejected");
    assert_eq!(
        (schema["index"].clone(), schema["stage"].clone()),
        (json!(1), json!(4))
    );
    assert_eq!(schema["code"], "schema_violation");
    let reason = schema["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("order_id") && reason.contains("total"),
        "{reason}"
    );

    // The stored event: redacted, enriched, and its raw copy too.
    let stored = rows(&app, "SELECT message_id, properties, raw FROM events");
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (properties, raw): (Value, Value) = (
        serde_json::from_str(&stored[0][1]).expect("properties"),
        serde_json::from_str(&stored[0][2]).expect("raw"),
    );
    assert_eq!(stored[0][0], "ok-1");
    assert_eq!(properties["email"], sha256_hex("ann@example.com"));
    assert_eq!(properties["day_of_week"], "Thursday");
    assert_eq!(properties["url_host"], "shop.example.com");
    assert_eq!(properties["url_path"], "/cart");
    assert_eq!(properties["ua_family"], "Firefox");
    assert_eq!(raw["context"]["ip"], sha256_hex("10.1.2.3"));
    assert!(
        !stored[0][2].contains("ann@example.com"),
        "{}",
        stored[0][2]
    );

    // Both rejections are dead letters with reasons; the transform's keeps
    // the redacted form.
    let dead = rows(
        &app,
        "SELECT code, reason, raw FROM dead_letters ORDER BY id",
    );
    assert_eq!(dead.len(), 2, "{dead:?}");
    let by_code: std::collections::HashMap<&str, &Vec<String>> =
        dead.iter().map(|d| (d[0].as_str(), d)).collect();
    assert!(
        by_code.contains_key("invalid_field") || by_code.contains_key("missing_field"),
        "{dead:?}"
    );
    // An invalid message never reached the transforms: its payload is
    // withheld rather than stored unredacted.
    let invalid = dead
        .iter()
        .find(|d| d[0] != "schema_violation")
        .expect("the invalid message's dead letter");
    assert!(
        invalid[2].contains("invalid-1") && !invalid[2].contains("eve@example.com"),
        "{invalid:?}"
    );
    let schema_dead = by_code
        .get("schema_violation")
        .expect("schema violation dead letter");
    assert!(schema_dead[1].contains("total"), "{schema_dead:?}");
    assert!(
        !schema_dead[2].contains("bob@example.com"),
        "{schema_dead:?}"
    );

    // The query API sees the enriched property.
    let resp = client()
        .get(trib.url("/api/counts?bucket=day&group_by=property:day_of_week"))
        .bearer_auth("t")
        .send()
        .expect("request");
    let counts: Value = resp.json().expect("json");
    assert_eq!(counts["buckets"][0]["group"], "Thursday", "{counts}");

    // A single-event endpoint answers a rejected event with its 400.
    let (status, body) = post(
        &trib,
        "/v1/track",
        &json!({"event": "Order Completed", "userId": "u5", "messageId": "bad-2", "properties": {"order_id": "o-2", "total": -1}}),
    );
    assert_eq!(
        (status, body["code"].clone()),
        (400, json!("schema_violation")),
        "{body}"
    );
}

#[test]
fn a_trapping_transform_fails_the_batch_and_stores_nothing() {
    let app = app("transform_trap", "{}");
    let trib = Trib::start(&app);
    let batch = json!({"batch": [
        {"type": "track", "event": "A", "userId": "u1", "messageId": "t-1"},
        {"type": "track", "event": "B", "userId": "u1", "messageId": "t-2", "properties": {"trap": true}}
    ]});
    let (status, body) = post(&trib, "/v1/batch", &batch);
    assert_eq!(status, 500, "{body}");
    // The trap is the host's 500 (the instance died), not a stage's error.
    assert_ne!(body["code"], "transform_failed", "{body}");
    // The log tells what happened and where: the transform's own panic
    // (guest stderr), the wasm trap it became, and the one failed request,
    // each with the component's name.
    let log = trib.log();
    let of_ingest =
        |line: &str| line.contains("component=ingest") || line.contains("component=\"ingest\"");
    assert!(
        log.contains("transform-trap: event t-2 asked to trap"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("wasm `unreachable` instruction executed") && of_ingest(l)),
        "{log}"
    );
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request failed"))
        .collect();
    assert_eq!(failures.len(), 1, "{log}");
    assert!(
        of_ingest(failures[0]) && failures[0].contains("path=/v1/batch"),
        "{log}"
    );
    // The next batch, without the trap, goes through the same chain.
    let batch =
        json!({"batch": [{"type": "track", "event": "A", "userId": "u1", "messageId": "t-3"}]});
    let (status, body) = post(&trib, "/v1/batch", &batch);
    assert_eq!((status, body["stored"].clone()), (200, json!(1)), "{body}");
    // Only it is stored: nothing of the trapped batch (not even its valid
    // first event) and no dead letter.
    assert_eq!(
        rows(&app, "SELECT message_id FROM events"),
        vec![vec!["t-3".to_owned()]]
    );
    assert!(rows(&app, "SELECT id FROM dead_letters").is_empty());
}

#[test]
fn a_transform_runs_alone_over_a_file_of_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        concat!(
            r#"{"messageId": "m1", "type": "track", "event": "Order Completed", "userId": "u1", "properties": {"total": -1}}"#,
            "\n",
            r#"{"message_id": "m2", "kind": "track", "name": "Order Completed", "properties": {"order_id": "o", "total": 3}}"#,
            "\n"
        ),
    )
    .expect("events");
    let validate = crate::support::functions().join("transform_validate.wasm");
    let out = crate::support::trib()
        .args(["transform", "run"])
        .arg(&validate)
        .arg("--events")
        .arg(&events)
        .args(["--settings", RULES])
        .output()
        .expect("trib runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(result["events"][0]["message_id"], "m2", "{result}");
    assert_eq!(result["rejections"][0]["index"], 0, "{result}");
    assert_eq!(result["rejections"][0]["code"], "schema_violation");
    // Bad settings are the transform's own error, and a failure exit.
    let out = crate::support::trib()
        .args(["transform", "run"])
        .arg(&validate)
        .arg("--events")
        .arg(&events)
        .args(["--settings", r#"{"rules": {}, "typo": 1}"#])
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("typo"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
