//! Issue 14, item 3: `GET /api/counts` answers from rollups, and the
//! rollups agree with a scan of the events. Random events (times over a
//! month, names, users, unnamed events, one busy day with more users than
//! a sketch keeps exactly) go through the real data app on `trib`, some
//! batches resent whole or in part; then every bucket width, ungrouped,
//! grouped by event and filtered by name, over aligned and unaligned
//! windows, is compared with SQL over the stored events: counts exactly
//! equal, unique users exactly equal while a bucket has at most 384 (the
//! sketch keeps those exactly) and within 5 standard errors (8.1%) past
//! that. Then the rollups are deleted and schema version 3 forgotten, and
//! after a restart the migration's backfill must give the same answers.
//! On SQLite and on the machine's PostgreSQL (a fresh database per run).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::rng::Rng;
use crate::support::{AppDir, Trib, backend_available, client, shared_cache, unique_name};

const WRITE_KEY: &str = "roll-key";
const READ_TOKEN: &str = "roll-token";
/// 2026-03-01T00:00:00Z.
const MONTH_START: i64 = 1_772_323_200_000;
const DAY: i64 = 86_400_000;
const WIDTHS: [(&str, i64); 3] = [("minute", 60_000), ("hour", 3_600_000), ("day", DAY)];
/// Distinct users a sketch counts exactly (`event_store::hll::SPARSE_LIMIT`).
const EXACT_UP_TO: i64 = 384;
/// 5 × the sketch's standard error (1.04 / 64).
const ESTIMATE_BOUND: f64 = 5.0 * 1.04 / 64.0;
const NAMES: [&str; 6] = [
    "Order Completed",
    "Product Viewed",
    "Signed Up",
    "Café €",
    "x",
    "Cart Viewed",
];

/// The data app with pass-through transforms.
fn app() -> AppDir {
    crate::support::data_app(
        "rollups",
        &format!("{WRITE_KEY}=web"),
        Some(&format!("{READ_TOKEN}=web")),
        [("transform_filter", "{}"); 4],
    )
}

/// RFC 3339 UTC with milliseconds for `ms` since the epoch.
pub(crate) fn iso(ms: i64) -> String {
    let days = ms.div_euclid(DAY);
    let t = ms.rem_euclid(DAY);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / 3_600_000,
        t % 3_600_000 / 60_000,
        t % 60_000 / 1000,
        t % 1000
    )
}

/// Random messages: tracks with names, unnamed pages and identifies; a
/// user id, or only an anonymous id; times over the month, a third of
/// them on one busy day with 900 users.
fn messages(rng: &mut Rng, count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let busy = rng.below(3) == 0;
            let timestamp = if busy {
                MONTH_START + 11 * DAY + rng.below(DAY as u64) as i64
            } else {
                MONTH_START + rng.below(30 * DAY as u64) as i64
            };
            let users = if busy { 900 } else { 300 };
            let user = format!("user-{}", rng.below(users));
            let mut m = match rng.below(10) {
                0 => json!({"type": "identify", "traits": {"plan": "pro"}}),
                1 => json!({"type": "page"}),
                2 => json!({"type": "page", "name": NAMES[rng.below(6) as usize]}),
                _ => json!({"type": "track", "event": NAMES[rng.below(6) as usize]}),
            };
            m["messageId"] = json!(format!("roll-{i}"));
            m["timestamp"] = json!(iso(timestamp));
            if rng.below(5) == 0 {
                m["anonymousId"] = json!(format!("anon-{user}"));
            } else {
                m["userId"] = json!(user);
            }
            m
        })
        .collect()
}

/// Posts a batch; returns the answer's `stored`.
fn post(trib: &Trib, batch: &[Value]) -> u64 {
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
    body["stored"].as_u64().expect("stored")
}

