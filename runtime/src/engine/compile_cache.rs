//! On-disk cache of compiled components.
//!
//! A cache entry is keyed by the SHA-256 of the component bytes and of the
//! engine's compatibility hash (Wasmtime version, target, and every setting
//! that affects code generation), so a changed component or engine never hits
//! a stale entry. Each file starts with the SHA-256 of the rest; a truncated,
//! corrupted or foreign file fails that check and is recompiled and replaced,
//! never loaded. Files are written and read by [`super::cache_file`], which
//! replaces an entry atomically, so concurrent writers (threads or `trib`
//! processes) never leave or see half-written entries.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::cache_file::{self, Entry};

/// Where compiled components are kept, plus hit and miss counters.
#[derive(Debug)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Why a component could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("cannot compile the component: {0:#}")]
pub struct CompileError(wasmtime::Error);

impl CompileCache {
    /// A cache in `dir`, or no caching at all with `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The per-user default: `$XDG_CACHE_HOME/tributary` or
    /// `~/.cache/tributary`.
    pub fn default_dir() -> Option<PathBuf> {
        Self::tributary_dir().map(|d| d.join("components"))
    }

    /// trib's cache root (`$XDG_CACHE_HOME/tributary`, else
    /// `~/.cache/tributary`), shared by compiled components and pulled
    /// registry packages.
    pub fn tributary_dir() -> Option<PathBuf> {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("tributary"))
    }

    /// The cache directory, if caching is on; other load-time caches (see
    /// [`super::compose`]) keep their entries under it.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Components loaded from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Components compiled so far.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The compiled form of `wasm`, from the cache when possible; the flag
    /// says whether it came from the cache.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> Result<(Component, bool), CompileError> {
        let Some(dir) = &self.dir else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Component::new(engine, wasm)
                .map(|c| (c, false))
                .map_err(CompileError);
        };
        let path = dir.join(format!("{}.cwasm", cache_key(engine, wasm)));
        if let Some(component) = self.read(engine, &path) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((component, true));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let component = Component::new(engine, wasm).map_err(CompileError)?;
        if let Err(e) = write_entry(&path, &component) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the compile cache");
        }
        Ok((component, false))
    }

    fn read(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let payload = match cache_file::read(path) {
            Entry::Intact(payload) => payload,
            Entry::Missing => return None,
            Entry::Corrupt => {
                tracing::warn!(path = %path.display(), "compile cache entry is corrupt; recompiling");
                return None;
            }
        };
        match deserialize(engine, &payload) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "compile cache entry rejected; recompiling");
                None
            }
        }
    }
}

#[expect(
    unsafe_code,
    reason = "deserializing trusts the bytes; they were checked against the SHA-256 that we wrote beside them, and Wasmtime checks the engine compatibility header"
)]
fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: the payload was produced by `Component::serialize` in this cache
    // directory (its digest matches) and Wasmtime verifies it was compiled by
    // a compatible engine before use.
    unsafe { Component::deserialize(engine, payload) }
}

fn write_entry(path: &Path, component: &Component) -> anyhow::Result<()> {
    cache_file::write(path, &component.serialize()?)?;
    Ok(())
}

/// Hex SHA-256 over the component bytes and the engine compatibility hash.
fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.0.update(wasm);
    cache_file::hex(&hasher.0.finalize())
}
