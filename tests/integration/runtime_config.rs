//! Spin's runtime config keys beyond stores, through a real `trib up`:
//! variables providers (`env` with `prefix`/`dotenv_path`, `static`) and
//! the app's `.env`, `[outbound_networking] block_networks`, and
//! `[[client_tls]]` (a private CA and a client certificate, checked by a
//! real TLS server that demands one).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::outbound::Upstream;
use crate::support::{AppDir, Trib, shared_cache};

fn start(app: &AppDir, runtime_config: &str, env: &[(&str, &str)]) -> Trib {
    let rc = app.path().join("runtime-config.toml");
    std::fs::write(&rc, runtime_config).expect("write runtime config");
    let rc = rc.display().to_string();
    Trib::start_with_env(app, &shared_cache(), &["--runtime-config-file", &rc], env)
}

const VARIABLES_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "providers"
[variables]
from_static = { required = true }
from_prefixed = { required = true }
from_app_dotenv = { required = true }
env_beats_dotenv = { required = true }
[[trigger.http]]
route = "/api/..."
component = "api"
[component.api]
source = "{p3}"
[component.api.variables]
from_static = "{{ from_static }}"
from_prefixed = "{{ from_prefixed }}"
from_app_dotenv = "{{ from_app_dotenv }}"
env_beats_dotenv = "{{ env_beats_dotenv }}"
"#;

#[test]
fn variables_come_from_spins_providers_in_order_and_the_apps_env_file() {
    let app = AppDir::new(VARIABLES_APP);
    std::fs::write(
        app.path().join(".env"),
        "SPIN_VARIABLE_FROM_APP_DOTENV=app-dotenv\nSPIN_VARIABLE_ENV_BEATS_DOTENV=dotenv\nSPIN_VARIABLE_FROM_STATIC=dotenv-loses\n",
    )
    .expect("write .env");
    std::fs::write(
        app.path().join("team.env"),
        "TRIBTEAM_FROM_PREFIXED=prefixed-dotenv\n",
    )
    .expect("write team.env");
    let trib = start(
        &app,
        r#"
[[variables_provider]]
type = "static"
values = { from_static = "static-value" }
[[variables_provider]]
type = "env"
prefix = "TRIBTEAM"
dotenv_path = "team.env"
"#,
        &[("SPIN_VARIABLE_ENV_BEATS_DOTENV", "process-env")],
    );
    trib.assert_gets(&[
        ("/api/var?name=from_static", 200, "static-value"),
        ("/api/var?name=from_prefixed", 200, "prefixed-dotenv"),
        ("/api/var?name=from_app_dotenv", 200, "app-dotenv"),
        ("/api/var?name=env_beats_dotenv", 200, "process-env"),
    ]);
}

#[test]
fn an_unimplemented_provider_stops_trib_up_naming_the_key() {
    let app = AppDir::new(VARIABLES_APP);
    let rc = app.path().join("runtime-config.toml");
    std::fs::write(
        &rc,
        "[[variables_provider]]\ntype = \"vault\"\nurl = \"http://127.0.0.1:8200\"\ntoken = \"root-token-secret\"\nmount = \"secret\"\n",
    )
    .expect("write");
    let out = crate::support::trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(app.manifest())
        .arg("--runtime-config-file")
        .arg(&rc)
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "runtime-config.toml:1:1: variables_provider.type: trib does not implement Spin's vault"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("root-token-secret"), "{stderr}");
}

const FETCH_APP: &str = r#"
spin_manifest_version = 2
[application]
name = "networking"
[variables]
port = { required = true }
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = "/other/..."
component = "other"
[component.api]
source = "{p3}"
allowed_outbound_hosts = ["http://127.0.0.1:{{ port }}", "http://localhost:{{ port }}", "https://127.0.0.1:{{ port }}", "postgres://localhost:5432"]
[component.other]
source = "{p3}"
allowed_outbound_hosts = ["https://127.0.0.1:{{ port }}"]
"#;

