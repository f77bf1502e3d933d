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
//! `source` or glob that points outside the app root is refused at startup.

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
pub fn mounts(root: &Path, component: &Component) -> Result<Vec<Mount>, FilesError> {
    let err = |message: String| FilesError {
        component: component.id.clone(),
        message,
    };
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
                if !host.is_dir() {
                    return Err(err(format!(
                        "source {source:?} is not a directory (mount directories; use a glob for single files)"
                    )));
                }
                mounts.push(Mount {
                    host,
                    guest: destination.clone(),
                });
            }
            FileMount::Pattern(pattern) => patterns.push(pattern.as_str()),
        }
    }
    if !patterns.is_empty() {
        let staging = root.join(".spin/files").join(&component.id);
        stage(root, &staging, &patterns, &component.exclude_files).map_err(err)?;
        mounts.push(Mount {
            host: staging,
            guest: "/".to_owned(),
        });
    }
    Ok(mounts)
}

/// `root/rel`, if `rel` stays inside `root`.
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.is_absolute() || rel.components().any(|c| matches!(c, PathPart::ParentDir)) {
        return None;
    }
    Some(root.join(rel))
}

fn stage(root: &Path, staging: &Path, patterns: &[&str], exclude: &[String]) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(staging);
    std::fs::create_dir_all(staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let excluded: Vec<glob::Pattern> = exclude
        .iter()
        .map(|p| glob::Pattern::new(p).map_err(|e| format!("exclude_files {p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    for pattern in patterns {
        if inside(root, pattern).is_none() {
            return Err(format!(
                "pattern {pattern:?} reaches outside the app directory"
            ));
        }
        let full = root.join(pattern);
        let full = full.to_str().ok_or("non-UTF-8 path")?;
        let matches = glob::glob(full).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
        for path in matches.flatten() {
            if !path.is_file() {
                continue;
            }
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            if excluded.iter().any(|p| p.matches_path(rel)) {
                continue;
            }
            let target = staging.join(rel);
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            if std::fs::hard_link(&path, &target).is_err() {
                std::fs::copy(&path, &target)
                    .map_err(|e| format!("cannot stage {}: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}
