//! The data app's JSON answers: one shape for successes and one for errors
//! (`{"code", "message"}`), shared so every function speaks the same way.

use serde_json::{Value, json};
use spin_sdk::http::{HeaderValue, Response, StatusCode};

/// A finished response.
pub type Reply = Response<String>;

/// `body` as JSON with `status`.
pub fn reply(status: StatusCode, body: Value) -> Reply {
    let mut resp = Response::new(body.to_string());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

/// `{"code": code, "message": message}` with `status`.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Reply {
    reply(status, json!({"code": code, "message": message.into()}))
}
