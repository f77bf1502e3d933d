//! A report from the query API's answers: pure functions over JSON, so the
//! arithmetic is tested natively and the component only fetches and
//! stores.

use serde_json::{Value as Json, json};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// The week a report covers.
pub const WEEK_MS: i64 = 7 * DAY_MS;

/// The window a report covers: the seven days up to `now_ms`, and the
/// seven before them (for the week-over-week change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start of the previous week (inclusive).
    pub previous_from: i64,
    /// Start of this week (inclusive), end of the previous one.
    pub from: i64,
    /// End of this week (exclusive).
    pub to: i64,
}

impl Window {
    /// The week ending at `now_ms`.
    pub fn ending_at(now_ms: i64) -> Self {
        Self {
            previous_from: now_ms - 2 * WEEK_MS,
            from: now_ms - WEEK_MS,
            to: now_ms,
        }
    }
}

/// The answers a report is built from.
pub struct Answers<'a> {
    /// `GET /api/v1/counts?bucket=day` over both weeks.
    pub daily: &'a Json,
    /// `GET /api/v1/counts?bucket=day&group_by=event` over this week.
    pub by_event: &'a Json,
    /// `GET /api/v1/funnel` over this week, when a funnel is configured.
    pub funnel: Option<&'a Json>,
    /// `GET /api/v1/dead-letters` pages' rows (newest first).
    pub dead_letters: &'a [Json],
}

/// How many top events a report lists.
const TOP_EVENTS: usize = 10;

/// The report of `source` for `window`.
pub fn report(source: &str, tick: u64, window: Window, answers: &Answers<'_>) -> Json {
    let buckets = answers.daily["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let in_week =
        |b: &Json, from: i64, to: i64| b["start"].as_i64().is_some_and(|s| s >= from && s < to);
    let count = |b: &Json| b["count"].as_i64().unwrap_or(0);
    let this_week: i64 = buckets
        .iter()
        .filter(|b| in_week(b, window.from - DAY_MS + 1, window.to))
        .map(count)
        .sum();
    let previous: i64 = buckets
        .iter()
        .filter(|b| {
            in_week(
                b,
                window.previous_from - DAY_MS + 1,
                window.from - DAY_MS + 1,
            )
        })
        .map(count)
        .sum();
    let daily: Vec<Json> = buckets
        .iter()
        .filter(|b| in_week(b, window.from - DAY_MS + 1, window.to))
        .map(
            |b| json!({"day": b["start"], "events": b["count"], "unique_users": b["unique_users"]}),
        )
        .collect();
    let mut totals: Vec<(String, i64)> = Vec::new();
    for b in answers.by_event["buckets"].as_array().into_iter().flatten() {
        let Some(name) = b["group"].as_str() else {
            continue;
        };
        match totals.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += count(b),
            None => totals.push((name.to_owned(), count(b))),
        }
    }
    totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    totals.truncate(TOP_EVENTS);
    let funnel = answers.funnel.map(|f| {
        let steps = f["steps"].as_array().cloned().unwrap_or_default();
        let conversion = steps.last().and_then(|s| s["conversion"].as_f64());
        json!({"steps": steps, "conversion": conversion})
    });
    let dead_letters = answers
        .dead_letters
        .iter()
        .filter(|row| {
            row[3]
                .as_i64()
                .is_some_and(|t| t >= window.from && t < window.to)
        })
        .count();
    json!({
        "id": format!("{source}-{tick}"),
        "source": source,
        "tick": tick,
        "from": window.from,
        "to": window.to,
        "events": this_week,
        "events_previous_week": previous,
        "week_over_week": change(this_week, previous),
        "daily": daily,
        "top_events": totals.iter().map(|(n, c)| json!({"event": n, "count": c})).collect::<Vec<_>>(),
        "funnel": funnel,
        "dead_letters": dead_letters,
    })
}

/// The relative change from `previous` to `now` (`None` from nothing).
pub fn change(now: i64, previous: i64) -> Option<f64> {
    (previous != 0).then(|| (now - previous) as f64 / previous as f64)
}

/// The CSV header of [`csv_row`].
pub const CSV_HEADER: &str = "id,source,tick,from,to,events,events_previous_week,week_over_week,funnel_conversion,dead_letters";

