//! Errors in TOML configuration files (the manifest, the runtime config)
//! that say where, what and how to fix it, on one line.

use std::fmt;
use std::path::PathBuf;

/// A configuration file that cannot be used. The `Display` form is one line:
/// `FILE:LINE:COL: FIELD: PROBLEM (FIX)`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read at all.
    #[error("{}: cannot read the file: {source}", path.display())]
    Read {
        /// The file path.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{0}")]
    Invalid(Box<Located>),
}

/// A problem at a place in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file path, as given.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: usize,
    /// 1-based column, when known.
    pub column: usize,
    /// Dotted field path, e.g. `component.hello.source`.
    pub field: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.path.display(),
            self.line,
            self.column,
            OneLine(&self.field),
            OneLine(&self.message)
        )
    }
}

/// Text from the file with its control characters escaped (`\r`, `\u{1b}`),
/// so that a stray carriage return in a table header cannot break the
/// one-line error or rewrite the terminal line (found by tests/fuzz).
struct OneLine<'a>(&'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl ConfigFileError {
    /// The located problem, if this is not an I/O error.
    pub fn located(&self) -> Option<&Located> {
        match self {
            Self::Invalid(located) => Some(located),
            Self::Read { .. } => None,
        }
    }
}

/// Turns byte offsets into line and column numbers for one file's text.
pub(crate) struct Locator<'a> {
    path: &'a std::path::Path,
    text: &'a str,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(path: &'a std::path::Path, text: &'a str) -> Self {
        Self { path, text }
    }

    /// An error at byte `offset` about `field`.
    pub(crate) fn error(
        &self,
        offset: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigFileError {
        let (line, column) = self.line_col(offset);
        ConfigFileError::Invalid(Box::new(Located {
            path: self.path.to_owned(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }))
    }

    /// The file's text.
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// 1-based line and column of byte `offset`.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        (line, column)
    }

    /// The text of 1-based `line`.
    pub(crate) fn text_line(&self, line: usize) -> Option<String> {
        self.text
            .lines()
            .nth(line.checked_sub(1)?)
            .map(str::to_owned)
    }

    /// The `[table]` header in force at byte `offset`, and whether `offset`
    /// is on that header's own line; for errors that TOML reports without a
    /// field path.
    pub(crate) fn table_at(&self, offset: usize) -> Option<(String, bool)> {
        let offset = offset.min(self.text.len());
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let (this_line, _) = self.line_col(offset);
        let lines: Vec<&str> = self.text[..line_end].lines().collect();
        lines.iter().enumerate().rev().find_map(|(i, line)| {
            let line = line.trim();
            let inner = line
                .strip_prefix("[[")
                .and_then(|l| l.strip_suffix("]]"))
                .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))?;
            Some((inner.trim().to_owned(), i + 1 == this_line))
        })
    }
}
