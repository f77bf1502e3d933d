//! Talking to an OCI registry (through `oci-client`): pushing a package in
//! Spin's layout and pulling one, Spin's or trib's, into the [`Store`].

use std::collections::BTreeMap;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::config::{Architecture, ConfigFile, Os};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::oci::locked::{LockedApp, sha256_digest};
use crate::oci::package::Package;
use crate::oci::store::{Store, StoreError};
use crate::oci::{ARCHIVE_MEDIA_TYPE, LOCKED_APP_DIGEST_LABEL, LOCKED_APP_MEDIA_TYPE};

/// Why a push or pull failed (the registry, the reference, or the
/// package).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference does not parse.
    #[error(
        "{reference:?} is not an OCI reference (REGISTRY/REPOSITORY[:TAG][@DIGEST]): {message}"
    )]
    BadReference {
        /// What was given.
        reference: String,
        /// Why.
        message: String,
    },
    /// The registry refused or failed a request.
    #[error("{reference}: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// The registry's answer.
        message: String,
    },
    /// The package is not a Spin application.
    #[error("{reference}: {message}")]
    NotSpin {
        /// The reference.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// A blob, the lock or the cache failed a check.
    #[error("{reference}: {source}")]
    Store {
        /// The reference.
        reference: String,
        /// The check.
        source: StoreError,
    },
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Plain HTTP instead of HTTPS (a registry on loopback, say).
    pub insecure: bool,
}

/// What a push made.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The manifest's digest (`sha256:...`).
    pub digest: String,
    /// Layers in the manifest, the lock's included.
    pub layers: usize,
}

/// What a pull made.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest's digest.
    pub digest: String,
    /// The locked app.
    pub lock: LockedApp,
    /// The unpacked app's `spin.toml`.
    pub manifest: std::path::PathBuf,
}

/// Parses `reference`.
pub fn parse_reference(reference: &str) -> Result<Reference, RegistryError> {
    reference
        .parse::<Reference>()
        .map_err(|e| RegistryError::BadReference {
            reference: reference.to_owned(),
            message: e.to_string(),
        })
}

/// `e` as text, with what to do when the registry wants credentials.
fn explain(e: &dyn std::fmt::Display, registry: &str) -> String {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("not authorized") || lower.contains("401") || lower.contains("unauthorized") {
        format!(
            "{text} (the registry wants credentials: run `trib registry login {registry} -u USER --password-stdin`, or add them to Docker's config.json)"
        )
    } else {
        text
    }
}

fn client(connection: &Connection) -> Client {
    Client::new(ClientConfig {
        protocol: if connection.insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..Default::default()
    })
}

fn auth_for(reference: &Reference) -> RegistryAuth {
    crate::oci::auth::resolve(reference.resolve_registry())
}

