//! `runtime-config.toml`: host settings that must not go into `spin.toml`
//! (which has to stay valid for the real Spin CLI).
//!
//! ```toml
//! [component.ingest]
//! max_concurrency = 8          # requests in flight at once; more wait in the queue
//! min_warm = 1                 # keep loaded and linked: never lazy, never scaled to zero
//! idle_timeout = "5m"          # unload after this long without requests
//! max_requests_per_instance = 1        # >1 reuses WASIp3 instances
//! max_concurrent_requests_per_instance = 1
//! ```
//!
//! Unknown keys, and sections for components the manifest does not define,
//! are errors: a typo must not silently leave a component unlimited.

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::config_file::{ConfigFileError, Locator};
use crate::manifest::App;

/// How one component scales.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingPolicy {
    /// Requests in flight at once (`None`: bounded only by the pool).
    pub max_concurrency: Option<usize>,
    /// Keep this component loaded and linked from startup on (any value > 0).
    pub min_warm: usize,
    /// Unload after this long without requests (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Requests one instance serves over its life (1: fresh instance per request).
    pub max_requests_per_instance: usize,
    /// Requests one instance serves at the same time (WASIp3 only).
    pub max_concurrent_requests_per_instance: usize,
}

/// Components nobody calls for this long are unloaded unless configured
/// otherwise; reloading from the compile cache takes milliseconds.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

impl Default for ScalingPolicy {
    fn default() -> Self {
        Self {
            max_concurrency: None,
            min_warm: 0,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_requests_per_instance: 1,
            max_concurrent_requests_per_instance: 1,
        }
    }
}

/// The validated runtime config.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Scaling policy by component ID; absent components use the default.
    pub components: IndexMap<String, ScalingPolicy>,
    /// Key-value stores by label (`default` may be overridden).
    pub key_value_stores: IndexMap<String, KeyValueStoreConfig>,
    /// SQLite databases by label (`default` may be overridden).
    pub sqlite_databases: IndexMap<String, SqliteDatabaseConfig>,
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
    /// The policy for `component`.
    pub fn scaling(&self, component: &str) -> ScalingPolicy {
        self.components.get(component).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    #[serde(default)]
    component: IndexMap<Spanned<String>, RawScaling>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScaling {
    max_concurrency: Option<Spanned<usize>>,
    #[serde(default)]
    min_warm: usize,
    idle_timeout: Option<Spanned<String>>,
    max_requests_per_instance: Option<Spanned<usize>>,
    max_concurrent_requests_per_instance: Option<Spanned<usize>>,
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
    let mut components = IndexMap::new();
    for (id, raw) in raw.component {
        let field = |f: &str| format!("component.{}.{f}", id.get_ref());
        if app.component(id.get_ref()).is_none() {
            return Err(loc.error(
                id.span().start,
                format!("component.{}", id.get_ref()),
                format!(
                    "the manifest defines no component {:?} (check the name against [component.NAME] in {})",
                    id.get_ref(),
                    app.manifest_path.display()
                ),
            ));
        }
        let positive =
            |v: &Option<Spanned<usize>>, name: &str| -> Result<Option<usize>, ConfigFileError> {
                match v {
                    Some(n) if *n.get_ref() == 0 => {
                        Err(loc.error(n.span().start, field(name), "must be at least 1"))
                    }
                    Some(n) => Ok(Some(*n.get_ref())),
                    None => Ok(None),
                }
            };
        let idle_timeout = match &raw.idle_timeout {
            None => Some(DEFAULT_IDLE_TIMEOUT),
            Some(s) if s.get_ref() == "never" => None,
            Some(s) => Some(parse_duration(s.get_ref()).map_err(|e| {
                loc.error(
                    s.span().start,
                    field("idle_timeout"),
                    format!("{e} (or \"never\")"),
                )
            })?),
        };
        let policy = ScalingPolicy {
            max_concurrency: positive(&raw.max_concurrency, "max_concurrency")?,
            min_warm: raw.min_warm,
            idle_timeout: if raw.min_warm > 0 { None } else { idle_timeout },
            max_requests_per_instance: positive(
                &raw.max_requests_per_instance,
                "max_requests_per_instance",
            )?
            .unwrap_or(1),
            max_concurrent_requests_per_instance: positive(
                &raw.max_concurrent_requests_per_instance,
                "max_concurrent_requests_per_instance",
            )?
            .unwrap_or(1),
        };
        components.insert(id.into_inner(), policy);
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
        components,
        key_value_stores,
        sqlite_databases,
    })
}