/// Sends every message once in batches of 250, resending some batches
/// whole and some half, and one batch repeating a message id; checks the
/// answers' `stored` add up to each event once.
fn ingest(trib: &Trib, messages: &[Value], rng: &mut Rng) {
    let mut stored = 0;
    for (n, batch) in messages.chunks(250).enumerate() {
        stored += post(trib, batch);
        if n % 3 == 1 {
            assert_eq!(post(trib, batch), 0, "a resent batch stores nothing");
        }
        if n % 4 == 2 {
            let mut mixed: Vec<Value> = batch[..125].to_vec();
            let end = (n + 1) * 250;
            if end < messages.len() {
                // Half old, half not yet sent: only the new half counts.
                let new = &messages[end..(end + 50).min(messages.len())];
                mixed.extend_from_slice(new);
            }
            let mut again = mixed.clone();
            again.push(mixed[rng.below(mixed.len() as u64) as usize].clone());
            stored += post(trib, &again);
        }
    }
    assert_eq!(stored, messages.len() as u64);
}

/// `(bucket start, group)` → `(count, unique users)`.
type Answer = BTreeMap<(i64, Option<String>), (i64, i64)>;

/// The query API's counts.
fn api(trib: &Trib, query: &str) -> Answer {
    let resp = client()
        .get(trib.url(&format!("/api/counts?{query}")))
        .bearer_auth(READ_TOKEN)
        .send()
        .expect("request");
    let status = resp.status().as_u16();
    let body: Value = resp.json().expect("JSON");
    assert_eq!(status, 200, "{query}: {body}\n{}", trib.log());
    body["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| {
            (
                (
                    b["start"].as_i64().expect("start"),
                    b["group"].as_str().map(str::to_owned),
                ),
                (
                    b["count"].as_i64().expect("count"),
                    b["unique_users"].as_i64().expect("unique_users"),
                ),
            )
        })
        .collect()
}

/// The SQL both dialects run over the stored events: `(bucket, group,
/// count, unique users)` for `width` over `[from, to)`; `group` is `name`
/// or `NULL`, and `name` filters when given. Values are literals: they
/// are the test's own numbers and names from [`NAMES`] (no quotes).
fn raw_sql(width: i64, grouped: bool, name: Option<&str>, from: i64, to: i64) -> String {
    let group = if grouped {
        "name"
    } else {
        "CAST(NULL AS TEXT)"
    };
    let filter = name.map_or(String::new(), |n| format!(" AND name = '{n}'"));
    format!(
        "SELECT (timestamp_ms / {width}) * {width} AS b, {group} AS g, count(*), \
         count(DISTINCT COALESCE(user_id, anonymous_id)) FROM events \
         WHERE source = 'web' AND timestamp_ms >= {from} AND timestamp_ms < {to}{filter} \
         GROUP BY b, g"
    )
}

/// Compares every width and selection over `windows` with the events.
fn compare(trib: &Trib, windows: &[(i64, i64)], raw: &dyn Fn(&str) -> Answer) -> usize {
    let mut estimated = 0;
    for &(from, to) in windows {
        for (bucket, width) in WIDTHS {
            let selections: [(&str, bool, Option<&str>); 5] = [
                ("", false, None),
                ("&group_by=event", true, None),
                ("&event=Order%20Completed", false, Some("Order Completed")),
                (
                    "&group_by=event&event=Caf%C3%A9%20%E2%82%AC",
                    true,
                    Some("Café €"),
                ),
                ("&group_by=", false, None),
            ];
            for (extra, grouped, name) in selections {
                if bucket == "minute" && to - from > 3 * DAY {
                    // Tens of thousands of minute buckets: covered by the
                    // shorter windows.
                    continue;
                }
                let query = format!("bucket={bucket}&from={from}&to={to}{extra}");
                let got = api(trib, &query);
                let want = raw(&raw_sql(width, grouped, name, from, to));
                let keys = |a: &Answer| a.keys().cloned().collect::<Vec<_>>();
                assert_eq!(keys(&got), keys(&want), "{query}: buckets differ");
                for (key, &(count, users)) in &want {
                    let (got_count, got_users) = got[key];
                    assert_eq!(got_count, count, "{query} {key:?}: count");
                    if users <= EXACT_UP_TO {
                        assert_eq!(got_users, users, "{query} {key:?}: exact unique users");
                    } else {
                        estimated += 1;
                        let error = (got_users - users) as f64 / users as f64;
                        assert!(
                            error.abs() <= ESTIMATE_BOUND,
                            "{query} {key:?}: {got_users} unique users estimated, {users} true"
                        );
                    }
                }
            }
        }
    }
    estimated
}

