//! Turns manifest text into a validated [`App`], or the first problem found.

use std::path::Path;

use indexmap::IndexMap;
use toml::Spanned;

use super::raw::{
    RawBuild, RawCommands, RawComponent, RawFileMount, RawManifest, RawRoute, RawSource,
    RawTriggerComponent,
};
use super::{
    App, BuildConfig, Component, Dependency, DependencyName, FileMount, HttpRoute, HttpTrigger,
    ManifestError, Variable,
};
use crate::config_file::Locator;

/// Where Spin reserves routes for itself.
const RESERVED_ROUTE_PREFIX: &str = "/.well-known/spin/";

pub(super) fn validate(path: &Path, text: &str) -> Result<App, ManifestError> {
    let loc = Locator::new(path, text);
    check_version(&loc, text)?;
    let raw: RawManifest = toml::from_str(text).map_err(|e| serde_error(&loc, &e))?;
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let root = std::path::absolute(&root).unwrap_or(root);

    if raw.application.name.get_ref().trim().is_empty() {
        return Err(loc.error(
            raw.application.name.span().start,
            "application.name",
            "must not be empty (give the application a name, e.g. name = \"my-app\")",
        ));
    }

    let http_base = match &raw.application.trigger.http {
        Some(http) => match &http.base {
            Some(base) => {
                let b = base.get_ref();
                if !b.starts_with('/') {
                    return Err(loc.error(
                        base.span().start,
                        "application.trigger.http.base",
                        format!("must start with '/', found {b:?} (e.g. base = \"/\")"),
                    ));
                }
                if b.split('/')
                    .any(|seg| seg.starts_with(':') || seg.contains('*') || seg == "...")
                {
                    return Err(loc.error(
                        base.span().start,
                        "application.trigger.http.base",
                        format!(
                            "{b:?} is not a plain path: the base is a prefix for every route, without `:name` parameters or wildcards (e.g. base = \"/api\")"
                        ),
                    ));
                }
                b.clone()
            }
            None => "/".to_owned(),
        },
        None => "/".to_owned(),
    };

    let mut variables = IndexMap::new();
    for (name, var) in &raw.variables {
        let field = format!("variables.{}", name.get_ref());
        check_variable_name(&loc, name, &field)?;
        if var.required && var.default.is_some() {
            return Err(loc.error(
                name.span().start,
                field,
                "cannot be both `required = true` and have a `default` (remove one of them)",
            ));
        }
        variables.insert(
            name.get_ref().clone(),
            Variable {
                default: var.default.clone(),
                required: var.required,
                secret: var.secret,
            },
        );
    }

    let mut components = IndexMap::new();
    for (id, raw_component) in &raw.component {
        check_component_id(&loc, id)?;
        let component = component(&loc, &root, id.get_ref(), raw_component, &variables)?;
        components.insert(id.get_ref().clone(), component);
    }

    let mut http_triggers = Vec::new();
    for (index, trigger) in raw.trigger.http.iter().enumerate() {
        let trigger_span = trigger.span().start;
        let trigger = trigger.get_ref();
        let field = format!("trigger.http[{index}]");
        let route = match trigger.route.get_ref() {
            RawRoute::Path(route) => {
                check_route(&loc, trigger.route.span().start, &field, route)?;
                HttpRoute::Pattern(route.clone())
            }
            RawRoute::Private(p) if p.private => HttpRoute::Private,
            RawRoute::Private(_) => {
                return Err(loc.error(
                    trigger.route.span().start,
                    format!("{field}.route"),
                    "`{ private = false }` is not a route: give a path such as \"/api/...\" or `{ private = true }`",
                ));
            }
        };
        if let Some(executor) = &trigger.executor {
            let kind = executor.get("type").and_then(toml::Value::as_str);
            if kind != Some("spin") {
                return Err(loc.error(
                    trigger_span,
                    format!("{field}.executor"),
                    format!(
                        "executor {} is not supported: only Spin HTTP components (remove `executor` or use {{ type = \"spin\" }})",
                        kind.map_or("without a type".to_owned(), |k| format!("{k:?}"))
                    ),
                ));
            }
        }
        if trigger.static_response.is_some() {
            return Err(loc.error(
                trigger_span,
                format!("{field}.static_response"),
                "static responses are not supported yet (serve the content from a component)",
            ));
        }
        let component_id = match trigger.component.get_ref() {
            RawTriggerComponent::Reference(id) => {
                if !components.contains_key(id) {
                    let known: Vec<&str> = components.keys().map(String::as_str).collect();
                    return Err(loc.error(
                        trigger.component.span().start,
                        format!("{field}.component"),
                        format!(
                            "no component named {id:?} (define [component.{id}] or use one of: {})",
                            if known.is_empty() {
                                "none defined".to_owned()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
                id.clone()
            }
            RawTriggerComponent::Inline(inline) => {
                // The id names the component, and so directories under
                // `.spin/`: it must be a kebab-case name like any other.
                let id = match &trigger.id {
                    Some(id) => {
                        check_trigger_id(&loc, &field, id)?;
                        if components.contains_key(id.get_ref()) {
                            return Err(loc.error(
                                id.span().start,
                                format!("{field}.id"),
                                format!(
                                    "{:?} is already a component ID: give the inline component another id",
                                    id.get_ref()
                                ),
                            ));
                        }
                        id.get_ref().clone()
                    }
                    None => format!("inline-component-{}", index + 1),
                };
                let component = component(&loc, &root, &id, inline, &variables)?;
                components.insert(id.clone(), component);
                id
            }
        };
        http_triggers.push(HttpTrigger {
            route,
            component: component_id,
        });
    }

    Ok(App {
        name: raw.application.name.into_inner(),
        manifest_path: path.to_owned(),
        root,
        http_base,
        variables,
        components,
        http_triggers,
    })
}

/// Rejects manifests that are not version 2 before serde sees them, so that a
/// Spin 1 manifest gets a conversion hint rather than a list of unknown fields.
fn check_version(loc: &Locator<'_>, text: &str) -> Result<(), ManifestError> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let (field, message) = describe(loc, at, e.message().trim());
        loc.error(at, field, format!("not valid TOML: {message}"))
    })?;
    let version = doc.get("spin_manifest_version");
    let v1 = match version {
        None => doc.contains_key("spin_version"),
        Some(toml::Value::String(s)) => s == "1",
        Some(toml::Value::Integer(1)) => true,
        Some(_) => false,
    };
    if v1 {
        return Err(loc.error(
            offset_of_key(text, "spin_manifest_version")
                .or_else(|| offset_of_key(text, "spin_version"))
                .unwrap_or(0),
            "spin_manifest_version",
            "Spin manifest version 1 is not supported: upgrade it to version 2 with `spin doctor` (Spin 2 or later), which rewrites the file for you",
        ));
    }
    match version {
        Some(toml::Value::Integer(2)) => Ok(()),
        None => Err(loc.error(
            0,
            "spin_manifest_version",
            "missing: add `spin_manifest_version = 2` at the top of the manifest",
        )),
        Some(other) => Err(loc.error(
            offset_of_key(text, "spin_manifest_version").unwrap_or(0),
            "spin_manifest_version",
            format!("expected the integer 2, found {other}"),
        )),
    }
}

fn offset_of_key(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with(key) {
            return Some(offset + (line.len() - line.trim_start().len()));
        }
        offset += line.len();
    }
    None
}

/// Maps a serde error from the `toml` crate to a located, one-line error
/// with the dotted field path and a plain-words expectation.
pub(crate) fn serde_error(loc: &Locator<'_>, e: &toml::de::Error) -> ManifestError {
    let at = e.span().map_or(0, |s| s.start);
    let message = e.message().trim().replace('\n', " ");
    let (field, message) = describe(loc, at, &message);
    loc.error(at, field, message)
}

/// The dotted field path for an error at byte `at`, and the message in a
/// user's words.
fn describe(loc: &Locator<'_>, at: usize, message: &str) -> (String, String) {
    let (table, on_header) = loc.table_at(at).unwrap_or_default();
    let join = |key: &str| {
        if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        }
    };
    let named = backticked(message);
    if message.starts_with("unknown field") {
        let key = named.unwrap_or_default();
        if on_header {
            // `[[trigger.redis]]`: the header itself names the unknown field.
            if let Some(kind) = table.strip_prefix("trigger.") {
                return (
                    table.clone(),
                    format!(
                        "trigger type `{kind}` is not supported: trib serves [[trigger.http]] only"
                    ),
                );
            }
            // The unknown key is a segment of the header (`[typo.name]`).
            let segments: Vec<&str> = table.split('.').collect();
            let field = match segments.iter().position(|s| s.trim() == key) {
                Some(i) => segments[..=i].join("."),
                None => table.clone(),
            };
            return (field, friendly(message));
        }
        return (join(&key), friendly(message));
    }
    if message.starts_with("missing field") {
        return (join(&named.unwrap_or_default()), friendly(message));
    }
    let field = match key_at(loc, at) {
        Some(key) if !on_header => join(&key),
        _ if table.is_empty() => "(top level)".to_owned(),
        _ => table.clone(),
    };
    (field, friendly(message))
}

/// The key being assigned on the line holding `offset`, if any.
fn key_at(loc: &Locator<'_>, offset: usize) -> Option<String> {
    let (line, _) = loc.line_col(offset);
    let text = loc.text_line(line)?;
    let (key, _) = text.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
}

fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// Replaces serde's names for our internal types with what a user writes.
fn friendly(message: &str) -> String {
    const EXPECTED: [(&str, &str); 6] = [
        (
            "RawRoute",
            "expected a route string such as \"/api/...\" or `{ private = true }`",
        ),
        (
            "RawTriggerComponent",
            "expected a component name or an inline component table with at least `source`",
        ),
        (
            "RawSource",
            "expected a path to a .wasm file, e.g. source = \"target/wasm32-wasip2/release/app.wasm\"",
        ),
        (
            "RawFileMount",
            "expected a glob string or `{ source = \"dir\", destination = \"/dir\" }`",
        ),
        (
            "RawCommands",
            "expected a command string or an array of command strings",
        ),
        ("RawPrivateRoute", "expected `{ private = true }`"),
    ];
    for (name, expected) in EXPECTED {
        if message.contains(&format!("enum {name}")) {
            return expected.to_owned();
        }
    }
    message.to_owned()
}

fn check_component_id(loc: &Locator<'_>, id: &Spanned<String>) -> Result<(), ManifestError> {
    let s = id.get_ref();
    if !is_kebab(s) {
        return Err(loc.error(
            id.span().start,
            format!("component.{s}"),
            "component IDs must be kebab-case: lowercase letters, digits and single hyphens, starting with a letter (e.g. [component.my-api])",
        ));
    }
    Ok(())
}

fn check_trigger_id(
    loc: &Locator<'_>,
    field: &str,
    id: &Spanned<String>,
) -> Result<(), ManifestError> {
    if !is_kebab(id.get_ref()) {
        return Err(loc.error(
            id.span().start,
            format!("{field}.id"),
            format!(
                "{:?} is not a valid id: trigger IDs must be kebab-case: lowercase letters, digits and single hyphens, starting with a letter (e.g. id = \"my-route\")",
                id.get_ref()
            ),
        ));
    }
    Ok(())
}

/// Spin's rule for IDs, and what makes an ID safe to use as a file name.
pub(crate) fn is_kebab(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && !s.contains("--")
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn check_variable_name(
    loc: &Locator<'_>,
    name: &Spanned<String>,
    field: &str,
) -> Result<(), ManifestError> {
    if !is_variable_name(name.get_ref()) {
        return Err(loc.error(
            name.span().start,
            field,
            "variable names must be lowercase letters, digits and underscores, starting with a letter (e.g. api_key)",
        ));
    }
    Ok(())
}

fn is_variable_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_route(
    loc: &Locator<'_>,
    at: usize,
    field: &str,
    route: &str,
) -> Result<(), ManifestError> {
    let field = format!("{field}.route");
    let absolute = if route.starts_with('/') {
        route.to_owned()
    } else {
        format!("/{route}")
    };
    if absolute.starts_with(RESERVED_ROUTE_PREFIX) {
        return Err(loc.error(
            at,
            field,
            format!("routes under {RESERVED_ROUTE_PREFIX} are reserved for the host (choose another path)"),
        ));
    }
    if let Err(e) = crate::router::check_pattern(&absolute) {
        return Err(loc.error(at, field, format!("invalid route {route:?}: {e}")));
    }
    Ok(())
}

fn component(
    loc: &Locator<'_>,
    root: &Path,
    id: &str,
    raw: &RawComponent,
    variables: &IndexMap<String, Variable>,
) -> Result<Component, ManifestError> {
    let field = |f: &str| format!("component.{id}.{f}");
    let source = match raw.source.get_ref() {
        RawSource::Local(path) if !path.trim().is_empty() => root.join(path),
        RawSource::Local(_) => {
            return Err(loc.error(
                raw.source.span().start,
                field("source"),
                "must not be empty (give the path of the component's .wasm file)",
            ));
        }
        RawSource::Remote(_) => {
            return Err(loc.error(
                raw.source.span().start,
                field("source"),
                "remote sources (url or registry) are not supported yet: download the .wasm file and give its local path",
            ));
        }
    };
    if let Some(hosts) = &raw.allowed_http_hosts {
        return Err(loc.error(
            hosts.span().start,
            field("allowed_http_hosts"),
            "is Spin 1 syntax: use allowed_outbound_hosts = [\"https://example.com\"] instead",
        ));
    }
    let dependencies = dependencies(loc, root, id, raw)?;
    let mut files = Vec::new();
    for mount in &raw.files {
        files.push(match mount.get_ref() {
            RawFileMount::Pattern(p) => FileMount::Pattern(p.clone()),
            RawFileMount::Placement(p) => {
                if !p.destination.starts_with('/') {
                    return Err(loc.error(
                        mount.span().start,
                        field("files"),
                        format!(
                            "destination {:?} must be an absolute guest path (e.g. \"/assets\")",
                            p.destination
                        ),
                    ));
                }
                FileMount::Placement {
                    source: p.source.clone(),
                    destination: p.destination.clone(),
                }
            }
        });
    }
    let labels = |list: &[Spanned<String>], name: &str| -> Result<Vec<String>, ManifestError> {
        list.iter()
            .map(|label| {
                if is_label(label.get_ref()) {
                    Ok(label.get_ref().clone())
                } else {
                    Err(loc.error(
                        label.span().start,
                        field(name),
                        format!(
                            "{:?} is not a valid label: use letters, digits, '-' and '_' (e.g. \"default\")",
                            label.get_ref()
                        ),
                    ))
                }
            })
            .collect()
    };
    let key_value_stores = labels(&raw.key_value_stores, "key_value_stores")?;
    let sqlite_databases = labels(&raw.sqlite_databases, "sqlite_databases")?;
    let mut allowed_outbound_hosts = Vec::new();
    for host in &raw.allowed_outbound_hosts {
        check_templates(
            loc,
            host.span().start,
            &field("allowed_outbound_hosts"),
            host.get_ref(),
            variables,
        )?;
        allowed_outbound_hosts.push(host.get_ref().clone());
    }
    let mut component_variables = IndexMap::new();
    for (name, template) in &raw.variables {
        let f = format!("component.{id}.variables.{}", name.get_ref());
        check_variable_name(loc, name, &f)?;
        check_templates(loc, name.span().start, &f, template, variables)?;
        component_variables.insert(name.get_ref().clone(), template.clone());
    }
    Ok(Component {
        id: id.to_owned(),
        source,
        files,
        exclude_files: raw.exclude_files.clone(),
        environment: raw.environment.clone(),
        allowed_outbound_hosts,
        key_value_stores,
        sqlite_databases,
        variables: component_variables,
        build: raw.build.as_ref().map(|b| build(root, b)),
        dependencies,
        dependencies_inherit_configuration: raw.dependencies_inherit_configuration,
    })
}

/// `[component.ID.dependencies]`, checked as Spin checks it
/// (`ComponentDependencies::validate`): keys must be plain kebab names or
/// `ns:pkg[/iface][@version]`; only local `{ path, export }` values are
/// supported; `export` needs a key that names one interface (or a plain
/// key); and two keys of one package must differ in interface or in
/// (semver-compatible) version.
fn dependencies(
    loc: &Locator<'_>,
    root: &Path,
    id: &str,
    raw: &RawComponent,
) -> Result<Vec<Dependency>, ManifestError> {
    let mut out: Vec<Dependency> = Vec::new();
    for (key, value) in &raw.dependencies {
        let field = format!("component.{id}.dependencies.{:?}", key.get_ref());
        let at = key.span().start;
        let name = dependency_name(key.get_ref()).map_err(|m| loc.error(at, &field, m))?;
        let value_at = value.span().start;
        let table = match value.get_ref() {
            toml::Value::String(version) => {
                return Err(loc.error(
                    value_at,
                    field,
                    format!(
                        "registry dependencies are not supported yet ({version:?} asks a registry for a version): give path = \"...\" to the dependency's .wasm file instead, e.g. {{ path = \"deps/{}.wasm\" }}",
                        file_stem_hint(&name)
                    ),
                ));
            }
            toml::Value::Table(table) => table,
            other => {
                return Err(loc.error(
                    value_at,
                    field,
                    format!(
                        "expected {{ path = \"dep.wasm\" }} (optionally with export = \"ns:pkg/iface@version\"), found a {}",
                        other.type_str()
                    ),
                ));
            }
        };
        if table.contains_key("version")
            || table.contains_key("registry")
            || table.contains_key("package")
        {
            return Err(loc.error(
                value_at,
                field,
                format!(
                    "registry dependencies are not supported yet: give path = \"...\" to the dependency's .wasm file instead, e.g. {{ path = \"deps/{}.wasm\" }}",
                    file_stem_hint(&name)
                ),
            ));
        }
        if table.contains_key("url") || table.contains_key("digest") {
            return Err(loc.error(
                value_at,
                field,
                "dependencies from a URL are not supported yet: download the .wasm file, check its digest, and give its local path with path = \"...\"",
            ));
        }
        if let Some(unknown) = table.keys().find(|k| *k != "path" && *k != "export") {
            return Err(loc.error(
                value_at,
                field,
                format!("unknown field `{unknown}`, expected `path` or `export`"),
            ));
        }
        let path = match table.get("path") {
            Some(toml::Value::String(p)) if !p.trim().is_empty() => root.join(p),
            Some(toml::Value::String(_)) => {
                return Err(loc.error(
                    value_at,
                    field,
                    "`path` must not be empty (give the path of the dependency's .wasm file)",
                ));
            }
            Some(other) => {
                return Err(loc.error(
                    value_at,
                    field,
                    format!(
                        "`path` must be a string (the dependency's .wasm file), found a {}",
                        other.type_str()
                    ),
                ));
            }
            None => {
                return Err(loc.error(
                    value_at,
                    field,
                    "missing `path`: give the dependency's .wasm file, e.g. { path = \"deps/dep.wasm\" }",
                ));
            }
        };
        let export = match table.get("export") {
            None => None,
            Some(toml::Value::String(e)) if !e.trim().is_empty() => Some(e.clone()),
            Some(_) => {
                return Err(loc.error(
                    value_at,
                    field,
                    "`export` must be the non-empty name of one of the dependency's exports, e.g. \"ns:pkg/iface@0.1.0\"",
                ));
            }
        };
        if export.is_some()
            && let DependencyName::Package {
                interface: None, ..
            } = &name
        {
            return Err(loc.error(
                value_at,
                field,
                "`export` is not allowed on a whole-package dependency (as in Spin): name one interface in the key (e.g. \"ns:pkg/iface@0.1.0\") or remove `export`",
            ));
        }
        for earlier in &out {
            if let Some(why) = conflict(&earlier.name, &name) {
                return Err(loc.error(
                    at,
                    field,
                    format!("conflicts with dependency \"{}\": {why}", earlier.name),
                ));
            }
        }
        out.push(Dependency {
            name,
            source: path,
            export,
        });
    }
    Ok(out)
}

/// A file-name hint for the fix in an error message.
fn file_stem_hint(name: &DependencyName) -> String {
    match name {
        DependencyName::Plain(n) => n.clone(),
        DependencyName::Package {
            package, interface, ..
        } => interface
            .clone()
            .unwrap_or_else(|| package.replace(':', "-")),
    }
}

/// Parses a dependency key as Spin's `DependencyName::from_str` does.
fn dependency_name(key: &str) -> Result<DependencyName, String> {
    const FORMS: &str = "use a kebab-case name (\"my-dep\") or a package name: \"ns:pkg\", \"ns:pkg@1.0.0\", \"ns:pkg/iface\" or \"ns:pkg/iface@1.0.0\"";
    if !key.contains([':', '/']) {
        return if is_kebab(key) {
            Ok(DependencyName::Plain(key.to_owned()))
        } else {
            Err(format!("{key:?} is not a valid dependency name: {FORMS}"))
        };
    }
    let (name, version) = match key.split_once('@') {
        Some((name, version)) => match semver::Version::parse(version) {
            Ok(v) => (name, Some(v)),
            Err(e) => {
                return Err(format!(
                    "{version:?} in {key:?} is not a semantic version ({e}): {FORMS}"
                ));
            }
        },
        None => (key, None),
    };
    let (package, interface) = match name.split_once('/') {
        Some((package, interface)) => (package, Some(interface)),
        None => (name, None),
    };
    let package_ok = package
        .split_once(':')
        .is_some_and(|(ns, pkg)| is_kebab(ns) && is_kebab(pkg));
    if !package_ok || interface.is_some_and(|i| !is_kebab(i)) {
        return Err(format!("{key:?} is not a valid dependency name: {FORMS}"));
    }
    Ok(DependencyName::Package {
        package: package.to_owned(),
        interface: interface.map(str::to_owned),
        version,
    })
}

/// Why two dependency keys would satisfy the same import (Spin's
/// `check_disjoint`), or `None` when they are disjoint.
fn conflict(a: &DependencyName, b: &DependencyName) -> Option<&'static str> {
    let (
        DependencyName::Package {
            package: pa,
            interface: ia,
            version: va,
        },
        DependencyName::Package {
            package: pb,
            interface: ib,
            version: vb,
        },
    ) = (a, b)
    else {
        return None;
    };
    if pa != pb {
        return None;
    }
    if let (Some(va), Some(vb)) = (va, vb)
        && compatible_version(va) != compatible_version(vb)
    {
        return None;
    }
    if let (Some(ia), Some(ib)) = (ia, ib)
        && ia != ib
    {
        return None;
    }
    Some(
        "two keys of the same package must name different interfaces or incompatible versions (remove one, or name the interface in each key)",
    )
}

/// `version` reduced to what semver treats as compatible with it (Spin's
/// `normalize_compatible_version`).
fn compatible_version(version: &semver::Version) -> semver::Version {
    let mut v = version.clone();
    v.build = semver::BuildMetadata::EMPTY;
    if v.pre != semver::Prerelease::EMPTY {
        return v;
    }
    if v.major > 0 {
        v.minor = 0;
        v.patch = 0;
    } else if v.minor > 0 {
        v.patch = 0;
    }
    v
}

/// Checks that every `{{ name }}` in `template` is well formed and names an
/// application variable.
fn check_templates(
    loc: &Locator<'_>,
    at: usize,
    field: &str,
    template: &str,
    variables: &IndexMap<String, Variable>,
) -> Result<(), ManifestError> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(loc.error(
                at,
                field,
                format!("unclosed `{{{{` in {template:?} (write {{{{ variable_name }}}})"),
            ));
        };
        let name = after[..end].trim();
        if !variables.contains_key(name) {
            return Err(loc.error(
                at,
                field,
                format!(
                    "refers to variable {name:?}, which is not defined (add it under [variables])"
                ),
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

fn build(root: &Path, raw: &RawBuild) -> BuildConfig {
    let commands = match &raw.command {
        RawCommands::One(c) => vec![c.clone()],
        RawCommands::Many(cs) => cs.clone(),
    };
    BuildConfig {
        commands,
        workdir: raw
            .workdir
            .as_ref()
            .map_or_else(|| root.to_owned(), |w| root.join(w)),
        environment: raw.environment.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(key: &str) -> DependencyName {
        dependency_name(key).unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    #[test]
    fn dependency_keys_parse_as_in_spin() {
        for key in [
            "foo-bar",
            "ns:pkg",
            "ns:pkg@0.1.0",
            "ns:pkg/iface",
            "ns:pkg/iface@0.1.0",
            "tributary:pipeline/stage1@0.1.0",
        ] {
            assert_eq!(parsed(key).to_string(), key);
        }
        assert!(matches!(parsed("foo-bar"), DependencyName::Plain(_)));
        for bad in [
            "Foo",
            "ns:pkg/iface@one",
            "ns:pkg/",
            "nspkg/iface",
            "ns:Pkg",
            "a:b:c/d",
        ] {
            assert!(dependency_name(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn keys_of_one_package_must_be_disjoint() {
        let conflicts = |a: &str, b: &str| conflict(&parsed(a), &parsed(b)).is_some();
        // Different interfaces, incompatible versions, other packages: fine.
        assert!(!conflicts("ns:pkg/a@0.1.0", "ns:pkg/b@0.1.0"));
        assert!(!conflicts("ns:pkg@0.1.0", "ns:pkg@0.2.0"));
        assert!(!conflicts("ns:pkg@1.0.0", "ns:pkg@2.0.0"));
        assert!(!conflicts("ns:pkg", "ns:other"));
        assert!(!conflicts("foo", "ns:pkg"));
        // Overlapping: the whole package and one of its interfaces, or
        // semver-compatible versions of the same interface.
        assert!(conflicts("ns:pkg", "ns:pkg/a"));
        assert!(conflicts("ns:pkg/a@0.1.0", "ns:pkg/a@0.1.1"));
        assert!(conflicts("ns:pkg@1.0.0", "ns:pkg@1.2.0"));
    }
}
