//! The transform chain: the four slots of the `tributary:pipeline/ingest`
//! world (`wit/pipeline/pipeline.wit`), filled at composition time by the
//! transform components `spin.toml` names in `[component.ingest.dependencies]`.
//!
//! Each slot's settings come from the component variable
//! `stageN_settings`: a JSON object whose members become the stage's
//! `(key, value)` pairs (a string member as is, any other as its JSON
//! text); an undefined or empty variable means no settings. Events leave
//! the chain in input order; a rejection at any stage becomes a dead
//! letter carrying the event as that stage received it (so an earlier
//! redaction is never undone in the dead-letter table).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::validate::Event;

wit_bindgen::generate!({
    path: "../../wit/pipeline",
    world: "tributary:pipeline/ingest",
    generate_all,
});

/// An event a stage refused, as that stage received it.
pub struct Refused {
    /// The event, with the earlier stages' changes.
    pub event: Event,
    /// The slot that refused it, 1-based.
    pub stage: usize,
    /// The transform's code.
    pub code: String,
    /// The transform's reason.
    pub reason: String,
}

/// What came out of the chain.
pub struct Outcome {
    /// Events to store, in input order.
    pub events: Vec<Event>,
    /// Events a stage refused.
    pub refused: Vec<Refused>,
    /// How many events a stage dropped without refusing them (filters).
    pub dropped: usize,
    /// Events left out because an earlier event of the same batch has their
    /// message id: the first is kept, as a retry of it would be.
    pub duplicates: usize,
}

/// A stage that cannot run (its settings are wrong): the whole request
/// fails and nothing is stored.
#[derive(Debug)]
pub struct StageFailed {
    /// The slot, 1-based.
    pub stage: usize,
    /// The transform's message.
    pub message: String,
}

/// One stage's answer in plain types: events out and `(index, code,
/// reason)` rejections.
type StageResult = Result<(Vec<Plain>, Vec<(u32, String, String)>), String>;

/// The fields a transform may change.
struct Plain {
    message_id: String,
    kind: String,
    name: Option<String>,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    timestamp_ms: i64,
    properties: String,
    context: String,
}

/// Calls one slot: each slot's bindings have their own record types.
macro_rules! call_stage {
    ($slot:path, $batch:expr, $settings:expr) => {{
        use $slot as s;
        let batch: Vec<s::Event> = $batch
            .iter()
            .map(|e: &Event| s::Event {
                message_id: e.message_id.clone(),
                kind: e.kind.clone(),
                name: e.name.clone(),
                user_id: e.user_id.clone(),
                anonymous_id: e.anonymous_id.clone(),
                timestamp_ms: e.timestamp_ms,
                properties: e.properties.clone(),
                context: e.context.clone(),
            })
            .collect();
        s::transform(&batch, $settings).map(|out| {
            (
                out.events
                    .into_iter()
                    .map(|e| Plain {
                        message_id: e.message_id,
                        kind: e.kind,
                        name: e.name,
                        user_id: e.user_id,
                        anonymous_id: e.anonymous_id,
                        timestamp_ms: e.timestamp_ms,
                        properties: e.properties,
                        context: e.context,
                    })
                    .collect::<Vec<_>>(),
                out.rejections
                    .into_iter()
                    .map(|r| (r.index, r.code, r.reason))
                    .collect::<Vec<_>>(),
            )
        })
    }};
}

fn call(stage: usize, batch: &[Event], settings: &[(String, String)]) -> StageResult {
    match stage {
        1 => call_stage!(tributary::stage1::transform, batch, settings),
        2 => call_stage!(tributary::stage2::transform, batch, settings),
        3 => call_stage!(tributary::stage3::transform, batch, settings),
        _ => call_stage!(tributary::stage4::transform, batch, settings),
    }
}

/// The slots, in the order they run.
pub const STAGES: usize = 4;

/// Runs `events` through every slot in order.
pub fn run(
    events: Vec<Event>,
    settings: &[Vec<(String, String)>; STAGES],
) -> Result<Outcome, StageFailed> {
    run_with(events, settings, call)
}

/// [`run`] with the stage calls supplied, so the chain's bookkeeping is
/// tested natively with stand-in stages.
fn run_with(
    events: Vec<Event>,
    settings: &[Vec<(String, String)>; STAGES],
    mut call: impl FnMut(usize, &[Event], &[(String, String)]) -> StageResult,
) -> Result<Outcome, StageFailed> {
    // Stages match their output to their input by message id, so each id
    // may enter the chain once: the first event with it wins, and the rest
    // are duplicates (as a retry of it would be), not a failed request.
    let total = events.len();
    let mut seen = HashSet::with_capacity(total);
    let mut batch: Vec<Event> = events
        .into_iter()
        .filter(|e| seen.insert(e.message_id.clone()))
        .collect();
    let duplicates = total - batch.len();
    let mut refused = Vec::new();
    let mut dropped = 0;
    for (i, stage_settings) in settings.iter().enumerate() {
        let stage = i + 1;
        if batch.is_empty() {
            break;
        }
        let (out, rejections) = call(stage, &batch, stage_settings)
            .map_err(|message| StageFailed { stage, message })?;
        let rejected = rejections.len();
        for (index, code, reason) in rejections {
            let Some(event) = batch.get(index as usize) else {
                return Err(StageFailed {
                    stage,
                    message: format!("rejected index {index}, past the batch of {}", batch.len()),
                });
            };
            refused.push(Refused {
                event: event.clone(),
                stage,
                code,
                reason,
            });
        }
        let before = batch.len();
        let mut by_id: HashMap<String, Event> = batch
            .into_iter()
            .map(|e| (e.message_id.clone(), e))
            .collect();
        let mut next = Vec::with_capacity(out.len());
        for plain in out {
            let Some(original) = by_id.remove(&plain.message_id) else {
                return Err(StageFailed {
                    stage,
                    message: format!(
                        "returned message id {:?}, which was not in its batch (transforms must keep message ids)",
                        plain.message_id
                    ),
                });
            };
            next.push(merge(original, plain));
        }
        dropped += before.saturating_sub(next.len() + rejected);
        batch = next;
    }
    Ok(Outcome {
        events: batch,
        refused,
        dropped,
        duplicates,
    })
}