/// The windows compared: the whole month (aligned to every grain), the
/// API's defaults, and unaligned ones of random lengths.
fn windows(rng: &mut Rng) -> Vec<(i64, i64)> {
    let mut windows = vec![
        (MONTH_START, MONTH_START + 30 * DAY),
        (0, i64::MAX),
        // Around the busy day, cut inside minutes.
        (
            MONTH_START + 11 * DAY - 3_599_999,
            MONTH_START + 12 * DAY + 61_001,
        ),
    ];
    for _ in 0..4 {
        let from = MONTH_START + rng.below(30 * DAY as u64) as i64;
        let to = from + rng.below(3 * DAY as u64) as i64;
        windows.push((from, to));
    }
    windows
}

/// Ingests, compares, forgets the rollups (`reset`), restarts and compares
/// again: `start` starts trib, `raw` runs SQL on the store.
fn exercise(start: &dyn Fn() -> Trib, raw: &dyn Fn(&str) -> Answer, reset: &dyn Fn()) {
    let mut rng = Rng::seeded("rollups");
    let trib = start();
    let messages = messages(&mut rng, 3000);
    ingest(&trib, &messages, &mut rng);
    let windows = windows(&mut rng);
    let estimated = compare(&trib, &windows, raw);
    assert!(
        estimated > 0,
        "no bucket had more than {EXACT_UP_TO} users: the estimate went untested"
    );
    drop(trib);
    // A database from before rollups: the migration must roll it up.
    reset();
    let trib = start();
    compare(&trib, &windows, raw);
    // And ingest keeps adding to the backfilled rollups (old messages
    // resent still add nothing).
    assert_eq!(post(&trib, &messages[..10]), 0);
    let more = messages_after(&mut rng);
    ingest(&trib, &more, &mut rng);
    compare(&trib, &windows, raw);
}

/// A second round of messages with fresh ids.
fn messages_after(rng: &mut Rng) -> Vec<Value> {
    messages(rng, 500)
        .into_iter()
        .map(|mut m| {
            let id = format!("late-{}", m["messageId"].as_str().unwrap_or_default());
            m["messageId"] = json!(id);
            m
        })
        .collect()
}

fn answer_row(b: i64, g: Option<String>, c: i64, u: i64) -> ((i64, Option<String>), (i64, i64)) {
    ((b, g), (c, u))
}

#[test]
fn rollups_agree_with_the_events_on_sqlite() {
    let app = app();
    let raw = |sql: &str| -> Answer {
        let conn = app.sqlite();
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        stmt.query_map([], |r| {
            Ok(answer_row(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    let reset = || {
        app.sqlite()
            .execute_batch("DELETE FROM rollups; DELETE FROM schema_migrations WHERE version >= 3;")
            .expect("forget the rollups");
    };
    exercise(&|| Trib::start(&app), &raw, &reset);
}

#[test]
fn rollups_agree_with_the_events_on_postgresql() {
    if !backend_available("PostgreSQL", "127.0.0.1:5432") {
        return;
    }
    let name = unique_name("trib_rollups", '_');
    let admin = "host=127.0.0.1 user=postgres dbname=postgres";
    let mut server = postgres::Client::connect(admin, postgres::NoTls).expect("connect");
    server
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}?sslmode=disable");
    let app = app();
    let direct = std::cell::RefCell::new(
        postgres::Client::connect(
            &format!("host=127.0.0.1 user=postgres dbname={name}"),
            postgres::NoTls,
        )
        .expect("connect to the test database"),
    );
    let raw = |sql: &str| -> Answer {
        direct
            .borrow_mut()
            .query(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| answer_row(r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    };
    let reset = || {
        direct
            .borrow_mut()
            .batch_execute("DELETE FROM rollups; DELETE FROM schema_migrations WHERE version >= 3;")
            .expect("forget the rollups");
    };
    let start = || {
        Trib::start_with_env(
            &app,
            &shared_cache(),
            &[],
            &[("SPIN_VARIABLE_DATABASE_URL", url.as_str())],
        )
    };
    exercise(&start, &raw, &reset);
    assert!(!app.path().join(".spin/sqlite_db.db").exists());
    drop(direct);
    server
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .expect("drop database");
}
