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

use event_model::{Event, Received};

wit_bindgen::generate!({
    path: "../../wit/pipeline",
    world: "tributary:pipeline/ingest",
    generate_all,
});

event_model::wit_event_conversions!(
    tributary::stage1::transform::Event,
    tributary::stage2::transform::Event,
    tributary::stage3::transform::Event,
    tributary::stage4::transform::Event,
);

/// An event a stage refused, as that stage received it.
pub struct Refused {
    /// The event, with the earlier stages' changes (and its message
    /// rewritten to match).
    pub received: Received,
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
    pub events: Vec<Received>,
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

/// One stage's answer: events out and `(index, code, reason)` rejections.
type StageResult = Result<(Vec<Event>, Vec<(u32, String, String)>), String>;

/// Calls one slot: each slot's bindings have their own record types.
macro_rules! call_stage {
    ($slot:path, $batch:expr, $settings:expr) => {{
        use $slot as s;
        let batch: Vec<s::Event> = $batch.iter().map(|e| e.event.clone().into()).collect();
        s::transform(&batch, $settings).map(|out| {
            (
                out.events.into_iter().map(Event::from).collect::<Vec<_>>(),
                out.rejections
                    .into_iter()
                    .map(|r| (r.index, r.code, r.reason))
                    .collect::<Vec<_>>(),
            )
        })
    }};
}

fn call(stage: usize, batch: &[Received], settings: &[(String, String)]) -> StageResult {
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
    events: Vec<Received>,
    settings: &[Vec<(String, String)>; STAGES],
) -> Result<Outcome, StageFailed> {
    run_with(events, settings, call)
}

/// [`run`] with the stage calls supplied, so the chain's bookkeeping is
/// tested natively with stand-in stages.
fn run_with(
    events: Vec<Received>,
    settings: &[Vec<(String, String)>; STAGES],
    mut call: impl FnMut(usize, &[Received], &[(String, String)]) -> StageResult,
) -> Result<Outcome, StageFailed> {
    // Stages match their output to their input by message id, so each id
    // may enter the chain once: the first event with it wins, and the rest
    // are duplicates (as a retry of it would be), not a failed request.
    let total = events.len();
    let mut seen = HashSet::with_capacity(total);
    let mut batch: Vec<Received> = events
        .into_iter()
        .filter(|e| seen.insert(e.event.message_id.clone()))
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
                received: event.clone(),
                stage,
                code,
                reason,
            });
        }
        let before = batch.len();
        let mut by_id: HashMap<String, Received> = batch
            .into_iter()
            .map(|e| (e.event.message_id.clone(), e))
            .collect();
        let mut next = Vec::with_capacity(out.len());
        for event in out {
            let Some(original) = by_id.remove(&event.message_id) else {
                return Err(StageFailed {
                    stage,
                    message: format!(
                        "returned message id {:?}, which was not in its batch (transforms must keep message ids)",
                        event.message_id
                    ),
                });
            };
            next.push(original.with_event(event));
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

/// Each slot's settings, from `stageN_settings`.
pub async fn settings() -> Result<[Vec<(String, String)>; STAGES], String> {
    let mut all: [Vec<(String, String)>; STAGES] = Default::default();
    for (i, slot) in all.iter_mut().enumerate() {
        let name = format!("stage{}_settings", i + 1);
        let Ok(text) = spin_sdk::variables::get(&name).await else {
            continue;
        };
        *slot = event_model::settings_pairs(&text).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracked(message_id: &str, name: &str) -> Received {
        Received {
            event: Event {
                message_id: message_id.into(),
                ..Event::track(name, "{}", "{}")
            },
            raw: "{}".into(),
        }
    }

    /// A stage that returns its batch unchanged, as a pass-through filter does.
    fn pass_through(_: usize, batch: &[Received], _: &[(String, String)]) -> StageResult {
        Ok((batch.iter().map(|e| e.event.clone()).collect(), vec![]))
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
            .map(|e| (e.event.message_id.as_str(), e.event.name.as_deref()))
            .collect();
        assert_eq!(kept, [("dup", Some("first")), ("other", Some("other"))]);
        assert_eq!(outcome.duplicates, 2);
        assert_eq!(outcome.dropped, 0);
    }
}