/// The event as a transform left it; `raw` is rewritten to match, so the
/// stored message never holds what a transform removed.
fn merge(original: Event, plain: Plain) -> Event {
    let unchanged = original.kind == plain.kind
        && original.name == plain.name
        && original.user_id == plain.user_id
        && original.anonymous_id == plain.anonymous_id
        && original.timestamp_ms == plain.timestamp_ms
        && original.properties == plain.properties
        && original.context == plain.context;
    if unchanged {
        return original;
    }
    let mut event = Event {
        kind: plain.kind,
        message_id: plain.message_id,
        name: plain.name,
        user_id: plain.user_id,
        anonymous_id: plain.anonymous_id,
        timestamp_ms: plain.timestamp_ms,
        properties: plain.properties,
        context: plain.context,
        raw: original.raw,
    };
    event.raw = rewritten_raw(&event);
    event
}

fn rewritten_raw(event: &Event) -> String {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(&event.raw) else {
        return event.raw.clone();
    };
    let properties_key = if matches!(event.kind.as_str(), "identify" | "group") {
        "traits"
    } else {
        "properties"
    };
    let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
    message.insert(properties_key.to_owned(), parse(&event.properties));
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
    crate::validate::json_text(&Value::Object(message))
}

/// Each slot's settings, from `stageN_settings`.
pub async fn settings() -> Result<[Vec<(String, String)>; STAGES], String> {
    let mut all: [Vec<(String, String)>; STAGES] = Default::default();
    for (i, slot) in all.iter_mut().enumerate() {
        let name = format!("stage{}_settings", i + 1);
        let Ok(text) = spin_sdk::variables::get(&name).await else {
            continue;
        };
        *slot = parse_settings(&text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(all)
}

fn parse_settings(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let Value::Object(members) =
        serde_json::from_str::<Value>(text).map_err(|e| format!("not JSON: {e}"))?
    else {
        return Err("must be a JSON object".into());
    };
    Ok(members
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_json_objects_with_strings_kept_as_is() {
        assert_eq!(parse_settings(""), Ok(vec![]));
        assert_eq!(
            parse_settings(r#"{"paths": "email", "rules": {"x": {"required": ["a"]}}}"#),
            Ok(vec![
                ("paths".into(), "email".into()),
                ("rules".into(), r#"{"x":{"required":["a"]}}"#.into()),
            ])
        );
        assert!(parse_settings("[1]").is_err());
        assert!(parse_settings("{").is_err());
    }

    fn tracked(message_id: &str, name: &str) -> Event {
        Event {
            kind: "track".into(),
            message_id: message_id.into(),
            name: Some(name.into()),
            user_id: Some("u1".into()),
            anonymous_id: None,
            timestamp_ms: 0,
            properties: "{}".into(),
            context: "{}".into(),
            raw: "{}".into(),
        }
    }

    /// A stage that returns its batch unchanged, as a pass-through filter does.
    fn pass_through(_: usize, batch: &[Event], _: &[(String, String)]) -> StageResult {
        Ok((
            batch
                .iter()
                .map(|e| Plain {
                    message_id: e.message_id.clone(),
                    kind: e.kind.clone(),
                    name: e.name.clone(),
                    user_id: e.user_id.clone(),
                    anonymous_id: e.anonymous_id.clone(),
                    timestamp_ms: e.timestamp_ms,
                    properties: e.properties.clone(),
                    context: e.context.clone(),
                })
                .collect(),
            vec![],
        ))
    }

    /// Issue 10, item 10: two events of one batch with the same message id
    /// failed the whole request with `transform_failed` (a 500 that Segment
    /// clients retry forever).
    #[test]
    fn an_in_batch_duplicate_message_id_keeps_the_first_and_counts_the_rest() {
        let events = vec![
            tracked("dup", "first"),
            tracked("other", "other"),
            tracked("dup", "second"),
            tracked("dup", "third"),
        ];
        let outcome = run_with(events, &Default::default(), pass_through)
            .unwrap_or_else(|e| panic!("stage {} failed: {}", e.stage, e.message));
        let kept: Vec<_> = outcome
            .events
            .iter()
            .map(|e| (e.message_id.as_str(), e.name.as_deref()))
            .collect();
        assert_eq!(kept, [("dup", Some("first")), ("other", Some("other"))]);
        assert_eq!(outcome.duplicates, 2);
        assert_eq!(outcome.dropped, 0);
    }

    #[test]
    fn the_stored_message_is_rewritten_to_what_transforms_left() {
        let event = Event {
            kind: "track".into(),
            message_id: "m1".into(),
            name: Some("Signed Up".into()),
            user_id: Some("u1".into()),
            anonymous_id: None,
            timestamp_ms: 0,
            properties: r#"{"email":"ab12"}"#.into(),
            context: r#"{"ip":"x"}"#.into(),
            raw: r#"{"type":"track","event":"Signed Up","userId":"u1","messageId":"m1","properties":{"email":"a@b.c"},"context":{"ip":"1.2.3.4"}}"#.into(),
        };
        let raw: Value = serde_json::from_str(&rewritten_raw(&event)).expect("json");
        assert_eq!(raw["properties"]["email"], "ab12");
        assert_eq!(raw["context"]["ip"], "x");
        assert_eq!(raw["messageId"], "m1");
    }
}
