//! Spin's component dependencies: a component composed, at load time, with
//! the components that its `[component.NAME.dependencies]` name.
//!
//! This follows Spin's composer (`crates/compose` in Spin), built on the
//! same library (`wac-graph`):
//! - each dependency key is matched against the component's imports
//!   (Spin's `matches_import`): a plain key matches the plain import of that
//!   name; `ns:pkg` every import of the package; `ns:pkg/iface` that
//!   interface at any version; a version in the key must equal the
//!   import's. A key that matches nothing, or an import that two keys
//!   match, is an error;
//! - each key's component is instantiated once, and that instance serves
//!   every import the key matched; two keys naming the same file are two
//!   instances, as in Spin;
//! - an import is satisfied by the dependency's export named `export`, or
//!   by the export named like the import, which must be a structural
//!   subtype of the import;
//! - the component's exports are re-exported; the imports that nothing
//!   satisfied, including the dependencies' own (WASI...), stay imports of
//!   the composition, for the host to provide.
//!
//! Where trib differs from Spin:
//! - without `dependencies_inherit_configuration = true`, Spin plugs a
//!   deny-all adapter into each dependency, so its host calls (network,
//!   stores, variables) fail at run time. trib has no such adapter: a
//!   dependency that imports a host capability is refused at load, naming
//!   the import, unless the component lets dependencies inherit its
//!   configuration. Every other import (WASI I/O, clocks, random, CLI
//!   streams, environment, filesystem) is shared with the component; Spin
//!   also gives each dependency an empty environment, trib gives it the
//!   component's;
//! - Spin registers each dependency in the graph under its key's package
//!   name, so two keys of one package (`ns:pkg/a`, `ns:pkg/b`) fail there
//!   with "package has already been registered"; trib names each
//!   dependency by its whole key, so such keys work.
//!
//! Composition parses and validates every component involved, so the result
//! is cached on disk beside the compiled components, keyed by the SHA-256 of
//! everything it depends on (the component's bytes, each key, export and
//! file content, the inheritance flag): a start with unchanged inputs reads
//! it instead of composing again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wac_graph::types::{ItemKind, Package, SubtypeChecker};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};

use crate::engine::cache_file::{self, Entry};
use crate::engine::componentize::{self, WasmKind};
use crate::manifest::{Component, Dependency, DependencyName};

/// Bumped whenever composition changes its output for the same inputs.
const FORMAT: &str = "trib-compose-1";

/// Imports that give access to something outside the instance. Spin's
/// deny-all adapter takes these away from dependencies unless they inherit
/// the component's configuration.
const CAPABILITY_PREFIXES: &[&str] = &[
    "spin:",
    "fermyon:",
    "wasi:http/outgoing-handler",
    "wasi:http/client",
    "wasi:keyvalue/",
    "wasi:config/",
    "wasi:sockets/",
];

