//! Application variables: where values come from and what each component sees.
//!
//! Providers are asked in order: `--variable` flags, the `.env`-style file
//! given with `--variables-file`, the runtime config's
//! `[[variables_provider]]`s in their order, then Spin's default provider:
//! `SPIN_VARIABLE_<NAME>` environment variables, then the same names in a
//! `.env` file in the app directory;
//! the manifest's `default` comes last. A component sees only the names in
//! its `[component.X.variables]`, each a template over application
//! variables (`"https://{{ api_host }}/v1"`). Everything is resolved once,
//! at startup: a required variable without a value stops `trib up` with its
//! name, and values (secret or not) never reach a log line.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::manifest::template::{self, Part};
use crate::manifest::{App, Component};

/// Where variable values come from, besides the manifest defaults.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    cli: HashMap<String, String>,
    file: HashMap<String, String>,
    /// The runtime config's providers, in order.
    configured: Vec<HashMap<String, String>>,
    env: HashMap<String, String>,
}

/// One `[[variables_provider]]` of the runtime config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderConfig {
    /// `type = "env"`: `PREFIX_NAME` environment variables (prefix
    /// `SPIN_VARIABLE` by default; an empty prefix means bare names), then
    /// the same names in `dotenv_path` if given.
    Env {
        /// `prefix`.
        prefix: Option<String>,
        /// `dotenv_path`, resolved against the runtime config's directory.
        dotenv_path: Option<std::path::PathBuf>,
    },
    /// `type = "static"`: fixed `values`.
    Static(IndexMap<String, String>),
}

/// Spin's default environment prefix.
const DEFAULT_PREFIX: &str = "SPIN_VARIABLE";

