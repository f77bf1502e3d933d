//! Values of `trib up` flags that `spin up` reads the same way: `-e
//! KEY=VALUE`, `--key-value KEY=VALUE`, `--variable KEY=VALUE | KEY=@FILE |
//! @FILE.json | @FILE.toml`, `--from FILE.wasm`, and where the manifest is
//! when no `--from` is given.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `KEY=VALUE` as `-e` and `--key-value` take it; the value may hold `=`.
pub fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// One `--variable` argument.
#[derive(Clone, PartialEq, Eq)]
pub enum VariableSource {
    /// `KEY=VALUE`.
    Literal(String, String),
    /// `KEY=@FILE`: the value is the file's text.
    FileContent(String, PathBuf),
    /// `@FILE.json` or `@FILE.toml`: a table of names to values.
    Table(PathBuf),
}

/// Values stay out of `Debug`: a `--variable` may carry a secret.
impl std::fmt::Debug for VariableSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Literal(name, _) => write!(f, "Literal({name:?}, ***)"),
            Self::FileContent(name, path) => write!(f, "FileContent({name:?}, {path:?})"),
            Self::Table(path) => write!(f, "Table({path:?})"),
        }
    }
}

/// A `--variable` that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum VariableSourceError {
    /// A file named with `@` is unreadable.
    #[error("--variable: cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A table file holds something other than names to strings.
    #[error("--variable: {path}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong (never a value).
        reason: String,
    },
}

impl VariableSource {
    /// Reads the flag's text (files are read later, by [`Self::values`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(file) = text.strip_prefix('@') {
            let path = PathBuf::from(file);
            return match path.extension().and_then(|e| e.to_str()) {
                Some("json" | "toml") => Ok(Self::Table(path)),
                _ => Err(format!(
                    "--variable @{file}: a file of variables must end in .json or .toml (or use KEY=@FILE for one value)"
                )),
            };
        }
        let (name, value) = parse_pair(text)?;
        Ok(match value.strip_prefix('@') {
            Some(file) => Self::FileContent(name, PathBuf::from(file)),
            None => Self::Literal(name, value),
        })
    }

    /// The names and values this source gives.
    pub fn values(&self) -> Result<Vec<(String, String)>, VariableSourceError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| VariableSourceError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        };
        match self {
            Self::Literal(name, value) => Ok(vec![(name.clone(), value.clone())]),
            Self::FileContent(name, path) => Ok(vec![(name.clone(), read(path)?)]),
            Self::Table(path) => {
                let text = read(path)?;
                let malformed = |reason: String| VariableSourceError::Malformed {
                    path: path.display().to_string(),
                    reason,
                };
                let table: HashMap<String, String> =
                    if path.extension().is_some_and(|e| e == "json") {
                        serde_json::from_str(&text).map_err(|e| {
                            malformed(format!(
                                "expected a JSON object of names to strings (line {}, column {})",
                                e.line(),
                                e.column()
                            ))
                        })?
                    } else {
                        toml::from_str(&text).map_err(|e| {
                            malformed(format!(
                                "expected a TOML table of names to strings{}",
                                e.span()
                                    .map(|s| format!(" (at byte {})", s.start))
                                    .unwrap_or_default()
                            ))
                        })?
                    };
                Ok(table.into_iter().collect())
            }
        }
    }
}

/// Every `--variable` merged; a later argument wins over an earlier one.
pub fn variable_values(
    sources: &[VariableSource],
) -> Result<HashMap<String, String>, VariableSourceError> {
    let mut values = HashMap::new();
    for source in sources {
        values.extend(source.values()?);
    }
    Ok(values)
}

/// How far up `spin up` looks for a `spin.toml` when none is given.
const MAX_ANCESTORS: usize = 10;

/// The manifest to use when no `--from` is given: `spin.toml` here, else the
/// nearest one in a parent directory (as `spin up` finds it).
pub fn find_manifest(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .take(MAX_ANCESTORS + 1)
        .map(|dir| dir.join("spin.toml"))
        .find(|candidate| candidate.is_file())
}

