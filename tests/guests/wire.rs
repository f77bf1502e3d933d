//! The text forms the p2 and p3 test guests share (query strings, SQL
//! values and rows), in one file each guest includes with `#[path]`: their
//! SDKs differ, so the rows are a macro over the SDK's own `Value`.

/// The value of `key` in a query string (`a=1&b=2`), as sent.
pub fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex as bytes (a pair that is not hex is 0).
pub fn unhex(v: &str) -> Vec<u8> {
    (0..v.len() / 2)
        .map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).unwrap_or_default())
        .collect()
}

/// Appends `rows` (the SDK's SQLite rows; its `Value` must be in scope) to
/// the `String` `out`, a line each: the values joined by `|`, each as
/// `i:42`, `r:2.5`, `t:text`, `b:hex` or `n`.
macro_rules! push_rows {
    ($out:expr, $rows:expr) => {
        for row in $rows {
            let cells: Vec<String> = row
                .values
                .iter()
                .map(|v| match v {
                    Value::Integer(i) => format!("i:{i}"),
                    Value::Real(r) => format!("r:{r}"),
                    Value::Text(t) => format!("t:{t}"),
                    Value::Blob(b) => format!("b:{}", crate::wire::hex(b)),
                    Value::Null => "n".to_owned(),
                })
                .collect();
            $out.push('\n');
            $out.push_str(&cells.join("|"));
        }
    };
}
