//! The content-addressed cache pulled packages land in, and the app
//! directory a locked app is unpacked to so `trib up` runs it.
//!
//! Every blob is stored under its digest and checked against it when it
//! is written and again when it is read: nothing runs from bytes whose
//! digest does not match. Digests and file paths come from a registry, so
//! both are checked before they name anything on disk.

use std::io::Read as _;
use std::path::{Component as PathPart, Path, PathBuf};

use crate::oci::locked::{ContentRef, LockedApp, sha256_digest};

/// Why a pulled package cannot be stored or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A digest that is not `sha256:` and 64 lower-case hex digits.
    #[error("{0:?} is not a sha256 digest (sha256: and 64 hex digits)")]
    BadDigest(String),
    /// Bytes whose digest is not the one they were fetched for.
    #[error(
        "blob {expected} has digest {actual}: the package is corrupted or was tampered with; nothing was run"
    )]
    Mismatch {
        /// The digest the manifest or lock names.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A lock that names content the package does not hold.
    #[error("the locked app names {0}, which the package does not contain")]
    Missing(String),
    /// A lock this host cannot run.
    #[error("the locked app cannot be run: {0}")]
    Unsupported(String),
    /// A file path that would leave the component's directory.
    #[error("component {component:?}: file path {path:?} is not a plain relative path")]
    BadPath {
        /// The component.
        component: String,
        /// The path from the lock.
        path: String,
    },
    /// Reading or writing the cache failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Bytes one archive layer may unpack to (a compressed layer can claim
/// far more than it weighs).
pub const MAX_UNPACKED: usize = 1 << 30;

/// The registry cache: `blobs/sha256/HEX` and `apps/HEX/` (by manifest
/// digest).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The hex part of a well-formed digest.
pub fn digest_hex(digest: &str) -> Result<&str, StoreError> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .ok_or_else(|| StoreError::BadDigest(digest.to_owned()))
}

/// Fails unless `bytes` hash to `digest`.
pub fn verify(digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
    digest_hex(digest)?;
    let actual = sha256_digest(bytes);
    if actual != digest {
        return Err(StoreError::Mismatch {
            expected: digest.to_owned(),
            actual,
        });
    }
    Ok(())
}

impl Store {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Where the blob `digest` is kept.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    /// Stores `bytes` as `digest`, refusing bytes that do not match.
    pub fn write(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        verify(digest, bytes)?;
        let path = self.blob_path(digest)?;
        write_atomic(&path, bytes)
    }

