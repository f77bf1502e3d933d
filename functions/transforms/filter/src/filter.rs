//! Filtering logic, independent of the bindings.

use serde_json::{Map, Value};
use transform_common::json::{get, parse_object, parse_path};
use transform_common::{Event, INVALID_EVENT, Output, Rejection, Settings};

/// Where a rule looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A path under `properties`.
    Properties(Vec<String>),
    /// A path under `context`.
    Context(Vec<String>),
    /// The message type.
    Type,
    /// The event name.
    Name,
    /// `userId`.
    UserId,
    /// `anonymousId`.
    AnonymousId,
}

/// One `drop_if` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// What it compares.
    pub field: Field,
    /// `!=` rather than `=`.
    pub negated: bool,
    /// The value as JSON (a plain string when the text is not JSON).
    pub value: Value,
    /// The value as written.
    pub text: String,
}

impl Rule {
    /// Parses `FIELD=VALUE` or `FIELD!=VALUE`.
    pub fn parse(rule: &str) -> Result<Self, String> {
        let (lhs, rhs, negated) = match rule.split_once('=') {
            Some((lhs, rhs)) => match lhs.strip_suffix('!') {
                Some(lhs) => (lhs, rhs, true),
                None => (lhs, rhs, false),
            },
            None => {
                return Err(format!(
                    "setting `drop_if`: rule `{rule}` must be FIELD=VALUE or FIELD!=VALUE"
                ));
            }
        };
        let lhs = lhs.trim();
        let field = match lhs {
            "type" => Field::Type,
            "name" => Field::Name,
            "userId" => Field::UserId,
            "anonymousId" => Field::AnonymousId,
            _ => match lhs.split_once('.') {
                Some(("properties", path)) => Field::Properties(parse_path(path)?),
                Some(("context", path)) => Field::Context(parse_path(path)?),
                _ => {
                    return Err(format!(
                        "setting `drop_if`: field `{lhs}` must be properties.PATH, context.PATH, type, name, userId or anonymousId"
                    ));
                }
            },
        };
        let text = rhs.trim().to_owned();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Ok(Self {
            field,
            negated,
            value,
            text,
        })
    }

    /// Whether the rule matches a field's value (`None`: missing).
    pub fn matches(&self, actual: Option<&Value>) -> bool {
        let equal = actual.is_some_and(|actual| self.equals(actual));
        equal != self.negated
    }

    fn equals(&self, actual: &Value) -> bool {
        match (actual, &self.value) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Value::String(a), _) if *a == self.text => true,
            (a, b) => a == b,
        }
    }
}

/// Parsed settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// `drop_events`.
    pub drop_events: Vec<String>,
    /// `drop_if`.
    pub drop_if: Vec<Rule>,
}

