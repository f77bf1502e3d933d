//! Hello world over `wasi:http/incoming-handler@0.2`.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn hello(req: Request) -> impl IntoResponse {
    Response::new(200, format!("hello from p2 at {}\n", req.path()))
}
