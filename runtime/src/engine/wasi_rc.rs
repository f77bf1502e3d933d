//! WASI release candidates that differ from a release Wasmtime links only
//! in their version string, served by renaming them at load.
//!
//! spin-sdk 6.x is built on `wasip3` 0.6 (`wasi:*@0.3.0-rc-2026-03-15`);
//! Wasmtime 48 links WASI 0.3.0 final, whose WIT is the candidate's with
//! only the version (and `@since` gates) changed. Wasmtime's linker
//! matches a pre-release only exactly, and its generated `add_to_linker`
//! functions register fixed names, so the component's top-level import and
//! export names are rewritten to the release (`…@0.3.0`) before compiling.
//! Nothing else in the binary changes: nested modules and components refer
//! to imports by index, so the rewrite cannot change what the guest runs.
//!
//! spin-sdk 2.x's WASI 0.2.0 candidate differs from the release in more
//! than its name; its imports are served under their own names (see
//! [`crate::engine::wasi_2023_10_18`]) and only its export is renamed here.

use std::borrow::Cow;

use wasmparser::{BinaryReader, ComponentExport, ComponentImport, FromReader, Parser, Payload};

/// Each release candidate served, the release that serves it, and its
/// packages (those Wasmtime 48 links at the release).
///
/// spin-sdk 2.x's `0.2.0-rc-2023-10-18` has an entry of its own: its
/// imports are linked under their own names by
/// [`crate::engine::wasi_2023_10_18`], whose resources are the 0.2 host
/// types, so only its `wasi:http/incoming-handler` export is renamed, to
/// the 0.2.0 one it then matches, type for type.
pub const ALIASES: &[Alias] = &[
    Alias {
        candidate: "0.3.0-rc-2026-03-15",
        release: "0.3.0",
        packages: &["cli", "clocks", "filesystem", "http", "random", "sockets"],
        exports_only: false,
    },
    Alias {
        candidate: "0.2.0-rc-2023-10-18",
        release: "0.2.0",
        packages: &["http"],
        exports_only: true,
    },
];

/// One release candidate linked as a release.
#[derive(Debug, Clone, Copy)]
pub struct Alias {
    /// The candidate's version, as guests name it.
    pub candidate: &'static str,
    /// The release Wasmtime links in its place.
    pub release: &'static str,
    /// `wasi:` packages covered.
    pub packages: &'static [&'static str],
    /// Only exports are renamed (the imports are linked under the
    /// candidate's own names).
    pub exports_only: bool,
}

/// The release name serving `name`, when `name` is a `wasi:` interface at a
/// candidate in [`ALIASES`] (an export when `export`, else an import).
pub fn released_name(name: &str, export: bool) -> Option<String> {
    let (path, version) = name.split_once('@')?;
    let package = path.strip_prefix("wasi:")?.split_once('/')?.0;
    let alias = ALIASES.iter().find(|a| {
        a.candidate == version && a.packages.contains(&package) && (export || !a.exports_only)
    })?;
    Some(format!("{path}@{}", alias.release))
}

/// Component section ids (component model binary format).
const COMPONENT_IMPORT_SECTION: u8 = 10;
const COMPONENT_EXPORT_SECTION: u8 = 11;

/// `bytes` with every top-level import and export at an aliased candidate
/// renamed to its release; the input unchanged (borrowed) when it names
/// none, or when it cannot be parsed (compiling it reports why).
pub fn rename(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !ALIASES
        .iter()
        .any(|a| contains(bytes, a.candidate.as_bytes()))
    {
        return Cow::Borrowed(bytes);
    }
    match rewrite(bytes) {
        Ok(Some(out)) => Cow::Owned(out),
        Ok(None) => Cow::Borrowed(bytes),
        Err(e) => {
            tracing::debug!("not renaming WASI release candidates: {e}");
            Cow::Borrowed(bytes)
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The rewritten component, or `None` if nothing needed renaming.
fn rewrite(bytes: &[u8]) -> wasmparser::Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut depth = 0usize;
    let mut changed = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload?;
        let top = depth == 0;
        match &payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        if !top {
            continue;
        }
        if let Payload::Version { range, .. } = &payload {
            out.extend_from_slice(&bytes[range.clone()]);
            continue;
        }
        let Some((id, range)) = payload.as_section() else {
            continue;
        };
        let body = &bytes[range];
        let renamed = match id {
            COMPONENT_IMPORT_SECTION => rename_entries::<ComponentImport<'_>>(body, false)?,
            COMPONENT_EXPORT_SECTION => rename_entries::<ComponentExport<'_>>(body, true)?,
            _ => None,
        };
        changed |= renamed.is_some();
        out.push(id);
        let body = renamed.as_deref().unwrap_or(body);
        leb128(&mut out, body.len());
        out.extend_from_slice(body);
    }
    Ok(changed.then_some(out))
}

/// One import or export section's body with aliased names renamed, or
/// `None` if it has none. A rename that would clash with a name already in
/// the section is skipped (the component then fails to link, naming it).
fn rename_entries<'a, T: FromReader<'a>>(
    body: &'a [u8],
    exports: bool,
) -> wasmparser::Result<Option<Vec<u8>>> {
    let mut reader = BinaryReader::new(body, 0);
    let count = reader.read_var_u32()?;
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let start = reader.current_position();
        let mut name = BinaryReader::new(&body[start..], 0);
        let plain = matches!(name.read_u8()?, 0x00 | 0x01);
        let name = if plain {
            Some((name.read_string()?, start + name.current_position()))
        } else {
            None
        };
        reader.read::<T>()?;
        entries.push((start, reader.current_position(), name));
    }
    let existing: std::collections::HashSet<&str> =
        entries.iter().filter_map(|e| e.2.map(|n| n.0)).collect();
    let mut out = Vec::with_capacity(body.len());
    leb128(&mut out, count as usize);
    let mut changed = false;
    for (start, end, name) in entries {
        let renamed = name.and_then(|(n, after)| {
            let r = released_name(n, exports).filter(|r| !existing.contains(r.as_str()))?;
            Some((r, after))
        });
        match renamed {
            Some((r, after)) => {
                out.push(0x00);
                leb128(&mut out, r.len());
                out.extend_from_slice(r.as_bytes());
                out.extend_from_slice(&body[after..end]);
                changed = true;
            }
            None => out.extend_from_slice(&body[start..end]),
        }
    }
    Ok(changed.then_some(out))
}

