//! `trib transform run`: runs one transform component (world
//! `tributary:pipeline/transformer`, `wit/pipeline/pipeline.wit`) alone over
//! a file of events, so a transform can be tried and tested without an app.
//!
//! The file holds JSON lines (or one JSON array): each event either in the
//! WIT record's shape (`message_id`, `kind`, `name`, `user_id`,
//! `anonymous_id`, `timestamp_ms`, `properties`, `context`) or as a Segment
//! message (`messageId`, `type`, `event`, `userId`, `anonymousId`,
//! `properties`/`traits`, `context`). The output is one JSON object: the
//! events that go on and the rejections, as the ingest service sees them.

use std::path::Path;

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

fn parse_settings(text: &str) -> Result<Vec<(String, String)>, TransformRunError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(members)) => Ok(members
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect()),
        Ok(_) => Err(TransformRunError::Settings(
            "must be a JSON object, e.g. '{\"paths\": \"email\"}'".into(),
        )),
        Err(e) => Err(TransformRunError::Settings(format!("not JSON: {e}"))),
    }
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
    values
        .into_iter()
        .map(|(n, v)| event(v).map_err(|m| err(format!("event {n}: {m}"))))
        .collect()
}

/// One event from either shape.
fn event(value: Value) -> Result<Event, String> {
    let Value::Object(obj) = value else {
        return Err("must be a JSON object".into());
    };
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
    Ok(Event {
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

    #[test]
    fn both_event_shapes_are_read() {
        let wit = event(
            json!({"message_id": "m1", "kind": "page", "name": "Home", "properties": {"a": 1}}),
        )
        .expect("wit shape");
        assert_eq!(
            (wit.kind.as_str(), wit.properties.as_str()),
            ("page", "{\"a\":1}")
        );
        let segment =
            event(json!({"messageId": "m2", "type": "track", "event": "Signed Up", "userId": "u"}))
                .expect("segment shape");
        assert_eq!(segment.name.as_deref(), Some("Signed Up"));
        assert_eq!(segment.context, "{}");
        assert!(event(json!({"event": "x"})).is_err());
        assert!(event(json!({"messageId": "m", "properties": [1]})).is_err());
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
