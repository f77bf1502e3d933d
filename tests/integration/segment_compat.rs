//! Segment compatibility and bad input on the data app (issue 10, items
//! 10-12): a batch with an in-batch duplicate `messageId`, messages without
//! a `messageId`, and malformed query strings, on a real `trib` running the
//! ingest and query functions with the app's transform chain. Everything is
//! read back through the query API, whose answers are checked strictly so
//! that a missing store can never pass for an empty one.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{AppDir, Trib, client};

/// The data app with its transform chain: emails hashed, `Item
/// Purchased`'s revenue a number.
fn app() -> AppDir {
    crate::support::data_app(
        "segment-compat-test",
        "compat-key=web",
        Some("compat-token=web"),
        [
            ("transform_redact", r#"{"paths": "email", "mode": "hash"}"#),
            ("transform_enrich", "{}"),
            ("transform_filter", "{}"),
            (
                "transform_validate",
                r#"{"rules": {"Item Purchased": {"properties": {"revenue": {"type": "number"}}}}}"#,
            ),
        ],
    )
}

/// `POST path` with the write key: the status and the JSON body.
fn post(trib: &Trib, path: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .post(trib.url(path))
        .basic_auth("compat-key", Some(""))
        .json(body)
        .send()
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().expect("body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path} answered {status} with non-JSON {text:?}: {e}"));
    (status, json)
}

/// Every stored event of the source as `(message_id, name)`, read through
/// `/api/events` page by page. Any answer but a `200` with a `rows` array
/// of rows (and a `next_cursor`) fails the test: a missing store or table
/// must not read as "no events".
fn stored_events(trib: &Trib) -> Vec<(String, Option<String>)> {
    let mut events = Vec::new();
    let mut cursor = String::new();
    loop {
        let resp = client()
            .get(trib.url(&format!("/api/events?limit=1000&cursor={cursor}")))
            .bearer_auth("compat-token")
            .send()
            .expect("request");
        let status = resp.status().as_u16();
        let page: Value = resp.json().expect("JSON page");
        assert_eq!(status, 200, "/api/events: {page}\n{}", trib.log());
        let rows = page["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("/api/events has no rows array: {page}"));
        for row in rows {
            // id, message_id, type, name, ...
            let message_id = row[1]
                .as_str()
                .unwrap_or_else(|| panic!("row without a message id: {row}"));
            events.push((message_id.to_owned(), row[3].as_str().map(str::to_owned)));
        }
        match &page["next_cursor"] {
            Value::Null => return events,
            Value::Number(n) => cursor = n.to_string(),
            other => panic!("next_cursor is {other}"),
        }
    }
}

/// `GET target` sent byte for byte over a raw connection (HTTP clients
/// percent-encode non-ASCII, and the point is to send it raw): the status
/// and the body.
fn raw_get(trib: &Trib, target: &str) -> (u16, String) {
    let addr = trib
        .base
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("base {:?} is not http://", trib.base));
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer compat-token\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{target}: no end of headers in {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{target}: bad status line in {head:?}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(rest.get(..size).expect("whole chunk"));
        body = rest.get(size + 2..).expect("chunk end");
    }
}

#[test]
fn an_in_batch_duplicate_message_id_is_stored_once_with_200() {
    let app = app();
    let trib = Trib::start(&app);
    let batch = json!({"batch": [
        {"type": "track", "userId": "u", "event": "first", "messageId": "dup-1"},
        {"type": "track", "userId": "u", "event": "other", "messageId": "one-1"},
        {"type": "track", "userId": "u", "event": "second", "messageId": "dup-1"},
    ]});
    let (status, json) = post(&trib, "/v1/batch", &batch);
    assert_eq!(status, 200, "{json}\n{}", trib.log());
    assert_eq!(
        (json["stored"].as_u64(), json["duplicates"].as_u64()),
        (Some(2), Some(1)),
        "{json}"
    );
    assert_eq!(json["rejected"], json!([]), "{json}");
    let mut stored = stored_events(&trib);
    stored.sort();
    assert_eq!(
        stored,
        [
            ("dup-1".to_owned(), Some("first".to_owned())),
            ("one-1".to_owned(), Some("other".to_owned())),
        ]
    );
    // A retry of the whole batch stores nothing new, as any retry.
    let (status, json) = post(&trib, "/v1/batch", &batch);
    assert_eq!(
        (status, json["stored"].as_u64(), json["duplicates"].as_u64()),
        (200, Some(0), Some(3)),
        "{json}"
    );
    assert_eq!(stored_events(&trib).len(), 2);
}

#[test]
fn a_message_without_a_message_id_is_accepted_and_stored() {
    let app = app();
    let trib = Trib::start(&app);
    // Segment's own curl example: no messageId.
    let track = json!({"userId": "019mr8mf4r", "event": "Item Purchased", "properties": {"revenue": 39.95}});
    for _ in 0..2 {
        let (status, json) = post(&trib, "/v1/track", &track);
        assert_eq!(
            (status, json["stored"].as_u64()),
            (200, Some(1)),
            "{json}\n{}",
            trib.log()
        );
    }
    let batch = json!({"batch": [{"type": "track", "userId": "u", "event": "Item Purchased"}]});
    let (status, json) = post(&trib, "/v1/batch", &batch);
    assert_eq!((status, json["stored"].as_u64()), (200, Some(1)), "{json}");
    let stored = stored_events(&trib);
    assert_eq!(stored.len(), 3, "{stored:?}");
    let mut ids: Vec<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    assert!(
        stored
            .iter()
            .all(|(id, name)| !id.is_empty() && name.as_deref() == Some("Item Purchased")),
        "{stored:?}"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        3,
        "generated ids are distinct (never deduplicated): {stored:?}"
    );
}

#[test]
fn malformed_query_strings_are_400_not_500() {
    let app = app();
    let trib = Trib::start(&app);
    // Raw bytes after `%`: what panicked the query function.
    for target in [
        "/api/counts?x=%a€",
        "/api/events?x=%€",
        "/api/event-names?from=1&x=%€€",
        "/api/counts?bucket=day&event=%a€",
    ] {
        let (status, body) = raw_get(&trib, target);
        assert_eq!(status, 400, "{target}: {body}\n{}", trib.log());
        let json: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{target}: {body:?}: {e}"));
        assert!(
            json["code"].is_string() && json["message"].is_string(),
            "{target}: {json}"
        );
    }
    // Escapes that are incomplete or decode to invalid UTF-8.
    for query in ["x=%C3", "event=%E2%82", "x=%", "x=%zz", "%ff=1", "x=%C3%28"] {
        let resp = client()
            .get(trib.url(&format!("/api/counts?{query}")))
            .bearer_auth("compat-token")
            .send()
            .expect("request");
        let status = resp.status().as_u16();
        let json: Value = resp.json().expect("JSON error");
        assert_eq!(status, 400, "{query}: {json}");
        assert_eq!(json["code"], "invalid_parameter", "{query}: {json}");
        assert!(json["message"].is_string(), "{query}: {json}");
    }
    // Well-formed escapes, including multi-byte UTF-8, still work.
    let (status, body) = raw_get(&trib, "/api/counts?bucket=day&event=Caf%C3%A9+%E2%82%AC");
    assert_eq!(status, 200, "{body}");
}
