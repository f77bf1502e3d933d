//! `trib transform run`: runs one transform component (world
//! `tributary:pipeline/transformer`, `wit/pipeline/pipeline.wit`) alone over
//! a file of events, so a transform can be tried and tested without an app.
//!
//! The file holds JSON lines (or one JSON array): each event either in the
//! WIT record's shape (an object with `message_id` or `kind`: also `name`,
//! `user_id`, `anonymous_id`, `timestamp_ms`, `properties`, `context`) or
//! as a Segment message (`messageId`, `type`, `event`, `userId`,
//! `anonymousId`, `properties`/`traits`, `context`, `timestamp`, `sentAt`),
//! which is read by the ingest function's own rules
//! (`event_model::segment::check`, arriving now; `type` defaults to
//! `track`), so a message becomes the same event here as there. The output
//! is one JSON object: the events that go on and the rejections, as the
//! ingest service sees them.

use std::path::Path;

use event_model::segment;
use serde_json::{Value, json};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/pipeline",
        world: "tributary:pipeline/transformer",
    });
}

use bindings::exports::tributary::pipeline::transform::{BatchResult, Event};

event_model::wit_event_conversions!(Event);

/// Why a transform could not be run.
#[derive(Debug, thiserror::Error)]
pub enum TransformRunError {
    /// The events file is unreadable or not events.
    #[error("{path}: {message}")]
    Events {
        /// The file.
        path: String,
        /// What is wrong, with the line when known.
        message: String,
    },
    /// `--settings` is not a JSON object.
    #[error("--settings: {0}")]
    Settings(String),
    /// The component could not be loaded, or is not a transformer.
    #[error("{path}: {message}")]
    Component {
        /// The component file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The transform trapped.
    #[error("the transform trapped: {0}")]
    Trapped(String),
    /// The transform refused to run (its `err` result).
    #[error("the transform refused the batch: {0}")]
    Refused(String),
}

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Runs `component` over the events in `events` with `settings` (a JSON
/// object, as in the ingest service's `stageN_settings`); returns the
/// result as JSON.
pub fn run(component: &Path, events: &Path, settings: &str) -> Result<Value, TransformRunError> {
    let batch = read_events(events)?;
    let settings = parse_settings(settings)?;
    let comp_err = |message: String| TransformRunError::Component {
        path: component.display().to_string(),
        message,
    };
    let engine = Engine::default();
    let compiled =
        Component::from_file(&engine, component).map_err(|e| comp_err(format!("{e:#}")))?;
    let mut linker: Linker<State> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| comp_err(format!("{e:#}")))?;
    let mut store = Store::new(
        &engine,
        State {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
        },
    );
    let transformer =
        bindings::Transformer::instantiate(&mut store, &compiled, &linker).map_err(|e| {
            comp_err(format!(
                "not a tributary:pipeline/transformer component: {e:#}"
            ))
        })?;
    let result = transformer
        .tributary_pipeline_transform()
        .call_transform(&mut store, &batch, &settings)
        .map_err(|e| TransformRunError::Trapped(format!("{e:#}")))?
        .map_err(TransformRunError::Refused)?;
    Ok(output(result))
}

fn output(result: BatchResult) -> Value {
    let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::String(text.to_owned()));
    json!({
        "events": result.events.iter().map(|e| json!({
            "message_id": e.message_id,
            "kind": e.kind,
            "name": e.name,
            "user_id": e.user_id,
            "anonymous_id": e.anonymous_id,
            "timestamp_ms": e.timestamp_ms,
            "properties": parse(&e.properties),
            "context": parse(&e.context),
        })).collect::<Vec<_>>(),
        "rejections": result.rejections.iter().map(|r| json!({
            "index": r.index,
            "code": r.code,
            "reason": r.reason,
        })).collect::<Vec<_>>(),
    })
}

/// `--settings`, read as the ingest service reads `stageN_settings`.
fn parse_settings(text: &str) -> Result<Vec<(String, String)>, TransformRunError> {
    event_model::settings_pairs(text).map_err(TransformRunError::Settings)
}