#[test]
fn block_networks_refuse_addresses_the_allow_list_admits() {
    let upstream = Upstream::start();
    let port = upstream.addr.port().to_string();
    let app = AppDir::new(FETCH_APP);
    let by_ip = format!("/api/fetch?url=http://127.0.0.1:{port}/data");
    let by_name = format!("/api/fetch?url=http://localhost:{port}/data");
    // Without blocked networks the upstream answers.
    let open = start(&app, "", &[("SPIN_VARIABLE_PORT", &port)]);
    assert_eq!(open.get(&by_ip), (200, "200 upstream ok /data".into()));
    drop(open);
    let before = upstream.connections();
    let blocked = start(
        &app,
        "[outbound_networking]\nblock_networks = [\"private\"]\n",
        &[("SPIN_VARIABLE_PORT", &port)],
    );
    for path in [&by_ip, &by_name] {
        let (status, body) = blocked.get(path);
        assert_eq!(status, 500, "{path}: {body}");
        assert!(body.contains("DestinationIpProhibited"), "{path}: {body}");
    }
    assert_eq!(upstream.connections(), before, "nothing was sent");
    // Database drivers dial names themselves: the name is checked first.
    let (status, body) = blocked.post(
        "/api/pg?op=query&address=postgres://postgres@localhost:5432/test",
        "SELECT 1",
    );
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("ConnectionFailed") && body.contains("block_networks"),
        "{body}"
    );
    let log = blocked.log();
    assert!(log.contains("block_networks"), "{log}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made
/// with the openssl CLI in `dir`.
struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?} failed");
}

fn pki(dir: &Path) -> Pki {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=trib test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for (name, cn) in [("server", "127.0.0.1"), ("client", "trib test client")] {
        let subj = format!("/CN={cn}");
        let mut req = vec!["req", "-subj", subj.as_str()];
        req.extend(ec);
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let ext = format!("{name}.ext");
        req.extend(["-keyout", key.as_str(), "-out", csr.as_str()]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
    }
    Pki {
        ca: dir.join("ca.pem"),
        server: (dir.join("server.pem"), dir.join("server.key")),
        client: (dir.join("client.pem"), dir.join("client.key")),
    }
}

/// An HTTPS server on loopback that demands a client certificate from
/// `pki`'s CA and counts the handshakes that succeed.
struct MutualTlsUpstream {
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

fn pem_certs(path: &Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let pem = std::fs::read(path).expect("read cert");
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .expect("PEM certs")
}

impl MutualTlsUpstream {
    fn start(pki: &Pki) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certs(&pki.ca) {
            roots.add(cert).expect("CA cert");
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .build()
        .expect("client verifier");
        let key_pem = std::fs::read(&pki.server.1).expect("read key");
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .expect("PEM key")
            .expect("a key");
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(pem_certs(&pki.server.0), key)
            .expect("server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counter = handshakes.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let service = hyper::service::service_fn(
                        |req: http::Request<hyper::body::Incoming>| async move {
                            let body = format!("mutual tls ok {}", req.uri().path());
                            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from(body),
                            )))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            handshakes,
            _runtime: runtime,
        }
    }
}

#[test]
fn client_tls_gives_a_component_its_ca_and_client_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let pki = pki(dir.path());
    let upstream = MutualTlsUpstream::start(&pki);
    let port = upstream.addr.port().to_string();
    let app = AppDir::new(FETCH_APP);
    let url = format!("fetch?url=https://127.0.0.1:{port}/secure");
    let config = format!(
        "[[client_tls]]\ncomponent_ids = [\"api\"]\nhosts = [\"127.0.0.1:{port}\"]\nca_roots_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_private_key_file = \"{}\"\n",
        pki.ca.display(),
        pki.client.0.display(),
        pki.client.1.display()
    );
    let trib = start(&app, &config, &[("SPIN_VARIABLE_PORT", &port)]);
    assert_eq!(
        trib.get(&format!("/api/{url}")),
        (200, "200 mutual tls ok /secure".into())
    );
    assert_eq!(upstream.handshakes.load(Ordering::SeqCst), 1);
    // `other` is not in component_ids: the public roots do not know the CA.
    let (status, body) = trib.get(&format!("/other/{url}"));
    assert_eq!(status, 500, "{body}");
    assert_eq!(upstream.handshakes.load(Ordering::SeqCst), 1);
}