/// One report as a CSV line (numbers only, and IDs made of the source and
/// a number; a source with a comma or quote is quoted).
pub fn csv_row(report: &Json) -> String {
    let text = |v: &Json| match v {
        Json::Null => String::new(),
        Json::String(s) => quote(s),
        other => other.to_string(),
    };
    [
        text(&report["id"]),
        text(&report["source"]),
        text(&report["tick"]),
        text(&report["from"]),
        text(&report["to"]),
        text(&report["events"]),
        text(&report["events_previous_week"]),
        text(&report["week_over_week"]),
        text(&report["funnel"]["conversion"]),
        text(&report["dead_letters"]),
    ]
    .join(",")
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A chat-tool message (Slack's and Mattermost's incoming webhooks take
/// `text`) summing a report up.
pub fn chat_message(report: &Json) -> Json {
    let wow = match report["week_over_week"].as_f64() {
        Some(c) => format!("{:+.1}% week over week", c * 100.0),
        None => "no events the week before".to_owned(),
    };
    let top: Vec<String> = report["top_events"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
        .map(|e| format!("{} ({})", e["event"].as_str().unwrap_or("?"), e["count"]))
        .collect();
    let funnel = match report["funnel"]["conversion"].as_f64() {
        Some(c) => format!("; funnel conversion {:.1}%", c * 100.0),
        None => String::new(),
    };
    json!({
        "text": format!(
            "Tributary weekly report for {}: {} events ({wow}); top: {}{funnel}; {} rejected",
            report["source"].as_str().unwrap_or("?"),
            report["events"],
            if top.is_empty() { "none".to_owned() } else { top.join(", ") },
            report["dead_letters"],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_sums_each_week_ranks_events_and_counts_rejects_in_the_week() {
        let now = 100 * DAY_MS;
        let w = Window::ending_at(now);
        let day =
            |d: i64, count: i64| json!({"start": d * DAY_MS, "count": count, "unique_users": 1});
        // Days 86..=92 are the previous week's buckets, 93..=99 this week's.
        let daily = json!({"buckets": [day(86, 5), day(92, 5), day(93, 3), day(99, 12)]});
        let by_event = json!({"buckets": [
            {"start": 93 * DAY_MS, "group": "b", "count": 2},
            {"start": 99 * DAY_MS, "group": "a", "count": 12},
            {"start": 93 * DAY_MS, "group": "c", "count": 1},
            {"start": 99 * DAY_MS, "group": "b", "count": 1}
        ]});
        let funnel = json!({"steps": [{"event": "a", "conversion": 1.0}, {"event": "b", "conversion": 0.25}]});
        let dead = [
            json!([3, "bad", "why", now - 1, ""]),
            json!([2, "bad", "why", w.from - 1, ""]),
        ];
        let r = report(
            "dev",
            7,
            w,
            &Answers {
                daily: &daily,
                by_event: &by_event,
                funnel: Some(&funnel),
                dead_letters: &dead,
            },
        );
        assert_eq!(r["events"], 15);
        assert_eq!(r["events_previous_week"], 10);
        assert_eq!(r["week_over_week"], 0.5);
        assert_eq!(r["top_events"][0], json!({"event": "a", "count": 12}));
        assert_eq!(r["top_events"][1], json!({"event": "b", "count": 3}));
        assert_eq!(r["funnel"]["conversion"], 0.25);
        assert_eq!(r["dead_letters"], 1);
        assert_eq!(r["daily"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            csv_row(&r),
            format!("dev-7,dev,7,{},{now},15,10,0.5,0.25,1", w.from)
        );
        let text = chat_message(&r)["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            text.contains("+50.0% week over week") && text.contains("a (12)"),
            "{text}"
        );
    }

    /// The query API's OpenAPI description documents `/api/v1/reports`;
    /// a report must have exactly the keys its `Report` schema names.
    #[test]
    fn a_report_has_the_keys_the_openapi_schema_names() {
        let doc: Json = serde_json::from_str(include_str!("../../query/openapi.json"))
            .expect("openapi.json is JSON");
        let schema = &doc["components"]["schemas"]["Report"];
        let keys = |v: &Json| -> Vec<String> {
            let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
            keys.sort();
            keys
        };
        let mut required: Vec<String> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        required.sort();
        let w = Window::ending_at(30 * DAY_MS);
        let daily = json!({"buckets": [{"start": 29 * DAY_MS, "count": 2, "unique_users": 1}]});
        let by_event = json!({"buckets": [{"start": 29 * DAY_MS, "group": "a", "count": 2}]});
        let funnel = json!({"steps": [{"event": "a", "conversion": 1.0}]});
        let r = report(
            "web",
            1,
            w,
            &Answers {
                daily: &daily,
                by_event: &by_event,
                funnel: Some(&funnel),
                dead_letters: &[],
            },
        );
        assert_eq!(keys(&r), required);
        assert_eq!(keys(&r), keys(&schema["properties"]));
        let items = |name: &str| &schema["properties"][name]["items"]["properties"];
        assert_eq!(keys(&r["daily"][0]), keys(items("daily")));
        assert_eq!(keys(&r["top_events"][0]), keys(items("top_events")));
        let funnel_schema = &schema["properties"]["funnel"]["oneOf"][1]["properties"];
        assert_eq!(keys(&r["funnel"]), keys(funnel_schema));
    }

    #[test]
    fn no_previous_week_is_no_change_and_csv_quotes_odd_sources() {
        assert_eq!(change(5, 0), None);
        assert_eq!(change(5, 10), Some(-0.5));
        let r = json!({"id": "a,b-1", "source": "a,\"b\"", "funnel": null});
        assert!(
            csv_row(&r).starts_with("\"a,b-1\",\"a,\"\"b\"\"\","),
            "{}",
            csv_row(&r)
        );
    }
}