/// Why a component could not be composed with its dependencies. Every
/// variant names the dependency (key and file) and, where one is involved,
/// the component's import and the dependency's export.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The dependency's file is missing or unreadable.
    #[error("dependency {key:?}: cannot read {}: {source}", path.display())]
    Read {
        /// The dependency key.
        key: String,
        /// The dependency's file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The dependency's file is not a usable component.
    #[error("dependency {key:?}: {} {reason}", path.display())]
    Invalid {
        /// The dependency key.
        key: String,
        /// The dependency's file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The component itself could not be read as a composition package.
    #[error("cannot read the component's imports and exports for composition: {0}")]
    Main(String),
    /// A key matches none of the component's imports.
    #[error(
        "dependency {key:?} ({}) matches no import of the component (its imports: {}); name one of them as the key",
        path.display(),
        list(imports)
    )]
    Unmatched {
        /// The dependency key.
        key: String,
        /// The dependency's file.
        path: PathBuf,
        /// What the component does import.
        imports: Vec<String>,
    },
    /// Two keys match the same import.
    #[error(
        "import {import:?} is matched by more than one dependency: {} (keep one)",
        keys.join(", ")
    )]
    Conflict {
        /// The component's import.
        import: String,
        /// The keys that match it.
        keys: Vec<String>,
    },
    /// The dependency has no export of the name needed.
    #[error(
        "import {import:?} cannot be satisfied by dependency {key:?} ({}): it has no export {export:?} (its exports: {}){}",
        path.display(),
        list(exports),
        export_hint(key, import, export, exports)
    )]
    MissingExport {
        /// The component's import.
        import: String,
        /// The dependency key.
        key: String,
        /// The dependency's file.
        path: PathBuf,
        /// The export looked for (`export`, or the import's name).
        export: String,
        /// What the dependency does export.
        exports: Vec<String>,
    },
    /// The dependency's export does not have the import's type.
    #[error(
        "import {import:?} cannot be satisfied by dependency {key:?} ({}): its export {export:?} is not compatible with the import: {reason}",
        path.display()
    )]
    Incompatible {
        /// The component's import.
        import: String,
        /// The dependency key.
        key: String,
        /// The dependency's file.
        path: PathBuf,
        /// The dependency's export.
        export: String,
        /// The type checker's explanation.
        reason: String,
    },
    /// The dependency needs a host capability it may not have.
    #[error(
        "dependency {key:?} ({}) imports {import:?}, a host capability that dependencies do not get by default (Spin denies it to them, and trib cannot virtualise it yet): set dependencies_inherit_configuration = true on the component to give its dependencies the component's permissions",
        path.display()
    )]
    Capability {
        /// The dependency key.
        key: String,
        /// The dependency's file.
        path: PathBuf,
        /// The capability import.
        import: String,
    },
    /// Building or encoding the composition failed.
    #[error("cannot compose the component with its dependencies: {0}")]
    Graph(String),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// `main` (the component's bytes, already a component) composed with the
/// component's dependencies, or `main` unchanged when it has none. With a
/// `cache_dir`, a composition made before from the same inputs is reused.
pub fn compose(
    component: &Component,
    main: Vec<u8>,
    cache_dir: Option<&Path>,
) -> Result<Vec<u8>, ComposeError> {
    if component.dependencies.is_empty() {
        return Ok(main);
    }
    warn_spin_package_clash(component);
    let mut files = Vec::with_capacity(component.dependencies.len());
    for dep in &component.dependencies {
        let bytes = std::fs::read(&dep.source).map_err(|source| ComposeError::Read {
            key: dep.name.to_string(),
            path: dep.source.clone(),
            source,
        })?;
        files.push(bytes);
    }
    let path = cache_dir.map(|dir| {
        dir.join("composed")
            .join(format!("{}.wasm", cache_key(component, &main, &files)))
    });
    if let Some(bytes) = path.as_deref().and_then(read_entry) {
        tracing::debug!(component = %component.id, "composition read from the cache");
        return Ok(bytes);
    }
    let started = std::time::Instant::now();
    let composed = compose_uncached(component, main, files)?;
    tracing::info!(
        component = %component.id,
        dependencies = component.dependencies.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "composed the component with its dependencies"
    );
    if let Some(path) = path
        && let Err(e) = cache_file::write(&path, &composed)
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the composition cache");
    }
    Ok(composed)
}

/// Spin registers each dependency under its key's package name, so two keys
/// of one package make `spin up` fail ("package ... has already been
/// registered in the graph") although trib composes them; say so, since the
/// manifest is meant to run under Spin too.
fn warn_spin_package_clash(component: &Component) {
    let mut seen: Vec<&str> = Vec::new();
    for dep in &component.dependencies {
        if let DependencyName::Package { package, .. } = &dep.name {
            if seen.contains(&package.as_str()) {
                tracing::warn!(
                    component = %component.id,
                    package = %package,
                    "several dependency keys of one package: trib composes them, but Spin cannot (it registers each dependency under its package name); give each dependency's import its own WIT package to run under Spin too"
                );
                return;
            }
            seen.push(package);
        }
    }
}

/// A dependency registered in the graph.
struct Registered<'a> {
    dep: &'a Dependency,
    world: wac_graph::types::WorldId,
    instance: NodeId,
}

