//! Redaction logic, independent of the bindings.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use transform_common::json::{parse_object, parse_path, to_text};
use transform_common::{Event, INVALID_EVENT, Output, Rejection, Settings};

/// What to do with a value found at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replace it with the hex SHA-256 of its text.
    Hash,
    /// Remove the key.
    Drop,
}

/// Parsed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The paths, as names.
    pub paths: Vec<Vec<String>>,
    /// Hash or drop.
    pub mode: Mode,
}

impl Config {
    /// Reads `paths` and `mode`.
    pub fn parse(settings: &Settings) -> Result<Self, String> {
        settings.check_known(&["paths", "mode"])?;
        let paths = settings
            .list("paths")
            .into_iter()
            .map(parse_path)
            .collect::<Result<Vec<_>, _>>()?;
        if paths.is_empty() {
            return Err("setting `paths` is required: comma-separated property paths".into());
        }
        let mode = match settings.get("mode").map(str::trim) {
            None | Some("hash") => Mode::Hash,
            Some("drop") => Mode::Drop,
            Some(other) => {
                return Err(format!(
                    "setting `mode` must be `hash` or `drop`, got `{other}`"
                ));
            }
        };
        Ok(Self { paths, mode })
    }
}

/// The transform: redacts every event of the batch.
pub fn run(batch: Vec<Event>, settings: &Settings) -> Result<Output, String> {
    let config = Config::parse(settings)?;
    let mut out = Output::default();
    for (index, mut event) in batch.into_iter().enumerate() {
        match redact_event(&mut event, &config) {
            Ok(()) => out.events.push(event),
            Err(reason) => out
                .rejections
                .push(Rejection::new(index, INVALID_EVENT, reason)),
        }
    }
    Ok(out)
}

/// Redacts one event's `properties` and `context` in place.
pub fn redact_event(event: &mut Event, config: &Config) -> Result<(), String> {
    let mut properties = parse_object(&event.properties, "properties")?;
    let mut context = parse_object(&event.context, "context")?;
    if redact_map(&mut properties, config) {
        event.properties = to_text(&properties);
    }
    if redact_map(&mut context, config) {
        event.context = to_text(&context);
    }
    Ok(())
}

/// Applies every path to `map`; true if anything changed.
fn redact_map(map: &mut Map<String, Value>, config: &Config) -> bool {
    let mut changed = false;
    for path in &config.paths {
        changed |= redact_in_map(map, path, config.mode);
    }
    changed
}

fn redact_in_map(map: &mut Map<String, Value>, path: &[String], mode: Mode) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    if !rest.is_empty() {
        return map
            .get_mut(first)
            .is_some_and(|value| redact_in_value(value, rest, mode));
    }
    match mode {
        Mode::Drop => map.remove(first).is_some(),
        Mode::Hash => match map.get_mut(first) {
            None | Some(Value::Null) => false,
            Some(value) => {
                *value = Value::String(hash(value));
                true
            }
        },
    }
}

fn redact_in_value(value: &mut Value, path: &[String], mode: Mode) -> bool {
    match value {
        Value::Object(map) => redact_in_map(map, path, mode),
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            redact_in_value(item, path, mode) | changed
        }),
        _ => false,
    }
}

/// Lowercase hex SHA-256 of a string's bytes, or of another value's JSON
/// text.
pub fn hash(value: &Value) -> String {
    let digest = match value {
        Value::String(s) => Sha256::digest(s.as_bytes()),
        other => Sha256::digest(other.to_string().as_bytes()),
    };
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn settings(paths: &str, mode: Option<&str>) -> Settings {
        let mut pairs = vec![("paths", paths)];
        if let Some(mode) = mode {
            pairs.push(("mode", mode));
        }
        Settings::from_pairs(&pairs)
    }

    fn props(event: &Event) -> Value {
        serde_json::from_str(&event.properties).unwrap()
    }

    fn ctx(event: &Event) -> Value {
        serde_json::from_str(&event.context).unwrap()
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(hash(&json!("abc")), ABC_SHA256);
        // Non-strings hash their JSON text.
        assert_eq!(hash(&json!(42)), hash(&json!("42")));
    }

    #[test]
    fn hashes_paths_in_properties_and_context() {
        let event = Event::track(
            "Signed Up",
            r#"{"email":"abc","address":{"street":"abc","city":"Oslo"},"plan":"pro"}"#,
            r#"{"email":"abc","ip":"1.2.3.4"}"#,
        );
        let out = run(vec![event], &settings("email, address.street", None)).unwrap();
        assert!(out.rejections.is_empty());
        let event = &out.events[0];
        assert_eq!(
            props(event),
            json!({"email": ABC_SHA256, "address": {"street": ABC_SHA256, "city": "Oslo"}, "plan": "pro"})
        );
        assert_eq!(ctx(event), json!({"email": ABC_SHA256, "ip": "1.2.3.4"}));
        assert_eq!(event.message_id, "m-Signed Up");
    }

    #[test]
    fn drops_paths() {
        let event = Event::track(
            "x",
            r#"{"email":"a@b.c","address":{"street":"Main St 1","city":"Oslo"}}"#,
            r#"{"ip":"1.2.3.4"}"#,
        );
        let out = run(
            vec![event],
            &settings("email,address.street,ip", Some("drop")),
        )
        .unwrap();
        assert_eq!(props(&out.events[0]), json!({"address": {"city": "Oslo"}}));
        assert_eq!(ctx(&out.events[0]), json!({}));
    }

    #[test]
    fn walks_arrays_and_leaves_null_and_missing_alone() {
        let event = Event::track(
            "x",
            r#"{"items":[{"email":"abc"},{"sku":"s"},7],"phone":null}"#,
            "{}",
        );
        let out = run(
            vec![event],
            &settings("items.email,phone,missing.deep", None),
        )
        .unwrap();
        assert_eq!(
            props(&out.events[0]),
            json!({"items": [{"email": ABC_SHA256}, {"sku": "s"}, 7], "phone": null})
        );
    }

    #[test]
    fn untouched_events_keep_their_text() {
        let text = r#"{ "b": 1, "a": 2 }"#;
        let event = Event::track("x", text, "");
        let out = run(vec![event.clone()], &settings("email", None)).unwrap();
        assert_eq!(out.events, vec![event]);
    }

    #[test]
    fn invalid_json_is_rejected_with_its_index() {
        let good = Event::track("a", r#"{"email":"abc"}"#, "{}");
        let bad = Event::track("b", "[1,2]", "{}");
        let bad_context = Event::track("c", "{}", "{oops");
        let out = run(vec![good, bad, bad_context], &settings("email", None)).unwrap();
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.rejections.len(), 2);
        assert_eq!(out.rejections[0].index, 1);
        assert_eq!(out.rejections[0].code, "invalid_event");
        assert!(out.rejections[0].reason.contains("properties"));
        assert_eq!(out.rejections[1].index, 2);
        assert!(out.rejections[1].reason.contains("context"));
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(
            run(vec![], &Settings::default())
                .unwrap_err()
                .contains("`paths`")
        );
        assert!(run(vec![], &settings("a..b", None)).is_err());
        assert!(
            run(vec![], &settings("a", Some("mask")))
                .unwrap_err()
                .contains("`mode`")
        );
        let typo = Settings::from_pairs(&[("paths", "a"), ("mdoe", "drop")]);
        assert!(run(vec![], &typo).unwrap_err().contains("`mdoe`"));
    }
}
