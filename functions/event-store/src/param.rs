//! Statement parameters, as both backends bind them.

/// A statement parameter, as both backends bind it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A 64-bit integer (`INTEGER` / `BIGINT`).
    Int(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
    /// `NULL`.
    Null,
}

impl Param {
    /// Text, or `NULL` for `None`.
    pub fn opt_text(s: Option<&str>) -> Param {
        s.map_or(Param::Null, |s| Param::Text(s.to_owned()))
    }
}
