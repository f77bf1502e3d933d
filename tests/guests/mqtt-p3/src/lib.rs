//! spin-sdk 7 test guest for Spin's MQTT API (`spin:mqtt/mqtt@3.0.0`,
//! whose functions are `async`).
//! `publish?address=A&user=U&password=W&topic=T&payload=P&qos=0|1|2` (values
//! percent-encoded) opens `A`, publishes `P` on `T` at that QoS and answers
//! one line a step (`open = ok`, `publish = ok`, or Spin's error variant
//! with its text), as the spin-sdk 5 guest does.

use spin_sdk::http::{FullBody, IntoResponse, Request, Response, box_body};
use spin_sdk::http_service;
use spin_sdk::mqtt::{Connection, Error, Qos};

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let query = req.uri().query().unwrap_or_default().to_owned();
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
        "0" => Some(Qos::AtMostOnce),
        "1" => Some(Qos::AtLeastOnce),
        "2" => Some(Qos::ExactlyOnce),
        _ => None,
    };
    let mut log = Vec::new();
    match qos {
        None => log.push(format!("bad qos {:?}", param("qos"))),
        Some(qos) => {
            match Connection::open(param("address"), param("user"), param("password"), 30).await {
                Err(e) => log.push(format!("open = {}", error(e))),
                Ok(conn) => {
                    log.push("open = ok".to_owned());
                    let payload = param("payload").into_bytes();
                    log.push(match conn.publish(param("topic"), payload, qos).await {
                        Ok(()) => "publish = ok".to_owned(),
                        Err(e) => format!("publish = {}", error(e)),
                    });
                }
            }
        }
    }
    let mut resp = Response::new(box_body(FullBody::new(bytes::Bytes::from(log.join("\n")))));
    *resp.status_mut() = spin_sdk::http::StatusCode::OK;
    Ok(resp)
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