fn compose_uncached(
    component: &Component,
    main: Vec<u8>,
    files: Vec<Vec<u8>>,
) -> Result<Vec<u8>, ComposeError> {
    let graph_err = |e: &dyn std::fmt::Display| ComposeError::Graph(e.to_string());
    let mut graph = CompositionGraph::new();
    let package = Package::from_bytes(&component.id, None, main, graph.types_mut())
        .map_err(|e| ComposeError::Main(format!("{e:#}")))?;
    let main_world = package.ty();
    let main_package = graph.register_package(package).map_err(|e| graph_err(&e))?;
    let main_instance = graph.instantiate(main_package);
    let imports: Vec<String> = graph.types()[main_world].imports.keys().cloned().collect();

    // Which dependency satisfies which import, in import order.
    let mut matches: Vec<Vec<usize>> = vec![Vec::new(); imports.len()];
    let mut registered = Vec::with_capacity(files.len());
    for (index, (dep, bytes)) in component.dependencies.iter().zip(files).enumerate() {
        let key = dep.name.to_string();
        let matched: Vec<usize> = imports
            .iter()
            .enumerate()
            .filter(|(_, import)| matches_import(&dep.name, import))
            .map(|(i, _)| i)
            .collect();
        if matched.is_empty() {
            return Err(ComposeError::Unmatched {
                key,
                path: dep.source.clone(),
                imports,
            });
        }
        let invalid = |reason: String| ComposeError::Invalid {
            key: key.clone(),
            path: dep.source.clone(),
            reason,
        };
        let bytes = match componentize::kind(&bytes) {
            WasmKind::Component => bytes,
            WasmKind::CoreModule => {
                componentize::componentize(&bytes, componentize::Entry::Exports)
                    .map_err(|e| invalid(format!("is a core module that {e}")))?
            }
            WasmKind::Unknown => return Err(invalid("is not a WebAssembly binary".to_owned())),
        };
        // Named by the whole key, which is unique in the manifest (Spin uses
        // the key's package name, which is not).
        let package =
            Package::from_bytes(&format!("dependency {key}"), None, bytes, graph.types_mut())
                .map_err(|e| invalid(format!("is not a valid component: {e:#}")))?;
        let world = package.ty();
        if !component.dependencies_inherit_configuration
            && let Some(import) = graph.types()[world]
                .imports
                .keys()
                .find(|name| CAPABILITY_PREFIXES.iter().any(|p| name.starts_with(p)))
        {
            return Err(ComposeError::Capability {
                key,
                path: dep.source.clone(),
                import: import.clone(),
            });
        }
        let package = graph.register_package(package).map_err(|e| graph_err(&e))?;
        let instance = graph.instantiate(package);
        for i in matched {
            matches[i].push(index);
        }
        registered.push(Registered {
            dep,
            world,
            instance,
        });
    }

    if let Some((i, keys)) = matches.iter().enumerate().find(|(_, m)| m.len() > 1) {
        return Err(ComposeError::Conflict {
            import: imports[i].clone(),
            keys: keys
                .iter()
                .map(|&d| registered[d].dep.name.to_string())
                .collect(),
        });
    }

    let mut cache = HashSet::new();
    let mut checker = SubtypeChecker::new(&mut cache);
    for (import, matched) in imports.iter().zip(&matches) {
        let Some(&d) = matched.first() else {
            continue;
        };
        let dep = &registered[d];
        let key = dep.dep.name.to_string();
        let export = dep.dep.export.clone().unwrap_or_else(|| import.clone());
        let exports = &graph.types()[dep.world].exports;
        let Some(&export_ty) = exports.get(&export) else {
            let exports: Vec<String> = exports.keys().cloned().collect();
            return Err(ComposeError::MissingExport {
                import: import.clone(),
                key,
                path: dep.dep.source.clone(),
                export,
                exports,
            });
        };
        let import_ty = graph.types()[main_world].imports[import.as_str()];
        if let Err(e) = checker.is_subtype(export_ty, graph.types(), import_ty, graph.types()) {
            return Err(ComposeError::Incompatible {
                import: import.clone(),
                key,
                path: dep.dep.source.clone(),
                export,
                reason: format!("{e:#}"),
            });
        }
        let alias = graph
            .alias_instance_export(dep.instance, &export)
            .map_err(|e| graph_err(&e))?;
        graph
            .set_instantiation_argument(main_instance, import, alias)
            .map_err(|e| ComposeError::Incompatible {
                import: import.clone(),
                key: key.clone(),
                path: dep.dep.source.clone(),
                export: export.clone(),
                reason: format!("{:#}", anyhow::Error::from(e)),
            })?;
    }

    let exports: Vec<(String, ItemKind)> = graph.types()[main_world]
        .exports
        .iter()
        .map(|(name, kind)| (name.clone(), *kind))
        .collect();
    for (name, _) in exports {
        let alias = graph
            .alias_instance_export(main_instance, &name)
            .map_err(|e| graph_err(&e))?;
        graph.export(alias, &name).map_err(|e| graph_err(&e))?;
    }
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| ComposeError::Graph(format!("{:#}", anyhow::Error::from(e))))
}

