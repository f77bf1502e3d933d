//! The trap logic, independent of the bindings.

use serde_json::Value;
use transform_common::{Event, Output, Settings};

/// Passes `batch` through, panicking on an event whose `properties.trap`
/// is `true`.
pub fn run(batch: Vec<Event>, settings: &Settings) -> Result<Output, String> {
    settings.check_known(&["error"])?;
    if let Some(error) = settings.get("error") {
        return Err(error.to_owned());
    }
    for event in &batch {
        let trap = serde_json::from_str::<Value>(&event.properties)
            .ok()
            .and_then(|p| p.get("trap").and_then(Value::as_bool))
            .unwrap_or(false);
        if trap {
            panic!("transform-trap: event {} asked to trap", event.message_id);
        }
    }
    Ok(Output {
        events: batch,
        rejections: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_through() {
        let batch = vec![
            Event::track("a", r#"{"trap":false}"#, "{}"),
            Event::track("b", "not json", "{}"),
        ];
        let out = run(batch.clone(), &Settings::default()).unwrap();
        assert_eq!(out.events, batch);
    }

    #[test]
    #[should_panic(expected = "asked to trap")]
    fn traps() {
        let _ = run(
            vec![Event::track("a", r#"{"trap":true}"#, "{}")],
            &Settings::default(),
        );
    }

    #[test]
    fn errors_on_request() {
        let settings = Settings::from_pairs(&[("error", "boom")]);
        assert_eq!(run(vec![], &settings), Err("boom".to_owned()));
    }
}
