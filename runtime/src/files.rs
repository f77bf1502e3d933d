//! `files` mounts: what part of the app's directory a component can read.
//!
//! - `{ source = "dir", destination = "/dir" }` mounts a directory;
//! - a glob (`"static/**/*"`) selects files by their path relative to the
//!   app root; they are gathered (hard-linked, or copied across devices) into
//!   a staging directory under `.spin/files/COMPONENT`, minus
//!   `exclude_files`, and that directory is mounted at `/`, so each file
//!   keeps its relative path.
//!
//! Every mount is read-only, and a guest cannot leave a mount (`..` and
//! symlinks outside are refused by WASI's capability-based filesystem). A
//! `source` or glob that points outside the app root, as written or through
//! a symbolic link, is refused at startup, and nothing under `.spin/` (the
//! host's own state) is ever staged.

use std::path::{Component as PathPart, Path, PathBuf};

use crate::manifest::{Component, FileMount};

/// A host directory and where the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Host directory.
    pub host: PathBuf,
    /// Absolute guest path.
    pub guest: String,
}

/// Why a component's files cannot be mounted.
#[derive(Debug, thiserror::Error)]
#[error("component {component:?}: files: {message}")]
pub struct FilesError {
    component: String,
    message: String,
}

/// The mounts of `component`, staging globbed files under `root/.spin`.
///
/// Every path is resolved (symbolic links followed) before it is used, and
/// anything whose real path leaves the app directory stops startup: a link
/// inside the app must not hand a guest a file from outside it.
pub fn mounts(root: &Path, component: &Component) -> Result<Vec<Mount>, FilesError> {
    let err = |message: String| FilesError {
        component: component.id.clone(),
        message,
    };
    // The ID names a directory below: only a plain name may.
    if !crate::manifest::is_kebab(&component.id) {
        return Err(err(format!(
            "{:?} is not a kebab-case ID, so it cannot name a staging directory",
            component.id
        )));
    }
    let real_root = root.canonicalize().map_err(|e| {
        err(format!(
            "cannot resolve the app directory {}: {e}",
            root.display()
        ))
    })?;
    let mut mounts = Vec::new();
    let mut patterns = Vec::new();
    for mount in &component.files {
        match mount {
            FileMount::Placement {
                source,
                destination,
            } => {
                let host = inside(root, source).ok_or_else(|| {
                    err(format!("source {source:?} is outside the app directory"))
                })?;
                let real = resolve_inside(&real_root, &host)
                    .map_err(|m| err(format!("source {source:?} {m}")))?;
                if !real.is_dir() {
                    return Err(err(format!(
                        "source {source:?} is not a directory (mount directories; use a glob for single files)"
                    )));
                }
                mounts.push(Mount {
                    host: real,
                    guest: destination.clone(),
                });
            }
            FileMount::Pattern(pattern) => patterns.push(pattern.as_str()),
        }
    }
    if !patterns.is_empty() {
        let staging = staging_dir(&real_root, &component.id).map_err(err)?;
        stage(&real_root, &staging, &patterns, &component.exclude_files).map_err(err)?;
        mounts.push(Mount {
            host: staging,
            guest: "/".to_owned(),
        });
    }
    Ok(mounts)
}

/// `root/rel`, if `rel` stays inside `root` as written.
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, PathPart::ParentDir)) {
        return None;
    }
    Some(root.join(rel))
}

/// The real path of `path`, if it is inside `real_root` (itself resolved).
fn resolve_inside(real_root: &Path, path: &Path) -> Result<PathBuf, String> {
    let real = path
        .canonicalize()
        .map_err(|e| format!("cannot be resolved: {e}"))?;
    if real.starts_with(real_root) {
        Ok(real)
    } else {
        Err(format!(
            "resolves to {}, outside the app directory (symbolic links may not leave it)",
            real.display()
        ))
    }
}

/// `.spin/files/ID` under the app, emptied for a new staging: every
/// directory on the way must be a real directory of the app's own, and an
/// old staging directory is replaced only where it is one (a symbolic link
/// in its place is removed, never followed).
fn staging_dir(real_root: &Path, id: &str) -> Result<PathBuf, String> {
    let mut dir = real_root.to_owned();
    for part in [".spin", "files"] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{} is not a directory (a file or symbolic link is in the way; remove it)",
                    dir.display()
                ));
            }
            Err(_) => std::fs::create_dir(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?,
        }
    }
    let staging = dir.join(id);
    match std::fs::symlink_metadata(&staging) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&staging),
        Ok(_) => std::fs::remove_file(&staging),
        Err(_) => Ok(()),
    }
    .map_err(|e| format!("cannot clear {}: {e}", staging.display()))?;
    std::fs::create_dir(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    Ok(staging)
}

/// Links (or copies) every file the patterns match into `staging`, by its
/// path relative to the app. Nothing under `.spin/` is ever staged: that is
/// the host's state (key-value and SQLite files, other staging areas).
fn stage(
    real_root: &Path,
    staging: &Path,
    patterns: &[&str],
    exclude: &[String],
) -> Result<(), String> {
    let excluded: Vec<glob::Pattern> = exclude
        .iter()
        .map(|p| glob::Pattern::new(p).map_err(|e| format!("exclude_files {p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    let state = real_root.join(".spin");
    for pattern in patterns {
        let Some(full) = inside(real_root, pattern) else {
            return Err(format!(
                "pattern {pattern:?} reaches outside the app directory"
            ));
        };
        let full = full.to_str().ok_or("non-UTF-8 path")?;
        let matches = glob::glob(full).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
        for path in matches.flatten() {
            let Ok(rel) = path.strip_prefix(real_root) else {
                continue;
            };
            if path.starts_with(&state) || excluded.iter().any(|p| p.matches_path(rel)) {
                continue;
            }
            let real = resolve_inside(real_root, &path)
                .map_err(|m| format!("{pattern:?} matches {} which {m}", rel.display()))?;
            if !real.is_file() || real.starts_with(&state) {
                continue;
            }
            let target = staging.join(rel);
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            if std::fs::hard_link(&real, &target).is_err() {
                std::fs::copy(&real, &target)
                    .map_err(|e| format!("cannot stage {}: {e}", rel.display()))?;
            }
        }
    }
    Ok(())
}
