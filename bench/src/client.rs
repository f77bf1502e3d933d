//! A small keep-alive HTTP/1.1 client (hyper) for the data-app scenarios,
//! which send POST bodies and headers that `wrk` runs cannot vary.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to `addr`, reopened after a failure.
pub struct Client {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    /// A client for `addr`; it connects on the first request.
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            sender: None,
        })
    }

    async fn sender(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        let alive = match &mut self.sender {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("cannot connect to {}", self.addr))?;
            stream.set_nodelay(true)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .with_context(|| format!("HTTP handshake with {}", self.addr))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().context("no connection")
    }

    /// Sends one request; returns the status and the whole body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        authorization: &HeaderValue,
        body: Bytes,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, authorization.clone());
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder.body(Full::new(body))?;
        let result = async {
            let sender = self.sender().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, result).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e.context(format!("{method} {path}")))
            }
            Err(_) => {
                self.sender = None;
                bail!("{method} {path}: no answer within {REQUEST_TIMEOUT:?}")
            }
        }
    }
}
