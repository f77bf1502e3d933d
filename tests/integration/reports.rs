//! Issue 16 (reporting, part 1): funnels, retention, top pages and
//! referrers, and breakdowns from the query API agree exactly with a
//! plain-Rust reference computed in memory over the same events. Random
//! events (seeded; the seed is printed so a failure replays) go through
//! the real data app on `trib` (ingest, then the query function), on
//! SQLite and on the machine's PostgreSQL (a fresh database per run);
//! times fall on a coarse grid so users have events at the same
//! millisecond (ties are broken by the stored id, which the test reads
//! back). Random funnels (repeated steps, property filters, windows,
//! breakdowns), retention reports (day and week), breakdowns and top lists
//! (small limits, so ties at the cut count) are compared whole, JSON for
//! JSON.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::support::rng::Rng;
use crate::support::{AppDir, Trib, backend_available, client, shared_cache, unique_name};

const WRITE_KEY: &str = "report-key";
const READ_TOKEN: &str = "report-token";
/// 2026-03-02T00:00:00Z, a Monday.
const START: i64 = 1_772_409_600_000;
const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;
const WEEK: i64 = 7 * DAY;
/// Days the events span.
const DAYS: i64 = 24;
const NAMES: [&str; 5] = ["Signed Up", "Viewed", "Order Completed", "Café €", "Left"];
const PATHS: [&str; 4] = ["/", "/pricing", "/docs", "/Docs"];
const REFERRERS: [&str; 3] = [
    "https://a.example/",
    "https://b.example/x",
    "https://B.example/",
];

/// One generated event, as the reference sees it.
#[derive(Debug, Clone)]
struct Event {
    message_id: String,
    /// The stored id (read back after ingest): ties' order.
    id: i64,
    kind: &'static str,
    name: Option<String>,
    user: Option<String>,
    ts: i64,
    properties: Value,
}

/// Random events: tracks of a few names (with a plan that is a string,
/// a number, a boolean or absent), pages (with paths, referrers, names or
/// none) and identifies; 50 users, a fifth of whom send only an
/// anonymous id; times on a 10-minute grid.
fn events(rng: &mut Rng, count: usize) -> (Vec<Event>, Vec<Value>) {
    let mut events = Vec::with_capacity(count);
    let mut messages = Vec::with_capacity(count);
    for i in 0..count {
        let ts = START + rng.below((DAYS * DAY / (10 * MINUTE)) as u64) as i64 * 10 * MINUTE;
        let u = rng.below(50);
        let (user_id, anonymous_id) = if u.is_multiple_of(5) {
            (None, Some(format!("anon-{u}")))
        } else {
            (Some(format!("user-{u}")), None)
        };
        let plan = match rng.below(6) {
            0 => None,
            1 => Some(json!(3)),
            2 => Some(json!(true)),
            3 => Some(json!("free")),
            _ => Some(json!("pro")),
        };
        let (kind, name, mut properties) = match rng.below(10) {
            // Stored with its traits as the properties.
            0 => ("identify", None, json!({"plan": "x"})),
            1..=3 => {
                let mut p = json!({});
                if rng.below(5) > 0 {
                    p["path"] = json!(rng.pick(&PATHS));
                }
                if rng.below(3) > 0 {
                    p["referrer"] = json!(rng.pick(&REFERRERS));
                }
                let name = (rng.below(3) == 0).then(|| "Home".to_owned());
                ("page", name, p)
            }
            _ => ("track", Some((*rng.pick(&NAMES)).to_owned()), json!({})),
        };
        if let Some(plan) = plan
            && kind != "identify"
        {
            properties["plan"] = plan;
        }
        let message_id = format!("rep-{i}");
        let mut m =
            json!({"type": kind, "messageId": message_id, "timestamp": crate::rollups::iso(ts)});
        match kind {
            "track" => {
                m["event"] = json!(name);
                m["properties"] = properties.clone();
            }
            "page" => {
                if let Some(name) = &name {
                    m["name"] = json!(name);
                }
                m["properties"] = properties.clone();
            }
            _ => m["traits"] = properties.clone(),
        }
        match (&user_id, &anonymous_id) {
            (Some(id), _) => m["userId"] = json!(id),
            (_, id) => m["anonymousId"] = json!(id),
        }
        let user = user_id.or(anonymous_id);
        events.push(Event {
            message_id,
            id: 0,
            kind,
            name,
            user,
            ts,
            properties,
        });
        messages.push(m);
    }
    (events, messages)
}