impl Config {
    /// Reads `drop_events` and `drop_if`.
    pub fn parse(settings: &Settings) -> Result<Self, String> {
        settings.check_known(&["drop_events", "drop_if"])?;
        Ok(Self {
            drop_events: settings
                .list("drop_events")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            drop_if: settings
                .list("drop_if")
                .into_iter()
                .map(Rule::parse)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The transform: passes on the events no setting matches.
pub fn run(batch: Vec<Event>, settings: &Settings) -> Result<Output, String> {
    let config = Config::parse(settings)?;
    let mut out = Output::default();
    for (index, event) in batch.into_iter().enumerate() {
        match drops(&event, &config) {
            Ok(true) => {}
            Ok(false) => out.events.push(event),
            Err(reason) => out
                .rejections
                .push(Rejection::new(index, INVALID_EVENT, reason)),
        }
    }
    Ok(out)
}

/// Whether `event` is to be removed.
pub fn drops(event: &Event, config: &Config) -> Result<bool, String> {
    if event
        .name
        .as_ref()
        .is_some_and(|name| config.drop_events.contains(name))
    {
        return Ok(true);
    }
    let mut properties: Option<Map<String, Value>> = None;
    let mut context: Option<Map<String, Value>> = None;
    for rule in &config.drop_if {
        let string = |s: &Option<String>| s.clone().map(Value::String);
        let matched = match &rule.field {
            Field::Type => rule.matches(Some(&Value::String(event.kind.clone()))),
            Field::Name => rule.matches(string(&event.name).as_ref()),
            Field::UserId => rule.matches(string(&event.user_id).as_ref()),
            Field::AnonymousId => rule.matches(string(&event.anonymous_id).as_ref()),
            Field::Properties(path) => {
                if properties.is_none() {
                    properties = Some(parse_object(&event.properties, "properties")?);
                }
                rule.matches(properties.as_ref().and_then(|map| get(map, path)))
            }
            Field::Context(path) => {
                if context.is_none() {
                    context = Some(parse_object(&event.context, "context")?);
                }
                rule.matches(context.as_ref().and_then(|map| get(map, path)))
            }
        };
        if matched {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(out: &Output) -> Vec<&str> {
        out.events
            .iter()
            .map(|e| e.name.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn no_settings_pass_everything() {
        let batch = vec![
            Event::track("a", r#"{"internal":true}"#, "{}"),
            Event::track("b", "not even json", "{}"),
        ];
        let out = run(batch.clone(), &Settings::default()).unwrap();
        assert_eq!(out.events, batch);
        assert!(out.rejections.is_empty());
    }

    #[test]
    fn drops_by_name() {
        let batch = vec![
            Event::track("Heartbeat", "{}", "{}"),
            Event::track("Order Completed", "{}", "{}"),
            Event::track("Debug Ping", "{}", "{}"),
        ];
        let settings = Settings::from_pairs(&[("drop_events", "Heartbeat, Debug Ping")]);
        let out = run(batch, &settings).unwrap();
        assert_eq!(names(&out), ["Order Completed"]);
        assert!(out.rejections.is_empty());
    }

    #[test]
    fn drops_by_rules() {
        let batch = vec![
            Event::track("a", r#"{"internal":true}"#, "{}"),
            Event::track("b", r#"{"internal":"true"}"#, "{}"),
            Event::track("c", r#"{"internal":false}"#, "{}"),
            Event::track("d", "{}", r#"{"app":{"env":"staging"}}"#),
            Event::track("e", r#"{"qty":2.0}"#, r#"{"app":{"env":"prod"}}"#),
            Event::track("f", r#"{"qty":3}"#, "{}"),
        ];
        let settings = Settings::from_pairs(&[(
            "drop_if",
            "properties.internal=true, context.app.env = staging, properties.qty=2",
        )]);
        let out = run(batch, &settings).unwrap();
        assert_eq!(names(&out), ["c", "f"]);
    }

    #[test]
    fn not_equal_and_top_level_fields() {
        let mut anon = Event::track("a", "{}", "{}");
        anon.user_id = None;
        anon.anonymous_id = Some("anon-1".into());
        let mut page = Event::track("b", r#"{"plan":"free"}"#, "{}");
        page.kind = "page".into();
        let known = Event::track("c", r#"{"plan":"pro"}"#, "{}");
        let settings = Settings::from_pairs(&[("drop_if", "type=page")]);
        let out = run(vec![anon.clone(), page.clone(), known.clone()], &settings).unwrap();
        assert_eq!(names(&out), ["a", "c"]);
        let settings = Settings::from_pairs(&[("drop_if", "userId!=u1")]);
        let out = run(vec![anon.clone(), page.clone(), known.clone()], &settings).unwrap();
        assert_eq!(names(&out), ["b", "c"]);
        let settings = Settings::from_pairs(&[("drop_if", "properties.plan!=pro")]);
        let out = run(vec![anon, page, known], &settings).unwrap();
        assert_eq!(names(&out), ["c"]);
    }

    #[test]
    fn missing_field_never_equals() {
        let rule = Rule::parse("properties.x=null").unwrap();
        assert!(!rule.matches(None));
        assert!(rule.matches(Some(&Value::Null)));
        let rule = Rule::parse("properties.x!=null").unwrap();
        assert!(rule.matches(None));
        let rule = Rule::parse(r#"name="a b""#).unwrap();
        assert!(rule.matches(Some(&Value::String("a b".into()))));
    }

    #[test]
    fn unreadable_properties_are_rejected_when_a_rule_needs_them() {
        let batch = vec![Event::track("a", "[]", "{}"), Event::track("b", "{}", "{}")];
        let settings = Settings::from_pairs(&[("drop_if", "properties.internal=true")]);
        let out = run(batch, &settings).unwrap();
        assert_eq!(names(&out), ["b"]);
        assert_eq!(out.rejections.len(), 1);
        assert_eq!(out.rejections[0].index, 0);
        assert_eq!(out.rejections[0].code, "invalid_event");
    }

    #[test]
    fn bad_settings_are_errors() {
        for rule in ["internal", "props.internal=true", "properties.=1", "=1"] {
            let settings = Settings::from_pairs(&[("drop_if", rule)]);
            assert!(run(vec![], &settings).is_err(), "{rule}");
        }
        let typo = Settings::from_pairs(&[("drop_event", "x")]);
        assert!(run(vec![], &typo).unwrap_err().contains("`drop_event`"));
    }
}