/// Pushes `package` as `reference` with the manifest `annotations`, in
/// Spin's layout: a layer per Wasm and data blob, the lock as a layer of
/// Spin's application type, and an image config (`wasm`/`wasip1`) whose
/// label names the lock's digest.
pub async fn push(
    package: &Package,
    reference: &str,
    annotations: BTreeMap<String, String>,
    connection: &Connection,
) -> Result<Pushed, RegistryError> {
    let parsed = parse_reference(reference)?;
    let failed = |e: &dyn std::fmt::Display| RegistryError::Registry {
        reference: reference.to_owned(),
        message: format!("cannot push: {}", explain(e, parsed.resolve_registry())),
    };
    let mut layers: Vec<ImageLayer> = package
        .layers
        .iter()
        .map(|blob| ImageLayer::new(blob.data.clone(), blob.media_type.clone(), None))
        .collect();
    let lock = serde_json::to_vec(&package.lock).map_err(|e| failed(&e))?;
    let lock_digest = sha256_digest(&lock);
    layers.push(ImageLayer::new(
        lock,
        LOCKED_APP_MEDIA_TYPE.to_owned(),
        None,
    ));
    let config_file = ConfigFile {
        architecture: Architecture::Wasm,
        os: Os::Wasip1,
        config: Some(oci_client::config::Config {
            labels: Some(
                [(LOCKED_APP_DIGEST_LABEL.to_owned(), lock_digest)]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let config = Config::oci_v1_from_config_file(config_file, None).map_err(|e| failed(&e))?;
    let manifest = OciImageManifest::build(&layers, &config, Some(annotations));
    let client = client(connection);
    let auth = auth_for(&parsed);
    let response = client
        .push(&parsed, &layers, config, &auth, Some(manifest))
        .await
        .map_err(|e| failed(&e))?;
    let digest = response
        .manifest_url
        .rsplit_once("/manifests/")
        .map(|(_, d)| d.to_owned())
        .filter(|d| d.starts_with("sha256:"))
        .unwrap_or_default();
    Ok(Pushed {
        digest,
        layers: layers.len(),
    })
}

/// Pulls `reference` into `store`, checking every digest (the manifest's
/// against a digest in the reference, each blob's against the manifest,
/// inline content against the lock), then unpacks it.
///
/// Accepts what Spin pushes: the lock as a layer (current) or as the config
/// blob (older Spin), Wasm layers of Spin's type or `application/wasm`.
pub async fn pull(
    reference: &str,
    store: &Store,
    connection: &Connection,
) -> Result<Pulled, RegistryError> {
    let parsed = parse_reference(reference)?;
    let at = || reference.to_owned();
    let registry = |message: String| RegistryError::Registry {
        reference: at(),
        message,
    };
    let store_err = |source: StoreError| RegistryError::Store {
        reference: at(),
        source,
    };
    let client = client(connection);
    let auth = auth_for(&parsed);
    let accepted = [
        oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
        oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    ];
    let (raw, _) = client
        .pull_manifest_raw(&parsed, &auth, &accepted)
        .await
        .map_err(|e| {
            registry(format!(
                "cannot fetch the manifest: {}",
                explain(&e, parsed.resolve_registry())
            ))
        })?;
    let digest = sha256_digest(&raw);
    if let Some(wanted) = parsed.digest()
        && wanted != digest
    {
        return Err(store_err(StoreError::Mismatch {
            expected: wanted.to_owned(),
            actual: digest,
        }));
    }
    let manifest: OciImageManifest =
        serde_json::from_slice(&raw).map_err(|e| RegistryError::NotSpin {
            reference: at(),
            message: format!("its manifest is not an OCI image manifest: {e}"),
        })?;
    let mut lock_bytes = None;
    // The config blob: Spin's image config, or (older Spin) the lock.
    let config = fetch(&client, &parsed, &manifest.config, store)
        .await
        .map_err(|e| e.at(at()))?;
    if manifest.config.media_type == LOCKED_APP_MEDIA_TYPE {
        lock_bytes = Some(config);
    }
    for layer in &manifest.layers {
        match layer.media_type.as_str() {
            LOCKED_APP_MEDIA_TYPE => {
                lock_bytes = Some(
                    fetch(&client, &parsed, layer, store)
                        .await
                        .map_err(|e| e.at(at()))?,
                );
            }
            ARCHIVE_MEDIA_TYPE => {
                let archive = fetch(&client, &parsed, layer, store)
                    .await
                    .map_err(|e| e.at(at()))?;
                store.unpack_archive(&archive).map_err(store_err)?;
            }
            // Wasm (Spin's type, or `application/wasm` as wkg pushes it)
            // and data layers alike land in the cache by digest.
            _ => {
                fetch(&client, &parsed, layer, store)
                    .await
                    .map_err(|e| e.at(at()))?;
            }
        }
    }
    let lock_bytes = lock_bytes.ok_or_else(|| RegistryError::NotSpin {
        reference: at(),
        message: format!(
            "it has no locked Spin application (a layer or config of type {LOCKED_APP_MEDIA_TYPE}): is it a Spin app?"
        ),
    })?;
    let lock: LockedApp =
        serde_json::from_slice(&lock_bytes).map_err(|e| RegistryError::NotSpin {
            reference: at(),
            message: format!("its locked application does not parse: {e}"),
        })?;
    let manifest_path = store.unpack(&lock, &digest).map_err(store_err)?;
    Ok(Pulled {
        digest,
        lock,
        manifest: manifest_path,
    })
}

/// A failure fetching one blob, placed at its reference by the caller.
enum FetchError {
    Registry(String),
    Store(StoreError),
}

impl FetchError {
    fn at(self, reference: String) -> RegistryError {
        match self {
            Self::Registry(message) => RegistryError::Registry { reference, message },
            Self::Store(source) => RegistryError::Store { reference, source },
        }
    }
}

/// The blob `descriptor` names, from the cache when it holds it (checked),
/// else from the registry (checked, then cached).
async fn fetch(
    client: &Client,
    reference: &Reference,
    descriptor: &OciDescriptor,
    store: &Store,
) -> Result<Vec<u8>, FetchError> {
    // The digest names a file: check its form before anything else.
    crate::oci::store::digest_hex(&descriptor.digest).map_err(FetchError::Store)?;
    if let Ok(bytes) = store.read(&descriptor.digest) {
        return Ok(bytes);
    }
    let declared = usize::try_from(descriptor.size).unwrap_or(usize::MAX);
    if declared > MAX_BLOB {
        return Err(FetchError::Registry(format!(
            "blob {} declares {} bytes, more than the {} MiB trib accepts",
            descriptor.digest,
            descriptor.size,
            MAX_BLOB >> 20
        )));
    }
    let mut bytes = Capped {
        bytes: Vec::with_capacity(declared.min(64 << 20)),
        limit: declared,
    };
    let pulled = client.pull_blob(reference, descriptor, &mut bytes).await;
    let bytes = bytes.bytes;
    if let Err(e) = pulled {
        // The client checks digests as it streams; say it our way.
        if let oci_client::errors::OciDistributionError::DigestError(_) = &e {
            return Err(FetchError::Store(StoreError::Mismatch {
                expected: descriptor.digest.clone(),
                actual: sha256_digest(&bytes),
            }));
        }
        return Err(FetchError::Registry(format!(
            "cannot fetch blob {}: {e}",
            descriptor.digest
        )));
    }
    store
        .write(&descriptor.digest, &bytes)
        .map_err(FetchError::Store)?;
    Ok(bytes)
}

/// Checks `user`/`password` against `server` before they are saved: one
/// `GET /v2/` with Basic auth, or (for a registry that hands out tokens) a
/// token request. The password is never part of an error.
pub async fn check_login(
    server: &str,
    user: &str,
    password: &str,
    connection: &Connection,
) -> Result<(), RegistryError> {
    let scheme = if connection.insecure { "http" } else { "https" };
    let failed = |message: String| RegistryError::Registry {
        reference: server.to_owned(),
        message,
    };
    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{scheme}://{server}/v2/"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .map_err(|e| failed(format!("cannot reach the registry: {}", e.without_url())))?;
    if resp.status().is_success() {
        return Ok(());
    }
    let bearer = resp
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("bearer"));
    if bearer {
        let reference = parse_reference(&format!("{server}/trib/login-check:latest"))?;
        let auth = RegistryAuth::Basic(user.to_owned(), password.to_owned());
        return client(connection)
            .auth(&reference, &auth, oci_client::RegistryOperation::Pull)
            .await
            .map(|_| ())
            .map_err(|_| {
                failed(format!(
                    "the registry did not accept the credentials of {user:?}"
                ))
            });
    }
    Err(failed(format!(
        "the registry did not accept the credentials of {user:?} ({})",
        resp.status()
    )))
}

/// Bytes one blob may have (a registry could otherwise make a pull fill
/// memory).
pub const MAX_BLOB: usize = 1 << 30;

/// A buffer that takes no more than the size its descriptor declared.
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.bytes.len() + buf.len() > self.limit {
            return std::task::Poll::Ready(Err(std::io::Error::other(
                "the registry sent more bytes than the descriptor declares",
            )));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_blob_longer_than_declared_is_cut_off() {
        use tokio::io::AsyncWriteExt as _;
        let mut buf = Capped {
            bytes: Vec::new(),
            limit: 4,
        };
        buf.write_all(b"abcd")
            .await
            .expect("within the declared size");
        let err = buf.write_all(b"e").await.expect_err("past it");
        assert!(
            err.to_string()
                .contains("more bytes than the descriptor declares")
        );
        assert_eq!(buf.bytes, b"abcd");
    }
}
