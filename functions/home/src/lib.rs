//! The landing page of the Tributary data app.
//!
//! A plain component at `/` so that a fresh `trib up` (or `spin up`) answers
//! something useful; the data services mount under their own routes.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;

const PAGE: &str = include_str!("index.html");

#[http_service]
async fn home(req: Request) -> impl IntoResponse {
    let wants_json = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json") && !v.contains("text/html"));
    if wants_json {
        Response::builder()
            .header("content-type", "application/json")
            .body(r#"{"app":"tributary","status":"ok"}"#.to_owned())
    } else {
        Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .body(PAGE.to_owned())
    }
}
