//! Serde mirror of Spin manifest version 2, exactly as written on disk.
//!
//! Every table denies unknown fields so that a typo is an error with a line
//! number instead of a silently ignored setting. Validation that needs more
//! than the shape of the TOML happens in [`super::validate`].

#![expect(
    dead_code,
    reason = "a mirror of the format: fields that the host does not use yet must still parse"
)]

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// The whole `spin.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub spin_manifest_version: Spanned<toml::Value>,
    pub application: RawApplication,
    #[serde(default)]
    pub variables: IndexMap<Spanned<String>, RawVariable>,
    #[serde(default)]
    pub trigger: RawTriggers,
    #[serde(default)]
    pub component: IndexMap<Spanned<String>, RawComponent>,
}

/// `[application]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApplication {
    pub name: Spanned<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub trigger: RawApplicationTriggers,
    /// Free-form settings for external tools; Spin ignores it and so do we.
    #[serde(default)]
    pub tool: Option<toml::Table>,
}

/// `[application.trigger]`: global trigger settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApplicationTriggers {
    #[serde(default)]
    pub http: Option<RawHttpGlobal>,
    #[serde(default)]
    pub redis: Option<RawRedisGlobal>,
}

/// `[application.trigger.redis]`: the server every Redis trigger subscribes
/// on unless it names its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisGlobal {
    #[serde(default)]
    pub address: Option<Spanned<String>>,
}

/// `[application.trigger.http]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpGlobal {
    #[serde(default)]
    pub base: Option<Spanned<String>>,
}

/// `[variables.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariable {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// `[trigger]`: one array per trigger type.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTriggers {
    #[serde(default)]
    pub http: Vec<Spanned<RawHttpTrigger>>,
    #[serde(default)]
    pub redis: Vec<Spanned<RawRedisTrigger>>,
    #[serde(default)]
    pub cron: Vec<Spanned<RawCronTrigger>>,
}

/// `[[trigger.cron]]` (Spin's cron trigger plugin).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCronTrigger {
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    pub component: Spanned<RawTriggerComponent>,
    pub cron_expression: Spanned<String>,
}

/// `[[trigger.redis]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisTrigger {
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    pub channel: Spanned<String>,
    pub component: Spanned<RawTriggerComponent>,
    /// Overrides `[application.trigger.redis] address` for this trigger.
    #[serde(default)]
    pub address: Option<Spanned<String>>,
}

/// `[[trigger.http]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpTrigger {
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    pub route: Spanned<RawRoute>,
    #[serde(default)]
    pub component: Option<Spanned<RawTriggerComponent>>,
    #[serde(default)]
    pub executor: Option<Spanned<RawExecutor>>,
    #[serde(default)]
    pub static_response: Option<Spanned<RawStaticResponse>>,
}

/// `executor = { type = "http" }` (alias `spin`) or `{ type = "wagi", argv }`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RawExecutor {
    #[serde(alias = "spin")]
    Http,
    Wagi(RawWagi),
}

/// The Wagi executor's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWagi {
    pub argv: Option<String>,
    /// Deprecated in Spin; only `_start` is accepted.
    pub entrypoint: Option<Spanned<String>>,
}

/// `static_response = { status_code, headers, body }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStaticResponse {
    #[serde(default)]
    pub status_code: Option<Spanned<u16>>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// `route = "/path"` or `route = { private = true }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawRoute {
    Path(String),
    Private(RawPrivateRoute),
}

/// `{ private = true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrivateRoute {
    pub private: bool,
}

/// `component = "name"` or an inline component table.
#[derive(Debug)]
pub enum RawTriggerComponent {
    Reference(String),
    Inline(Box<RawComponent>),
}

/// Hand-written rather than `untagged` so the inline table is read straight
/// from the TOML deserializer: its fields keep their spans (for error
/// locations) and its own errors surface instead of "no variant matched".
impl<'de> Deserialize<'de> for RawTriggerComponent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawTriggerComponent;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a component name or an inline component table with at least `source`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawTriggerComponent::Reference(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                RawComponent::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|c| RawTriggerComponent::Inline(Box::new(c)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[component.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    pub source: Spanned<RawSource>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub files: Vec<Spanned<RawFileMount>>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub environment: IndexMap<String, String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<Spanned<String>>,
    /// Spin 1's spelling: converted to `allowed_outbound_hosts` with a
    /// warning, as Spin does.
    #[serde(default)]
    pub allowed_http_hosts: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub key_value_stores: Vec<Spanned<String>>,
    #[serde(default)]
    pub sqlite_databases: Vec<Spanned<String>>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub variables: IndexMap<Spanned<String>, String>,
    #[serde(default)]
    pub build: Option<RawBuild>,
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    /// Keys and values are checked in `validate`, where each can be given a
    /// precise message (registry, URL and local forms).
    #[serde(default)]
    pub dependencies: IndexMap<Spanned<String>, Spanned<toml::Value>>,
    /// Other tools' settings, and trib's own (`tool.trib`).
    #[serde(default)]
    pub tool: Option<super::trib_tool::RawTools>,
}

/// `source = "path.wasm"` or a remote source table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSource {
    Local(String),
    Remote(toml::Table),
}

/// An entry of `files`: a glob, or `{ source = "dir", destination = "/dir" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawFileMount {
    Pattern(String),
    Placement(RawPlacement),
}

/// `{ source, destination }` in `files`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlacement {
    pub source: String,
    pub destination: String,
}

/// `[component.NAME.build]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuild {
    pub command: RawCommands,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
    #[serde(default)]
    pub environment: IndexMap<String, String>,
}

/// `command = "one"` or `command = ["one", "two"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawCommands {
    One(String),
    Many(Vec<String>),
}