/// Posts every message in batches; every one must be stored.
fn ingest(trib: &Trib, messages: &[Value]) {
    let mut stored = 0;
    for batch in messages.chunks(250) {
        let resp = client()
            .post(trib.url("/v1/batch"))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .expect("request");
        let status = resp.status().as_u16();
        let body: Value = resp.json().expect("JSON");
        assert_eq!(status, 200, "{body}\n{}", trib.log());
        assert_eq!(body["rejected"], json!([]), "{body}");
        stored += body["stored"].as_u64().expect("stored");
    }
    assert_eq!(stored, messages.len() as u64);
}

/// The stored rows read back: message id, id, type, name, user, time
/// and properties (JSON text).
type Stored = Vec<(
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
)>;

/// Gives each event its stored id, checking that what was stored is what
/// was generated (type, name, user, time and properties).
fn attach_ids(events: &mut [Event], stored: Stored) {
    let by_message: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.message_id.as_str(), i))
        .collect();
    assert_eq!(stored.len(), events.len(), "every event stored once");
    let mut updates = Vec::new();
    for (message_id, id, kind, name, user, ts, properties) in stored {
        let i = by_message[message_id.as_str()];
        let e = &events[i];
        let properties: Value = serde_json::from_str(&properties).expect("stored JSON");
        assert_eq!(
            (kind.as_str(), &name, &user, ts, &properties),
            (e.kind, &e.name, &e.user, e.ts, &e.properties),
            "{message_id} stored differently"
        );
        updates.push((i, id));
    }
    for (i, id) in updates {
        events[i].id = id;
    }
}

/// The SQL (both dialects) that reads the stored rows back.
const STORED: &str = "SELECT message_id, id, type, name, COALESCE(user_id, anonymous_id), timestamp_ms, properties FROM events WHERE source = 'web'";

/// A property's text as the reports group by it: strings as they are,
/// booleans as `true`/`false`, integers in decimal, none for null or
/// absent.
fn text(properties: &Value, path: &str) -> Option<String> {
    match properties.get(path)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        other => panic!("the test generates no {other}"),
    }
}

/// A funnel step: a name and property filters (path, JSON value).
#[derive(Debug, Clone)]
struct Step {
    event: String,
    filters: Vec<(String, Value)>,
}

impl Step {
    fn matches(&self, e: &Event) -> bool {
        e.name.as_deref() == Some(self.event.as_str())
            && self
                .filters
                .iter()
                .all(|(path, value)| e.properties.get(path) == Some(value))
    }
}

/// The reference funnel: per user, the first step-1 event (by time, then
/// id) in `[from, to)`; each later step the first matching event strictly
/// after the previous step and at most `window` after step 1.
fn funnel_reference(
    events: &[Event],
    steps: &[Step],
    window: i64,
    from: i64,
    to: i64,
    breakdown: Option<&str>,
) -> Value {
    let mut by_user: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events {
        if let Some(u) = &e.user {
            by_user.entry(u).or_default().push(e);
        }
    }
    // Group (None: everyone) -> per step, the users' times since the
    // previous step.
    let mut diffs: BTreeMap<Option<Option<String>>, Vec<Vec<i64>>> = BTreeMap::new();
    for evs in by_user.values_mut() {
        evs.sort_by_key(|e| (e.ts, e.id));
        let Some(first) = evs
            .iter()
            .find(|e| steps[0].matches(e) && e.ts >= from && e.ts < to)
        else {
            continue;
        };
        let t1 = first.ts;
        let mut reached = vec![0];
        let mut previous = t1;
        for step in &steps[1..] {
            match evs
                .iter()
                .find(|e| step.matches(e) && e.ts > previous && e.ts <= t1 + window)
            {
                Some(e) => {
                    reached.push(e.ts - previous);
                    previous = e.ts;
                }
                None => break,
            }
        }
        let mut groups = vec![None];
        if let Some(path) = breakdown {
            groups.push(Some(text(&first.properties, path)));
        }
        for g in groups {
            let entry = diffs
                .entry(g)
                .or_insert_with(|| vec![Vec::new(); steps.len()]);
            for (k, d) in reached.iter().enumerate() {
                entry[k].push(*d);
            }
        }
    }
    let steps_of = |g: &Option<Option<String>>| -> Value {
        let empty = vec![Vec::new(); steps.len()];
        let per_step = diffs.get(g).unwrap_or(&empty);
        let users: Vec<i64> = per_step.iter().map(|d| d.len() as i64).collect();
        let ratio = |a: i64, b: i64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Value::Array(
            (0..steps.len())
                .map(|k| {
                    let mut d = per_step[k].clone();
                    d.sort_unstable();
                    let median = (k > 0 && !d.is_empty()).then(|| d[d.len().div_ceil(2) - 1]);
                    json!({
                        "event": steps[k].event,
                        "users": users[k],
                        "conversion": ratio(users[k], users[0]),
                        "step_conversion": if k == 0 { 1.0 } else { ratio(users[k], users[k - 1]) },
                        "median_ms_from_previous": median,
                    })
                })
                .collect(),
        )
    };
    let mut answer = json!({"window_ms": window, "steps": steps_of(&None)});
    if breakdown.is_some() {
        let mut groups: Vec<(i64, Option<String>)> = diffs
            .iter()
            .filter_map(|(g, d)| g.clone().map(|g| (d[0].len() as i64, g)))
            .collect();
        groups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| value_order(&a.1, &b.1)));
        answer["breakdown"] = Value::Array(
            groups
                .into_iter()
                .map(|(_, g)| json!({"value": g, "steps": steps_of(&Some(g.clone()))}))
                .collect(),
        );
    }
    answer
}

