//! Validation logic, independent of the bindings.

use std::collections::BTreeMap;

use serde_json::Value;
use transform_common::json::parse_object;
use transform_common::{Event, INVALID_EVENT, Output, Rejection, Settings};

use crate::schema::Schema;

/// Code of a rejection for an event that breaks its schema.
pub const SCHEMA_VIOLATION: &str = "schema_violation";

/// Schemas by event name (`*`: every event).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    by_name: BTreeMap<String, Schema>,
}

impl Rules {
    /// Reads the `rules` setting.
    pub fn parse(settings: &Settings) -> Result<Self, String> {
        settings.check_known(&["rules"])?;
        let text = settings
            .get("rules")
            .ok_or("setting `rules` is required: a JSON object of schemas by event name")?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("setting `rules` is not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("setting `rules` must be a JSON object of schemas by event name".into());
        };
        let by_name = map
            .into_iter()
            .map(|(name, schema)| {
                Schema::parse(&schema, &format!("rules[{name:?}]")).map(|s| (name, s))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { by_name })
    }

    /// The schemas that apply to an event named `name`.
    fn for_event(&self, name: Option<&str>) -> impl Iterator<Item = &Schema> {
        let named = name.and_then(|n| self.by_name.get(n));
        self.by_name.get("*").into_iter().chain(named)
    }
}

/// The transform: passes on the events that satisfy their schemas.
pub fn run(batch: Vec<Event>, settings: &Settings) -> Result<Output, String> {
    let rules = Rules::parse(settings)?;
    let mut out = Output::default();
    for (index, event) in batch.into_iter().enumerate() {
        match check(&event, &rules) {
            Ok(()) => out.events.push(event),
            Err(rejection) => out.rejections.push(Rejection {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                ..rejection
            }),
        }
    }
    Ok(out)
}

/// Checks one event; the rejection's index is left at 0.
pub fn check(event: &Event, rules: &Rules) -> Result<(), Rejection> {
    let mut schemas = rules.for_event(event.name.as_deref()).peekable();
    if schemas.peek().is_none() {
        return Ok(());
    }
    let properties = parse_object(&event.properties, "properties")
        .map_err(|reason| Rejection::new(0, INVALID_EVENT, reason))?;
    let properties = Value::Object(properties);
    let mut violations = Vec::new();
    for schema in schemas {
        schema.check(&properties, "properties", &mut violations);
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Rejection::new(0, SCHEMA_VIOLATION, violations.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"{"Order Completed": {"required": ["order_id","total"], "properties": {"total": {"type":"number","minimum":0}, "order_id": {"type":"string"}}}}"#;

    fn rules(text: &str) -> Settings {
        Settings::from_pairs(&[("rules", text)])
    }

    #[test]
    fn valid_and_unruled_events_pass() {
        let batch = vec![
            Event::track(
                "Order Completed",
                r#"{"order_id":"o1","total":12.5,"extra":1}"#,
                "{}",
            ),
            Event::track("Order Completed", r#"{"order_id":"o2","total":0}"#, "{}"),
            Event::track("Product Viewed", r#"{"total":"whatever"}"#, "{}"),
        ];
        let out = run(batch.clone(), &rules(RULES)).unwrap();
        assert_eq!(out.events, batch);
        assert!(out.rejections.is_empty());
    }

    #[test]
    fn violations_are_rejections_naming_property_and_rule() {
        let batch = vec![
            Event::track("Order Completed", r#"{"order_id":"o1","total":-5}"#, "{}"),
            Event::track("Order Completed", r#"{"total":"12"}"#, "{}"),
            Event::track("Order Completed", r#"{"order_id":"o3","total":1}"#, "{}"),
        ];
        let out = run(batch, &rules(RULES)).unwrap();
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.events[0].message_id, "m-Order Completed");
        let [first, second] = &out.rejections[..] else {
            panic!("{:?}", out.rejections)
        };
        assert_eq!(first.index, 0);
        assert_eq!(first.code, "schema_violation");
        assert_eq!(first.reason, "properties.total violates minimum 0: got -5");
        assert_eq!(second.index, 1);
        assert_eq!(
            second.reason,
            "properties.order_id violates required: missing; \
             properties.total violates type number: got string"
        );
    }

    #[test]
    fn star_applies_to_every_event() {
        let star = r#"{"*": {"properties": {"internal": {"type": "boolean"}}},
                       "Signed Up": {"required": ["plan"]}}"#;
        let mut identify = Event::track("x", r#"{"internal":"yes"}"#, "{}");
        identify.name = None;
        identify.kind = "identify".into();
        let batch = vec![
            identify,
            Event::track("Signed Up", r#"{"internal":false}"#, "{}"),
            Event::track("Other", "{}", "{}"),
        ];
        let out = run(batch, &rules(star)).unwrap();
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.rejections[0].index, 0);
        assert_eq!(
            out.rejections[0].reason,
            "properties.internal violates type boolean: got string"
        );
        assert_eq!(out.rejections[1].index, 1);
        assert_eq!(
            out.rejections[1].reason,
            "properties.plan violates required: missing"
        );
    }

    #[test]
    fn unreadable_properties_are_invalid_events() {
        let out = run(
            vec![Event::track("Order Completed", "[]", "{}")],
            &rules(RULES),
        )
        .unwrap();
        assert_eq!(out.rejections[0].code, "invalid_event");
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(
            run(vec![], &Settings::default())
                .unwrap_err()
                .contains("`rules` is required")
        );
        assert!(
            run(vec![], &rules("{"))
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            run(vec![], &rules("[]"))
                .unwrap_err()
                .contains("JSON object")
        );
        let typo = r#"{"A": {"properties": {"total": {"minimun": 0}}}}"#;
        let err = run(vec![], &rules(typo)).unwrap_err();
        assert!(err.contains("minimun") && err.contains("total"), "{err}");
    }
}
