//! The data app's event, in one place.
//!
//! [`Event`] is the one Rust record of the WIT `event`
//! (`wit/pipeline/pipeline.wit`): the ingest service, every transform and
//! `trib transform run` use it. Each WIT binding still has its own copy of
//! the record (one per chain slot in ingest, one per transform, one in the
//! host), so [`wit_event_conversions!`] writes the field-by-field
//! conversion both ways once. [`segment::check`] is the one conversion from
//! a Segment message to an event, and [`Received::with_event`] the one way
//! back (the stored message rewritten to what the transforms left).
//!
//! [`settings_pairs`] is the one reading of a stage's settings.
//!
//! Nothing here touches a host capability, so the crate builds natively
//! (the runtime depends on it by path) and for `wasm32-wasip2`.

pub mod segment;

use serde_json::Value;

/// One event, as in the WIT `event` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The client's id for the message (or a generated `api-` UUID when the
    /// message had none); transforms never change it.
    pub message_id: String,
    /// `track`, `identify`, `page`, `screen`, `group` or `alias`.
    pub kind: String,
    /// `event` for track, `name` for page and screen.
    pub name: Option<String>,
    /// `userId`.
    pub user_id: Option<String>,
    /// `anonymousId`.
    pub anonymous_id: Option<String>,
    /// When it happened, corrected for client clock skew: milliseconds
    /// since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    /// `properties` (`traits` for identify and group) as JSON text of an
    /// object.
    pub properties: String,
    /// `context` as JSON text of an object (`{}` when absent).
    pub context: String,
}

impl Event {
    /// A `track` event named `name` with the given JSON texts, for tests.
    pub fn track(name: &str, properties: &str, context: &str) -> Self {
        Self {
            message_id: format!("m-{name}"),
            kind: "track".into(),
            name: Some(name.into()),
            user_id: Some("u1".into()),
            anonymous_id: None,
            timestamp_ms: 0,
            properties: properties.into(),
            context: context.into(),
        }
    }
}

/// An event with the message it came from, as the ingest service keeps
/// it: the message's JSON text is what it stores (and what a dead letter
/// holds).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The event.
    pub event: Event,
    /// The message as received (as the transforms left it, once they ran).
    pub raw: String,
}

impl Received {
    /// The event as a transform left it; `raw` is rewritten to match, so
    /// the stored message never holds what a transform removed.
    pub fn with_event(self, event: Event) -> Self {
        if event == self.event {
            return self;
        }
        let raw = rewritten_raw(&self.raw, &event);
        Self { event, raw }
    }
}

/// A stage's settings from their JSON form (the ingest service's
/// `stageN_settings` variables, `trib transform run --settings`): each
/// member of a JSON object becomes a `(key, value)` pair, a string member
/// as is and any other as its JSON text, as `wit/pipeline/pipeline.wit`
/// specifies; empty text is no settings.
pub fn settings_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let Value::Object(members) =
        serde_json::from_str::<Value>(text).map_err(|e| format!("not JSON: {e}"))?
    else {
        return Err("must be a JSON object, e.g. '{\"paths\": \"email\"}'".into());
    };
    Ok(members
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, segment::json_text(&other)),
        })
        .collect())
}

/// `raw` (a Segment message's JSON text) with the fields a transform may
/// change replaced by `event`'s; text that is not a JSON object is kept.
fn rewritten_raw(raw: &str, event: &Event) -> String {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(raw) else {
        return raw.to_owned();
    };
    let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
    message.insert(
        segment::properties_key(&event.kind).to_owned(),
        parse(&event.properties),
    );
    message.insert("context".to_owned(), parse(&event.context));
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    message.insert("userId".to_owned(), text(&event.user_id));
    message.insert("anonymousId".to_owned(), text(&event.anonymous_id));
    match event.kind.as_str() {
        "track" => {
            message.insert("event".to_owned(), text(&event.name));
        }
        "page" | "screen" => {
            message.insert("name".to_owned(), text(&event.name));
        }
        _ => {}
    }
    segment::json_text(&Value::Object(message))
}

/// Writes `From` both ways between [`Event`] and each given WIT-generated
/// `event` record type (wit-bindgen's or wasmtime's: the same fields, a
/// different type per binding), so the field-by-field copy exists once.
/// Invoke it in the crate that owns the generated types.
#[macro_export]
macro_rules! wit_event_conversions {
    // The copy itself, written once: `Self` from the same fields of `$e`.
    (@copy $e:ident) => {
        Self {
            message_id: $e.message_id,
            kind: $e.kind,
            name: $e.name,
            user_id: $e.user_id,
            anonymous_id: $e.anonymous_id,
            timestamp_ms: $e.timestamp_ms,
            properties: $e.properties,
            context: $e.context,
        }
    };
    ($($wit:ty),+ $(,)?) => {$(
        impl ::core::convert::From<$crate::Event> for $wit {
            fn from(e: $crate::Event) -> Self {
                $crate::wit_event_conversions!(@copy e)
            }
        }

        impl ::core::convert::From<$wit> for $crate::Event {
            fn from(e: $wit) -> Self {
                $crate::wit_event_conversions!(@copy e)
            }
        }
    )+};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_json_objects_with_strings_kept_as_is() {
        assert_eq!(settings_pairs(""), Ok(vec![]));
        assert_eq!(
            settings_pairs(r#"{"paths": "email", "rules": {"x": {"required": ["a"]}}}"#),
            Ok(vec![
                ("paths".into(), "email".into()),
                ("rules".into(), r#"{"x":{"required":["a"]}}"#.into()),
            ])
        );
        assert!(settings_pairs("[1]").is_err());
        assert!(settings_pairs("{").is_err());
    }

    #[test]
    fn the_stored_message_is_rewritten_to_what_transforms_left() {
        let received = Received {
            event: Event {
                kind: "track".into(),
                message_id: "m1".into(),
                name: Some("Signed Up".into()),
                user_id: Some("u1".into()),
                anonymous_id: None,
                timestamp_ms: 0,
                properties: r#"{"email":"a@b.c"}"#.into(),
                context: r#"{"ip":"1.2.3.4"}"#.into(),
            },
            raw: r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"m1","properties":{"email":"a@b.c"},"context":{"ip":"1.2.3.4"}}"#.into(),
        };
        let event = Event {
            properties: r#"{"email":"ab12"}"#.into(),
            context: r#"{"ip":"x"}"#.into(),
            ..received.event.clone()
        };
        let unchanged = received.clone().with_event(received.event.clone());
        assert_eq!(unchanged, received);
        let raw: Value = serde_json::from_str(&received.with_event(event).raw).expect("json");
        assert_eq!(raw["properties"]["email"], "ab12");
        assert_eq!(raw["context"]["ip"], "x");
        assert_eq!(raw["messageId"], "m1");
    }
}
