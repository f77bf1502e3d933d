//! Outbound HTTP: the allow-list, connection pooling and service chaining.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{AppDir, Trib, assert_mentions, metric, shared_cache};

/// A loopback HTTP/1.1 server that answers `upstream ok PATH`, counts
/// the TCP connections it accepts and keeps the `traceparent` headers it
/// receives.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    traceparents: Arc<std::sync::Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Upstream {
    /// TCP connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The `traceparent` headers of the requests received so far.
    pub(crate) fn traceparents(&self) -> Vec<String> {
        self.traceparents.lock().expect("lock").clone()
    }

    pub(crate) fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let connections = Arc::new(AtomicUsize::new(0));
        let traceparents = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = traceparents.clone();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counter = connections.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let seen = seen.clone();
                            async move {
                                if let Some(tp) = req
                                    .headers()
                                    .get("traceparent")
                                    .and_then(|v| v.to_str().ok())
                                {
                                    seen.lock().expect("lock").push(tp.to_owned());
                                }
                                let body = format!("upstream ok {}", req.uri().path());
                                Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                                    bytes::Bytes::from(body),
                                )))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            connections,
            traceparents,
            _runtime: runtime,
        }
    }
}

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "outbound"
[variables]
upstream_port = { required = true }
[[trigger.http]]
route = "/p3/..."
component = "p3"
[[trigger.http]]
route = "/p2/..."
component = "p2"
[[trigger.http]]
route = { private = true }
component = "backend"
[component.p3]
source = "{p3}"
allowed_outbound_hosts = ["http://127.0.0.1:{{ upstream_port }}", "http://backend.spin.internal", "http://self"]
[component.p2]
source = "{p2}"
allowed_outbound_hosts = ["http://*.spin.internal"]
[component.backend]
source = "{p2}"
"#;

fn start(upstream: &Upstream) -> (AppDir, Trib) {
    let app = AppDir::new(APP);
    let port = upstream.addr.port().to_string();
    let trib = Trib::start_with_env(
        &app,
        &shared_cache(),
        &["--admin-listen", "127.0.0.1:0"],
        &[("SPIN_VARIABLE_UPSTREAM_PORT", &port)],
    );
    (app, trib)
}

fn fetch(trib: &Trib, prefix: &str, url: &str) -> (u16, String) {
    trib.get(&format!("{prefix}/fetch?url={url}"))
}

#[test]
fn allowed_hosts_are_reached_over_one_pooled_connection() {
    let upstream = Upstream::start();
    let (_app, trib) = start(&upstream);
    let url = format!("http://127.0.0.1:{}/data", upstream.addr.port());
    for _ in 0..5 {
        // Each request runs in a fresh instance; the connection outlives them.
        assert_eq!(
            fetch(&trib, "/p3", &url),
            (200, "200 upstream ok /data".into())
        );
    }
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        1,
        "connections are pooled"
    );
}

#[test]
fn denied_hosts_fail_in_the_guest_and_are_never_contacted() {
    let upstream = Upstream::start();
    let (_app, trib) = start(&upstream);
    let url = format!("http://127.0.0.1:{}/data", upstream.addr.port());
    let (status, body) = fetch(&trib, "/p2", &url);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    // The right host on another port is still denied for p3.
    let (status, body) = fetch(&trib, "/p3", "http://127.0.0.1:1/data");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        0,
        "nothing was sent"
    );
    assert_mentions(&trib.log(), &["outbound HTTP denied", "component=p2"]);
}

#[test]
fn spin_internal_hosts_chain_in_process_without_a_connection() {
    let upstream = Upstream::start();
    let (_app, trib) = start(&upstream);
    // `backend` has only a private route: chaining is the only way in.
    for (prefix, url) in [
        ("/p3", "http://backend.spin.internal/hello"),
        ("/p2", "http://backend.spin.internal/hello"),
    ] {
        let (status, body) = fetch(&trib, prefix, url);
        assert_eq!(
            (status, body.as_str()),
            (200, "200 hello from p2 at /hello\n"),
            "{prefix}"
        );
    }
    // `self` routes through the app's own router.
    assert_eq!(
        fetch(&trib, "/p3", "http://self/p2/again"),
        (200, "200 hello from p2 at /p2/again\n".into())
    );
    // p3 may chain only to `backend`.
    let (status, body) = fetch(&trib, "/p3", "http://p2.spin.internal/x");
    assert_eq!(status, 500, "{body}");
    // Each of the four test requests came over its own TCP connection; the
    // three chained requests added none.
    let metrics = trib.metrics();
    assert_eq!(
        metric(&metrics, "trib_connections_total", ""),
        4.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "trib_requests_total",
            "component=\"backend\",status=\"200\""
        ),
        2.0,
        "{metrics}"
    );
}
