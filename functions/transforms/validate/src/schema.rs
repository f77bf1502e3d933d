//! A small subset of JSON Schema, enough to describe event properties.
//!
//! Keywords: `type` (a name or a list of names among `string`, `number`,
//! `integer`, `boolean`, `object`, `array`, `null`), `required`,
//! `properties`, `additionalProperties` (a boolean), `minimum`, `maximum`,
//! `exclusiveMinimum`, `exclusiveMaximum` (numbers), `minLength`,
//! `maxLength` (in characters), `minItems`, `maxItems`, `items` (one schema
//! for every item), `enum` and `const`; `title`, `description` and
//! `$comment` are ignored. Anything else is refused when the rules are
//! read. As in JSON Schema, a keyword only constrains values of its own
//! type (`minimum` ignores strings; use `type` as well).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use transform_common::json::type_name;

const TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "object", "array", "null",
];

/// One schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    types: Option<Vec<String>>,
    required: Vec<String>,
    properties: BTreeMap<String, Schema>,
    additional_properties: Option<bool>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    items: Option<Box<Schema>>,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
}

impl Schema {
    /// Parses a schema; `at` names it in errors.
    pub fn parse(value: &Value, at: &str) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err(format!("{at}: a schema must be a JSON object"));
        };
        let mut schema = Self::default();
        for (key, v) in map {
            let bad = |what: &str| format!("{at}.{key}: must be {what}");
            match key.as_str() {
                "type" => {
                    let names = match v {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(items) => items
                            .iter()
                            .map(|i| i.as_str().map(str::to_owned))
                            .collect::<Option<_>>()
                            .ok_or_else(|| bad("a type name or a list of type names"))?,
                        _ => return Err(bad("a type name or a list of type names")),
                    };
                    if let Some(unknown) = names.iter().find(|n| !TYPES.contains(&n.as_str())) {
                        return Err(format!(
                            "{at}.type: unknown type `{unknown}`; known: {}",
                            TYPES.join(", ")
                        ));
                    }
                    schema.types = Some(names);
                }
                "required" => {
                    schema.required = v
                        .as_array()
                        .and_then(|items| {
                            items
                                .iter()
                                .map(|i| i.as_str().map(str::to_owned))
                                .collect::<Option<_>>()
                        })
                        .ok_or_else(|| bad("a list of property names"))?;
                }
                "properties" => {
                    let props = v.as_object().ok_or_else(|| bad("an object of schemas"))?;
                    for (name, sub) in props {
                        let sub = Self::parse(sub, &format!("{at}.properties.{name}"))?;
                        schema.properties.insert(name.clone(), sub);
                    }
                }
                "additionalProperties" => {
                    schema.additional_properties =
                        Some(v.as_bool().ok_or_else(|| bad("a boolean"))?);
                }
                "minimum" => schema.minimum = Some(v.as_f64().ok_or_else(|| bad("a number"))?),
                "maximum" => schema.maximum = Some(v.as_f64().ok_or_else(|| bad("a number"))?),
                "exclusiveMinimum" => {
                    schema.exclusive_minimum = Some(v.as_f64().ok_or_else(|| bad("a number"))?);
                }
                "exclusiveMaximum" => {
                    schema.exclusive_maximum = Some(v.as_f64().ok_or_else(|| bad("a number"))?);
                }
                "minLength" => schema.min_length = Some(v.as_u64().ok_or_else(|| bad("a count"))?),
                "maxLength" => schema.max_length = Some(v.as_u64().ok_or_else(|| bad("a count"))?),
                "minItems" => schema.min_items = Some(v.as_u64().ok_or_else(|| bad("a count"))?),
                "maxItems" => schema.max_items = Some(v.as_u64().ok_or_else(|| bad("a count"))?),
                "items" => schema.items = Some(Box::new(Self::parse(v, &format!("{at}.items"))?)),
                "enum" => {
                    schema.enumeration = Some(v.as_array().cloned().ok_or_else(|| bad("a list"))?);
                }
                "const" => schema.constant = Some(v.clone()),
                "title" | "description" | "$comment" => {}
                other => {
                    return Err(format!(
                        "{at}: unknown schema keyword `{other}`; known: type, required, properties, \
                         additionalProperties, minimum, maximum, exclusiveMinimum, exclusiveMaximum, \
                         minLength, maxLength, minItems, maxItems, items, enum, const"
                    ));
                }
            }
        }
        Ok(schema)
    }

    /// Checks `value` (found at `path`), appending one sentence per
    /// violation: `PATH violates RULE: DETAIL`.
    pub fn check(&self, value: &Value, path: &str, violations: &mut Vec<String>) {
        let mut fail = |rule: String, detail: String| {
            violations.push(format!("{path} violates {rule}: {detail}"));
        };
        if let Some(types) = &self.types
            && !types.iter().any(|t| has_type(value, t))
        {
            fail(
                format!("type {}", types.join("|")),
                format!("got {}", type_name(value)),
            );
            // The other keywords would only repeat the type mismatch.
            return;
        }
        if let Some(allowed) = &self.enumeration
            && !allowed.iter().any(|a| json_equal(a, value))
        {
            fail(
                format!("enum {}", Value::Array(allowed.clone())),
                format!("got {value}"),
            );
        }
        if let Some(constant) = &self.constant
            && !json_equal(constant, value)
        {
            fail(format!("const {constant}"), format!("got {value}"));
        }
        match value {
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or(f64::NAN);
                type Holds = fn(f64, f64) -> bool;
                let bounds: [(&str, Option<f64>, Holds); 4] = [
                    ("minimum", self.minimum, |n, b| n >= b),
                    ("maximum", self.maximum, |n, b| n <= b),
                    ("exclusiveMinimum", self.exclusive_minimum, |n, b| n > b),
                    ("exclusiveMaximum", self.exclusive_maximum, |n, b| n < b),
                ];
                for (rule, bound, holds) in bounds {
                    if let Some(bound) = bound
                        && !holds(n, bound)
                    {
                        fail(format!("{rule} {bound}"), format!("got {value}"));
                    }
                }
            }
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if let Some(min) = self.min_length.filter(|min| len < *min) {
                    fail(format!("minLength {min}"), format!("{len} characters"));
                }
                if let Some(max) = self.max_length.filter(|max| len > *max) {
                    fail(format!("maxLength {max}"), format!("{len} characters"));
                }
            }
            Value::Array(items) => {
                let len = items.len() as u64;
                if let Some(min) = self.min_items.filter(|min| len < *min) {
                    fail(format!("minItems {min}"), format!("{len} items"));
                }
                if let Some(max) = self.max_items.filter(|max| len > *max) {
                    fail(format!("maxItems {max}"), format!("{len} items"));
                }
                if let Some(item_schema) = &self.items {
                    for (i, item) in items.iter().enumerate() {
                        item_schema.check(item, &format!("{path}[{i}]"), violations);
                    }
                }
            }
            Value::Object(map) => self.check_object(map, path, violations),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn check_object(&self, map: &Map<String, Value>, path: &str, violations: &mut Vec<String>) {
        for name in &self.required {
            if !map.contains_key(name) {
                violations.push(format!("{path}.{name} violates required: missing"));
            }
        }
        for (name, value) in map {
            match self.properties.get(name) {
                Some(schema) => schema.check(value, &format!("{path}.{name}"), violations),
                None if self.additional_properties == Some(false) => violations.push(format!(
                    "{path}.{name} violates additionalProperties false: not allowed"
                )),
                None => {}
            }
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "integer" => match value {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "number" => value.is_number(),
        other => type_name(value) == other,
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn violations(schema: Value, value: Value) -> Vec<String> {
        let schema = Schema::parse(&schema, "rules").unwrap();
        let mut out = Vec::new();
        schema.check(&value, "properties", &mut out);
        out
    }

    #[test]
    fn types() {
        assert!(violations(json!({"type": "integer"}), json!(3)).is_empty());
        assert!(violations(json!({"type": "integer"}), json!(3.0)).is_empty());
        assert_eq!(
            violations(json!({"type": "integer"}), json!(3.5)),
            ["properties violates type integer: got number"]
        );
        assert!(violations(json!({"type": "number"}), json!(3)).is_empty());
        assert!(violations(json!({"type": ["string", "null"]}), json!(null)).is_empty());
        assert_eq!(
            violations(json!({"type": ["string", "null"]}), json!(1)),
            ["properties violates type string|null: got integer"]
        );
        assert_eq!(
            violations(json!({"type": "object"}), json!([])),
            ["properties violates type object: got array"]
        );
    }

    #[test]
    fn numbers_strings_arrays() {
        let schema = json!({"minimum": 1, "maximum": 10, "exclusiveMaximum": 10});
        assert!(violations(schema.clone(), json!(5)).is_empty());
        assert_eq!(
            violations(schema.clone(), json!(0)),
            ["properties violates minimum 1: got 0"]
        );
        assert_eq!(
            violations(schema, json!(10)),
            ["properties violates exclusiveMaximum 10: got 10"]
        );
        let schema = json!({"minLength": 2, "maxLength": 3});
        assert_eq!(
            violations(schema.clone(), json!("äöüß")),
            ["properties violates maxLength 3: 4 characters"]
        );
        assert!(violations(schema.clone(), json!("äö")).is_empty());
        // Keywords of another type are ignored, as in JSON Schema.
        assert!(violations(schema, json!(12345)).is_empty());
        let schema = json!({"minItems": 1, "items": {"type": "object", "required": ["sku"]}});
        assert_eq!(
            violations(schema.clone(), json!([{"sku": "a"}, {"qty": 1}, 3])),
            [
                "properties[1].sku violates required: missing",
                "properties[2] violates type object: got integer"
            ]
        );
        assert_eq!(
            violations(schema, json!([])),
            ["properties violates minItems 1: 0 items"]
        );
    }

    #[test]
    fn objects_enum_const() {
        let schema = json!({
            "required": ["currency"],
            "additionalProperties": false,
            "properties": {
                "currency": {"enum": ["USD", "EUR"]},
                "version": {"const": 2},
                "address": {"properties": {"zip": {"type": "string"}}}
            }
        });
        assert!(violations(schema.clone(), json!({"currency": "EUR", "version": 2.0})).is_empty());
        assert_eq!(
            violations(
                schema,
                json!({"currency": "XYZ", "version": 1, "address": {"zip": 12345}, "coupon": "x"})
            ),
            [
                r#"properties.address.zip violates type string: got integer"#,
                r#"properties.coupon violates additionalProperties false: not allowed"#,
                r#"properties.currency violates enum ["USD","EUR"]: got "XYZ""#,
                r#"properties.version violates const 2: got 1"#,
            ]
        );
    }

    #[test]
    fn bad_schemas() {
        for (schema, needle) in [
            (json!([]), "must be a JSON object"),
            (json!({"type": "float"}), "unknown type `float`"),
            (json!({"required": "id"}), "rules.required: must be a list"),
            (json!({"minimum": "0"}), "rules.minimum: must be a number"),
            (json!({"minLength": -1}), "rules.minLength: must be a count"),
            (
                json!({"properties": {"a": {"patern": "x"}}}),
                "rules.properties.a: unknown schema keyword `patern`",
            ),
        ] {
            let err = Schema::parse(&schema, "rules").unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        assert!(Schema::parse(&json!({"title": "t", "description": "d"}), "rules").is_ok());
    }
}
