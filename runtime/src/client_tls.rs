//! `[[client_tls]]` (Spin's runtime config): the TLS a component's outbound
//! HTTPS uses for some hosts: its own CA roots (a private CA), with or
//! without the public webpki roots, and a client certificate (mutual TLS).
//!
//! ```toml
//! [[client_tls]]
//! component_ids = ["reporter"]
//! hosts = ["internal.example.com", "10.0.0.5:8443"]
//! ca_roots_file = "ca.pem"            # relative to this file
//! ca_use_webpki_roots = false         # default: true unless ca_roots_file is set
//! client_cert_file = "client.pem"
//! client_private_key_file = "client.key"
//! ```
//!
//! A host without a port matches every port; with one, only that port.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// One validated `[[client_tls]]` entry, its files read.
#[derive(Clone)]
pub struct ClientTls {
    /// The components it applies to.
    pub components: Vec<String>,
    hosts: Vec<(String, Option<u16>)>,
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    // The key stays out of every print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("components", &self.components)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// What a `[[client_tls]]` entry says, before its files are read.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsSpec {
    /// `component_ids`.
    pub components: Vec<String>,
    /// `hosts`: `name` or `name:port`.
    pub hosts: Vec<String>,
    /// `ca_use_webpki_roots`.
    pub use_webpki_roots: Option<bool>,
    /// `ca_roots_file`, resolved against the runtime config's directory.
    pub ca_roots_file: Option<PathBuf>,
    /// `client_cert_file`, resolved likewise.
    pub client_cert_file: Option<PathBuf>,
    /// `client_private_key_file`, resolved likewise.
    pub client_private_key_file: Option<PathBuf>,
}

/// Why an entry cannot be used (the field to fix is named; a key's
/// content never is).
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    /// A list that must not be empty is.
    #[error("{0} may not be empty")]
    Empty(&'static str),
    /// A host is not `name` or `name:port`.
    #[error("hosts: {0:?} is not a host name or host:port")]
    BadHost(String),
    /// A certificate or key file is unreadable or holds nothing usable.
    #[error("{field}: cannot use {path}: {reason}")]
    File {
        /// The field naming the file.
        field: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// One of the pair `client_cert_file` / `client_private_key_file` is
    /// missing.
    #[error("{0} is set without {1}: give both or neither")]
    HalfPair(&'static str, &'static str),
    /// rustls refuses the certificate and key.
    #[error("client_cert_file and client_private_key_file cannot be used together: {0}")]
    Refused(String),
}

impl ClientTls {
    /// Reads the files `spec` names and builds the TLS client configuration.
    pub fn load(spec: &ClientTlsSpec) -> Result<Self, ClientTlsError> {
        if spec.components.is_empty() {
            return Err(ClientTlsError::Empty("component_ids"));
        }
        if spec.hosts.is_empty() {
            return Err(ClientTlsError::Empty("hosts"));
        }
        let hosts = spec
            .hosts
            .iter()
            .map(|h| parse_host(h).ok_or_else(|| ClientTlsError::BadHost(h.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut roots = rustls::RootCertStore::empty();
        if spec
            .use_webpki_roots
            .unwrap_or(spec.ca_roots_file.is_none())
        {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(path) = &spec.ca_roots_file {
            for cert in read_certs("ca_roots_file", path)? {
                roots.add(cert).map_err(|e| ClientTlsError::File {
                    field: "ca_roots_file",
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientTlsError::Refused(e.to_string()))?
            .with_root_certificates(roots);
        // ALPN is left to the HTTP connector, which offers h2 and http/1.1.
        let config = match (&spec.client_cert_file, &spec.client_private_key_file) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(read_certs("client_cert_file", cert)?, read_key(key)?)
                .map_err(|e| ClientTlsError::Refused(e.to_string()))?,
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(ClientTlsError::HalfPair(
                    "client_cert_file",
                    "client_private_key_file",
                ));
            }
            (None, Some(_)) => {
                return Err(ClientTlsError::HalfPair(
                    "client_private_key_file",
                    "client_cert_file",
                ));
            }
        };
        Ok(Self {
            components: spec.components.clone(),
            hosts,
            config: Arc::new(config),
        })
    }

    /// Whether this entry covers `host:port` for `component`.
    pub fn applies(&self, component: &str, host: &str, port: u16) -> bool {
        self.components.iter().any(|c| c == component)
            && self
                .hosts
                .iter()
                .any(|(h, p)| h == host && p.is_none_or(|p| p == port))
    }

    /// The rustls configuration to connect with.
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }
}

/// `name` or `name:port` (IPv6 in brackets), lower-cased; split as
/// `allowed_outbound_hosts` entries are.
fn parse_host(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = crate::allowed_hosts::split_host_port(text.trim()).ok()?;
    let port = match port {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    valid.then(|| (host.to_ascii_lowercase(), port))
}

fn read_certs(
    field: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ClientTlsError> {
    let err = |reason: String| ClientTlsError::File {
        field,
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ClientTlsError> {
    let err = |reason: String| ClientTlsError::File {
        field: "client_private_key_file",
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        // The parser's message could quote the file: only say it failed.
        .map_err(|_| err("not a PEM private key".into()))?
        .ok_or_else(|| err("no PEM private key in it".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_by_name_and_optional_port() {
        let spec = ClientTlsSpec {
            components: vec!["api".into()],
            hosts: vec![
                "Example.com".into(),
                "10.0.0.5:8443".into(),
                "[::1]:9".into(),
            ],
            ..Default::default()
        };
        let tls = ClientTls::load(&spec).expect("webpki roots only");
        assert!(tls.applies("api", "example.com", 443));
        assert!(tls.applies("api", "example.com", 8080));
        assert!(tls.applies("api", "10.0.0.5", 8443));
        assert!(!tls.applies("api", "10.0.0.5", 443));
        assert!(tls.applies("api", "::1", 9));
        assert!(!tls.applies("other", "example.com", 443));
    }

    #[test]
    fn mistakes_name_the_field() {
        let base = ClientTlsSpec {
            components: vec!["api".into()],
            hosts: vec!["example.com".into()],
            ..Default::default()
        };
        let cases = [
            (
                ClientTlsSpec {
                    components: vec![],
                    ..base.clone()
                },
                "component_ids may not be empty",
            ),
            (
                ClientTlsSpec {
                    hosts: vec!["https://example.com".into()],
                    ..base.clone()
                },
                "hosts: \"https://example.com\"",
            ),
            (
                ClientTlsSpec {
                    ca_roots_file: Some("/nonexistent/ca.pem".into()),
                    ..base.clone()
                },
                "ca_roots_file: cannot use /nonexistent/ca.pem",
            ),
            (
                ClientTlsSpec {
                    client_cert_file: Some("/nonexistent/c.pem".into()),
                    ..base.clone()
                },
                "client_cert_file is set without client_private_key_file",
            ),
        ];
        for (spec, expected) in cases {
            let err = ClientTls::load(&spec).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err} / {expected}");
        }
    }
}
