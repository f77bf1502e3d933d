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
    /// Parses `a=1&b=two` as `application/x-www-form-urlencoded` (with the
    /// `form_urlencoded` crate: `+` is a space, `%XX` a byte). Malformed
    /// input is refused rather than guessed at: a `%` not followed by two
    /// hex digits, or escapes that do not decode to UTF-8.
    pub fn parse(query: &str) -> Result<Self, BadParam> {
        for pair in query.split('&') {
            well_formed(pair)?;
        }
        Ok(Self(
            form_urlencoded::parse(query.as_bytes())
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }

    /// Every parameter, for tests that compare whole parses.
    #[cfg(test)]
    pub(crate) fn all(&self) -> &HashMap<String, String> {
        &self.0
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

/// Refuses a `name=value` pair whose escapes are broken, which
/// `form_urlencoded` would pass through or replace with U+FFFD.
fn well_formed(pair: &str) -> Result<(), BadParam> {
    let bytes = pair.as_bytes();
    let hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
    let broken_escape = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'%' && !(hex(i + 1) && hex(i + 2)));
    let shown = || {
        let mut shown: String = pair.chars().take(60).collect();
        if shown.len() < pair.len() {
            shown.push_str("...");
        }
        shown
    };
    if broken_escape {
        return Err(BadParam(format!(
            "query parameter {:?}: '%' must be followed by two hex digits",
            shown()
        )));
    }
    if percent_encoding::percent_decode(bytes)
        .decode_utf8()
        .is_err()
    {
        return Err(BadParam(format!(
            "query parameter {:?} does not decode to UTF-8",
            shown()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let p =
            Params::parse("from=10&to=&bucket=day&name=Order%20Completed&x=a+b").expect("valid");
        assert_eq!(p.time("from", 0), Ok(10));
        assert_eq!(p.time("to", 99), Ok(99));
        assert_eq!(p.bucket(), Ok(86_400_000));
        assert_eq!(p.get("name"), Some("Order Completed"));
        assert_eq!(p.get("x"), Some("a b"));
        let parse = |q| Params::parse(q).expect("valid");
        assert!(parse("bucket=week").bucket().is_err());
        assert!(parse("limit=0").limit("limit", 10, 100).is_err());
    }

    /// Issue 10, item 11: a multi-byte character after `%` panicked the
    /// hand-written decoder (a 500); malformed input must be a clean 400.
    #[test]
    fn malformed_escapes_are_rejected_without_panicking() {
        for query in [
            "x=%a€",
            "x=%€",
            "x=%€€",
            "x=%C3",
            "from=%E2%82",
            "x=%",
            "x=%zz",
            "%ff=1",
            "a=1&x=%C3%28",
        ] {
            let parsed = std::panic::catch_unwind(|| Params::parse(query));
            assert!(parsed.is_ok(), "{query} panicked");
            assert!(
                matches!(parsed, Ok(Err(BadParam(_)))),
                "{query} was accepted"
            );
        }
        // Well-formed escapes of multi-byte characters, and raw ones, decode.
        let p = Params::parse("e=Caf%C3%A9+%E2%82%AC&r=€&k%3D=%25").expect("well formed");
        assert_eq!(p.get("e"), Some("Café €"));
        assert_eq!(p.get("r"), Some("€"));
        assert_eq!(p.get("k="), Some("%"));
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