/// A variable that cannot be resolved at startup.
#[derive(Debug, thiserror::Error)]
pub enum VariableError {
    /// A required variable has no value.
    #[error("variable {name:?} is required but has no value: set SPIN_VARIABLE_{} or add it to the --variables-file", name.to_ascii_uppercase())]
    Missing {
        /// The variable.
        name: String,
    },
    /// The variables file is unreadable or malformed.
    #[error("{path}:{line}: {reason}")]
    File {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl Providers {
    /// Providers reading the process environment and, if given, a
    /// `.env`-style file.
    ///
    /// The file is read as other `.env` tools read it (the `dotenvy` crate):
    /// `NAME=value` lines, `#` comments, an optional `export ` prefix, values
    /// in single quotes kept as written, values in double quotes with `\`
    /// escapes, and `$NAME` / `${NAME}` in unquoted or double-quoted values
    /// replaced by the process environment or an earlier line. A name may
    /// carry the `SPIN_VARIABLE_` prefix; names are case-insensitive.
    pub fn from_env(file: Option<&Path>) -> Result<Self, VariableError> {
        let env = prefixed(std::env::vars(), DEFAULT_PREFIX);
        let file = match file {
            Some(path) => parse_env_file(path)?,
            None => HashMap::new(),
        };
        Ok(Self {
            cli: HashMap::new(),
            file,
            configured: Vec::new(),
            env,
        })
    }

    /// Adds the runtime config's providers and the default `.env` of the
    /// app in `app_dir`, as Spin's default provider reads it (only
    /// `SPIN_VARIABLE_` names; the process environment wins over it). A
    /// `dotenv_path` that does not exist is skipped with a warning, as
    /// Spin skips it.
    pub fn with_runtime_config(
        mut self,
        providers: &[ProviderConfig],
        app_dir: &Path,
    ) -> Result<Self, VariableError> {
        for provider in providers {
            self.configured.push(match provider {
                ProviderConfig::Static(values) => values
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
                ProviderConfig::Env {
                    prefix,
                    dotenv_path,
                } => {
                    let prefix = prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
                    let mut values = match dotenv_path {
                        Some(path) if path.is_file() => {
                            prefixed(read_env_file(path)?, prefix)
                        }
                        Some(path) => {
                            tracing::warn!(path = %path.display(), "variables_provider dotenv_path does not exist: skipped");
                            HashMap::new()
                        }
                        None => HashMap::new(),
                    };
                    values.extend(prefixed(std::env::vars(), prefix));
                    values
                }
            });
        }
        let dotenv = app_dir.join(".env");
        if dotenv.is_file() {
            let mut env = prefixed(read_env_file(&dotenv)?, DEFAULT_PREFIX);
            env.extend(std::mem::take(&mut self.env));
            self.env = env;
        }
        Ok(self)
    }

    /// Adds `--variable` values, which win over every other provider (as
    /// in Spin). Names are case-insensitive.
    pub fn with_cli_values(mut self, values: impl IntoIterator<Item = (String, String)>) -> Self {
        self.cli = values
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        self
    }

    /// Providers with fixed values (for embedding and tests).
    pub fn fixed(values: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            file: values.into_iter().collect(),
            ..Self::default()
        }
    }

    fn lookup(&self, name: &str) -> Option<&String> {
        self.cli
            .get(name)
            .or_else(|| self.file.get(name))
            .or_else(|| self.configured.iter().find_map(|layer| layer.get(name)))
            .or_else(|| self.env.get(name))
    }
}

/// The entries named `PREFIX_NAME` (bare `NAME` for an empty prefix), by
/// lower-case `NAME`.
fn prefixed(
    entries: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
) -> HashMap<String, String> {
    entries
        .into_iter()
        .filter_map(|(key, value)| {
            let name = if prefix.is_empty() {
                Some(key.as_str())
            } else {
                key.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
            };
            name.map(|n| (n.to_ascii_lowercase(), value))
        })
        .collect()
}

/// The variables in the `--variables-file` at `path`, by lowercase name
/// with or without the `SPIN_VARIABLE_` prefix; the last line naming a
/// variable wins.
fn parse_env_file(path: &Path) -> Result<HashMap<String, String>, VariableError> {
    Ok(read_env_file(path)?
        .into_iter()
        .map(|(key, value)| {
            let key = key.strip_prefix("SPIN_VARIABLE_").unwrap_or(&key);
            (key.to_ascii_lowercase(), value)
        })
        .collect())
}

/// The entries of the `.env` file at `path`, in file order (a later line
/// naming the same key wins when collected).
fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, VariableError> {
    let err = |line: usize, reason: String| VariableError::File {
        path: path.display().to_string(),
        line,
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(0, e.to_string()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = LineByLine {
        rest: text.as_bytes(),
        lines: 0,
    };
    let mut values = Vec::new();
    let mut entries = dotenvy::from_read_iter(&mut reader);
    let failure = loop {
        match entries.next() {
            None => break None,
            Some(Ok(entry)) => values.push(entry),
            Some(Err(e)) => break Some(e),
        }
    };
    drop(entries);
    match failure {
        None => Ok(values),
        // The message leaves the line's text out: it may hold a secret.
        Some(dotenvy::Error::LineParse(text, _)) => {
            // An entry may span lines (a quoted value with newlines); name
            // the line it starts on.
            let spanned = text.trim_end_matches(['\n', '\r']).matches('\n').count();
            Err(err(
                reader.lines.saturating_sub(spanned).max(1),
                "expected NAME=value (quote a value that holds spaces, and close every quote)"
                    .into(),
            ))
        }
        Some(e) => Err(err(reader.lines.max(1), e.to_string())),
    }
}

/// Hands the text to the `.env` parser one line per read, so that the lines
/// it has consumed when it fails say where the failure is (the parser
/// reports the failing text, not its line number).
struct LineByLine<'a> {
    rest: &'a [u8],
    /// Lines handed out whole so far.
    lines: usize,
}

impl std::io::Read for LineByLine<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let line = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.rest.len(), |i| i + 1);
        let n = line.min(buf.len());
        let (chunk, rest) = self.rest.split_at(n);
        buf[..n].copy_from_slice(chunk);
        self.rest = rest;
        if n > 0 && n == line {
            self.lines += 1;
        }
        Ok(n)
    }
}

/// Every application variable's value, resolved once.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    values: HashMap<String, String>,
}

/// What a component may read: its variable names, each resolved or not.
#[derive(Debug, Clone, Default)]
pub struct ComponentVariables {
    values: IndexMap<String, Result<String, String>>,
}

/// Why a component's variable read fails, in Spin's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The name is not a valid variable name.
    InvalidName(String),
    /// The component has no such variable.
    Undefined(String),
    /// No provider has a value for an application variable it uses.
    Provider(String),
}