/// The one-component app `spin up --from FILE.wasm` runs: the component
/// serves every path (`/...`), and the app's directory is the working
/// directory, as in Spin. Returns the manifest text and the path to parse
/// it as.
pub fn single_wasm_manifest(wasm: &Path, working_dir: &Path) -> (String, PathBuf) {
    let stem = wasm
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("wasm-file");
    let id = component_id(stem);
    let source = std::path::absolute(wasm).unwrap_or_else(|_| wasm.to_path_buf());
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = {name}\n[[trigger.http]]\nroute = \"/...\"\ncomponent = {id}\n[component.{id}]\nsource = {source}\n",
        name = toml_string(stem),
        id = toml_string(&id),
        source = toml_string(&source.display().to_string()),
    );
    (text, working_dir.join(format!("{stem}.wasm")))
}

/// A component ID (lowercase words joined by `-`) made from a file name.
fn component_id(stem: &str) -> String {
    let words: Vec<String> = stem
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    match words.first() {
        Some(first) if first.starts_with(|c: char| c.is_ascii_alphabetic()) => words.join("-"),
        Some(_) => format!("wasm-{}", words.join("-")),
        None => "wasm-file".to_owned(),
    }
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals() {
        assert_eq!(
            parse_pair("A=b=c").expect("test input"),
            ("A".into(), "b=c".into())
        );
        assert_eq!(
            parse_pair("A=").expect("test input"),
            ("A".into(), String::new())
        );
        assert!(parse_pair("A").is_err());
        assert!(parse_pair("=x").is_err());
    }

    #[test]
    fn variables_come_from_literals_files_and_tables_last_wins() {
        let dir = tempfile::tempdir().expect("test input");
        std::fs::write(dir.path().join("token.txt"), "s3cret").expect("test input");
        std::fs::write(dir.path().join("v.json"), r#"{"a": "json", "b": "json"}"#)
            .expect("test input");
        std::fs::write(dir.path().join("v.toml"), "b = \"toml\"\n").expect("test input");
        let at = |f: &str| format!("{}", dir.path().join(f).display());
        let sources: Vec<VariableSource> = [
            format!("@{}", at("v.json")),
            format!("@{}", at("v.toml")),
            format!("token=@{}", at("token.txt")),
            "c=lit=eral".to_owned(),
        ]
        .iter()
        .map(|s| VariableSource::parse(s).expect("test input"))
        .collect();
        let values = variable_values(&sources).expect("test input");
        assert_eq!(values["a"], "json");
        assert_eq!(values["b"], "toml");
        assert_eq!(values["token"], "s3cret");
        assert_eq!(values["c"], "lit=eral");
        assert!(!format!("{sources:?}").contains("lit=eral"));
        assert!(VariableSource::parse("@vars.yaml").is_err());
        let missing = VariableSource::parse("x=@/nonexistent/file").expect("test input");
        assert!(
            missing
                .values()
                .expect_err("must fail")
                .to_string()
                .contains("/nonexistent/file")
        );
    }

    #[test]
    fn a_malformed_table_is_named_without_its_values() {
        let dir = tempfile::tempdir().expect("test input");
        let path = dir.path().join("v.json");
        std::fs::write(&path, r#"{"a": 1234567}"#).expect("test input");
        let err = VariableSource::Table(path)
            .values()
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("v.json") && !err.contains("1234567"), "{err}");
    }

    #[test]
    fn the_manifest_is_found_in_a_parent_directory() {
        let dir = tempfile::tempdir().expect("test input");
        let deep = dir.path().join("a/b");
        std::fs::create_dir_all(&deep).expect("test input");
        assert_eq!(find_manifest(&deep), None);
        std::fs::write(dir.path().join("spin.toml"), "").expect("test input");
        assert_eq!(find_manifest(&deep), Some(dir.path().join("spin.toml")));
    }

    #[test]
    fn a_wasm_file_becomes_a_catch_all_app() {
        let (text, path) = single_wasm_manifest(Path::new("/x/My_Hello.wasm"), Path::new("/w"));
        assert_eq!(path, Path::new("/w/My_Hello.wasm"));
        assert!(text.contains("component = \"my-hello\""), "{text}");
        assert!(text.contains("route = \"/...\""));
        assert!(text.contains("source = \"/x/My_Hello.wasm\""));
        assert_eq!(component_id("1x"), "wasm-1x");
    }
}
