//! TOML and serde errors from the `toml` crate, turned into the one-line
//! `FILE:LINE:COL: FIELD: PROBLEM` form of [`ConfigFileError`].
//!
//! The crate reports a byte span and a message written for Rust types
//! (`unknown variant ... enum RawRoute`); a user needs the dotted field they
//! wrote and what to write instead. Shared by the manifest and the runtime
//! config, whose files have the same shape of errors.

use crate::config_file::{ConfigFileError, Locator};

/// Maps a serde error from the `toml` crate to a located, one-line error
/// with the dotted field path and a plain-words expectation.
pub(crate) fn toml_error(loc: &Locator<'_>, e: &toml::de::Error) -> ConfigFileError {
    let at = e.span().map_or(0, |s| s.start);
    let message = e.message().trim().replace('\n', " ");
    let (field, message) = describe(loc, at, &message);
    loc.error(at, field, message)
}

/// Maps an error from reading the text as TOML at all (before any field is
/// known) to a located `not valid TOML: ...` error.
pub(super) fn syntax_error(loc: &Locator<'_>, e: &toml::de::Error) -> ConfigFileError {
    let at = e.span().map_or(0, |s| s.start);
    let (field, message) = describe(loc, at, e.message().trim());
    loc.error(at, field, format!("not valid TOML: {message}"))
}

/// The byte offset of the first line of `text` that starts with `key`, for
/// errors about a key that serde has not located.
pub(super) fn offset_of_key(text: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with(key) {
            return Some(offset + (line.len() - line.trim_start().len()));
        }
        offset += line.len();
    }
    None
}

/// The dotted field path for an error at byte `at`, and the message in a
/// user's words.
fn describe(loc: &Locator<'_>, at: usize, message: &str) -> (String, String) {
    let (table, on_header) = loc.table_at(at).unwrap_or_default();
    let join = |key: &str| {
        if table.is_empty() {
            key.to_owned()
        } else {
            format!("{table}.{key}")
        }
    };
    let named = backticked(message);
    if message.starts_with("unknown field") {
        let key = named.unwrap_or_default();
        if on_header {
            // `[[trigger.redis]]`: the header itself names the unknown field.
            if let Some(kind) = table.strip_prefix("trigger.") {
                return (
                    table.clone(),
                    format!(
                        "trigger type `{kind}` is not supported: trib serves [[trigger.http]], [[trigger.redis]] and [[trigger.cron]] only"
                    ),
                );
            }
            // The unknown key is a segment of the header (`[typo.name]`).
            let segments: Vec<&str> = table.split('.').collect();
            let field = match segments.iter().position(|s| s.trim() == key) {
                Some(i) => segments[..=i].join("."),
                None => table.clone(),
            };
            return (field, friendly(message));
        }
        return (join(&key), friendly(message));
    }
    if message.starts_with("missing field") {
        return (join(&named.unwrap_or_default()), friendly(message));
    }
    let field = match key_at(loc, at) {
        Some(key) if !on_header => join(&key),
        _ if table.is_empty() => "(top level)".to_owned(),
        _ => table.clone(),
    };
    (field, friendly(message))
}

/// The key being assigned on the line holding `offset`, if any.
fn key_at(loc: &Locator<'_>, offset: usize) -> Option<String> {
    let (line, _) = loc.line_col(offset);
    let text = loc.text_line(line)?;
    let (key, _) = text.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
}

/// The first `quoted` name in a serde message.
fn backticked(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

/// Replaces serde's names for our internal types with what a user writes.
fn friendly(message: &str) -> String {
    const EXPECTED: [(&str, &str); 6] = [
        (
            "RawRoute",
            "expected a route string such as \"/api/...\" or `{ private = true }`",
        ),
        (
            "RawTriggerComponent",
            "expected a component name or an inline component table with at least `source`",
        ),
        (
            "RawSource",
            "expected a path to a .wasm file, e.g. source = \"target/wasm32-wasip2/release/app.wasm\"",
        ),
        (
            "RawFileMount",
            "expected a glob string or `{ source = \"dir\", destination = \"/dir\" }`",
        ),
        (
            "RawCommands",
            "expected a command string or an array of command strings",
        ),
        ("RawPrivateRoute", "expected `{ private = true }`"),
    ];
    for (name, expected) in EXPECTED {
        if message.contains(&format!("enum {name}")) {
            return expected.to_owned();
        }
    }
    message.to_owned()
}