    /// The bytes of `digest`, checked again.
    pub fn read(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest)?;
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::Missing(digest.to_owned())
            } else {
                StoreError::Io { path, source: e }
            }
        })?;
        verify(digest, &bytes)?;
        Ok(bytes)
    }

    /// Stores every regular file of a tar.gz archive layer as a blob under
    /// its own digest (the lock names files by digest; paths inside the
    /// archive are never used, so none can escape).
    pub fn unpack_archive(&self, archive: &[u8]) -> Result<usize, StoreError> {
        let bad = |e: std::io::Error| {
            StoreError::Unsupported(format!("an archive layer cannot be read: {e}"))
        };
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
        let (mut stored, mut total) = (0, 0usize);
        for entry in tar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut (&mut entry).take(MAX_UNPACKED as u64 + 1), &mut bytes)
                .map_err(bad)?;
            total += bytes.len();
            if total > MAX_UNPACKED {
                return Err(StoreError::Unsupported(format!(
                    "an archive layer unpacks to more than {} MiB",
                    MAX_UNPACKED >> 20
                )));
            }
            self.write(&sha256_digest(&bytes), &bytes)?;
            stored += 1;
        }
        Ok(stored)
    }

    /// Unpacks `lock` (whose blobs are in the cache) into an app directory
    /// named by `manifest_digest`: a `spin.toml`, the components' Wasm and
    /// their files. Returns the manifest path.
    pub fn unpack(&self, lock: &LockedApp, manifest_digest: &str) -> Result<PathBuf, StoreError> {
        let dir = self.root.join("apps").join(digest_hex(manifest_digest)?);
        if let Some(bad) = lock.must_understand.first() {
            return Err(StoreError::Unsupported(format!(
                "it requires host support for {bad:?}"
            )));
        }
        let staging = self.root.join("apps").join(format!(
            ".{}-{}",
            digest_hex(manifest_digest)?,
            std::process::id()
        ));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        let mut manifest = toml::Table::new();
        manifest.insert("spin_manifest_version".into(), 2.into());
        manifest.insert("application".into(), application(lock).into());
        if !lock.variables.is_empty() {
            let mut vars = toml::Table::new();
            for (name, v) in &lock.variables {
                let mut t = toml::Table::new();
                match &v.default {
                    Some(d) => t.insert("default".into(), d.clone().into()),
                    None => t.insert("required".into(), true.into()),
                };
                if v.secret {
                    t.insert("secret".into(), true.into());
                }
                if let Some(d) = &v.description {
                    t.insert("description".into(), d.clone().into());
                }
                vars.insert(name.clone(), t.into());
            }
            manifest.insert("variables".into(), vars.into());
        }
        let mut triggers = toml::Table::new();
        for trigger in &lock.triggers {
            let mut table = match json_to_toml(&trigger.trigger_config) {
                Some(toml::Value::Table(t)) => t,
                _ => {
                    return Err(StoreError::Unsupported(format!(
                        "trigger {:?} has no settings table",
                        trigger.id
                    )));
                }
            };
            table.insert("id".into(), trigger.id.clone().into());
            let list = triggers
                .entry(trigger.trigger_type.clone())
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            if let toml::Value::Array(items) = list {
                items.push(table.into());
            }
        }
        manifest.insert("trigger".into(), triggers.into());
        let mut components = toml::Table::new();
        for c in &lock.components {
            if !crate::manifest::is_kebab(&c.id) {
                return Err(StoreError::Unsupported(format!(
                    "component ID {:?} is not kebab-case",
                    c.id
                )));
            }
            if !c.dependencies.is_empty() {
                return Err(StoreError::Unsupported(format!(
                    "component {:?} has uncomposed dependencies (push it composed, Spin's default)",
                    c.id
                )));
            }
            let wasm = self.content(&c.source.content, &format!("component {:?}", c.id))?;
            let digest = sha256_digest(&wasm);
            let wasm_rel = format!("wasm/{}.wasm", digest_hex(&digest)?);
            write_atomic(&staging.join(&wasm_rel), &wasm)?;
            let mut table = toml::Table::new();
            table.insert("source".into(), wasm_rel.into());
            if !c.files.is_empty() {
                let files_rel = format!("files/{}", c.id);
                for file in &c.files {
                    let relative =
                        plain_relative(&file.path).ok_or_else(|| StoreError::BadPath {
                            component: c.id.clone(),
                            path: file.path.clone(),
                        })?;
                    let bytes = self.content(
                        &file.content,
                        &format!("file {:?} of {:?}", file.path, c.id),
                    )?;
                    write_atomic(&staging.join(&files_rel).join(relative), &bytes)?;
                }
                let mut mount = toml::Table::new();
                mount.insert("source".into(), files_rel.into());
                mount.insert("destination".into(), "/".into());
                table.insert("files".into(), vec![toml::Value::Table(mount)].into());
            }
            for (key, field) in [
                ("allowed_outbound_hosts", "allowed_outbound_hosts"),
                ("key_value_stores", "key_value_stores"),
                ("databases", "sqlite_databases"),
                ("ai_models", "ai_models"),
                ("description", "description"),
            ] {
                if let Some(value) = c.metadata.get(key).and_then(json_to_toml) {
                    let empty = matches!(&value, toml::Value::Array(a) if a.is_empty());
                    if !empty {
                        table.insert(field.into(), value);
                    }
                }
            }
            if !c.env.is_empty() {
                table.insert("environment".into(), string_table(&c.env).into());
            }
            if !c.config.is_empty() {
                table.insert("variables".into(), string_table(&c.config).into());
            }
            components.insert(c.id.clone(), table.into());
        }
        manifest.insert("component".into(), components.into());
        let text = toml::to_string(&manifest)
            .map_err(|e| StoreError::Unsupported(format!("cannot write its manifest: {e}")))?;
        write_atomic(&staging.join("spin.toml"), text.as_bytes())?;
        // The directory is named by the manifest's digest, so one already
        // there holds the same app; another `trib up` may be running from
        // it, so it is kept rather than replaced.
        if dir.join("spin.toml").is_file() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
            return Ok(dir.join("spin.toml"));
        }
        if dir.exists() {
            // A half-written directory from an interrupted unpacking.
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        if let Err(e) = std::fs::rename(&staging, &dir) {
            // Another process unpacked the same app first.
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
            if !dir.join("spin.toml").is_file() {
                return Err(StoreError::Io {
                    path: dir,
                    source: e,
                });
            }
        }
        Ok(dir.join("spin.toml"))
    }

    /// The bytes a content reference names: inline (checked against its
    /// digest when it has one) or a cached blob.
    fn content(&self, content: &ContentRef, what: &str) -> Result<Vec<u8>, StoreError> {
        match (&content.inline, &content.digest) {
            (Some(bytes), Some(digest)) => {
                verify(digest, bytes)?;
                Ok(bytes.clone())
            }
            (Some(bytes), None) => Ok(bytes.clone()),
            (None, Some(digest)) => self.read(digest),
            (None, None) => Err(StoreError::Missing(format!(
                "{what} without inline bytes or a digest"
            ))),
        }
    }
}

