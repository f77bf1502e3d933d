//! `[component.ID.dependencies]`: the keys (which imports a dependency
//! satisfies, [`DependencyName`]) and the values (where the dependency's
//! component is), checked as Spin checks them
//! (`ComponentDependencies::validate`).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::names::is_kebab;
use super::raw::RawComponent;
use super::{Dependency, ManifestError};
use crate::config_file::Locator;

/// The key of a dependency: which imports of the component it satisfies
/// (Spin's `DependencyName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyName {
    /// `foo-bar`: matches the plain-named import `foo-bar` only.
    Plain(String),
    /// `ns:pkg[/iface][@version]`: every import of the package, or of one
    /// interface, at any version or at exactly `version`.
    Package {
        /// `ns:pkg`.
        package: String,
        /// `iface`, when the key names one interface.
        interface: Option<String>,
        /// The version, when the key gives one.
        version: Option<semver::Version>,
    },
}

/// A dependency key that is neither a kebab-case name nor a package name;
/// the message lists the forms a key may take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDependencyName {
    /// The key does not have the shape of any form.
    #[error("{key:?} is not a valid dependency name: {FORMS}")]
    Malformed {
        /// The key as written.
        key: String,
    },
    /// The text after `@` is not a semantic version.
    #[error("{version:?} in {key:?} is not a semantic version ({reason}): {FORMS}")]
    Version {
        /// The key as written.
        key: String,
        /// The text after `@`.
        version: String,
        /// Why `semver` refused it.
        reason: String,
    },
}

/// The forms of a dependency key, for error messages.
const FORMS: &str = "use a kebab-case name (\"my-dep\") or a package name: \"ns:pkg\", \"ns:pkg@1.0.0\", \"ns:pkg/iface\" or \"ns:pkg/iface@1.0.0\"";

impl FromStr for DependencyName {
    type Err = InvalidDependencyName;

    /// Parses a dependency key as Spin's `DependencyName::from_str` does.
    fn from_str(key: &str) -> Result<Self, Self::Err> {
        let malformed = || InvalidDependencyName::Malformed {
            key: key.to_owned(),
        };
        if !key.contains([':', '/']) {
            return if is_kebab(key) {
                Ok(Self::Plain(key.to_owned()))
            } else {
                Err(malformed())
            };
        }
        let (name, version) = match key.split_once('@') {
            Some((name, version)) => match semver::Version::parse(version) {
                Ok(v) => (name, Some(v)),
                Err(e) => {
                    return Err(InvalidDependencyName::Version {
                        key: key.to_owned(),
                        version: version.to_owned(),
                        reason: e.to_string(),
                    });
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
            return Err(malformed());
        }
        Ok(Self::Package {
            package: package.to_owned(),
            interface: interface.map(str::to_owned),
            version,
        })
    }
}

impl fmt::Display for DependencyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(name) => f.write_str(name),
            Self::Package {
                package,
                interface,
                version,
            } => {
                f.write_str(package)?;
                if let Some(interface) = interface {
                    write!(f, "/{interface}")?;
                }
                if let Some(version) = version {
                    write!(f, "@{version}")?;
                }
                Ok(())
            }
        }
    }
}

impl DependencyName {
    /// Why this key and `other` would satisfy the same import (Spin's
    /// `check_disjoint`), or `None` when they are disjoint.
    fn conflict(&self, other: &Self) -> Option<&'static str> {
        let (
            Self::Package {
                package: pa,
                interface: ia,
                version: va,
            },
            Self::Package {
                package: pb,
                interface: ib,
                version: vb,
            },
        ) = (self, other)
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

    /// A file-name hint for the fix in an error message.
    fn file_stem_hint(&self) -> String {
        match self {
            Self::Plain(n) => n.clone(),
            Self::Package {
                package, interface, ..
            } => interface
                .clone()
                .unwrap_or_else(|| package.replace(':', "-")),
        }
    }
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

/// `[component.ID.dependencies]`, checked as Spin checks it: keys must be
/// plain kebab names or `ns:pkg[/iface][@version]`; only local
/// `{ path, export }` values are supported; `export` needs a key that names
/// one interface (or a plain key); and two keys of one package must differ
/// in interface or in (semver-compatible) version.
pub(super) fn dependencies(
    loc: &Locator<'_>,
    root: &Path,
    id: &str,
    raw: &RawComponent,
) -> Result<Vec<Dependency>, ManifestError> {
    let mut out: Vec<Dependency> = Vec::new();
    for (key, value) in &raw.dependencies {
        let field = format!("component.{id}.dependencies.{:?}", key.get_ref());
        let at = key.span().start;
        let name: DependencyName = key
            .get_ref()
            .parse()
            .map_err(|e: InvalidDependencyName| loc.error(at, &field, e.to_string()))?;
        let value_at = value.span().start;
        let table = match value.get_ref() {
            toml::Value::String(version) => {
                return Err(loc.error(
                    value_at,
                    field,
                    format!(
                        "registry dependencies are not supported yet ({version:?} asks a registry for a version): give path = \"...\" to the dependency's .wasm file instead, e.g. {{ path = \"deps/{}.wasm\" }}",
                        name.file_stem_hint()
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
                    name.file_stem_hint()
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
            if let Some(why) = earlier.name.conflict(&name) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(key: &str) -> DependencyName {
        key.parse().unwrap_or_else(|e| panic!("{key}: {e}"))
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
            assert!(bad.parse::<DependencyName>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn bad_keys_say_which_forms_are_allowed() {
        let err = "Foo".parse::<DependencyName>().expect_err("not kebab");
        assert!(
            err.to_string()
                .starts_with("\"Foo\" is not a valid dependency name: use a kebab-case name"),
            "{err}"
        );
        let err = "ns:pkg@one"
            .parse::<DependencyName>()
            .expect_err("bad version");
        assert!(
            err.to_string()
                .starts_with("\"one\" in \"ns:pkg@one\" is not a semantic version ("),
            "{err}"
        );
    }

    #[test]
    fn keys_of_one_package_must_be_disjoint() {
        let conflicts = |a: &str, b: &str| parsed(a).conflict(&parsed(b)).is_some();
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
