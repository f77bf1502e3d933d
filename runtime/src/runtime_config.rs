//! `runtime-config.toml` in Spin's format: where key-value stores and
//! SQLite databases live, where variables come from
//! (`[[variables_provider]]`), the state and log directories, blocked
//! networks and client TLS for outbound HTTPS. trib's own per-component settings are not here
//! (Spin would refuse the file): they live in `[component.ID.tool.trib]`
//! in `spin.toml` (see [`crate::manifest::ScalingPolicy`]).
//!
//! Unknown keys are errors: a typo must not silently change where data
//! goes.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::blocked_networks::BlockedNetworks;
use crate::client_tls::{ClientTls, ClientTlsSpec};
use crate::config_file::{ConfigFileError, Locator};
pub use crate::duration::{DurationError, parse_duration};
use crate::manifest::{App, Component};
pub use crate::manifest::{DEFAULT_IDLE_TIMEOUT, ScalingPolicy};
use crate::variables::ProviderConfig;

/// The validated runtime config.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Key-value stores by label (`default` may be overridden).
    pub key_value_stores: IndexMap<String, KeyValueStoreConfig>,
    /// SQLite databases by label (`default` may be overridden).
    pub sqlite_databases: IndexMap<String, SqliteDatabaseConfig>,
    /// Where the default stores (and logs) live.
    pub state_dir: StateDir,
    /// `--max-instance-reuse-count` and
    /// `--max-instance-concurrent-reuse-count`, for every component.
    pub reuse: (Option<usize>, Option<usize>),
    /// The file's `log_dir`: `None` when unset, `Some(None)` for `""` (no
    /// log files); the `--log-dir` flag wins over it.
    pub log_dir: Option<Option<std::path::PathBuf>>,
    /// `[[variables_provider]]` (or Spin's older `[[config_provider]]`), in
    /// order; Spin's default environment provider is always asked last.
    pub variables_providers: Vec<ProviderConfig>,
    /// `[outbound_networking] block_networks`.
    pub blocked_networks: BlockedNetworks,
    /// `[[client_tls]]` entries, their files read.
    pub client_tls: Vec<ClientTls>,
}

/// The application state directory (`--state-dir`): default key-value
/// store and SQLite database, and the default log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateDir {
    /// `.spin/` beside the manifest (Spin's default for local apps).
    #[default]
    Default,
    /// A directory the operator chose.
    At(std::path::PathBuf),
    /// None (`--state-dir ""`): default stores live in memory and no logs
    /// are written, as in Spin.
    Unset,
}

impl StateDir {
    /// What the `--state-dir` flag's text means.
    pub fn from_flag(text: &str) -> Self {
        if text.is_empty() {
            Self::Unset
        } else {
            Self::At(text.into())
        }
    }
}

/// `[sqlite_database.LABEL]`: where a database lives and what its guests
/// may do beyond plain SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqliteDatabaseConfig {
    /// The file (relative to the working directory, as in Spin), or in
    /// memory without one.
    pub path: Option<std::path::PathBuf>,
    /// Whether guests may `ATTACH` (and `VACUUM INTO`) other files; even
    /// then only files inside the app directory. Off by default: an attach
    /// reaches any file the host can open.
    pub allow_attach_file: bool,
}

/// `[key_value_store.LABEL]`: where a store's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueStoreConfig {
    /// `type = "spin"`: SQLite at `path` (relative to the runtime-config
    /// file), or in memory without a path.
    Spin {
        /// The database file.
        path: Option<std::path::PathBuf>,
    },
    /// `type = "redis"`: the Redis server at `url`, keys as the guest
    /// names them (Spin's layout).
    Redis {
        /// `redis://[user:password@]host[:port][/db]` or `rediss://...`.
        url: RedisUrl,
    },
}

/// A Redis URL as the runtime config gives it: it may hold a password, so
/// `Debug` shows it with the user information replaced.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL, password included, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.0.split_once("://") {
            Some((scheme, rest)) => {
                let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                match rest[..authority_end].rfind('@') {
                    Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                    None => self.0.clone(),
                }
            }
            None => "<not a URL>".to_owned(),
        };
        f.debug_tuple("RedisUrl").field(&shown).finish()
    }
}

impl RuntimeConfig {
    /// The state directory for `app`, if there is one.
    pub fn state_dir(&self, app: &App) -> Option<std::path::PathBuf> {
        match &self.state_dir {
            StateDir::Default => Some(app.root.join(".spin")),
            StateDir::At(dir) => Some(dir.clone()),
            StateDir::Unset => None,
        }
    }