/// Values byte-wise, values before none.
fn value_order(a: &Option<String>, b: &Option<String>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.as_bytes().cmp(b.as_bytes()),
        (a, b) => b.is_some().cmp(&a.is_some()),
    }
}

/// The reference retention: cohorts by the period of each user's first
/// start event in `[from, to)`; returns at or after it, by period.
fn retention_reference(
    events: &[Event],
    start: &str,
    back: &str,
    week: bool,
    periods: i64,
    from: i64,
    to: i64,
) -> Value {
    let (width, offset) = if week { (WEEK, 4 * DAY) } else { (DAY, 0) };
    let cohort_of = |t: i64| (t - offset).div_euclid(width) * width + offset;
    let mut firsts: BTreeMap<&str, i64> = BTreeMap::new();
    for e in events {
        if let Some(u) = &e.user
            && e.name.as_deref() == Some(start)
            && e.ts >= from.max(offset)
            && e.ts < to
        {
            let t = firsts.entry(u).or_insert(e.ts);
            *t = (*t).min(e.ts);
        }
    }
    let mut cohorts: BTreeMap<i64, (BTreeSet<&str>, Vec<BTreeSet<&str>>)> = BTreeMap::new();
    for (&u, &t) in &firsts {
        cohorts
            .entry(cohort_of(t))
            .or_insert_with(|| (BTreeSet::new(), vec![BTreeSet::new(); periods as usize + 1]))
            .0
            .insert(u);
    }
    for e in events {
        let Some(u) = e.user.as_deref() else { continue };
        let Some(&t) = firsts.get(u) else { continue };
        if e.name.as_deref() != Some(back) || e.ts < t {
            continue;
        }
        let c = cohort_of(t);
        let k = (e.ts - c) / width;
        if k <= periods
            && let Some(entry) = cohorts.get_mut(&c)
        {
            entry.1[k as usize].insert(u);
        }
    }
    json!({
        "period": if week { "week" } else { "day" },
        "period_ms": width,
        "periods": periods,
        "cohorts": cohorts.into_iter().map(|(start, (users, returning))| {
            let n = users.len() as i64;
            let returning: Vec<i64> = returning.iter().map(|s| s.len() as i64).collect();
            let share: Vec<f64> = returning.iter().map(|&r| r as f64 / n as f64).collect();
            json!({"start": start, "users": n, "returning": returning, "retention": share})
        }).collect::<Vec<_>>(),
    })
}

/// The reference breakdown: events and unique users by a property's text,
/// most events first, ties by value (values before none), `limit` rows.
fn breakdown_reference(
    events: &[Event],
    path: &str,
    kind: Option<&str>,
    name: Option<&str>,
    from: i64,
    to: i64,
    limit: usize,
) -> Value {
    let mut groups: BTreeMap<Option<String>, (i64, BTreeSet<&str>)> = BTreeMap::new();
    for e in events {
        if e.ts < from
            || e.ts >= to
            || kind.is_some_and(|k| k != e.kind)
            || name.is_some_and(|n| Some(n) != e.name.as_deref())
        {
            continue;
        }
        let entry = groups.entry(text(&e.properties, path)).or_default();
        entry.0 += 1;
        if let Some(u) = &e.user {
            entry.1.insert(u);
        }
    }
    let mut rows: Vec<(Option<String>, i64, i64)> = groups
        .into_iter()
        .map(|(v, (n, users))| (v, n, users.len() as i64))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| value_order(&a.0, &b.0)));
    rows.truncate(limit);
    json!({
        "property": path,
        "rows": rows.into_iter().map(|(v, n, u)| json!({"value": v, "events": n, "unique_users": u})).collect::<Vec<_>>(),
    })
}

