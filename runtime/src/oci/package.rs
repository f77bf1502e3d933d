//! From a manifest to the package `spin registry push` makes: the locked
//! app (components composed with their dependencies first, files as
//! content references) and the blobs its layers carry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::manifest::App;
use crate::oci::locked::{
    ContentPath, ContentRef, LockedApp, LockedComponent, LockedSource, LockedTrigger,
    LockedVariable, sha256_digest,
};
use crate::oci::{ARCHIVE_MEDIA_TYPE, DATA_MEDIA_TYPE, WASM_MEDIA_TYPE};

/// Files this small travel inside the lock, not as layers (Spin's limit;
/// some registries reject tiny blobs).
pub const INLINE_MAX: usize = 128;

/// Layers a registry is sure to accept in one image, the lock's included
/// (the lowest known limit, Amazon ECR's, as Spin uses).
pub const MAX_LAYERS: usize = 500;

/// Why an app cannot be packaged.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", .manifest.display())]
pub struct PackageError {
    manifest: PathBuf,
    message: String,
}

/// One blob of a package and its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The layer's media type.
    pub media_type: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A locked app and the layers its digests point to (deduplicated, lock
/// not included).
#[derive(Debug, Clone)]
pub struct Package {
    /// What the package runs.
    pub lock: LockedApp,
    /// Wasm and data layers, each once.
    pub layers: Vec<Blob>,
}

/// Packages `app` as Spin does: each component's Wasm (composed with its
/// dependencies, `cache_dir` holding compositions) one layer, each file
/// over [`INLINE_MAX`] bytes one layer.
pub fn assemble(app: &App, cache_dir: Option<&Path>) -> Result<Package, PackageError> {
    let err = |message: String| PackageError {
        manifest: app.manifest_path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&app.manifest_path)
        .map_err(|e| err(format!("cannot read it: {e}")))?;
    let raw: toml::Table = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let mut layers = Layers::default();
    let mut components = Vec::new();
    for component in app.components.values() {
        let table = raw
            .get("component")
            .and_then(|c| c.get(&component.id))
            .and_then(toml::Value::as_table);
        let source = std::fs::read(&component.source).map_err(|e| {
            err(format!(
                "component {:?}: cannot read {}: {e}",
                component.id,
                component.source.display()
            ))
        })?;
        let wasm = crate::engine::compose::compose(component, source, cache_dir)
            .map_err(|e| err(format!("component {:?}: {e}", component.id)))?;
        let source = LockedSource {
            content_type: "application/wasm".into(),
            content: layers.add(WASM_MEDIA_TYPE, wasm, false),
        };
        let mut metadata = BTreeMap::new();
        if let Some(d) = table.and_then(|t| t.get("description")) {
            metadata.insert("description".into(), toml_to_json(d));
        }
        metadata.insert(
            "allowed_outbound_hosts".into(),
            strings(&component.allowed_outbound_hosts),
        );
        metadata.insert(
            "key_value_stores".into(),
            strings(&component.key_value_stores),
        );
        metadata.insert("databases".into(), strings(&component.sqlite_databases));
        if let Some(models) = table.and_then(|t| t.get("ai_models")) {
            metadata.insert("ai_models".into(), toml_to_json(models));
        }
        let mut files = Vec::new();
        let mounts = crate::files::mounts(&app.root, component).map_err(|e| err(e.to_string()))?;
        for mount in mounts {
            let guest = mount.guest.trim_matches('/');
            for (relative, path) in walk_files(&mount.host).map_err(|e| {
                err(format!(
                    "component {:?}: cannot read {}: {e}",
                    component.id,
                    mount.host.display()
                ))
            })? {
                let data = std::fs::read(&path).map_err(|e| {
                    err(format!(
                        "component {:?}: cannot read {}: {e}",
                        component.id,
                        path.display()
                    ))
                })?;
                let path = if guest.is_empty() {
                    relative
                } else {
                    format!("{guest}/{relative}")
                };
                files.push(ContentPath {
                    content: layers.add(DATA_MEDIA_TYPE, data, true),
                    path,
                });
            }
        }
        components.push(LockedComponent {
            id: component.id.clone(),
            metadata,
            source,
            env: component.environment.clone().into_iter().collect(),
            files,
            config: component.variables.clone().into_iter().collect(),
            dependencies: BTreeMap::new(),
            host_requirements: BTreeMap::new(),
        });
    }
    // Past the layer limit (or when asked, as Spin's variable asks), each
    // component's files travel as one tar.gz; the lock still names each
    // file by digest.
    if layers.blobs.len() > MAX_LAYERS - 1 || std::env::var_os(ARCHIVE_LAYERS_ENV).is_some() {
        layers.archive(&components, app).map_err(err)?;
    }
    let lock = LockedApp {
        spin_lock_version: 0,
        must_understand: Vec::new(),
        metadata: app_metadata(&raw),
        host_requirements: BTreeMap::new(),
        variables: app
            .variables
            .iter()
            .map(|(name, v)| {
                let description = raw
                    .get("variables")
                    .and_then(|vars| vars.get(name))
                    .and_then(|var| var.get("description"))
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned);
                let variable = LockedVariable {
                    description,
                    default: v.default.clone(),
                    secret: v.secret,
                };
                (name.clone(), variable)
            })
            .collect(),
        triggers: triggers(&raw).map_err(err)?,
        components,
    };
    Ok(Package {
        lock,
        layers: layers.blobs,
    })
}

/// Set (to anything) to push files as archive layers whatever their
/// number: Spin's switch, honoured the same way.
pub const ARCHIVE_LAYERS_ENV: &str = "SPIN_OCI_ARCHIVE_LAYERS";