    /// The policy for `component`: its `tool.trib` table (or the
    /// defaults), with the reuse flags winning, as flags should.
    pub fn scaling(&self, component: &Component) -> ScalingPolicy {
        let mut policy = component.scaling.clone().unwrap_or_default();
        if let Some(n) = self.reuse.0 {
            policy.max_requests_per_instance = n.max(1);
        }
        if let Some(n) = self.reuse.1 {
            policy.max_concurrent_requests_per_instance = n.max(1);
        }
        policy
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    /// trib's old place for scaling settings: refused with a pointer to
    /// the new one.
    #[serde(default)]
    component: Option<Spanned<IndexMap<Spanned<String>, toml::Value>>>,
    #[serde(default)]
    key_value_store: IndexMap<Spanned<String>, RawKeyValueStore>,
    #[serde(default)]
    sqlite_database: IndexMap<Spanned<String>, RawSqliteDatabase>,
    variables_provider: Option<Vec<Spanned<RawVariablesProvider>>>,
    /// Spin's older name for `variables_provider`.
    config_provider: Option<Vec<Spanned<RawVariablesProvider>>>,
    state_dir: Option<String>,
    log_dir: Option<String>,
    outbound_networking: Option<RawOutboundNetworking>,
    #[serde(default)]
    client_tls: Vec<Spanned<RawClientTls>>,
    /// Spin keys trib does not implement: refused by name, not ignored.
    llm_compute: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawVariablesProvider {
    Env(RawEnvProvider),
    Static(RawStaticProvider),
    /// Refused by name; its keys (a token, say) are not even kept.
    Vault {},
    /// Refused by name, likewise.
    AzureKeyVault {},
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvProvider {
    prefix: Option<String>,
    dotenv_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticProvider {
    #[serde(default)]
    values: IndexMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutboundNetworking {
    block_networks: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientTls {
    #[serde(default)]
    component_ids: Vec<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<String>,
    ca_use_webpki_roots: Option<bool>,
    ca_roots_file: Option<String>,
    client_cert_file: Option<String>,
    client_private_key_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSqliteDatabase {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    allow_attach_file: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyValueStore {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    url: Option<Spanned<String>>,
}

/// Reads and validates the runtime config at `path` against `app`.
pub fn load(path: &Path, app: &App) -> Result<RuntimeConfig, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text, app)
}

/// Validates runtime-config `text` (read from `path`) against `app`.
pub fn parse(path: &Path, text: &str, app: &App) -> Result<RuntimeConfig, ConfigFileError> {
    let loc = Locator::new(path, text);
    let raw: RawRuntimeConfig =
        toml::from_str(text).map_err(|e| crate::manifest::toml_error(&loc, &e))?;
    if let Some(table) = &raw.component {
        let (offset, field, id) = match table.get_ref().first() {
            Some((id, _)) => (
                id.span().start,
                format!("component.{}", id.get_ref()),
                id.get_ref().as_str(),
            ),
            None => (table.span().start, "component".to_owned(), "ID"),
        };
        return Err(loc.error(
            offset,
            field,
            format!(
                "Spin's runtime config has no [component] table: move these settings to [component.{id}.tool.trib] in {}",
                app.manifest_path.display()
            ),
        ));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut key_value_stores = IndexMap::new();
    for (label, raw) in raw.key_value_store {
        let store = match raw.kind.get_ref().as_str() {
            "spin" if raw.url.is_some() => {
                return Err(loc.error(
                    raw.kind.span().start,
                    format!("key_value_store.{}.url", label.get_ref()),
                    "a \"spin\" store has a path, not a url (type = \"redis\" takes a url)",
                ));
            }
            "spin" => KeyValueStoreConfig::Spin {
                path: raw.path.map(|p| base.join(p)),
            },
            "redis" => {
                let field = |f: &str| format!("key_value_store.{}.{f}", label.get_ref());
                let Some(url) = raw.url else {
                    return Err(loc.error(
                        raw.kind.span().start,
                        field("url"),
                        "a \"redis\" store needs url = \"redis://host:port\"",
                    ));
                };
                if raw.path.is_some() {
                    return Err(loc.error(
                        raw.kind.span().start,
                        field("path"),
                        "a \"redis\" store has a url, not a path",
                    ));
                }
                let valid = redis::IntoConnectionInfo::into_connection_info(url.get_ref().as_str())
                    .is_ok_and(|info| !matches!(info.addr(), redis::ConnectionAddr::Unix(_)));
                if !valid {
                    return Err(loc.error(
                        url.span().start,
                        field("url"),
                        "not a Redis URL: use redis://[user:password@]host[:port][/db] or rediss://...",
                    ));
                }
                KeyValueStoreConfig::Redis {
                    url: RedisUrl(url.into_inner()),
                }
            }
            other => {
                return Err(loc.error(
                    raw.kind.span().start,
                    format!("key_value_store.{}.type", label.get_ref()),
                    format!(
                        "store type {other:?} is not supported (use \"spin\" for SQLite or \"redis\")"
                    ),
                ));
            }
        };
        key_value_stores.insert(label.into_inner(), store);
    }
    let mut sqlite_databases = IndexMap::new();
    for (label, raw) in raw.sqlite_database {
        if raw.kind.get_ref() != "spin" {
            return Err(loc.error(
                raw.kind.span().start,
                format!("sqlite_database.{}.type", label.get_ref()),
                format!(
                    "database type {:?} is not supported (use \"spin\" for an embedded file)",
                    raw.kind.get_ref()
                ),
            ));
        }
        sqlite_databases.insert(
            label.into_inner(),
            SqliteDatabaseConfig {
                path: raw.path.map(std::path::PathBuf::from),
                allow_attach_file: raw.allow_attach_file,
            },
        );
    }
    if let Some(llm) = &raw.llm_compute {
        return Err(loc.error(
            llm.span().start,
            "llm_compute".to_owned(),
            "trib does not implement Spin's Serverless AI (llm_compute): remove the table",
        ));
    }
    let relative = |text: &str| {
        let path = Path::new(text);
        if path.is_absolute() {
            path.to_owned()
        } else {
            base.join(path)
        }
    };
    let providers = match (raw.variables_provider, raw.config_provider) {
        (Some(a), Some(_)) => {
            let offset = a.first().map_or(0, |p| p.span().start);
            return Err(loc.error(
                offset,
                "config_provider".to_owned(),
                "give [[variables_provider]] or the older [[config_provider]], not both",
            ));
        }
        (Some(p), None) | (None, Some(p)) => p,
        (None, None) => Vec::new(),
    };
    let mut variables_providers = Vec::new();
    for provider in providers {
        let offset = provider.span().start;
        variables_providers.push(match provider.into_inner() {
            RawVariablesProvider::Env(RawEnvProvider {
                prefix,
                dotenv_path,
            }) => ProviderConfig::Env {
                prefix,
                dotenv_path: dotenv_path.as_deref().map(relative),
            },
            RawVariablesProvider::Static(RawStaticProvider { values }) => {
                ProviderConfig::Static(values)
            }
            RawVariablesProvider::Vault {} | RawVariablesProvider::AzureKeyVault {} => {
                return Err(loc.error(
                    offset,
                    "variables_provider.type".to_owned(),
                    "trib does not implement Spin's vault and azure_key_vault providers: use type = \"env\" or \"static\" (or SPIN_VARIABLE_* set by your secret manager)",
                ));
            }
        });
    }
    let blocked_networks = match raw.outbound_networking.and_then(|n| n.block_networks) {
        Some(list) => BlockedNetworks::parse(list.get_ref()).map_err(|e| {
            loc.error(
                list.span().start,
                "outbound_networking.block_networks".to_owned(),
                e.to_string(),
            )
        })?,
        None => BlockedNetworks::default(),
    };
    let mut client_tls = Vec::new();
    for entry in raw.client_tls {
        let offset = entry.span().start;
        let entry = entry.into_inner();
        for id in &entry.component_ids {
            if app.component(id.get_ref()).is_none() {
                return Err(loc.error(
                    id.span().start,
                    "client_tls.component_ids".to_owned(),
                    format!(
                        "the manifest defines no component {:?} (check the name against [component.NAME] in {})",
                        id.get_ref(),
                        app.manifest_path.display()
                    ),
                ));
            }
        }
        let spec = ClientTlsSpec {
            components: entry
                .component_ids
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            hosts: entry.hosts,
            use_webpki_roots: entry.ca_use_webpki_roots,
            ca_roots_file: entry.ca_roots_file.as_deref().map(relative),
            client_cert_file: entry.client_cert_file.as_deref().map(relative),
            client_private_key_file: entry.client_private_key_file.as_deref().map(relative),
        };
        client_tls.push(
            ClientTls::load(&spec)
                .map_err(|e| loc.error(offset, "client_tls".to_owned(), e.to_string()))?,
        );
    }
    Ok(RuntimeConfig {
        key_value_stores,
        sqlite_databases,
        state_dir: match raw.state_dir.as_deref() {
            None => StateDir::Default,
            Some("") => StateDir::Unset,
            Some(dir) => StateDir::At(relative(dir)),
        },
        reuse: (None, None),
        log_dir: raw
            .log_dir
            .as_deref()
            .map(|dir| (!dir.is_empty()).then(|| relative(dir))),
        variables_providers,
        blocked_networks,
        client_tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        crate::manifest::parse(
            Path::new("spin.toml"),
            "spin_manifest_version = 2\n[application]\nname = \"a\"\n[component.api]\nsource = \"a.wasm\"\n",
        )
        .expect("valid manifest")
    }

    #[test]
    fn scaling_comes_from_the_manifest_and_the_reuse_flags_win() {
        let app = crate::manifest::parse(
            Path::new("spin.toml"),
            "spin_manifest_version = 2\n[application]\nname = \"a\"\n[component.api]\nsource = \"a.wasm\"\n[component.api.tool.trib]\nmax_concurrency = 2\nmax_requests_per_instance = 3\n",
        )
        .expect("valid manifest");
        let mut config = RuntimeConfig::default();
        let api = &app.components["api"];
        assert_eq!(config.scaling(api).max_concurrency, Some(2));
        assert_eq!(config.scaling(api).max_requests_per_instance, 3);
        config.reuse = (Some(5), None);
        assert_eq!(config.scaling(api).max_requests_per_instance, 5);
        assert_eq!(config.scaling(api).max_concurrency, Some(2));
    }

    #[test]
    fn spins_keys_are_read() {
        let text = r#"
state_dir = "state"
log_dir = ""
[[config_provider]]
type = "env"
prefix = "MYAPP"
dotenv_path = "vars.env"
[[config_provider]]
type = "static"
values = { api_host = "static.example" }
[outbound_networking]
block_networks = ["1.1.1.1/32", "private"]
[[client_tls]]
component_ids = ["api"]
hosts = ["example.com:8443"]
"#;
        let config = parse(Path::new("/srv/app/rc.toml"), text, &app()).expect("valid");
        assert_eq!(config.state_dir, StateDir::At("/srv/app/state".into()));
        assert_eq!(config.log_dir, Some(None));
        assert_eq!(
            config.variables_providers,
            [
                ProviderConfig::Env {
                    prefix: Some("MYAPP".into()),
                    dotenv_path: Some("/srv/app/vars.env".into()),
                },
                ProviderConfig::Static(IndexMap::from([(
                    "api_host".to_owned(),
                    "static.example".to_owned()
                )])),
            ]
        );
        assert!(
            config
                .blocked_networks
                .blocks("1.1.1.1".parse().expect("ip"))
        );
        assert!(
            config
                .blocked_networks
                .blocks("127.0.0.1".parse().expect("ip"))
        );
        assert!(
            !config
                .blocked_networks
                .blocks("8.8.8.8".parse().expect("ip"))
        );
        assert_eq!(config.client_tls.len(), 1);
        assert!(config.client_tls[0].applies("api", "example.com", 8443));
        let empty = parse(Path::new("rc.toml"), "", &app()).expect("empty is valid");
        assert_eq!(empty.state_dir, StateDir::Default);
        assert_eq!(empty.log_dir, None);
        assert!(empty.blocked_networks.is_empty());
    }

    #[test]
    fn mistakes_are_located_errors() {
        let cases = [
            (
                "[component.api]\nmax_concurrency = 2\n",
                "rc.toml:1:12: component.api: Spin's runtime config has no [component] table: move these settings to [component.api.tool.trib] in spin.toml",
            ),
            (
                "[key_value_stor.default]\n",
                "rc.toml:1:2: key_value_stor: unknown field `key_value_stor`",
            ),
            (
                "[[variables_provider]]\ntype = \"vault\"\nurl = \"http://127.0.0.1:8200\"\n",
                "rc.toml:1:1: variables_provider.type: trib does not implement Spin's vault and azure_key_vault providers",
            ),
            (
                "[[variables_provider]]\ntype = \"env\"\n[[config_provider]]\ntype = \"env\"\n",
                "rc.toml:1:1: config_provider: give [[variables_provider]] or the older [[config_provider]], not both",
            ),
            (
                "[llm_compute]\ntype = \"spin\"\n",
                "rc.toml:1:1: llm_compute: trib does not implement Spin's Serverless AI",
            ),
            (
                "[outbound_networking]\nblock_networks = [\"10.0.0.0/33\"]\n",
                "rc.toml:2:18: outbound_networking.block_networks: \"10.0.0.0/33\" is not an IP network",
            ),
            (
                "[[client_tls]]\ncomponent_ids = [\"nope\"]\nhosts = [\"example.com\"]\n",
                "rc.toml:2:18: client_tls.component_ids: the manifest defines no component \"nope\"",
            ),
            (
                "[[client_tls]]\ncomponent_ids = [\"api\"]\nhosts = [\"example.com\"]\nca_roots_file = \"missing-ca.pem\"\n",
                "rc.toml:1:1: client_tls: ca_roots_file: cannot use missing-ca.pem",
            ),
        ];
        for (text, want) in cases {
            let err = parse(Path::new("rc.toml"), text, &app())
                .expect_err(text)
                .to_string();
            assert!(err.starts_with(want), "{text:?}\n got: {err}\nwant: {want}");
        }
    }
}