/// `value` as the API's answers arrive: written and read back, so that
/// fractions read with the same rounding (`serde_json` reads some floats
/// one unit in the last place off; the numbers written are the same).
fn as_read(value: Value) -> Value {
    serde_json::from_str(&value.to_string()).expect("JSON")
}

/// `GET path` with the read token: the answer, which must be a `200`.
fn api(trib: &Trib, path: &str, query: &[(&str, String)]) -> Value {
    let resp = client()
        .get(trib.url(path))
        .query(query)
        .bearer_auth(READ_TOKEN)
        .send()
        .expect("request");
    let status = resp.status().as_u16();
    let body: Value = resp.json().expect("JSON");
    assert_eq!(status, 200, "{path} {query:?}: {body}\n{}", trib.log());
    body
}

/// A random window: the whole span, or a random stretch of it.
fn window(rng: &mut Rng) -> (i64, i64) {
    if rng.below(3) == 0 {
        return (0, i64::MAX);
    }
    let from = START + rng.below((DAYS * DAY) as u64) as i64;
    (from, from + 1 + rng.below((10 * DAY) as u64) as i64)
}

fn range_query(from: i64, to: i64) -> Vec<(&'static str, String)> {
    let mut q = vec![("from", from.to_string())];
    if to != i64::MAX {
        q.push(("to", to.to_string()));
    }
    q
}

/// Compares `count` random reports of every kind with the reference.
fn compare(trib: &Trib, events: &[Event], rng: &mut Rng, count: usize) {
    let windows = [
        ("1h", 3_600_000),
        ("1d", DAY),
        ("3d", 3 * DAY),
        ("7d", WEEK),
    ];
    // Answers that were not trivially empty: the comparisons must have
    // tested something.
    let (mut converted, mut returned) = (0, 0);
    for n in 0..count {
        let prefix = if n % 2 == 0 { "/api/v1" } else { "/api" };
        // A funnel.
        let steps: Vec<Step> = (0..2 + rng.below(3))
            .map(|_| Step {
                event: (*rng.pick(&NAMES[..3])).to_owned(),
                filters: if rng.below(4) == 0 {
                    vec![("plan".to_owned(), json!(rng.pick(&["pro", "free"])))]
                } else if rng.below(8) == 0 {
                    vec![("plan".to_owned(), json!(3))]
                } else {
                    vec![]
                },
            })
            .collect();
        let (window_name, window_ms) = *rng.pick(&windows);
        let (from, to) = window(rng);
        let breakdown = (rng.below(2) == 0).then_some("plan");
        let steps_param = Value::Array(
            steps
                .iter()
                .map(|s| {
                    if s.filters.is_empty() {
                        json!(s.event)
                    } else {
                        let conditions: serde_json::Map<String, Value> =
                            s.filters.iter().cloned().collect();
                        json!({"event": s.event, "where": conditions})
                    }
                })
                .collect(),
        );
        let mut query = range_query(from, to);
        query.push(("steps", steps_param.to_string()));
        query.push(("window", window_name.to_owned()));
        if let Some(b) = breakdown {
            query.push(("breakdown", b.to_owned()));
        }
        let got = api(trib, &format!("{prefix}/funnel"), &query);
        let want = as_read(funnel_reference(
            events, &steps, window_ms, from, to, breakdown,
        ));
        assert_eq!(got, want, "funnel {query:?}");
        converted += usize::from(got["steps"][1]["users"].as_i64() > Some(0));

        // Retention.
        let week = rng.below(2) == 0;
        let periods = 1 + rng.below(if week { 4 } else { 12 }) as i64;
        let start = *rng.pick(&NAMES);
        let back = *rng.pick(&NAMES);
        let (from, to) = window(rng);
        let mut query = range_query(from, to);
        query.extend([
            ("start_event", start.to_owned()),
            ("return_event", back.to_owned()),
            ("period", if week { "week" } else { "day" }.to_owned()),
            ("periods", periods.to_string()),
        ]);
        let got = api(trib, &format!("{prefix}/retention"), &query);
        let want = as_read(retention_reference(
            events, start, back, week, periods, from, to,
        ));
        assert_eq!(got, want, "retention {query:?}");
        let cohorts = got["cohorts"].as_array().cloned().unwrap_or_default();
        returned += usize::from(cohorts.iter().any(|c| c["returning"][1].as_i64() > Some(0)));

        // A breakdown, and the top lists.
        let (from, to) = window(rng);
        let limit = 1 + rng.below(6) as usize;
        let name = (rng.below(2) == 0).then(|| *rng.pick(&NAMES));
        let kind = (rng.below(3) == 0).then_some("track");
        let mut query = range_query(from, to);
        query.push(("property", "plan".to_owned()));
        query.push(("limit", limit.to_string()));
        if let Some(name) = name {
            query.push(("event", name.to_owned()));
        }
        if let Some(kind) = kind {
            query.push(("type", kind.to_owned()));
        }
        let got = api(trib, &format!("{prefix}/breakdown"), &query);
        let want = as_read(breakdown_reference(
            events, "plan", kind, name, from, to, limit,
        ));
        assert_eq!(got, want, "breakdown {query:?}");
        for (top, path) in [("pages", "path"), ("referrers", "referrer")] {
            let mut query = range_query(from, to);
            query.push(("limit", limit.to_string()));
            let got = api(trib, &format!("{prefix}/top/{top}"), &query);
            let want = as_read(breakdown_reference(
                events,
                path,
                Some("page"),
                None,
                from,
                to,
                limit,
            ));
            assert_eq!(got, want, "top {top} {query:?}");
        }
    }
    assert!(
        converted > count / 4 && returned > count / 4,
        "too few funnels converted ({converted}) or cohorts returned ({returned}) of {count}"
    );
}