/// Appends `n` as unsigned LEB128.
fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aliased_wasi_candidates_get_a_release_name() {
        for export in [false, true] {
            assert_eq!(
                released_name("wasi:http/handler@0.3.0-rc-2026-03-15", export).as_deref(),
                Some("wasi:http/handler@0.3.0")
            );
            assert_eq!(
                released_name("wasi:cli/stdin@0.3.0-rc-2026-03-15", export).as_deref(),
                Some("wasi:cli/stdin@0.3.0")
            );
            assert_eq!(
                released_name("wasi:http/types@0.3.0-rc-2025-09-16", export),
                None
            );
            assert_eq!(released_name("wasi:http/types@0.3.0", export), None);
            assert_eq!(
                released_name("wasi:nn/graph@0.3.0-rc-2026-03-15", export),
                None
            );
            assert_eq!(
                released_name("spin:kv/kv@0.3.0-rc-2026-03-15", export),
                None
            );
        }
    }

    /// A component importing an instance under `import` and exporting it
    /// again under `export`, in the binary format.
    fn component(import: &str, export: &str) -> Vec<u8> {
        let mut out = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        // Type section: one empty instance type.
        out.extend_from_slice(&[7, 3, 1, 0x42, 0]);
        let mut imports = vec![1, 0x00];
        leb128(&mut imports, import.len());
        imports.extend_from_slice(import.as_bytes());
        imports.extend_from_slice(&[0x05, 0]); // instance of type 0
        out.push(COMPONENT_IMPORT_SECTION);
        leb128(&mut out, imports.len());
        out.extend_from_slice(&imports);
        let mut exports = vec![1, 0x00];
        leb128(&mut exports, export.len());
        exports.extend_from_slice(export.as_bytes());
        exports.extend_from_slice(&[0x05, 0, 0x00]); // instance 0, no type
        out.push(COMPONENT_EXPORT_SECTION);
        leb128(&mut out, exports.len());
        out.extend_from_slice(&exports);
        out
    }

    fn validate(bytes: &[u8]) {
        wasmparser::Validator::new()
            .validate_all(bytes)
            .expect("valid component");
    }

    #[test]
    fn renames_top_level_imports_and_exports() {
        let before = component(
            "wasi:http/types@0.3.0-rc-2026-03-15",
            "wasi:http/handler@0.3.0-rc-2026-03-15",
        );
        validate(&before);
        let after = rename(&before);
        validate(&after);
        assert_eq!(
            after.as_ref(),
            component("wasi:http/types@0.3.0", "wasi:http/handler@0.3.0").as_slice()
        );
        let imports = crate::engine::imports::component_imports(&after).expect("imports");
        assert_eq!(imports, vec!["wasi:http/types@0.3.0".to_owned()]);
    }

    #[test]
    fn spin_sdk_2s_candidate_is_renamed_in_exports_only() {
        assert_eq!(
            released_name("wasi:http/incoming-handler@0.2.0-rc-2023-10-18", true).as_deref(),
            Some("wasi:http/incoming-handler@0.2.0")
        );
        assert_eq!(
            released_name("wasi:http/types@0.2.0-rc-2023-10-18", false),
            None
        );
        assert_eq!(
            released_name("wasi:io/poll@0.2.0-rc-2023-10-18", true),
            None
        );
        let before = component(
            "wasi:http/types@0.2.0-rc-2023-10-18",
            "wasi:http/incoming-handler@0.2.0-rc-2023-10-18",
        );
        let after = rename(&before);
        validate(&after);
        assert_eq!(
            after.as_ref(),
            component(
                "wasi:http/types@0.2.0-rc-2023-10-18",
                "wasi:http/incoming-handler@0.2.0"
            )
            .as_slice()
        );
    }

    #[test]
    fn leaves_other_components_untouched() {
        let bytes = component("wasi:http/types@0.3.0", "wasi:http/handler@0.3.0");
        assert!(matches!(rename(&bytes), Cow::Borrowed(_)));
        let other = component(
            "wasi:http/types@0.3.0-rc-2025-09-16",
            "wasi:http/handler@0.3.0-rc-2025-09-16",
        );
        assert!(matches!(rename(&other), Cow::Borrowed(_)));
    }
}
