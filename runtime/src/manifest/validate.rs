//! Turns manifest text into a validated [`App`], or the first problem found.

use std::path::Path;

use indexmap::IndexMap;
use toml::Spanned;

use super::dependencies::dependencies;
use super::diagnostics::{offset_of_key, syntax_error, toml_error};
use super::names::{is_kebab, is_label, is_variable_name};
use super::raw::{
    RawBuild, RawCommands, RawComponent, RawExecutor, RawFileMount, RawHttpTrigger, RawManifest,
    RawRoute, RawSource, RawStaticResponse, RawTriggerComponent,
};
use super::template::{self, Part};
use super::{
    App, BuildConfig, Component, FileMount, HttpExecutor, HttpRoute, HttpTrigger, ManifestError,
    StaticResponse, Variable,
};
use crate::config_file::Locator;

/// Where Spin reserves routes for itself.
const RESERVED_ROUTE_PREFIX: &str = "/.well-known/spin/";

pub(super) fn validate(path: &Path, text: &str) -> Result<App, ManifestError> {
    let loc = Locator::new(path, text);
    check_version(&loc, text)?;
    let raw: RawManifest = toml::from_str(text).map_err(|e| toml_error(&loc, &e))?;
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
        let executor = executor(&loc, &field, trigger)?;
        let Some(raw_component) = &trigger.component else {
            let Some(response) = &trigger.static_response else {
                return Err(loc.error(
                    trigger_span,
                    format!("{field}.component"),
                    "missing: a trigger needs a `component` or a `static_response` (e.g. static_response = { status_code = 404 })",
                ));
            };
            // Routed by the trigger's ID, as Spin does; it must not be
            // mistaken for a component.
            let id = match &trigger.id {
                Some(id) => {
                    check_trigger_id(&loc, &field, id)?;
                    id.get_ref().clone()
                }
                None => format!("static-response-{}", index + 1),
            };
            if raw.component.keys().any(|c| c.get_ref() == &id) {
                return Err(loc.error(
                    trigger_span,
                    format!("{field}.id"),
                    format!("{id:?} is already a component ID: give the trigger another id"),
                ));
            }
            http_triggers.push(HttpTrigger {
                route,
                component: id,
                executor,
                static_response: Some(static_response(&loc, &field, response)?),
            });
            continue;
        };
        if trigger.static_response.is_some() {
            return Err(loc.error(
                trigger_span,
                format!("{field}.static_response"),
                "a trigger has either a `component` or a `static_response`, not both: remove one",
            ));
        }
        let component_id = trigger_component(
            &loc,
            &root,
            TriggerSite {
                field: &field,
                at: trigger_span,
                default_id: format!("inline-component-{}", index + 1),
                id: trigger.id.as_ref(),
            },
            raw_component,
            &mut components,
            &variables,
        )?;
        http_triggers.push(HttpTrigger {
            route,
            component: component_id,
            executor,
            static_response: None,
        });
    }

    let redis_triggers =
        super::redis_trigger::redis_triggers(&loc, &root, &raw, &mut components, &variables)?;
    let cron_triggers =
        super::cron_trigger::cron_triggers(&loc, &root, &raw, &mut components, &variables)?;

    Ok(App {
        name: raw.application.name.into_inner(),
        version: raw.application.version.clone(),
        manifest_path: path.to_owned(),
        root,
        http_base,
        variables,
        components,
        http_triggers,
        redis_triggers,
        cron_triggers,
    })
}

/// Where a non-HTTP trigger sits in the manifest, for its errors and its
/// inline component's default ID.
pub(super) struct TriggerSite<'a> {
    /// `trigger.KIND[INDEX]`.
    pub field: &'a str,
    /// The trigger's offset in the file.
    pub at: usize,
    /// The ID its inline component gets without an `id`
    /// (`inline-component-N` for HTTP, as Spin names them;
    /// `inline-KIND-component-N` for the others).
    pub default_id: String,
    /// The trigger's `id`, if given.
    pub id: Option<&'a Spanned<String>>,
}

