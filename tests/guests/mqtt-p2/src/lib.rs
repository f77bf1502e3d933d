//! spin-sdk 5 test guest for Spin's MQTT API (`fermyon:spin/mqtt@2.0.0`).
//! `publish?address=A&user=U&password=W&topic=T&payload=P&qos=0|1|2` (values
//! percent-encoded) opens `A`, publishes `P` on `T` at that QoS and answers
//! one line a step (`open = ok`, `publish = ok`, or Spin's error variant
//! with its text); the spin-sdk 7 guest answers the same lines.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::mqtt::{Connection, Error, Qos};

#[http_component]
fn handle(req: Request) -> Response {
    let query = req.query().to_owned();
    let param = |key: &str| -> String {
        query
            .split('&')
            .find_map(|pair| {
                pair.split_once('=')
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| decode(v))
            })
            .unwrap_or_default()
    };
    let qos = match param("qos").as_str() {
        "0" => Qos::AtMostOnce,
        "1" => Qos::AtLeastOnce,
        "2" => Qos::ExactlyOnce,
        other => return Response::new(400, format!("bad qos {other:?}")),
    };
    let mut log = Vec::new();
    match Connection::open(&param("address"), &param("user"), &param("password"), 30) {
        Err(e) => log.push(format!("open = {}", error(e))),
        Ok(conn) => {
            log.push("open = ok".to_owned());
            let payload = param("payload").into_bytes();
            log.push(match conn.publish(&param("topic"), &payload, qos) {
                Ok(()) => "publish = ok".to_owned(),
                Err(e) => format!("publish = {}", error(e)),
            });
        }
    }
    Response::new(200, log.join("\n"))
}

/// Spin's error variant as the transcript shows it, with its text.
fn error(e: Error) -> String {
    match e {
        Error::InvalidAddress => "invalid-address".into(),
        Error::TooManyConnections => "too-many-connections".into(),
        Error::ConnectionFailed(m) => format!("connection-failed: {m}"),
        Error::Other(m) => format!("other: {m}"),
    }
}

/// `%XX` escapes decoded (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
