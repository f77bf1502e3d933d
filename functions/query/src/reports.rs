//! The reports' query strings read into `event_store::reports`
//! descriptions, every input validated before any SQL sees it (a bad one is
//! a `400` naming the parameter), and their answers shaped as JSON.
//!
//! - `GET /api/v1/funnel?steps=STEPS&window=7d&breakdown=PATH&from=..&to=..`:
//!   `STEPS` is a comma-separated list of event names, or a JSON array
//!   whose items are names or `{"event": NAME, "where": {PATH: SCALAR}}`
//!   (property filters, all of which must hold);
//! - `GET /api/v1/retention?start_event=NAME&return_event=NAME&period=day|week&periods=N&from=..&to=..`;
//! - `GET /api/v1/top/pages?limit=N`, `GET /api/v1/top/referrers?limit=N`:
//!   page events by `properties.path` and `properties.referrer`;
//! - `GET /api/v1/breakdown?property=PATH&event=NAME&type=TYPE&limit=N`.

use event_store::reports::{
    Breakdown, BreakdownRow, Funnel, FunnelRow, Period, PropertyFilter, ReportError, Retention,
    RetentionRow, Step,
};
use serde_json::{Value as Json, json};

use crate::params::{BadParam, Params, property_path};

impl From<ReportError> for BadParam {
    fn from(e: ReportError) -> Self {
        BadParam(e.to_string())
    }
}

/// The conversion window when none is given: a week.
const DEFAULT_WINDOW: &str = "7d";
/// Rows of a top list or breakdown when no `limit` is given.
const DEFAULT_ROWS: i64 = 10;
/// The event types a breakdown may be limited to.
const TYPES: [&str; 6] = ["track", "page", "screen", "identify", "group", "alias"];

/// A duration: a whole number with a unit `s`, `m`, `h` or `d`, or a bare
/// number of milliseconds.
pub fn duration_ms(key: &str, value: &str) -> Result<i64, BadParam> {
    let bad = || {
        BadParam(format!(
            "{key} {value:?} must be a whole number of milliseconds or of s, m, h or d (e.g. 7d)"
        ))
    };
    let (digits, unit) = match value.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&value[..at], c),
        _ => (value, 'x'),
    };
    let unit_ms: i64 = match unit {
        'x' => 1,
        's' => 1000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .ok_or_else(bad)
}

/// The funnel a query string describes.
pub fn funnel(p: &Params, from: i64, to: i64) -> Result<Funnel, BadParam> {
    let steps = steps(p.get("steps").unwrap_or_default())?;
    let window = duration_ms("window", p.get("window").unwrap_or(DEFAULT_WINDOW))?;
    let breakdown = match p.get("breakdown") {
        None | Some("") => None,
        Some(path) => Some(property_path(path)?),
    };
    Ok(Funnel::new(steps, window, from, to, breakdown)?)
}

