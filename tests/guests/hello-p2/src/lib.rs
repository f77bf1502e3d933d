//! WASIp2 test guest: every behaviour the runtime tests need, one path each.

use futures::{SinkExt, StreamExt};
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let path = req.path_with_query().unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default().to_owned();
    let tail = path.rsplit('/').next().unwrap_or_default();
    match tail {
        "echo" => echo(req, out).await,
        "headers" => {
            let mut lines: Vec<String> = req
                .headers()
                .entries()
                .into_iter()
                .filter(|(name, _)| name.starts_with("spin-"))
                .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(&value)))
                .collect();
            lines.sort();
            respond(out, 200, lines.join("\n") + "\n").await
        }
        "trap" => core::arch::wasm32::unreachable(),
        "panic" => panic!("the p2 guest was asked to panic"),
        _ => respond(out, 200, format!("hello from p2 at {path}\n")).await,
    }
}

/// Streams the request body back without buffering it.
async fn echo(req: IncomingRequest, out: ResponseOutparam) {
    let response = OutgoingResponse::new(Fields::new());
    let mut body = response.take_body();
    out.set(response);
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if body.send(chunk).await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

async fn respond(out: ResponseOutparam, status: u16, text: String) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let _ = out.set_with_body(response, text.into_bytes()).await;
}
