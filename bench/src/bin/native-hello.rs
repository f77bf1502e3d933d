//! The native peer: a hyper HTTP/1.1 server answering every request with a
//! short text, built like `trib`'s front door (tokio multi-thread, one task
//! per connection), so the ratio measures what Wasm isolation costs.
//!
//! It doubles as the OTLP sink of the traced run: `POST /v1/traces` is
//! answered with an empty protobuf reply (an export that fully succeeded),
//! and the spans are dropped.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .context("usage: native-hello ADDR")?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("Serving http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    if req.uri().path() == "/v1/traces" {
                        use http_body_util::BodyExt as _;
                        let _ = req.into_body().collect().await;
                        let mut resp = http::Response::new(Full::new(Bytes::new()));
                        resp.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/x-protobuf"),
                        );
                        return Ok::<_, Infallible>(resp);
                    }
                    let body = format!("hello from native at {}\n", req.uri().path());
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