/// The component a trigger runs: a defined one by ID, or its inline table,
/// added to `components` under the trigger's `id` (or its default ID).
pub(super) fn trigger_component(
    loc: &Locator<'_>,
    root: &Path,
    site: TriggerSite<'_>,
    raw: &Spanned<RawTriggerComponent>,
    components: &mut IndexMap<String, Component>,
    variables: &IndexMap<String, Variable>,
) -> Result<String, ManifestError> {
    let field = site.field;
    match raw.get_ref() {
        RawTriggerComponent::Reference(id) => {
            if !components.contains_key(id) {
                let known: Vec<&str> = components.keys().map(String::as_str).collect();
                return Err(loc.error(
                    raw.span().start,
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
            Ok(id.clone())
        }
        RawTriggerComponent::Inline(inline) => {
            // The id names the component, and so directories under
            // `.spin/`: it must be a kebab-case name like any other.
            if let Some(id) = site.id {
                check_trigger_id(loc, field, id)?;
            }
            let (id, at) = match site.id {
                Some(id) => (id.get_ref().clone(), id.span().start),
                None => (site.default_id, site.at),
            };
            if components.contains_key(&id) {
                return Err(loc.error(
                    at,
                    format!("{field}.id"),
                    format!(
                        "{id:?} is already a component ID: give the inline component another id"
                    ),
                ));
            }
            let c = component(loc, root, &id, inline, variables)?;
            components.insert(id.clone(), c);
            Ok(id)
        }
    }
}

/// Rejects manifests that are not version 2 before serde sees them, so that a
/// Spin 1 manifest gets a conversion hint rather than a list of unknown fields.
fn check_version(loc: &Locator<'_>, text: &str) -> Result<(), ManifestError> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| syntax_error(loc, &e))?;
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

/// `executor`: Spin's `http` (or its alias `spin`) and `wagi`.
fn executor(
    loc: &Locator<'_>,
    field: &str,
    trigger: &RawHttpTrigger,
) -> Result<HttpExecutor, ManifestError> {
    Ok(match trigger.executor.as_ref().map(Spanned::get_ref) {
        None | Some(RawExecutor::Http) => HttpExecutor::Http,
        Some(RawExecutor::Wagi(wagi)) => {
            if let Some(entry) = &wagi.entrypoint
                && entry.get_ref() != "_start"
            {
                return Err(loc.error(
                    entry.span().start,
                    format!("{field}.executor.entrypoint"),
                    "is deprecated and only \"_start\" is supported: remove it",
                ));
            }
            HttpExecutor::Wagi {
                argv: wagi
                    .argv
                    .clone()
                    .unwrap_or_else(|| "${SCRIPT_NAME} ${ARGS}".to_owned()),
            }
        }
    })
}

/// A `static_response` table, with a status hyper can send.
fn static_response(
    loc: &Locator<'_>,
    field: &str,
    raw: &Spanned<RawStaticResponse>,
) -> Result<StaticResponse, ManifestError> {
    let r = raw.get_ref();
    let status_code = match &r.status_code {
        Some(code) if !(100..=999).contains(code.get_ref()) => {
            return Err(loc.error(
                code.span().start,
                format!("{field}.static_response.status_code"),
                "must be an HTTP status between 100 and 999",
            ));
        }
        Some(code) => *code.get_ref(),
        None => 200,
    };
    for (name, value) in &r.headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err(loc.error(
                raw.span().start,
                format!("{field}.static_response.headers"),
                format!("{name:?} is not a valid header name and value"),
            ));
        }
    }
    Ok(StaticResponse {
        status_code,
        headers: r
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body: r.body.clone(),
    })
}

pub(super) fn check_trigger_id(
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
        // Spin runs such an app and says so; so do we.
        tracing::warn!(
            route,
            "routes under {RESERVED_ROUTE_PREFIX} are handled by the runtime and will never be reached"
        );
    }
    if let Err(e) = crate::route_pattern::check_pattern(&absolute) {
        return Err(loc.error(at, field, format!("invalid route {route:?}: {e}")));
    }
    Ok(())
}

pub(super) fn component(
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
    let converted_http_hosts = match &raw.allowed_http_hosts {
        Some(hosts) => {
            let converted = super::allowed_http_hosts::convert(hosts.get_ref())
                .map_err(|e| loc.error(hosts.span().start, field("allowed_http_hosts"), e))?;
            tracing::warn!(
                component = id,
                converted = ?converted,
                "allowed_http_hosts is deprecated (Spin 1 syntax): use allowed_outbound_hosts; converted"
            );
            converted
        }
        None => Vec::new(),
    };
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
    allowed_outbound_hosts.extend(converted_http_hosts);
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
        scaling: super::trib_tool::policy(loc, id, raw.tool.as_ref())?,
    })
}

/// Checks that every `{{ name }}` in `template` is well formed and names an
/// application variable.
pub(super) fn check_templates(
    loc: &Locator<'_>,
    at: usize,
    field: &str,
    template: &str,
    variables: &IndexMap<String, Variable>,
) -> Result<(), ManifestError> {
    for part in template::parts(template) {
        match part {
            Err(template::Unclosed) => {
                return Err(loc.error(
                    at,
                    field,
                    format!("unclosed `{{{{` in {template:?} (write {{{{ variable_name }}}})"),
                ));
            }
            Ok(Part::Variable(name)) if !variables.contains_key(name) => {
                return Err(loc.error(
                    at,
                    field,
                    format!(
                        "refers to variable {name:?}, which is not defined (add it under [variables])"
                    ),
                ));
            }
            Ok(_) => {}
        }
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
        watch: raw.watch.clone(),
    }
}