/// A funnel's `steps`: comma-separated names, or a JSON array of names
/// and `{"event", "where"}` objects.
pub fn steps(value: &str) -> Result<Vec<Step>, BadParam> {
    let value = value.trim();
    if value.is_empty() {
        return Err(BadParam(
            "steps is required: event names separated by commas, or a JSON array".into(),
        ));
    }
    if !value.starts_with('[') {
        return Ok(value
            .split(',')
            .map(|name| Step {
                event: name.trim().to_owned(),
                filters: vec![],
            })
            .collect());
    }
    let items: Vec<Json> = serde_json::from_str(value)
        .map_err(|e| BadParam(format!("steps is not a JSON array: {e}")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| step(i + 1, item))
        .collect()
}

/// One step of a JSON `steps` array (`n` counts from 1).
fn step(n: usize, item: &Json) -> Result<Step, BadParam> {
    let bad = |why: &str| BadParam(format!("steps[{}]: {why}", n - 1));
    match item {
        Json::String(name) => Ok(Step {
            event: name.clone(),
            filters: vec![],
        }),
        Json::Object(fields) => {
            if let Some(other) = fields.keys().find(|k| *k != "event" && *k != "where") {
                return Err(bad(&format!("unknown field {other:?} (event, where)")));
            }
            let event = fields
                .get("event")
                .and_then(Json::as_str)
                .ok_or_else(|| bad("event must be a string"))?;
            let filters = match fields.get("where") {
                None => vec![],
                Some(Json::Object(conditions)) => conditions
                    .iter()
                    .map(|(path, value)| {
                        if !matches!(value, Json::String(_) | Json::Number(_) | Json::Bool(_)) {
                            return Err(bad(&format!(
                                "where {path:?} must be a string, number or boolean"
                            )));
                        }
                        Ok(PropertyFilter {
                            path: property_path(path)?,
                            json: value.to_string(),
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad("where must be an object of PATH: value")),
            };
            Ok(Step {
                event: event.to_owned(),
                filters,
            })
        }
        _ => Err(bad("must be an event name or {\"event\", \"where\"}")),
    }
}

/// The retention report a query string describes.
pub fn retention(p: &Params, from: i64, to: i64) -> Result<Retention, BadParam> {
    let start = p
        .get("start_event")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| BadParam("start_event is required".into()))?;
    let back = p
        .get("return_event")
        .filter(|s| !s.is_empty())
        .unwrap_or(start);
    let period = match p.get("period").unwrap_or("day") {
        "day" | "" => Period::Day,
        "week" => Period::Week,
        other => return Err(BadParam(format!("period {other:?} must be day or week"))),
    };
    let periods = match p.get("periods") {
        None | Some("") => 7,
        Some(n) => n.parse().map_err(|_| {
            BadParam(format!(
                "periods {n:?} must be a whole number between 1 and {}",
                event_store::reports::MAX_PERIODS
            ))
        })?,
    };
    Ok(Retention::new(
        start.to_owned(),
        back.to_owned(),
        period,
        periods,
        from,
        to,
    )?)
}

/// Which page property a top list ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Top {
    /// `properties.path`.
    Pages,
    /// `properties.referrer`.
    Referrers,
}

/// A top list of page events, as the breakdown it is.
pub fn top(which: Top, p: &Params, from: i64, to: i64) -> Result<Breakdown, BadParam> {
    let property = match which {
        Top::Pages => "path",
        Top::Referrers => "referrer",
    };
    let limit = p.limit("limit", DEFAULT_ROWS, event_store::reports::MAX_ROWS)?;
    Ok(Breakdown::new(
        vec![property.to_owned()],
        Some("page".to_owned()),
        p.get("event").filter(|e| !e.is_empty()).map(str::to_owned),
        from,
        to,
        limit,
    )?)
}

/// The breakdown a query string describes; its property path is returned
/// too (the caller checks that some event has it).
pub fn breakdown(p: &Params, from: i64, to: i64) -> Result<(Breakdown, String), BadParam> {
    let path = p
        .get("property")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| BadParam("property is required".into()))?;
    let kind = match p.get("type") {
        None | Some("") => None,
        Some(t) if TYPES.contains(&t) => Some(t.to_owned()),
        Some(other) => {
            return Err(BadParam(format!(
                "type {other:?} must be one of {}",
                TYPES.join(", ")
            )));
        }
    };
    let limit = p.limit("limit", DEFAULT_ROWS, event_store::reports::MAX_ROWS)?;
    let b = Breakdown::new(
        property_path(path)?,
        kind,
        p.get("event").filter(|e| !e.is_empty()).map(str::to_owned),
        from,
        to,
        limit,
    )?;
    Ok((b, path.to_owned()))
}

/// A funnel's answer: per step, users, conversion from step 1 and from
/// the previous step, and the median time since the previous step; with
/// a breakdown, the same per group (groups by step-1 users, most first).
pub fn funnel_answer(funnel: &Funnel, rows: &[FunnelRow]) -> Json {
    let names: Vec<&str> = funnel.steps().iter().map(|s| s.event.as_str()).collect();
    let steps_of = |group: &Option<Option<String>>| -> Json {
        let mut users = vec![0i64; names.len()];
        let mut medians: Vec<Option<i64>> = vec![None; names.len()];
        for row in rows.iter().filter(|r| &r.group == group) {
            if let Some(k) = row.step.checked_sub(1).filter(|k| *k < names.len()) {
                users[k] = row.users;
                medians[k] = (k > 0).then_some(row.median_ms);
            }
        }
        let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Json::Array(
            (0..names.len())
                .map(|k| {
                    json!({
                        "event": names[k],
                        "users": users[k],
                        "conversion": ratio(users[k], users[0]),
                        "step_conversion": if k == 0 { 1.0 } else { ratio(users[k], users[k - 1]) },
                        "median_ms_from_previous": medians[k],
                    })
                })
                .collect(),
        )
    };
    let mut answer = json!({"window_ms": funnel.window_ms(), "steps": steps_of(&None)});
    if funnel.breakdown().is_some() {
        let mut groups: Vec<(i64, Option<String>)> = rows
            .iter()
            .filter(|r| r.step == 1)
            .filter_map(|r| r.group.clone().map(|g| (r.users, g)))
            .collect();
        groups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| cmp_values(&a.1, &b.1)));
        answer["breakdown"] = Json::Array(
            groups
                .into_iter()
                .map(|(_, value)| {
                    let steps = steps_of(&Some(value.clone()));
                    json!({"value": value, "steps": steps})
                })
                .collect(),
        );
    }
    answer
}

