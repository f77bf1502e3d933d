//! Spin manifest version 2 (`spin.toml`): parsing and validation.
//!
//! Config flows one way: the TOML text is read into the serde mirror in
//! [`raw`], then [`validate`] turns it into the [`App`] the host runs. Every
//! error names the file, line and field and says what was expected, so that
//! nothing starts half-configured.
//!
//! Beside them: [`diagnostics`] words TOML errors for a user (the runtime
//! config uses it too), [`dependencies`] reads `[component.ID.dependencies]`
//! and its keys, [`template`] parses the `{{ name }}` templates that
//! [`crate::variables`] later expands, and [`names`] holds the naming rules.

mod allowed_http_hosts;
mod cron_trigger;
mod dependencies;
mod diagnostics;
mod names;
mod raw;
mod redis_trigger;
pub(crate) mod template;
mod trib_tool;
mod validate;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

pub use dependencies::{DependencyName, InvalidDependencyName};
pub(crate) use diagnostics::toml_error;
pub(crate) use names::is_kebab;
pub use trib_tool::{DEFAULT_IDLE_TIMEOUT, ScalingPolicy};

/// A manifest that cannot be run; see [`ConfigFileError`].
pub use crate::config_file::ConfigFileError as ManifestError;

/// A validated Spin application, with every path resolved against the
/// manifest's directory.
#[derive(Debug, Clone)]
pub struct App {
    /// `application.name`.
    pub name: String,
    /// `application.version`, shown by `/.well-known/spin/info`.
    pub version: Option<String>,
    /// The manifest file this app was read from.
    pub manifest_path: PathBuf,
    /// The directory relative paths in the manifest are resolved against.
    pub root: PathBuf,
    /// `application.trigger.http.base`, normalised to start with `/`.
    pub http_base: String,
    /// Application variables, in manifest order.
    pub variables: IndexMap<String, Variable>,
    /// Components by ID, in manifest order (inline ones after named ones).
    pub components: IndexMap<String, Component>,
    /// `[[trigger.http]]` entries, in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
    /// `[[trigger.redis]]` entries, in manifest order.
    pub redis_triggers: Vec<RedisTrigger>,
    /// `[[trigger.cron]]` entries, in manifest order.
    pub cron_triggers: Vec<CronTrigger>,
}

/// One `[[trigger.cron]]` (Spin's cron trigger plugin): `component` runs on
/// a fresh instance at every time `schedule` names.
#[derive(Debug, Clone)]
pub struct CronTrigger {
    /// The component ID run at each tick.
    pub component: String,
    /// The schedule as written (six fields with seconds, or seven with
    /// years), for logs.
    pub expression: String,
    /// The parsed schedule.
    pub schedule: cron::Schedule,
}

/// One `[[trigger.redis]]`: messages on `channel` at `address` each run a
/// fresh instance of `component`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTrigger {
    /// The channel subscribed to, unexpanded (it may hold `{{ variable }}`).
    pub channel: String,
    /// The server's URL, unexpanded: the trigger's own `address`, else
    /// `[application.trigger.redis] address`. May hold a password, so it
    /// is never logged as written.
    pub address: String,
    /// The component ID that handles each message.
    pub component: String,
}

/// An application variable (`[variables]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Value used when no provider supplies one.
    pub default: Option<String>,
    /// Whether startup must fail if no provider supplies a value.
    pub required: bool,
    /// Whether the value must be kept out of logs.
    pub secret: bool,
}