/// A duration that a flag or `runtime-config.toml` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not digits followed by a unit.
    #[error("{0:?} is not a duration like 30s, 500ms or 2m")]
    Malformed(String),
    /// Digits followed by something other than `ms`, `s`, `m` or `h`.
    #[error("{text:?}: unknown unit {unit:?} (use ms, s, m or h)")]
    UnknownUnit {
        /// The whole duration, trimmed.
        text: String,
        /// What stood where the unit goes.
        unit: String,
    },
    /// More than a `Duration` holds.
    #[error("{0:?} is too long")]
    TooLong(String),
}

/// Parses `30s`, `500ms`, `2m` or `1h` (a bare number is seconds).
///
/// Only this one-number, one-unit form is accepted (not `humantime`'s
/// `1h 30m` or `5 days`), so that every duration in a config reads the same
/// way in trib and in the docs; `humantime` does the arithmetic, checked
/// against overflow.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    if number.is_empty() {
        return Err(DurationError::Malformed(s.to_owned()));
    }
    let unit = match unit.trim() {
        "" => "s",
        unit @ ("ms" | "s" | "m" | "h") => unit,
        other => {
            return Err(DurationError::UnknownUnit {
                text: s.to_owned(),
                unit: other.to_owned(),
            });
        }
    };
    humantime::parse_duration(&format!("{number}{unit}")).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => DurationError::TooLong(s.to_owned()),
        _ => DurationError::Malformed(s.to_owned()),
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
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 5 s "), Ok(Duration::from_secs(5)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 days").is_err());
        assert!(parse_duration("1h30m").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn duration_errors_say_what_is_wrong() {
        let message = |s: &str| parse_duration(s).expect_err(s).to_string();
        assert_eq!(
            message("soon"),
            "\"soon\" is not a duration like 30s, 500ms or 2m"
        );
        assert_eq!(
            message("5 days"),
            "\"5 days\": unknown unit \"days\" (use ms, s, m or h)"
        );
        // Overflow is refused, never wrapped (found by tests/fuzz).
        for s in [
            "18446744073709551615m",
            "99999999999999999999",
            "307445734561825861h",
        ] {
            assert_eq!(message(s), format!("{s:?} is too long"));
        }
    }

    #[test]
    fn policies_parse_and_default() {
        let text = "[component.api]\nmax_concurrency = 2\nidle_timeout = \"1s\"\n";
        let config = parse(Path::new("rc.toml"), text, &app()).expect("valid");
        let p = config.scaling("api");
        assert_eq!(p.max_concurrency, Some(2));
        assert_eq!(p.idle_timeout, Some(Duration::from_secs(1)));
        assert_eq!(config.scaling("other"), ScalingPolicy::default());
    }

    #[test]
    fn min_warm_disables_scale_to_zero() {
        let text = "[component.api]\nmin_warm = 1\nidle_timeout = \"1s\"\n";
        let config = parse(Path::new("rc.toml"), text, &app()).expect("valid");
        assert_eq!(config.scaling("api").idle_timeout, None);
    }

    #[test]
    fn mistakes_are_located_errors() {
        let cases = [
            (
                "[component.apii]\nmax_concurrency = 2\n",
                "rc.toml:1:12: component.apii: the manifest defines no component \"apii\"",
            ),
            (
                "[component.api]\nmax_concurency = 2\n",
                "rc.toml:2:1: component.api.max_concurency: unknown field `max_concurency`",
            ),
            (
                "[component.api]\nmax_concurrency = 0\n",
                "rc.toml:2:19: component.api.max_concurrency: must be at least 1",
            ),
            (
                "[component.api]\nidle_timeout = \"soon\"\n",
                "rc.toml:2:16: component.api.idle_timeout: \"soon\" is not a duration",
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