/// Values byte-wise, values before none (the breakdown statement's order).
fn cmp_values(a: &Option<String>, b: &Option<String>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// A retention answer: cohorts by start, each with its users and, for
/// every period from 0 to `periods`, the users returning in it (and that
/// as a fraction of the cohort).
pub fn retention_answer(retention: &Retention, rows: &[RetentionRow]) -> Json {
    let periods = retention.periods();
    let mut cohorts: std::collections::BTreeMap<i64, (i64, Vec<i64>)> = Default::default();
    for row in rows {
        let entry = cohorts
            .entry(row.cohort)
            .or_insert_with(|| (0, vec![0; periods as usize + 1]));
        match row.period {
            None => entry.0 = row.users,
            Some(k) => {
                if let Some(slot) = usize::try_from(k).ok().and_then(|k| entry.1.get_mut(k)) {
                    *slot = row.users;
                }
            }
        }
    }
    let period = retention.period();
    json!({
        "period": match period { Period::Day => "day", Period::Week => "week" },
        "period_ms": period.ms(),
        "periods": periods,
        "cohorts": cohorts.into_iter().map(|(start, (users, returning))| {
            let share: Vec<f64> = returning
                .iter()
                .map(|&n| if users == 0 { 0.0 } else { n as f64 / users as f64 })
                .collect();
            json!({"start": start, "users": users, "returning": returning, "retention": share})
        }).collect::<Vec<_>>(),
    })
}

/// A breakdown's or top list's answer.
pub fn breakdown_answer(property: &str, rows: &[BreakdownRow]) -> Json {
    json!({
        "property": property,
        "rows": rows.iter().map(|r| json!({
            "value": r.value, "events": r.events, "unique_users": r.users,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Params {
        Params::parse(q).expect("well formed")
    }

    fn refused(result: Result<impl std::fmt::Debug, BadParam>) -> String {
        match result {
            Err(BadParam(why)) => why,
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(duration_ms("w", "7d"), Ok(604_800_000));
        assert_eq!(duration_ms("w", "90m"), Ok(5_400_000));
        assert_eq!(duration_ms("w", "1500"), Ok(1500));
        assert_eq!(duration_ms("w", "2h"), Ok(7_200_000));
        for bad in [
            "",
            "d",
            "7w",
            "-1d",
            "1.5h",
            "7 d",
            "99999999999999999999d",
            "9223372036854775807d",
            "€",
        ] {
            let why = refused(duration_ms("window", bad));
            assert!(why.starts_with("window "), "{bad}: {why}");
        }
    }

    #[test]
    fn funnel_steps_are_names_or_objects() {
        let f = funnel(&parse("steps=Signed+Up,%20Order%20Completed"), 0, 10).expect("valid");
        let names: Vec<&str> = f.steps().iter().map(|s| s.event.as_str()).collect();
        assert_eq!(names, ["Signed Up", "Order Completed"]);
        let json = r#"["Signed Up", {"event": "Order, Completed", "where": {"plan": "pro", "cart.total": 5, "vip": true}}]"#;
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("steps", json)
            .append_pair("window", "2h")
            .append_pair("breakdown", "plan")
            .finish();
        let f = funnel(&parse(&q), 0, 10).expect("valid");
        assert_eq!(f.steps()[1].event, "Order, Completed");
        let filters = &f.steps()[1].filters;
        assert_eq!(filters.len(), 3);
        assert!(
            filters
                .iter()
                .any(|f| f.path == ["cart", "total"] && f.json == "5")
        );
        assert!(
            filters
                .iter()
                .any(|f| f.path == ["plan"] && f.json == "\"pro\"")
        );
    }

    /// Bad step lists, windows and breakdowns are refused with a message
    /// that names what is wrong.
    #[test]
    fn bad_funnels_are_refused_clearly() {
        let cases: [(&str, &str); 14] = [
            ("", "steps is required"),
            ("steps=", "steps is required"),
            ("steps=Signed%20Up", "between 2 and 10 steps, not 1"),
            ("steps=a,,b", "step 2 has no event name"),
            ("steps=a,b,c,d,e,f,g,h,i,j,k", "not 11"),
            ("steps=[1,2]", "steps[0]: must be an event name"),
            ("steps=[\"a\",", "steps is not a JSON array"),
            (
                "steps=[\"a\",{\"name\":\"b\"}]",
                "steps[1]: unknown field \"name\"",
            ),
            (
                "steps=[\"a\",{\"event\":\"b\",\"where\":{\"x\":[1]}}]",
                "where \"x\" must be a string, number or boolean",
            ),
            (
                "steps=[\"a\",{\"event\":\"b\",\"where\":{\"a b\":1}}]",
                "property path \"a b\"",
            ),
            (
                "steps=a,b&window=0",
                "window must be between 1 ms and 366 days",
            ),
            ("steps=a,b&window=400d", "window must be between"),
            ("steps=a,b&window=soon", "window \"soon\" must be"),
            ("steps=a,b&breakdown=a..b", "property path \"a..b\""),
        ];
        for (query, expected) in cases {
            let query = query
                .replace('"', "%22")
                .replace('{', "%7B")
                .replace('}', "%7D");
            let why = refused(funnel(&parse(&query), 0, 10));
            assert!(
                why.contains(expected),
                "{query}: {why:?} does not say {expected:?}"
            );
        }
        let why = refused(funnel(&parse("steps=a,b"), 10, 5));
        assert!(why.contains("from (10) must be before to (5)"), "{why}");
    }

    #[test]
    fn bad_retention_is_refused_clearly() {
        let cases: [(&str, &str); 6] = [
            ("", "start_event is required"),
            ("start_event=", "start_event is required"),
            (
                "start_event=a&period=month",
                "period \"month\" must be day or week",
            ),
            (
                "start_event=a&periods=0",
                "periods must be between 1 and 366, not 0",
            ),
            ("start_event=a&periods=367", "not 367"),
            (
                "start_event=a&periods=x",
                "periods \"x\" must be a whole number",
            ),
        ];
        for (query, expected) in cases {
            let why = refused(retention(&parse(query), 0, i64::MAX));
            assert!(
                why.contains(expected),
                "{query}: {why:?} does not say {expected:?}"
            );
        }
        let r =
            retention(&parse("start_event=a&period=week&periods=4"), 0, i64::MAX).expect("valid");
        assert_eq!((r.period(), r.periods()), (Period::Week, 4));
    }

    #[test]
    fn bad_breakdowns_are_refused_clearly() {
        let cases: [(&str, &str); 5] = [
            ("", "property is required"),
            ("property=a'b", "property path"),
            ("property=plan&type=click", "type \"click\" must be one of"),
            ("property=plan&limit=0", "limit must be between 1 and 1000"),
            (
                "property=plan&limit=1001",
                "limit must be between 1 and 1000",
            ),
        ];
        for (query, expected) in cases {
            let why = refused(breakdown(&parse(query), 0, 10));
            assert!(
                why.contains(expected),
                "{query}: {why:?} does not say {expected:?}"
            );
        }
        assert!(refused(top(Top::Pages, &parse("limit=-1"), 0, 10)).contains("limit"));
        assert!(breakdown(&parse("property=plan&type=page&event=x"), 0, 10).is_ok());
    }

    #[test]
    fn funnel_answers_convert_and_break_down() {
        let f = funnel(&parse("steps=a,b&breakdown=plan"), 0, 10).expect("valid");
        let row = |step, group: Option<Option<&str>>, users, median_ms| FunnelRow {
            step,
            group: group.map(|g| g.map(str::to_owned)),
            users,
            median_ms,
        };
        let rows = [
            row(1, None, 4, 0),
            row(2, None, 1, 50),
            row(1, Some(Some("pro")), 1, 0),
            row(1, Some(None), 3, 0),
            row(2, Some(None), 1, 50),
        ];
        let a = funnel_answer(&f, &rows);
        assert_eq!(a["steps"][1]["users"], 1);
        assert_eq!(a["steps"][1]["conversion"], 0.25);
        assert_eq!(a["steps"][1]["median_ms_from_previous"], 50);
        assert_eq!(a["steps"][0]["median_ms_from_previous"], Json::Null);
        assert_eq!(a["breakdown"][0]["value"], Json::Null);
        assert_eq!(a["breakdown"][0]["steps"][1]["step_conversion"], 1.0 / 3.0);
        assert_eq!(a["breakdown"][1]["value"], "pro");
        assert_eq!(a["breakdown"][1]["steps"][1]["users"], 0);
    }
}
