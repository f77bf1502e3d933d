//! Segment-compatible event ingestion (the HTTP Tracking API).
//!
//! `POST /v1/{track,identify,page,screen,group,alias,batch}` with the write
//! key as the Basic-auth user name or `writeKey` in the body; gzip bodies
//! accepted. Clients decide by status, so: success is exactly `200`; a
//! malformed or oversized request is `400` with `{"code", "message"}` and
//! stores nothing; a missing key is `401`, an unknown one `403`. In a batch,
//! valid events are stored, each invalid one goes to `dead_letters` with its
//! reason, and the `200` body lists them. Events are deduplicated by
//! `messageId` per source (within a batch too: the first is stored); a
//! message without one gets a generated id and is never deduplicated. Write
//! keys come from the `write_keys` variable: `key=source` pairs separated by
//! commas.

pub mod chain;
pub mod storage;

use std::io::Read as _;

use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use json_reply::{Reply, error, reply};
use serde_json::{Value, json};
use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;

use std::collections::HashMap;

use crate::storage::DeadLetter;
use event_model::segment::{self, Invalid, MAX_BATCH_EVENTS, MAX_REQUEST_BYTES, TYPES};

#[http_service]
async fn ingest(req: Request) -> impl IntoResponse {
    match handle(req).await {
        Ok(resp) | Err(resp) => resp,
    }
}

async fn handle(req: Request) -> Result<Reply, Reply> {
    let kind = json_reply::endpoint(req.uri().path()).to_owned();
    if req.method() != spin_sdk::http::Method::POST {
        return Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use POST",
        ));
    }
    if kind != "batch" && !TYPES.contains(&kind.as_str()) {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no endpoint /v1/{kind}"),
        ));
    }
    let basic_key = basic_auth_user(&req);
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = read_body(req, gzip).await?;
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body is not valid JSON: {e}"),
        )
    })?;
    let key = basic_key.or_else(|| {
        payload
            .get("writeKey")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let source = authorize(key.as_deref()).await?;
    let received_ms = now_ms();

    // Where each event sits in the request (the first with its message id),
    // for the response.
    let mut positions: HashMap<String, usize> = HashMap::new();
    let (events, mut dead, mut rejected) = if kind == "batch" {
        let messages = payload
            .get("batch")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "missing_field",
                    "batch must be an array of messages",
                )
            })?;
        if messages.len() > MAX_BATCH_EVENTS {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "too_large",
                format!(
                    "batch has {} messages; the limit is {MAX_BATCH_EVENTS}",
                    messages.len()
                ),
            ));
        }
        let sent_at = payload.get("sentAt").and_then(Value::as_str);
        let mut events = Vec::new();
        let mut dead = Vec::new();
        let mut rejected = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            match segment::check(message, None, sent_at, received_ms) {
                Ok(received) => {
                    positions
                        .entry(received.event.message_id.clone())
                        .or_insert(index);
                    events.push(received);
                }
                Err(Invalid {
                    code,
                    message: reason,
                }) => {
                    rejected.push(json!({
                        "index": index,
                        "messageId": message.get("messageId"),
                        "code": code,
                        "message": reason,
                    }));
                    dead.push(DeadLetter {
                        code: code.to_owned(),
                        reason,
                        raw: segment::json_text(&segment::envelope(message)),
                    });
                }
            }
        }
        (events, dead, rejected)
    } else {
        let event = segment::check(&payload, Some(&kind), None, received_ms)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.code, e.message))?;
        (vec![event], Vec::new(), Vec::new())
    };

    let settings = chain::settings()
        .await
        .map_err(|e| internal(anyhow::anyhow!(e)))?;
    let outcome = chain::run(events, &settings).map_err(|e| {
        eprintln!("ingest: transform stage {} failed: {}", e.stage, e.message);
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "transform_failed",
            format!("transform stage {} failed: {}", e.stage, e.message),
        )
    })?;
    let single_refusal = (kind != "batch")
        .then(|| outcome.refused.first())
        .flatten()
        .map(|r| (r.code.clone(), r.reason.clone()));
    for r in outcome.refused {
        rejected.push(json!({
            "index": positions.get(&r.received.event.message_id),
            "messageId": r.received.event.message_id,
            "stage": r.stage,
            "code": r.code,
            "message": r.reason,
        }));
        dead.push(DeadLetter {
            code: r.code,
            reason: r.reason,
            raw: r.received.raw,
        });
    }

    let db = storage::open().await.map_err(internal)?;
    let stored = storage::store(&db, &source, received_ms, &outcome.events, &dead)
        .await
        .map_err(internal)?;
    if let Some((code, reason)) = single_refusal {
        // Kept as a dead letter; the client is told exactly why.
        return Err(error(StatusCode::BAD_REQUEST, &code, reason));
    }
    // Retries of stored events and repeats of a message id within the batch.
    let duplicates = outcome.events.len() as u64 - stored + outcome.duplicates as u64;
    Ok(reply(
        StatusCode::OK,
        json!({"success": true, "stored": stored, "duplicates": duplicates, "filtered": outcome.dropped, "rejected": rejected}),
    ))
}

fn internal(e: anyhow::Error) -> Reply {
    eprintln!("ingest: {e:#}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the event store failed; retry",
    )
}

async fn read_body(req: Request, gzip: bool) -> Result<Vec<u8>, Reply> {
    let too_large = || {
        error(
            StatusCode::BAD_REQUEST,
            "too_large",
            format!("request body is over the limit of {MAX_REQUEST_BYTES} bytes"),
        )
    };
    // The cap applies while reading: an oversized body is refused without
    // being buffered whole.
    let body = Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                too_large()
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "cannot read the request body",
                )
            }
        })?
        .to_bytes();
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("body is not valid gzip: {e}"),
            )
        })?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    Ok(out)
}

fn basic_auth_user(req: &Request) -> Option<String> {
    use base64::Engine as _;
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let user = decoded.split(':').next()?.to_owned();
    (!user.is_empty()).then_some(user)
}

/// The source a write key belongs to.
async fn authorize(key: Option<&str>) -> Result<String, Reply> {
    let Some(key) = key else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no write key: send it as the Basic-auth user name or as writeKey",
        ));
    };
    let keys = spin_sdk::variables::get("write_keys")
        .await
        .map_err(|e| internal(anyhow::anyhow!("write_keys: {e:?}")))?;
    json_reply::credential_source(&keys, key)
        .map(str::to_owned)
        .ok_or_else(|| error(StatusCode::FORBIDDEN, "forbidden", "unknown write key"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
