//! What a component imports, checked against what `trib` provides when the
//! app loads, so an app needing an interface we lack stops at startup with
//! one line (as Spin refuses it) instead of answering 500 forever.
//!
//! Reading the imports is a walk over the component's top-level import
//! section: nothing is compiled, so lazy loading keeps its speed.
//! Versions match the way Wasmtime's linker matches them: an import is
//! served by a provided version of the same interface that is
//! semver-compatible and not older.

use semver::Version;

/// The Spin worlds' imports come from the same WIT the bindings are
/// generated from, so the list cannot drift from the linker.
const HOST_WIT: &str = include_str!("../../../wit/host.wit");
/// What trigger components import besides the host APIs (types their
/// exports use), from the trigger worlds' WIT.
const TRIGGERS_WIT: &str = include_str!("../../../wit/triggers/triggers.wit");

/// WASI interfaces Wasmtime 48 links (`wasmtime-wasi` and
/// `wasmtime-wasi-http`, WASI 0.2.12 and 0.3.0); unstable ones left out.
/// The release candidates in [`crate::engine::wasi_rc::ALIASES`] are
/// provided too (the loader renames them to these), and spin-sdk 2.x's
/// `0.2.0-rc-2023-10-18` as `host.wit`'s `wasi-2023-10-18` world lists it
/// (linked by [`crate::engine::wasi_2023_10_18`]).
const WASI: &[(&str, &[&str])] = &[
    (
        "wasi:cli@0.2.12",
        &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
    ("wasi:clocks@0.2.12", &["monotonic-clock", "wall-clock"]),
    ("wasi:filesystem@0.2.12", &["types", "preopens"]),
    ("wasi:io@0.2.12", &["error", "poll", "streams"]),
    (
        "wasi:random@0.2.12",
        &["insecure-seed", "insecure", "random"],
    ),
    (
        "wasi:sockets@0.2.12",
        &[
            "network",
            "instance-network",
            "ip-name-lookup",
            "tcp",
            "tcp-create-socket",
            "udp",
            "udp-create-socket",
        ],
    ),
    ("wasi:http@0.2.12", &["types", "outgoing-handler"]),
    (
        "wasi:cli@0.3.0",
        &[
            "environment",
            "exit",
            "types",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
    (
        "wasi:clocks@0.3.0",
        &["types", "monotonic-clock", "system-clock"],
    ),
    ("wasi:filesystem@0.3.0", &["types", "preopens"]),
    (
        "wasi:random@0.3.0",
        &["insecure-seed", "insecure", "random"],
    ),
    ("wasi:sockets@0.3.0", &["types", "ip-name-lookup"]),
    ("wasi:http@0.3.0", &["types", "handler", "client"]),
];

/// WASI release candidates whose types differ from every release Wasmtime
/// 48 links, so no renaming can serve them, and why, in words (for
/// `0.2.0-rc-2023-10-18`, the interfaces `host.wit` does not list).
const UNSERVABLE_CANDIDATES: &[(&str, &str)] = &[
    (
        "0.2.0-rc-2023-10-18",
        "a part of the WASI 0.2.0 release candidate spin-sdk 2.x targets that no spin-sdk 2.x API uses; trib serves that candidate's io, http, clocks (but timezone), random and cli interfaces, not its filesystem or sockets",
    ),
    (
        "0.2.0-rc-2023-11-10",
        "a WASI 0.2.0 release candidate; Wasmtime 48 links only WASI 0.2 releases, whose types differ from it: rebuild the component against WASI 0.2.0 or newer",
    ),
];

/// An import `trib` cannot satisfy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("imports {import}, which trib does not provide ({nearest})")]
pub struct MissingImport {
    /// The import as the component names it.
    pub import: String,
    /// What trib has that comes closest, in words.
    pub nearest: String,
}

/// One interface name, split: `ns:pkg/iface@version`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Interface {
    /// `ns:pkg/iface`.
    path: String,
    /// `ns:pkg`.
    package: String,
    version: Option<Version>,
}

impl Interface {
    fn parse(name: &str) -> Option<Self> {
        let (path, version) = match name.split_once('@') {
            Some((path, v)) => (path, Some(Version::parse(v).ok()?)),
            None => (name, None),
        };
        let (package, iface) = path.split_once('/')?;
        if !package.contains(':') || iface.is_empty() {
            return None;
        }
        Some(Self {
            path: path.to_owned(),
            package: package.to_owned(),
            version,
        })
    }

    fn display_version(&self) -> String {
        match &self.version {
            Some(v) => format!("{}@{v}", self.path),
            None => self.path.clone(),
        }
    }
}

/// Whether `provided` can serve an import of `wanted` (Wasmtime's rule:
/// same major, or same minor for 0.x, or same patch for 0.0.x; exact for
/// pre-releases; not older).
fn serves(provided: &Version, wanted: &Version) -> bool {
    if !provided.pre.is_empty() || !wanted.pre.is_empty() {
        return provided == wanted;
    }
    let same_track = match (wanted.major, wanted.minor) {
        (0, 0) => provided.major == 0 && provided.minor == 0 && provided.patch == wanted.patch,
        (0, minor) => provided.major == 0 && provided.minor == minor,
        (major, _) => provided.major == major,
    };
    same_track && provided >= wanted
}

/// Every interface the host links.
fn provided() -> Vec<Interface> {
    let mut all = Vec::new();
    for (package, ifaces) in WASI {
        let (pkg, version) = package.split_once('@').unwrap_or((package, ""));
        for iface in *ifaces {
            if let Some(i) = Interface::parse(&format!("{pkg}/{iface}@{version}")) {
                all.push(i);
            }
        }
    }
    // Release candidates the loader renames to a release linked above.
    let aliased: Vec<Interface> = all
        .iter()
        .filter_map(|i| {
            let version = i.version.as_ref()?.to_string();
            let package = i.package.strip_prefix("wasi:")?;
            crate::engine::wasi_rc::ALIASES
                .iter()
                .filter(|a| {
                    !a.exports_only && a.release == version && a.packages.contains(&package)
                })
                .find_map(|a| Interface::parse(&format!("{}@{}", i.path, a.candidate)))
        })
        .collect();
    all.extend(aliased);
    for line in HOST_WIT.lines().chain(TRIGGERS_WIT.lines()) {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("import ")
            .and_then(|rest| rest.strip_suffix(';'))
            && let Some(i) = Interface::parse(name.trim())
        {
            all.push(i);
        }
    }
    all
}

/// The top-level import names of a component (nested modules and
/// components are skipped: the outer component's imports are what must
/// be linked).
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, wasmparser::BinaryReaderError> {
    top_level_names(bytes, false)
}

/// The top-level export names of a component, or of a core module.
pub fn exports(bytes: &[u8]) -> Result<Vec<String>, wasmparser::BinaryReaderError> {
    top_level_names(bytes, true)
}

fn top_level_names(
    bytes: &[u8],
    exports: bool,
) -> Result<Vec<String>, wasmparser::BinaryReaderError> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 && !exports => {
                for import in section {
                    let import = import?;
                    // A type a world `use`s (the cron world's `metadata`)
                    // is checked by its bounds, not provided by name.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        names.push(import.name.name.to_owned());
                    }
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 && exports => {
                for export in section {
                    names.push(export?.name.name.to_owned());
                }
            }
            Payload::ExportSection(section) if depth == 0 && exports => {
                for export in section {
                    names.push(export?.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Checks every import of a component against what the host provides;
/// the first one missing is the error.
pub fn check(imports: &[String]) -> Result<(), MissingImport> {
    let provided = provided();
    for import in imports {
        let Some(wanted) = Interface::parse(import) else {
            return Err(MissingImport {
                import: import.clone(),
                nearest: "only WIT interfaces (namespace:package/interface) can be provided".into(),
            });
        };
        let same_path: Vec<&Interface> =
            provided.iter().filter(|p| p.path == wanted.path).collect();
        let ok = same_path
            .iter()
            .any(|p| match (&p.version, &wanted.version) {
                (Some(have), Some(want)) => serves(have, want),
                (None, None) => true,
                _ => false,
            });
        if ok {
            continue;
        }
        let candidate = wanted.version.as_ref().and_then(|v| {
            let v = v.to_string();
            UNSERVABLE_CANDIDATES
                .iter()
                .find(|(c, _)| *c == v && wanted.package.starts_with("wasi:"))
        });
        let nearest = match candidate {
            Some((_, why)) => (*why).to_owned(),
            None => nearest(&wanted, &same_path, &provided),
        };
        return Err(MissingImport {
            import: import.clone(),
            nearest,
        });
    }
    Ok(())
}

/// The closest thing trib has: the same interface at another version
/// (the same major.minor first, then the newest), or nothing.
fn nearest(wanted: &Interface, same_path: &[&Interface], provided: &[Interface]) -> String {
    let closest = same_path.iter().max_by_key(|c| {
        let close = match (&c.version, &wanted.version) {
            (Some(a), Some(b)) => u8::from(a.major == b.major) + u8::from(a.minor == b.minor),
            _ => 0,
        };
        (close, c.version.clone())
    });
    match closest {
        Some(n) => format!("nearest: {}", n.display_version()),
        None if provided.iter().any(|p| p.package == wanted.package) => {
            format!("it has no {} at any version", wanted.path)
        }
        None => format!("it has nothing of package {}", wanted.package),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn what_the_sdks_import_is_provided() {
        check(&names(&[
            "wasi:cli/environment@0.2.0",
            "wasi:io/streams@0.2.6",
            "wasi:http/types@0.2.3",
            "wasi:http/outgoing-handler@0.2.0",
            "wasi:http/types@0.3.0",
            "wasi:cli/stdout@0.3.0",
            "fermyon:spin/key-value@2.0.0",
            "spin:sqlite/sqlite@3.0.0",
            "spin:postgres/postgres@4.0.0",
            "spin:key-value/key-value@3.0.0",
            "fermyon:spin/redis-types",
            "fermyon:spin/mqtt@2.0.0",
            "spin:mqtt/mqtt@3.0.0",
            "fermyon:spin/rdbms-types@2.0.0",
            "fermyon:spin/postgres@2.0.0",
            "fermyon:spin/mysql@2.0.0",
            "spin:postgres/postgres@3.0.0",
            "spin:mysql/mysql@3.0.0",
        ]))
        .expect("provided");
    }

    #[test]
    fn a_missing_interface_names_the_nearest_version() {
        let e = check(&names(&["spin:sqlite/sqlite@4.0.0"])).expect_err("missing");
        assert_eq!(
            e.to_string(),
            "imports spin:sqlite/sqlite@4.0.0, which trib does not provide (nearest: spin:sqlite/sqlite@3.1.0)"
        );
        let e = check(&names(&["wasi:http/types@0.3.0-rc-2025-09-16"])).expect_err("rc");
        assert!(
            e.to_string().contains("nearest: wasi:http/types@0.3.0"),
            "{e}"
        );
        let e = check(&names(&["wasi:nn/graph@0.2.0"])).expect_err("absent");
        assert!(
            e.to_string()
                .ends_with("(it has nothing of package wasi:nn)"),
            "{e}"
        );
        let e = check(&names(&["wasi:cli/nope@0.2.0"])).expect_err("absent");
        assert!(
            e.to_string()
                .ends_with("(it has no wasi:cli/nope at any version)"),
            "{e}"
        );
    }

    #[test]
    fn spin_sdk_6s_wasi_candidate_is_provided() {
        check(&names(&[
            "wasi:http/types@0.3.0-rc-2026-03-15",
            "wasi:cli/stdin@0.3.0-rc-2026-03-15",
            "spin:key-value/key-value@3.0.0",
            "spin:variables/variables@3.0.0",
        ]))
        .expect("provided");
    }

    #[test]
    fn spin_sdk_2s_wasi_candidate_is_provided() {
        check(&names(&[
            "wasi:io/poll@0.2.0-rc-2023-10-18",
            "wasi:io/streams@0.2.0-rc-2023-10-18",
            "wasi:http/types@0.2.0-rc-2023-10-18",
            "wasi:http/outgoing-handler@0.2.0-rc-2023-10-18",
            "wasi:clocks/monotonic-clock@0.2.0-rc-2023-10-18",
            "wasi:cli/stdout@0.2.0-rc-2023-10-18",
            "wasi:random/random@0.2.0-rc-2023-10-18",
            "fermyon:spin/key-value@2.0.0",
            "fermyon:spin/variables@2.0.0",
        ]))
        .expect("provided");
    }

    #[test]
    fn the_rest_of_spin_sdk_2s_candidate_is_refused_saying_why() {
        let e = check(&names(&["wasi:filesystem/types@0.2.0-rc-2023-10-18"])).expect_err("rc");
        assert_eq!(
            e.to_string(),
            "imports wasi:filesystem/types@0.2.0-rc-2023-10-18, which trib does not provide (a part of the WASI 0.2.0 release candidate spin-sdk 2.x targets that no spin-sdk 2.x API uses; trib serves that candidate's io, http, clocks (but timezone), random and cli interfaces, not its filesystem or sockets)"
        );
        // The export's interface is served by renaming, not as an import.
        let e = check(&names(&["wasi:http/incoming-handler@0.2.0-rc-2023-10-18"]))
            .expect_err("export only");
        assert!(e.to_string().contains("spin-sdk 2.x"), "{e}");
    }

    #[test]
    fn versions_match_as_the_linker_matches_them() {
        let v = |s: &str| Version::parse(s).expect("version");
        assert!(serves(&v("0.2.12"), &v("0.2.0")));
        assert!(!serves(&v("0.2.12"), &v("0.3.0")));
        assert!(!serves(&v("0.2.3"), &v("0.2.6")));
        assert!(serves(&v("3.1.0"), &v("3.0.0")));
        assert!(!serves(&v("3.1.0"), &v("4.0.0")));
        assert!(!serves(&v("0.3.0"), &v("0.3.0-rc-2026-01-06")));
    }
}