/// A suggestion for a missing export: the export that differs only in
/// version, or the `export` field when the dependency has one export, none
/// was named and the key allows one.
fn export_hint(key: &str, import: &str, wanted: &str, exports: &[String]) -> String {
    let unversioned = |name: &str| name.split_once('@').map_or(name, |(n, _)| n).to_owned();
    if let Some(other) = exports
        .iter()
        .find(|e| unversioned(e) == unversioned(wanted))
    {
        return format!("; it has {other:?}, a different version");
    }
    // `export` needs a key naming one interface, or a plain key.
    let may_export = key.contains('/') || !key.contains(':');
    if wanted == import && exports.len() == 1 && may_export {
        return format!(
            "; to use its export under another name, add export = {:?}",
            exports[0]
        );
    }
    String::new()
}

/// Whether dependency `name` satisfies `import` (Spin's `matches_import`).
/// An import name that is neither a plain name nor `ns:pkg/iface[@ver]`
/// matches nothing.
pub fn matches_import(name: &DependencyName, import: &str) -> bool {
    match name {
        DependencyName::Plain(plain) => !import.contains([':', '/']) && plain == import,
        DependencyName::Package {
            package,
            interface,
            version,
        } => {
            let Some((import_package, rest)) = import.split_once('/') else {
                return false;
            };
            let (import_interface, import_version) = match rest.split_once('@') {
                Some((i, v)) => match semver::Version::parse(v) {
                    Ok(v) => (i, Some(v)),
                    Err(_) => return false,
                },
                None => (rest, None),
            };
            import_package == package
                && interface.as_ref().is_none_or(|i| i == import_interface)
                && version
                    .as_ref()
                    .is_none_or(|v| import_version.as_ref() == Some(v))
        }
    }
}

/// Hex SHA-256 over everything the composition depends on.
fn cache_key(component: &Component, main: &[u8], files: &[Vec<u8>]) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(FORMAT.as_bytes());
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(&[u8::from(component.dependencies_inherit_configuration)]);
    field(main);
    for (dep, bytes) in component.dependencies.iter().zip(files) {
        field(dep.name.to_string().as_bytes());
        field(dep.export.as_deref().unwrap_or("\0").as_bytes());
        field(bytes);
    }
    cache_file::hex(&hasher.finalize())
}

/// A cached composition (a [`cache_file`] holding a component).
fn read_entry(path: &Path) -> Option<Vec<u8>> {
    match cache_file::read(path) {
        Entry::Intact(payload) if componentize::kind(&payload) == WasmKind::Component => {
            Some(payload.into_vec())
        }
        Entry::Missing => None,
        Entry::Intact(_) | Entry::Corrupt => {
            tracing::warn!(path = %path.display(), "composition cache entry is corrupt; composing again");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spin's `test_matches_import`, case for case.
    #[test]
    fn matches_imports_as_spin_does() {
        for (key, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo:bar/baz", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar", vec!["foo:bar/baz@0.1.0", "foo:bar/baz"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz@0.1.0"]),
            ("foo-bar", vec!["foo-bar"]),
        ] {
            for import in imports {
                assert!(
                    matches_import(&key.parse().expect(key), import),
                    "{key} ~ {import}"
                );
            }
        }
        for (key, imports) in [
            ("foo:bar/baz@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/bub", "foo:bar/bub@0.1.0"]),
            ("foo:bar", vec!["foo:bub/bib"]),
            ("foo:bar@0.1.0", vec!["foo:bar/baz"]),
            ("foo:bar/baz", vec!["foo:bar/baz-bub", "foo-bar"]),
            ("foo-bar", vec!["foo:bar/baz"]),
        ] {
            for import in imports {
                assert!(
                    !matches_import(&key.parse().expect(key), import),
                    "{key} !~ {import}"
                );
            }
        }
    }
}