fn read_events(path: &Path) -> Result<Vec<Event>, TransformRunError> {
    let err = |message: String| TransformRunError::Events {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let values: Vec<(usize, Value)> = if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i + 1, v))
                .collect(),
            Ok(_) => return Err(err("expected a JSON array of events".into())),
            Err(e) => return Err(err(format!("not JSON: {e}"))),
        }
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map(|v| (i + 1, v))
                    .map_err(|e| err(format!("line {}: not JSON: {e}", i + 1)))
            })
            .collect::<Result<_, _>>()?
    };
    let received_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    values
        .into_iter()
        .map(|(n, v)| {
            event(v, received_ms)
                .map(Event::from)
                .map_err(|m| err(format!("event {n}: {m}")))
        })
        .collect()
}

/// One event from either shape: the WIT record's (an object with
/// `message_id` or `kind`), or a Segment message, which goes through the
/// ingest function's conversion with `received_ms` as its arrival.
fn event(value: Value, received_ms: i64) -> Result<event_model::Event, String> {
    let Value::Object(obj) = &value else {
        return Err("must be a JSON object".into());
    };
    if !obj.contains_key("message_id") && !obj.contains_key("kind") {
        // Ingest takes the type from the URL or the message; a file has no
        // URL, so a message without `type` is a `track`.
        let kind = (!obj.contains_key("type")).then_some("track");
        return segment::check(&value, kind, None, received_ms)
            .map(|received| received.event)
            .map_err(|invalid| invalid.message);
    }
    let text = |keys: &[&str]| -> Option<String> {
        keys.iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let object = |keys: &[&str]| -> Result<String, String> {
        match keys.iter().find_map(|k| obj.get(*k)) {
            None | Some(Value::Null) => Ok("{}".into()),
            Some(v @ Value::Object(_)) => Ok(v.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{} must be an object", keys[0])),
        }
    };
    let message_id =
        text(&["message_id", "messageId"]).ok_or("message_id (or messageId) is required")?;
    Ok(event_model::Event {
        message_id,
        kind: text(&["kind", "type"]).unwrap_or_else(|| "track".into()),
        name: text(&["name", "event"]),
        user_id: text(&["user_id", "userId"]),
        anonymous_id: text(&["anonymous_id", "anonymousId"]),
        timestamp_ms: obj
            .get("timestamp_ms")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
        properties: object(&["properties", "traits"])?,
        context: object(&["context"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When the events are read, in ms since the epoch.
    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn both_event_shapes_are_read() {
        let wit = event(
            json!({"message_id": "m1", "kind": "page", "name": "Home", "properties": {"a": 1}}),
            NOW,
        )
        .expect("wit shape");
        assert_eq!(
            (wit.kind.as_str(), wit.properties.as_str()),
            ("page", "{\"a\":1}")
        );
        let segment = event(
            json!({"messageId": "m2", "type": "track", "event": "Signed Up", "userId": "u"}),
            NOW,
        )
        .expect("segment shape");
        assert_eq!(segment.name.as_deref(), Some("Signed Up"));
        assert_eq!(segment.context, "{}");
        assert!(event(json!({"event": "x"}), NOW).is_err());
        assert!(event(json!({"messageId": "m", "properties": [1]}), NOW).is_err());
    }

    /// Issue 11: a Segment message becomes here the event ingest makes of
    /// it (its `timestamp` was ignored before), by the same conversion.
    #[test]
    fn segment_messages_are_read_as_ingest_reads_them() {
        let message = json!({"messageId": "m3", "type": "identify", "userId": "u",
            "traits": {"plan": "pro"}, "timestamp": "2026-01-01T00:00:00Z"});
        let here = event(message.clone(), NOW).expect("valid");
        let ingest = segment::check(&message, None, None, NOW).expect("valid");
        assert_eq!(here, ingest.event);
        assert_eq!(here.timestamp_ms, 1_767_225_600_000);
        assert_eq!(here.properties, r#"{"plan":"pro"}"#);
        let undated = event(json!({"userId": "u", "event": "x"}), NOW).expect("valid");
        assert_eq!(
            (undated.kind.as_str(), undated.timestamp_ms),
            ("track", NOW)
        );
        assert!(undated.message_id.starts_with("api-"), "{undated:?}");
    }

    #[test]
    fn settings_must_be_an_object() {
        assert_eq!(parse_settings("").ok(), Some(vec![]));
        assert!(parse_settings("[1]").is_err());
        assert_eq!(
            parse_settings(r#"{"mode": "drop", "n": 2}"#).ok(),
            Some(vec![
                ("mode".into(), "drop".into()),
                ("n".into(), "2".into())
            ])
        );
    }
}
