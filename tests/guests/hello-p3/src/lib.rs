//! WASIp3 test guest: every behaviour the runtime tests need, one path each.

use spin_sdk::http::{BoxBody, FullBody, IntoResponse, Request, Response, box_body};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req.uri().path().to_owned();
    let tail = path.rsplit('/').next().unwrap_or_default();
    match tail {
        // Streams the request body straight back, chunk by chunk.
        "echo" => Ok(Response::new(box_body(req.into_body()))),
        // Lists the `spin-*` headers the host set, one `name: value` a line.
        "headers" => Ok(text(spin_headers(&req))),
        "trap" => core::arch::wasm32::unreachable(),
        "panic" => panic!("the p3 guest was asked to panic"),
        "error" => anyhow::bail!("the p3 guest returned an error"),
        _ => Ok(text(format!("hello from p3 at {path}\n"))),
    }
}

fn text(body: String) -> Response<BoxBody> {
    Response::new(box_body(FullBody::new(bytes::Bytes::from(body))))
}

fn spin_headers(req: &Request) -> String {
    let mut lines: Vec<String> = req
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("spin-"))
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("<binary>")))
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}