/// `[application]` from the lock's metadata.
fn application(lock: &LockedApp) -> toml::Table {
    let mut app = toml::Table::new();
    for key in ["name", "version", "description", "authors"] {
        if let Some(value) = lock.metadata.get(key).and_then(json_to_toml) {
            app.insert(key.into(), value);
        }
    }
    if !app.contains_key("name") {
        app.insert("name".into(), "app".into());
    }
    if let Some(toml::Value::Table(globals)) = lock.metadata.get("triggers").and_then(json_to_toml)
        && !globals.is_empty()
    {
        app.insert("trigger".into(), globals.into());
    }
    app
}

fn string_table(map: &std::collections::BTreeMap<String, String>) -> toml::Table {
    map.iter()
        .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
        .collect()
}

/// JSON as TOML; `null`s are dropped (TOML has none).
fn json_to_toml(value: &serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value as J;
    Some(match value {
        J::Null => return None,
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(items.iter().filter_map(json_to_toml).collect()),
        J::Object(map) => toml::Value::Table(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

/// `path` as a relative path of plain names (a leading `/` allowed), or
/// `None` if any part is `..`, `.`, empty or a prefix.
fn plain_relative(path: &str) -> Option<PathBuf> {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() || trimmed.contains('\\') {
        return None;
    }
    let mut out = PathBuf::new();
    for part in trimmed.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return None;
        }
        out.push(part);
    }
    // Nothing above may have made it anything but a chain of names.
    out.components()
        .all(|c| matches!(c, PathPart::Normal(_)))
        .then_some(out)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_name_files() {
        assert_eq!(plain_relative("a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(plain_relative("/static/x"), Some(PathBuf::from("static/x")));
        for bad in [
            "",
            "/",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "C:\\x",
            "a\\..\\b",
        ] {
            assert_eq!(plain_relative(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn digests_are_checked_before_they_name_a_file() {
        let store = Store::new(PathBuf::from("/nonexistent"));
        for bad in [
            "sha256:../../etc/passwd",
            "sha512:00",
            "sha256:ABC",
            "sha256:",
        ] {
            assert!(
                matches!(store.blob_path(bad), Err(StoreError::BadDigest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_blob_that_does_not_match_its_digest_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::new(dir.path().to_owned());
        let good = sha256_digest(b"hello");
        store.write(&good, b"hello").expect("stored");
        assert_eq!(store.read(&good).expect("read"), b"hello");
        let err = store.write(&good, b"hellp").expect_err("mismatch");
        assert!(err.to_string().contains("corrupted"), "{err}");
        // Bytes changed on disk after the write are caught on read.
        std::fs::write(store.blob_path(&good).expect("path"), b"jello").expect("tamper");
        assert!(matches!(
            store.read(&good),
            Err(StoreError::Mismatch { .. })
        ));
    }
}
