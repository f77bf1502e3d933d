//! Statement parameters and result values, as both backends bind and
//! return them.

/// A statement parameter, as both backends bind it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A 64-bit integer (`INTEGER` / `BIGINT`).
    Int(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (`BLOB` / `BYTEA`): the rollups' sketches.
    Blob(Vec<u8>),
    /// `NULL`.
    Null,
}

impl Param {
    /// Text, or `NULL` for `None`.
    pub fn opt_text(s: Option<&str>) -> Param {
        s.map_or(Param::Null, |s| Param::Text(s.to_owned()))
    }
}

/// A result value with its type kept (JSON rows lose bytes): what the
/// rollups read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// An integer of any width.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// `NULL`, or a type the store never returns to its callers.
    Null,
}

impl Cell {
    /// The integer, if this is one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Moves the text out, if this is text.
    pub fn into_text(self) -> Option<String> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a blob (an empty blob may come back from
    /// SQLite as an empty blob and from PostgreSQL as empty bytes).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Cell::Blob(b) => Some(b),
            _ => None,
        }
    }
}
