//! Enrichment logic, independent of the bindings.

use serde_json::Value;
use transform_common::json::{get, parse_object, to_text};
use transform_common::{Event, INVALID_EVENT, Output, Rejection, Settings};

use crate::url::UrlParts;
use crate::user_agent::family;

/// Which fields to derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields {
    /// `day_of_week`.
    pub day_of_week: bool,
    /// `url_host`, `url_path`, `url_query`.
    pub url: bool,
    /// `ua_family`.
    pub ua_family: bool,
}

impl Fields {
    /// Reads the `fields` setting.
    pub fn parse(settings: &Settings) -> Result<Self, String> {
        settings.check_known(&["fields"])?;
        if settings.get("fields").is_none() {
            return Ok(Self {
                day_of_week: true,
                url: true,
                ua_family: true,
            });
        }
        let mut fields = Self {
            day_of_week: false,
            url: false,
            ua_family: false,
        };
        for name in settings.list("fields") {
            match name {
                "day_of_week" => fields.day_of_week = true,
                "url" => fields.url = true,
                "ua_family" => fields.ua_family = true,
                other => {
                    return Err(format!(
                        "setting `fields`: unknown field `{other}`; known: day_of_week, url, ua_family"
                    ));
                }
            }
        }
        Ok(fields)
    }
}

/// The transform: enriches every event of the batch.
pub fn run(batch: Vec<Event>, settings: &Settings) -> Result<Output, String> {
    let fields = Fields::parse(settings)?;
    let mut out = Output::default();
    for (index, mut event) in batch.into_iter().enumerate() {
        match enrich_event(&mut event, fields) {
            Ok(()) => out.events.push(event),
            Err(reason) => out
                .rejections
                .push(Rejection::new(index, INVALID_EVENT, reason)),
        }
    }
    Ok(out)
}

/// Adds the derived properties to one event.
pub fn enrich_event(event: &mut Event, fields: Fields) -> Result<(), String> {
    let mut properties = parse_object(&event.properties, "properties")?;
    let context = parse_object(&event.context, "context")?;
    let before = properties.clone();
    if fields.day_of_week {
        properties.insert(
            "day_of_week".into(),
            Value::String(day_of_week(event.timestamp_ms).into()),
        );
    }
    if fields.url {
        let url = get(&context, &["page", "url"])
            .and_then(Value::as_str)
            .or_else(|| properties.get("url").and_then(Value::as_str));
        if let Some(parts) = url.and_then(UrlParts::parse) {
            properties.insert("url_host".into(), Value::String(parts.host));
            properties.insert("url_path".into(), Value::String(parts.path));
            if let Some(query) = parts.query.filter(|q| !q.is_empty()) {
                properties.insert("url_query".into(), Value::String(query));
            }
        }
    }
    if fields.ua_family
        && let Some(ua) = context.get("userAgent").and_then(Value::as_str)
    {
        properties.insert("ua_family".into(), Value::String(family(ua).into()));
    }
    if properties != before {
        event.properties = to_text(&properties);
    }
    Ok(())
}

/// The UTC day of the week of a time in milliseconds since the epoch.
pub fn day_of_week(timestamp_ms: i64) -> &'static str {
    const DAYS: [&str; 7] = [
        "Thursday", // 1970-01-01
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let days = timestamp_ms.div_euclid(86_400_000);
    DAYS[days.rem_euclid(7) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(event: &Event) -> Value {
        serde_json::from_str(&event.properties).unwrap()
    }

    #[test]
    fn days_of_week_in_utc() {
        assert_eq!(day_of_week(0), "Thursday");
        assert_eq!(day_of_week(86_400_000 - 1), "Thursday");
        assert_eq!(day_of_week(86_400_000), "Friday");
        // Before the epoch: 1969-12-31 23:59:59.999 was a Wednesday.
        assert_eq!(day_of_week(-1), "Wednesday");
        // 2024-02-29T12:00:00Z was a Thursday; 2025-06-01T00:00:00Z a Sunday.
        assert_eq!(day_of_week(1_709_208_000_000), "Thursday");
        assert_eq!(day_of_week(1_748_736_000_000), "Sunday");
        // 2000-01-03T23:59:59.999Z, a Monday.
        assert_eq!(day_of_week(946_943_999_999), "Monday");
    }

    #[test]
    fn derives_all_fields() {
        let mut event = Event::track(
            "Viewed",
            r#"{"plan":"pro","url":"https://ignored.example/"}"#,
            r#"{"page":{"url":"https://Shop.Example.com:8443/cart/items?ref=mail&x=1#top"},
                "userAgent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"}"#,
        );
        event.timestamp_ms = 1_748_736_000_000;
        let out = run(vec![event], &Settings::default()).unwrap();
        assert_eq!(
            props(&out.events[0]),
            json!({
                "plan": "pro",
                "url": "https://ignored.example/",
                "day_of_week": "Sunday",
                "url_host": "shop.example.com",
                "url_path": "/cart/items",
                "url_query": "ref=mail&x=1",
                "ua_family": "Chrome",
            })
        );
    }

    #[test]
    fn falls_back_to_properties_url_and_skips_what_is_missing() {
        let event = Event::track("x", r#"{"url":"http://a.example"}"#, "{}");
        let out = run(vec![event], &Settings::default()).unwrap();
        assert_eq!(
            props(&out.events[0]),
            json!({"url": "http://a.example", "day_of_week": "Thursday", "url_host": "a.example", "url_path": "/"})
        );
        // A relative URL derives nothing.
        let event = Event::track("x", r#"{"url":"/just/a/path"}"#, "{}");
        let fields = Settings::from_pairs(&[("fields", "url,ua_family")]);
        let out = run(vec![event.clone()], &fields).unwrap();
        assert_eq!(out.events, vec![event]);
    }

    #[test]
    fn fields_select_and_overwrite() {
        let event = Event::track(
            "x",
            r#"{"day_of_week":"Caturday"}"#,
            r#"{"userAgent":"curl/8.4.0"}"#,
        );
        let fields = Settings::from_pairs(&[("fields", "day_of_week, ua_family")]);
        let out = run(vec![event], &fields).unwrap();
        assert_eq!(
            props(&out.events[0]),
            json!({"day_of_week": "Thursday", "ua_family": "bot"})
        );
    }

    #[test]
    fn bad_settings_and_events() {
        let bad = Settings::from_pairs(&[("fields", "weekday")]);
        assert!(run(vec![], &bad).unwrap_err().contains("`weekday`"));
        let typo = Settings::from_pairs(&[("field", "url")]);
        assert!(run(vec![], &typo).unwrap_err().contains("`field`"));
        let event = Event::track("x", "{}", r#""a string""#);
        let out = run(vec![event], &Settings::default()).unwrap();
        assert!(out.events.is_empty());
        assert_eq!(out.rejections[0].code, "invalid_event");
        assert_eq!(out.rejections[0].index, 0);
    }
}
