//! The text forms the relational-database test guests share (MySQL for
//! both SDKs, the older PostgreSQL interfaces), included with `#[path]`.
//!
//! A request's body is a statement on its first line and one parameter a
//! further line, `kind:value`: `bool:true`, `i8:`..`i64:`, `u8:`..`u64:`,
//! `f32:`, `f64:`, `str:text`, `bin:hex` or `null`. An answer is the
//! columns (`name:Type|...`) and then a line a row (values `|`-joined),
//! each `Debug`-printed without the type prefix; an error is the error
//! the guest got, printed the same way.

/// The statement and the `(kind, value)` parameters of a body.
pub fn split(body: &str) -> (String, Vec<(String, String)>) {
    let mut lines = body.lines();
    let statement = lines.next().unwrap_or_default().to_owned();
    let params = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (kind, value) = l.split_once(':').unwrap_or((l, ""));
            (kind.to_owned(), value.to_owned())
        })
        .collect();
    (statement, params)
}

/// A value's `Debug` form without the generated type's prefix.
pub fn show(v: &dyn std::fmt::Debug) -> String {
    [
        "DbValue::",
        "DbDataType::",
        "Error::",
        "MysqlError::",
        "PgError::",
    ]
    .iter()
    .fold(format!("{v:?}"), |s, prefix| s.replace(prefix, ""))
}

/// Bytes of a hex string (a pair that is not hex is 0).
pub fn unhex(v: &str) -> Vec<u8> {
    (0..v.len() / 2)
        .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap_or_default())
        .collect()
}

/// The answer to a query: the columns' line, then a line a row.
pub fn rows<C: std::fmt::Debug, V: std::fmt::Debug>(
    columns: impl IntoIterator<Item = (String, C)>,
    rows: impl IntoIterator<Item = Vec<V>>,
) -> String {
    let mut out = columns
        .into_iter()
        .map(|(name, ty)| format!("{name}:{}", show(&ty)))
        .collect::<Vec<_>>()
        .join("|");
    for row in rows {
        out.push('\n');
        out.push_str(&row.iter().map(|v| show(v)).collect::<Vec<_>>().join("|"));
    }
    out
}

/// The `ParameterValue` (of the SDK's type `$p`, which has every
/// `rdbms-types` variant) a `(kind, value)` pair names.
macro_rules! rdbms_param {
    ($p:ident, $kind:expr, $v:expr) => {{
        let v: &str = $v;
        match $kind {
            "bool" => $p::Boolean(v == "true"),
            "i8" => $p::Int8(v.parse().unwrap_or_default()),
            "i16" => $p::Int16(v.parse().unwrap_or_default()),
            "i32" => $p::Int32(v.parse().unwrap_or_default()),
            "i64" => $p::Int64(v.parse().unwrap_or_default()),
            "u8" => $p::Uint8(v.parse().unwrap_or_default()),
            "u16" => $p::Uint16(v.parse().unwrap_or_default()),
            "u32" => $p::Uint32(v.parse().unwrap_or_default()),
            "u64" => $p::Uint64(v.parse().unwrap_or_default()),
            "f32" => $p::Floating32(v.parse().unwrap_or_default()),
            "f64" => $p::Floating64(v.parse().unwrap_or_default()),
            "str" => $p::Str(v.to_owned()),
            "bin" => $p::Binary(crate::rdbms::unhex(v)),
            _ => $p::DbNull,
        }
    }};
}
