//! The data app's JSON answers: one shape for successes and one for errors
//! (`{"code", "message"}`), shared so every function speaks the same way;
//! and the one reading of the `key=source` credential lists (`write_keys`,
//! `read_tokens`) the functions answer `401`/`403` by.

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

/// The endpoint a request path names: its last segment (`/v1/track` is
/// `track`, `/api/counts` is `counts`), empty for none.
pub fn endpoint(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// The source that `key` belongs to in `pairs`, a `key=source` list
/// separated by commas (the `write_keys` and `read_tokens` variables);
/// pairs are trimmed, and one without `=` is ignored.
pub fn credential_source<'a>(pairs: &'a str, key: &str) -> Option<&'a str> {
    pairs
        .split(',')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, source)| source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_last_segments() {
        assert_eq!(endpoint("/v1/batch"), "batch");
        assert_eq!(endpoint("/api/"), "");
        assert_eq!(endpoint(""), "");
    }

    #[test]
    fn credentials_name_their_source() {
        let pairs = "dev-write-key=dev, k2=shop ,broken,k3=";
        assert_eq!(credential_source(pairs, "dev-write-key"), Some("dev"));
        assert_eq!(credential_source(pairs, "k2"), Some("shop"));
        assert_eq!(credential_source(pairs, "k3"), Some(""));
        assert_eq!(credential_source(pairs, "broken"), None);
        assert_eq!(credential_source(pairs, "dev"), None);
        assert_eq!(credential_source("", ""), None);
    }
}