/// Blobs by digest, in first-seen order, and every file's bytes by digest
/// (for archives).
#[derive(Default)]
struct Layers {
    blobs: Vec<Blob>,
    seen: std::collections::HashSet<String>,
    files: std::collections::HashMap<String, Vec<u8>>,
}

impl Layers {
    /// Replaces the data layers with one archive layer per component
    /// holding its files (by their lock paths).
    fn archive(&mut self, components: &[LockedComponent], app: &App) -> Result<(), String> {
        self.blobs.retain(|b| b.media_type != DATA_MEDIA_TYPE);
        for component in components.iter().filter(|c| !c.files.is_empty()) {
            let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            ));
            for file in &component.files {
                let Some(bytes) = file.content.digest.as_ref().and_then(|d| self.files.get(d))
                else {
                    continue;
                };
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                tar.append_data(&mut header, &file.path, bytes.as_slice())
                    .map_err(|e| {
                        format!(
                            "component {:?}: cannot archive {}: {e}",
                            component.id, file.path
                        )
                    })?;
            }
            let data = tar.into_inner().and_then(|gz| gz.finish()).map_err(|e| {
                format!(
                    "component {:?}: cannot archive its files: {e}",
                    component.id
                )
            })?;
            self.blobs.push(Blob {
                media_type: ARCHIVE_MEDIA_TYPE.to_owned(),
                data,
            });
        }
        if self.blobs.len() > MAX_LAYERS - 1 {
            return Err(format!(
                "{}: the package needs {} layers even with archives, more than the {MAX_LAYERS} registries accept",
                app.name,
                self.blobs.len() + 1
            ));
        }
        Ok(())
    }

    /// The content reference for `data`, adding it as a layer unless it is
    /// small enough to inline (when `inlinable`).
    fn add(&mut self, media_type: &str, data: Vec<u8>, inlinable: bool) -> ContentRef {
        let digest = sha256_digest(&data);
        if inlinable {
            self.files
                .entry(digest.clone())
                .or_insert_with(|| data.clone());
        }
        if inlinable && data.len() <= INLINE_MAX {
            return ContentRef {
                source: None,
                inline: Some(data),
                digest: Some(digest),
            };
        }
        if self.seen.insert(digest.clone()) {
            self.blobs.push(Blob {
                media_type: media_type.to_owned(),
                data,
            });
        }
        ContentRef {
            source: None,
            inline: None,
            digest: Some(digest),
        }
    }
}

/// `[application]` as the lock's metadata: name, version, description,
/// authors, the triggers' global settings, and (for a one-type app) the
/// older single `trigger` entry Spin still writes.
fn app_metadata(raw: &toml::Table) -> BTreeMap<String, Value> {
    let mut metadata = BTreeMap::new();
    let Some(application) = raw.get("application").and_then(toml::Value::as_table) else {
        return metadata;
    };
    for key in ["name", "version", "description", "authors"] {
        if let Some(value) = application.get(key) {
            metadata.insert(key.to_owned(), toml_to_json(value));
        }
    }
    let globals = application
        .get("trigger")
        .map(toml_to_json)
        .unwrap_or_else(|| Value::Object(Default::default()));
    let types: Vec<&String> = raw
        .get("trigger")
        .and_then(toml::Value::as_table)
        .map(|t| t.keys().collect())
        .unwrap_or_default();
    if let [only] = types.as_slice() {
        let mut single = globals
            .get(only.as_str())
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        if let Value::Object(map) = &mut single {
            map.insert("type".into(), Value::String((*only).clone()));
        }
        metadata.insert("trigger".into(), single);
    }
    metadata.insert("triggers".into(), globals);
    metadata
}

/// Every `[[trigger.TYPE]]` table: its `id` (or one made from the type and
/// component, as Spin makes them) and the rest as its settings.
fn triggers(raw: &toml::Table) -> Result<Vec<LockedTrigger>, String> {
    let mut out = Vec::new();
    let mut ids = std::collections::HashSet::new();
    let Some(types) = raw.get("trigger").and_then(toml::Value::as_table) else {
        return Ok(out);
    };
    for (trigger_type, list) in types {
        let Some(list) = list.as_array() else {
            return Err(format!("trigger.{trigger_type} is not an array of tables"));
        };
        for (n, trigger) in list.iter().enumerate() {
            let Some(table) = trigger.as_table() else {
                return Err(format!("trigger.{trigger_type}[{n}] is not a table"));
            };
            let mut config = table.clone();
            let explicit = config
                .remove("id")
                .and_then(|v| v.as_str().map(str::to_owned));
            let component = match config.get("component") {
                None => None,
                Some(toml::Value::String(id)) => Some(id.clone()),
                Some(_) => {
                    return Err(format!(
                        "trigger.{trigger_type}[{n}].component is an inline table: give the component an ID in [component.ID] to push it"
                    ));
                }
            };
            let base = explicit.unwrap_or_else(|| match &component {
                Some(c) => format!("{trigger_type}-{c}"),
                None => format!("{trigger_type}-{n}"),
            });
            let mut id = base.clone();
            let mut k = 1;
            while !ids.insert(id.clone()) {
                k += 1;
                id = format!("{base}-{k}");
            }
            out.push(LockedTrigger {
                id,
                trigger_type: trigger_type.clone(),
                trigger_config: toml_to_json(&toml::Value::Table(config)),
            });
        }
    }
    Ok(out)
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

/// TOML as JSON (datetimes as their text).
fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Every regular file under `dir` with its `/`-separated path relative to
/// it, sorted (symbolic links are not followed: the staging area and
/// mounts were resolved inside the app already).
fn walk_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut pending = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, at)) = pending.pop() {
        for entry in std::fs::read_dir(&at)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push((relative, entry.path()));
            } else if kind.is_file() {
                out.push((relative, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}