/// Resolves every application variable and fails on a required one
/// without a value.
pub fn resolve(app: &App, providers: &Providers) -> Result<Resolved, VariableError> {
    let mut values = HashMap::new();
    for (name, var) in &app.variables {
        match providers.lookup(name).or(var.default.as_ref()) {
            Some(value) => {
                values.insert(name.clone(), value.clone());
            }
            None if var.required => {
                return Err(VariableError::Missing { name: name.clone() });
            }
            None => {}
        }
    }
    Ok(Resolved { values })
}

impl Resolved {
    /// Expands `{{ name }}` templates; names were checked against the
    /// manifest when it was loaded.
    pub fn expand(&self, template: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len());
        for part in template::parts(template) {
            match part.map_err(|e| e.to_string())? {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(
                    self.values
                        .get(name)
                        .ok_or_else(|| format!("no provider resolved variable {name:?}"))?,
                ),
            }
        }
        Ok(out)
    }

    /// The variables `component` may read.
    pub fn for_component(&self, component: &Component) -> Arc<ComponentVariables> {
        Arc::new(ComponentVariables {
            values: component
                .variables
                .iter()
                .map(|(name, template)| (name.clone(), self.expand(template)))
                .collect(),
        })
    }
}

impl ComponentVariables {
    /// The value of `name`, with Spin's error cases.
    pub fn get(&self, name: &str) -> Result<String, Lookup> {
        if let Err(reason) = check_name(name) {
            return Err(Lookup::InvalidName(format!("{name:?}: {reason}")));
        }
        match self.values.get(name) {
            Some(Ok(value)) => Ok(value.clone()),
            Some(Err(reason)) => Err(Lookup::Provider(reason.clone())),
            None => Err(Lookup::Undefined(format!(
                "no variable {name:?} for this component"
            ))),
        }
    }

    /// Every variable that resolved, for `wasi:config/store.get-all`.
    pub fn all(&self) -> Result<Vec<(String, String)>, Lookup> {
        self.values
            .iter()
            .map(|(k, v)| match v {
                Ok(v) => Ok((k.clone(), v.clone())),
                Err(reason) => Err(Lookup::Provider(reason.clone())),
            })
            .collect()
    }
}