/// One `[component.NAME]` (or inline component) with resolved paths.
#[derive(Debug, Clone)]
pub struct Component {
    /// The component ID (the `NAME` in `[component.NAME]`).
    pub id: String,
    /// Absolute path of the Wasm file.
    pub source: PathBuf,
    /// File mounts, in manifest order.
    pub files: Vec<FileMount>,
    /// Globs excluded from `files`.
    pub exclude_files: Vec<String>,
    /// Environment variables given to the guest.
    pub environment: IndexMap<String, String>,
    /// Outbound host patterns, unexpanded (they may hold `{{ variable }}`).
    pub allowed_outbound_hosts: Vec<String>,
    /// Key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// SQLite database labels the component may open.
    pub sqlite_databases: Vec<String>,
    /// Component variables: name to template.
    pub variables: IndexMap<String, String>,
    /// How `trib build` builds this component.
    pub build: Option<BuildConfig>,
    /// `[component.NAME.dependencies]`: components composed into this one at
    /// load time, in manifest order.
    pub dependencies: Vec<Dependency>,
    /// `dependencies_inherit_configuration`: whether dependencies may use the
    /// component's host capabilities (network, stores, variables...).
    pub dependencies_inherit_configuration: bool,
    /// `[component.ID.tool.trib]`: how trib scales it (`None`: defaults).
    pub scaling: Option<ScalingPolicy>,
}

/// One entry of `[component.NAME.dependencies]`: a local component that
/// satisfies the imports its key matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The key, parsed.
    pub name: DependencyName,
    /// Absolute path of the dependency's Wasm file (`path`).
    pub source: PathBuf,
    /// `export`: the dependency's export that satisfies the import; `None`
    /// means the export named like the import.
    pub export: Option<String>,
}

/// An entry of a component's `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// A glob relative to the app root, mounted at the same relative path.
    Pattern(String),
    /// A directory or file mounted at an absolute guest path.
    Placement {
        /// Host path relative to the app root.
        source: String,
        /// Absolute guest path.
        destination: String,
    },
}

/// `[component.NAME.build]`.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// Shell commands, run in order.
    pub commands: Vec<String>,
    /// Directory the commands run in, resolved against the app root.
    pub workdir: PathBuf,
    /// Extra environment for the commands.
    pub environment: IndexMap<String, String>,
    /// Globs, relative to `workdir`, of the files whose change calls for a
    /// rebuild under `trib watch` (Spin's `watch`).
    pub watch: Vec<String>,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    /// Where the trigger is reachable from outside.
    pub route: HttpRoute,
    /// What the route leads to: the component ID, or for a static response
    /// the trigger's own ID (the key Spin routes and prints it by).
    pub component: String,
    /// How the component is called (`executor`).
    pub executor: HttpExecutor,
    /// `static_response`: answered by the host, no component involved.
    pub static_response: Option<StaticResponse>,
}

/// `executor` of an HTTP trigger: Spin's `http` (alias `spin`) or `wagi`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HttpExecutor {
    /// The component exports a `wasi:http` handler.
    #[default]
    Http,
    /// The component is a WASI command run as a CGI program (Wagi).
    Wagi {
        /// `argv`, with `${SCRIPT_NAME}` and `${ARGS}` still unexpanded.
        argv: String,
    },
}

impl HttpExecutor {
    /// How a core module for this executor is made a component.
    pub fn entry(&self) -> crate::engine::componentize::Entry {
        match self {
            Self::Http => crate::engine::componentize::Entry::Exports,
            Self::Wagi { .. } => crate::engine::componentize::Entry::Command,
        }
    }
}

/// `static_response = { status_code, headers, body }`: what Spin sends for
/// a trigger without a component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticResponse {
    /// The status (200 when not given).
    pub status_code: u16,
    /// Response headers, in manifest order.
    pub headers: Vec<(String, String)>,
    /// The body (empty when not given).
    pub body: Option<String>,
}

/// `route` of an HTTP trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRoute {
    /// A route pattern as written (`/api/...`, `/users/:id`).
    Pattern(String),
    /// `{ private = true }`: reachable only through service chaining.
    Private,
}

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<App, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Validates manifest `text` as if read from `path` (used for error messages
/// and to resolve relative paths).
pub fn parse(path: &Path, text: &str) -> Result<App, ManifestError> {
    validate::validate(path, text)
}

impl App {
    /// The component with this ID.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.get(id)
    }
}
