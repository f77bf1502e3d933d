//! Hello world over `wasi:http/handler@0.3.0`.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[http_service]
async fn hello(req: Request) -> impl IntoResponse {
    format!("hello from p3 at {}\n", req.uri().path())
}
