//! JSON helpers: the event's JSON texts and dot-separated property paths.

use serde_json::{Map, Value};

/// Parses `text` (the event's `field`, e.g. `properties`) as a JSON object;
/// empty text is an empty object.
pub fn parse_object(text: &str, field: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "{field} must be a JSON object, got {}",
            type_name(&other)
        )),
        Err(e) => Err(format!("{field} is not valid JSON: {e}")),
    }
}

/// The JSON text of an object.
pub fn to_text(map: &Map<String, Value>) -> String {
    // Serializing a map of `Value`s cannot fail.
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

/// Splits a dot-separated path (`address.street`) into its names; every
/// name must be non-empty.
pub fn parse_path(path: &str) -> Result<Vec<String>, String> {
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(format!(
            "path `{path}` must be dot-separated non-empty names"
        ));
    }
    Ok(segments)
}

/// The value at `path` (names) under `map`, if every step is an object.
pub fn get<'a, S: AsRef<str>>(map: &'a Map<String, Value>, path: &[S]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = map.get(first.as_ref())?;
    for name in rest {
        value = value.as_object()?.get(name.as_ref())?;
    }
    Some(value)
}

/// JSON Schema's name for the type of `value`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_parse_and_others_are_refused() {
        assert!(parse_object("", "properties").unwrap().is_empty());
        assert_eq!(parse_object(r#"{"a":1}"#, "properties").unwrap()["a"], 1);
        let err = parse_object("[1]", "properties").unwrap_err();
        assert_eq!(err, "properties must be a JSON object, got array");
        assert!(
            parse_object("{", "context")
                .unwrap_err()
                .starts_with("context is not valid JSON")
        );
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("a.b").unwrap(), ["a", "b"]);
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("").is_err());
        let Value::Object(map) = json!({"a": {"b": 2}, "c": 3}) else {
            unreachable!()
        };
        assert_eq!(get(&map, &["a", "b"]), Some(&json!(2)));
        assert_eq!(get(&map, &["c", "d"]), None);
        assert_eq!(get(&map, &["x"]), None);
    }
}
