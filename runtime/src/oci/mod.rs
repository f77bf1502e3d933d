//! Apps as OCI artifacts in Spin's format: `trib registry push` writes the
//! package `spin registry push` writes (and SpinKube's containerd shim
//! reads), `trib registry pull` and `trib up --from REF` read it, or one
//! Spin pushed.
//!
//! [`package`] turns a manifest into a locked app and its blobs,
//! [`registry`] moves them, [`store`] keeps pulled blobs by digest and
//! unpacks a locked app into a directory `trib up` runs, [`auth`] finds
//! credentials.

pub mod auth;
pub mod locked;
pub mod package;
pub mod registry;
pub mod store;

/// The locked app, as a layer (or, in older packages, the config blob).
pub const LOCKED_APP_MEDIA_TYPE: &str = "application/vnd.fermyon.spin.application.v1+config";
/// A component's Wasm.
pub const WASM_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// A Wasm layer as `wkg` pushes it (accepted on pull).
pub const WKG_WASM_MEDIA_TYPE: &str = "application/wasm";
/// One static file.
pub const DATA_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+data";
/// A tar.gz of many static files (Spin's, past its layer limit).
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
/// The image config label naming the lock layer's digest.
pub const LOCKED_APP_DIGEST_LABEL: &str = "com.fermyon.spin.lockedAppDigest";

/// Whether `from` (a `--from` value that is not a path on disk) reads as
/// an OCI reference: `REGISTRY/REPO[:TAG][@DIGEST]` with a registry host.
pub fn looks_like_reference(from: &str) -> bool {
    // A mistyped file name must not send trib to the network.
    let file_like = [".toml", ".wasm", ".json"]
        .iter()
        .any(|ext| from.ends_with(ext));
    if file_like || from.starts_with(['.', '/', '~']) {
        return false;
    }
    let Some((registry, rest)) = from.split_once('/') else {
        return false;
    };
    !rest.is_empty()
        && (registry.contains('.') || registry.contains(':') || registry == "localhost")
        && registry::parse_reference(from).is_ok()
}

#[cfg(test)]
mod tests {
    use super::looks_like_reference;

    #[test]
    fn only_registry_references_are_taken_for_them() {
        for reference in [
            "ghcr.io/acme/app:v1",
            "127.0.0.1:5000/app",
            "localhost/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(looks_like_reference(reference), "{reference}");
        }
        for path in [
            "dir.d/spin.toml",
            "build.out/app.wasm",
            "./missing/spin.toml",
            "/abs/app",
            "app",
            "plain/dir",
        ] {
            assert!(!looks_like_reference(path), "{path}");
        }
    }
}