/// Spin's rule for names a guest may ask for.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("variable names must not be empty".into());
    };
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "invalid character {bad:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ));
    }
    if !first.is_ascii_lowercase() {
        return Err("variable names must start with a letter".into());
    }
    if name.ends_with('_') || name.contains("__") {
        return Err("variable names must not end with or repeat an underscore".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(text: &str) -> App {
        crate::manifest::parse(Path::new("spin.toml"), text).expect("valid manifest")
    }

    const APP: &str = r#"spin_manifest_version = 2
[application]
name = "vars"
[variables]
api_host = { default = "example.com" }
token = { required = true, secret = true }
optional = {}
[component.api]
source = "api.wasm"
[component.api.variables]
url = "https://{{ api_host }}/v1"
auth = "Bearer {{ token }}"
maybe = "{{ optional }}"
"#;

    #[test]
    fn providers_then_defaults_then_required() {
        let app = app(APP);
        let missing = resolve(&app, &Providers::default()).expect_err("token is required");
        assert!(missing.to_string().contains("\"token\""), "{missing}");
        assert!(
            missing.to_string().contains("SPIN_VARIABLE_TOKEN"),
            "{missing}"
        );
        let providers = Providers::fixed([("token".into(), "s3cret".into())]);
        let resolved = resolve(&app, &providers).expect("resolves");
        let vars = resolved.for_component(&app.components["api"]);
        assert_eq!(vars.get("url"), Ok("https://example.com/v1".into()));
        assert_eq!(vars.get("auth"), Ok("Bearer s3cret".into()));
        assert!(matches!(vars.get("maybe"), Err(Lookup::Provider(_))));
        assert!(matches!(vars.get("nope"), Err(Lookup::Undefined(_))));
        assert!(matches!(vars.get("Bad-Name"), Err(Lookup::InvalidName(_))));
    }

    #[test]
    fn runtime_config_providers_come_in_order_and_the_app_env_file_last() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join(".env"),
            "SPIN_VARIABLE_TOKEN=from-app-dotenv\nSPIN_VARIABLE_API_HOST=dotenv.example\nOPTIONAL=unprefixed-is-ignored\n",
        )
        .expect("write .env");
        let custom = dir.path().join("custom.env");
        std::fs::write(
            &custom,
            "TRIBTEST_API_HOST=custom.example\nAPI_HOST=no-prefix\n",
        )
        .expect("write custom");
        let app = app(APP);
        let resolve_with = |providers: &[ProviderConfig]| {
            let p = Providers::default()
                .with_runtime_config(providers, dir.path())
                .expect("providers");
            let resolved = resolve(&app, &p).expect("resolves");
            let vars = resolved.for_component(&app.components["api"]);
            (
                vars.get("url"),
                vars.get("auth"),
                vars.get("maybe").is_err(),
            )
        };
        // The app's .env alone: only SPIN_VARIABLE_ names.
        assert_eq!(
            resolve_with(&[]),
            (
                Ok("https://dotenv.example/v1".into()),
                Ok("Bearer from-app-dotenv".into()),
                true
            )
        );
        // A configured env provider with its own prefix and dotenv wins
        // over the default one; a static provider before it wins over it.
        let env = ProviderConfig::Env {
            prefix: Some("TRIBTEST".into()),
            dotenv_path: Some(custom.clone()),
        };
        assert_eq!(
            resolve_with(std::slice::from_ref(&env)).0,
            Ok("https://custom.example/v1".into())
        );
        let fixed = ProviderConfig::Static(IndexMap::from([(
            "API_HOST".to_owned(),
            "static.example".to_owned(),
        )]));
        assert_eq!(
            resolve_with(&[fixed, env]).0,
            Ok("https://static.example/v1".into())
        );
        // A missing dotenv_path is skipped, as in Spin.
        let missing = ProviderConfig::Env {
            prefix: None,
            dotenv_path: Some(dir.path().join("absent.env")),
        };
        assert_eq!(
            resolve_with(&[missing]).0,
            Ok("https://dotenv.example/v1".into())
        );
        // An empty prefix reads bare names.
        let bare = ProviderConfig::Env {
            prefix: Some(String::new()),
            dotenv_path: Some(custom),
        };
        assert_eq!(resolve_with(&[bare]).0, Ok("https://no-prefix/v1".into()));
    }

    /// `text` written to a file and read as a variables file.
    fn env_file(text: &str) -> Result<HashMap<String, String>, VariableError> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("vars.env");
        std::fs::write(&path, text).expect("write");
        parse_env_file(&path)
    }

    #[test]
    fn env_files_parse() {
        let values = env_file(
            "# comment\nTOKEN=abc\nexport api_host=\"h.example\"\nSPIN_VARIABLE_OTHER='x y'\n",
        )
        .expect("parses");
        assert_eq!(values["token"], "abc");
        assert_eq!(values["api_host"], "h.example");
        assert_eq!(values["other"], "x y");
        assert!(
            env_file("no equals sign\n")
                .expect_err("bad line")
                .to_string()
                .contains(":1:")
        );
    }

    #[test]
    fn env_file_errors_name_the_line_and_never_the_value() {
        let error = |text: &str| env_file(text).expect_err(text).to_string();
        let e = error("# comment\n\nTOKEN=abc\nsecret=two words\n");
        assert!(e.contains(":4: expected NAME=value"), "{e}");
        assert!(!e.contains("two words"), "the value leaked: {e}");
        // A quoted value may span lines; a later mistake is on its own line.
        let e = error("A=\"one\ntwo\"\nB=1\n=nothing\n");
        assert!(e.contains(":4:"), "{e}");
        // An unclosed quote is reported where its entry starts.
        let e = error("A=1\nB=\"open\nC=2\n");
        assert!(e.contains(":2:"), "{e}");
    }

    #[test]
    fn env_files_follow_the_dotenv_format() {
        let values = env_file(
            "\u{feff}TRIB_T=1 # comment\nB='$TRIB_T stays'\nC=\"${TRIB_T}x\"\nD=\"two\nlines\"\nTRIB_T=2\n",
        )
        .expect("parses");
        assert_eq!(
            values["trib_t"], "2",
            "the last line naming a variable wins"
        );
        assert_eq!(values["b"], "$TRIB_T stays");
        assert_eq!(values["c"], "1x");
        assert_eq!(values["d"], "two\nlines");
    }
}
