//! `runtime-config.toml` in Spin's format: where key-value stores and
//! SQLite databases live. trib's own per-component settings are not here
//! (Spin would refuse the file): they live in `[component.ID.tool.trib]`
//! in `spin.toml` (see [`crate::manifest::ScalingPolicy`]).
//!
//! Unknown keys are errors: a typo must not silently change where data
//! goes.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::config_file::{ConfigFileError, Locator};
pub use crate::duration::{DurationError, parse_duration};
use crate::manifest::{App, Component};
pub use crate::manifest::{DEFAULT_IDLE_TIMEOUT, ScalingPolicy};

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
    Ok(RuntimeConfig {
        key_value_stores,
        sqlite_databases,
        state_dir: StateDir::Default,
        reuse: (None, None),
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
        ];
        for (text, want) in cases {
            let err = parse(Path::new("rc.toml"), text, &app())
                .expect_err(text)
                .to_string();
            assert!(err.starts_with(want), "{text:?}\n got: {err}\nwant: {want}");
        }
    }
}