/// Checks what a report refuses, and the API's description.
fn refusals(trib: &Trib) {
    for (path, query, expected) in [
        ("/api/v1/funnel", "steps=a", "between 2 and 10 steps"),
        ("/api/v1/funnel", "steps=a,b&window=8w", "window \"8w\""),
        (
            "/api/v1/funnel",
            "steps=a,b&breakdown=nope",
            "no event has the property",
        ),
        ("/api/v1/retention", "period=day", "start_event is required"),
        (
            "/api/v1/breakdown",
            "property=nope",
            "no event has the property",
        ),
        (
            "/api/v1/top/pages",
            "limit=0",
            "limit must be between 1 and 1000",
        ),
    ] {
        let resp = client()
            .get(trib.url(&format!("{path}?{query}")))
            .bearer_auth(READ_TOKEN)
            .send()
            .expect("request");
        assert_eq!(resp.status().as_u16(), 400, "{path}?{query}");
        let body: Value = resp.json().expect("JSON");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{path}?{query}: {body}");
    }
    // The description needs no token; the reports do.
    let (status, body) = trib.get("/api/v1/openapi.json");
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).expect("JSON");
    assert!(doc["paths"]["/api/v1/funnel"].is_object());
    assert_eq!(trib.get("/api/v1/funnel?steps=a,b").0, 401);
}

/// Ingests random events, reads their ids back (`stored` runs
/// [`STORED`]), and compares reports with the reference.
fn exercise(trib: &Trib, stored: &dyn Fn() -> Stored) {
    let mut rng = Rng::seeded("reports");
    let (mut events, messages) = events(&mut rng, 3000);
    ingest(trib, &messages);
    attach_ids(&mut events, stored());
    refusals(trib);
    compare(trib, &events, &mut rng, 25);
}

/// The data app with pass-through transforms.
fn app() -> AppDir {
    crate::support::data_app(
        "reports",
        &format!("{WRITE_KEY}=web"),
        Some(&format!("{READ_TOKEN}=web")),
        [("transform_filter", "{}"); 4],
    )
}

#[test]
fn reports_agree_with_a_reference_on_sqlite() {
    let app = app();
    let trib = Trib::start(&app);
    let stored = || -> Stored {
        let conn = app.sqlite();
        let mut stmt = conn.prepare(STORED).expect("prepare");
        stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .expect("read the events back")
    };
    exercise(&trib, &stored);
}

#[test]
fn reports_agree_with_a_reference_on_postgresql() {
    if !backend_available("PostgreSQL", "127.0.0.1:5432") {
        return;
    }
    let name = unique_name("trib_reports", '_');
    let admin = "host=127.0.0.1 user=postgres dbname=postgres";
    let mut server = postgres::Client::connect(admin, postgres::NoTls).expect("connect");
    server
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}?sslmode=disable");
    let app = app();
    let trib = Trib::start_with_env(
        &app,
        &shared_cache(),
        &[],
        &[("SPIN_VARIABLE_DATABASE_URL", url.as_str())],
    );
    let direct = std::cell::RefCell::new(
        postgres::Client::connect(
            &format!("host=127.0.0.1 user=postgres dbname={name}"),
            postgres::NoTls,
        )
        .expect("connect to the test database"),
    );
    let stored = || -> Stored {
        direct
            .borrow_mut()
            .query(STORED, &[])
            .expect("read the events back")
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect()
    };
    exercise(&trib, &stored);
    drop(trib);
    drop(direct);
    server
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .expect("drop database");
}
