//! Query-string inputs, validated before any SQL sees them. Values only ever
//! reach SQL as parameters; property paths are checked against a strict
//! grammar and then passed as JSON-path parameters.

use std::collections::HashMap;

/// A rejected input: the parameter and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParam(pub String);

/// The decoded query string.
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `a=1&b=two` (percent-decoding values).
    pub fn parse(query: &str) -> Self {
        Self(
            query
                .split('&')
                .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), decode(v)))
                .collect(),
        )
    }

    /// A string parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A millisecond timestamp (default `default`).
    pub fn time(&self, key: &str, default: i64) -> Result<i64, BadParam> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                BadParam(format!(
                    "{key} must be a time in milliseconds since the epoch"
                ))
            }),
        }
    }

    /// A bounded count (default `default`).
    pub fn limit(&self, key: &str, default: i64, max: i64) -> Result<i64, BadParam> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(BadParam(format!("{key} must be between 1 and {max}"))),
            },
        }
    }

    /// The bucket width in milliseconds.
    pub fn bucket(&self) -> Result<i64, BadParam> {
        match self.get("bucket").unwrap_or("hour") {
            "minute" => Ok(60_000),
            "hour" => Ok(3_600_000),
            "day" => Ok(86_400_000),
            other => Err(BadParam(format!(
                "bucket {other:?} must be minute, hour or day"
            ))),
        }
    }
}

/// The names of a property path `a.b`, if it is well formed: dot-separated
/// names of letters, digits, `_` and `-` (so no name needs quoting in any
/// dialect's JSON path).
pub fn property_path(path: &str) -> Result<Vec<String>, BadParam> {
    let ok = !path.is_empty()
        && path.len() <= 200
        && path.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !ok {
        return Err(BadParam(format!(
            "property path {path:?} must be dot-separated names of letters, digits, '_' and '-'"
        )));
    }
    Ok(path.split('.').map(str::to_owned).collect())
}

fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&v[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let p = Params::parse("from=10&to=&bucket=day&name=Order%20Completed&x=a+b");
        assert_eq!(p.time("from", 0), Ok(10));
        assert_eq!(p.time("to", 99), Ok(99));
        assert_eq!(p.bucket(), Ok(86_400_000));
        assert_eq!(p.get("name"), Some("Order Completed"));
        assert_eq!(p.get("x"), Some("a b"));
        assert!(Params::parse("bucket=week").bucket().is_err());
        assert!(Params::parse("limit=0").limit("limit", 10, 100).is_err());
    }

    #[test]
    fn property_paths_cannot_inject() {
        assert_eq!(property_path("amount"), Ok(vec!["amount".to_owned()]));
        assert_eq!(
            property_path("cart.total"),
            Ok(vec!["cart".to_owned(), "total".to_owned()])
        );
        for bad in [
            "",
            "a..b",
            "a'); DROP TABLE events; --",
            "a b",
            "$.x",
            "a\"b",
        ] {
            assert!(property_path(bad).is_err(), "{bad:?}");
        }
    }
}
