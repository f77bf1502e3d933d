//! Issue 13, item 4: two `trib up` replicas of the data app sharing state.
//! Both serve the same app with the same runtime config (key-value stores
//! in the machine's Redis) and the same `database_url` (one fresh
//! PostgreSQL database), as two replicas of a SpinApp on SpinKube would.
//! Events ingested through either replica are stored once and both read
//! back the same answers.
//!
//! The data app itself uses no key-value store, so the test's copy of it
//! has one extra component (the `hello-p3` guest behind `/kv/...`) that
//! reads and writes the `default` store: what one replica writes there the
//! other reads.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{AppDir, Trib, backend_available, guests, shared_cache, unique_name};

const POSTGRES: &str = "127.0.0.1:5432";
const REDIS: &str = "127.0.0.1:6379";
/// Events sent, split across the replicas.
const EVENTS: usize = 10_000;
/// Events per `POST /v1/batch`.
const PER_BATCH: usize = 100;
/// Concurrent first requests per replica on the fresh database.
const FIRST_REQUESTS: usize = 4;
/// The last batches, sent to both replicas at once (the rest go to one).
const RACED_BATCHES: usize = 10;
/// How long sending every batch may take, both replicas together.
const SEND_LIMIT: Duration = Duration::from_secs(120);
/// The write key and the read token, both for the source `web`.
const WRITE_KEY: &str = "replica-key";
const READ_TOKEN: &str = "replica-token";

/// The runtime config both replicas share (also in the README's
/// "Replicas sharing state").
const RUNTIME_CONFIG: &str = r#"
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:6379"
"#;

/// The data app with the repository's transform chain and settings
/// (spin.toml's defaults), plus the key-value component.
fn app() -> AppDir {
    let app = crate::support::data_app(
        "replicas",
        &format!("{WRITE_KEY}=web"),
        Some(&format!("{READ_TOKEN}=web")),
        [
            (
                "transform_redact",
                r#"{"paths": "email,phone,ip", "mode": "hash"}"#,
            ),
            ("transform_enrich", "{}"),
            ("transform_filter", "{}"),
            (
                "transform_validate",
                r#"{"rules": {"Order Completed": {"properties": {"total": {"type": "number", "minimum": 0}, "order_id": {"type": "string"}}}}}"#,
            ),
        ],
    );
    let kv = format!(
        "[[trigger.http]]\nroute = \"/kv/...\"\ncomponent = \"kv\"\n\
         [component.kv]\nsource = \"{}\"\nkey_value_stores = [\"default\"]\n",
        guests().p3.display()
    );
    let manifest = std::fs::read_to_string(app.manifest()).expect("read manifest");
    std::fs::write(app.manifest(), manifest + kv.as_str()).expect("write manifest");
    std::fs::write(app.path().join("runtime-config.toml"), RUNTIME_CONFIG)
        .expect("write runtime config");
    app
}

/// One replica: `trib up` on its own free port with the shared runtime
/// config and `database_url`.
fn replica(app: &AppDir, database_url: &str) -> Trib {
    let rc = app.path().join("runtime-config.toml").display().to_string();
    Trib::start_with_env(
        app,
        &shared_cache(),
        &["--runtime-config-file", &rc],
        &[("SPIN_VARIABLE_DATABASE_URL", database_url)],
    )
}

/// The `PER_BATCH` events of batch `batch`: message ids, users and the
/// property `n` (0 .. EVENTS-1) all derived from their position.
fn batch_body(batch: usize) -> Value {
    let events: Vec<Value> = (0..PER_BATCH)
        .map(|i| {
            let n = batch * PER_BATCH + i;
            json!({
                "type": "track",
                "messageId": format!("replica-msg-{n}"),
                "userId": format!("user-{}", n % 50),
                "event": if n.is_multiple_of(2) { "Order Completed" } else { "Product Viewed" },
                "properties": {"n": n, "total": 1, "order_id": format!("o-{n}")},
            })
        })
        .collect();
    json!({ "batch": events })
}

/// Posts batch `batch` to `trib`; the `200` answer's `stored` and
/// `duplicates`.
fn send(client: &reqwest::blocking::Client, trib: &Trib, batch: usize) -> (u64, u64) {
    post_batch(client, trib, &format!("batch {batch}"), &batch_body(batch))
}

/// Posts `body` (`what` names it in failures) to `trib`'s `/v1/batch`;
/// the `200` answer's `stored` and `duplicates`.
fn post_batch(
    client: &reqwest::blocking::Client,
    trib: &Trib,
    what: &str,
    body: &Value,
) -> (u64, u64) {
    let resp = client
        .post(trib.url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(body)
        .send()
        .unwrap_or_else(|e| panic!("{what} to {}: {e}", trib.base));
    let status = resp.status().as_u16();
    let body: Value = resp.json().expect("a JSON answer");
    assert_eq!(
        status,
        200,
        "{what} to {}: {body}\n{}",
        trib.base,
        trib.log()
    );
    assert_eq!(body["rejected"], json!([]), "{what}: {body}");
    (
        body["stored"].as_u64().expect("stored"),
        body["duplicates"].as_u64().expect("duplicates"),
    )
}

/// `GET path` on `trib`'s query API: the JSON of a `200`.
fn api(trib: &Trib, path: &str) -> Value {
    let resp = crate::support::client()
        .get(trib.url(path))
        .bearer_auth(READ_TOKEN)
        .send()
        .expect("request");
    let status = resp.status().as_u16();
    let body: Value = resp.json().expect("a JSON answer");
    assert_eq!(status, 200, "GET {path} on {}: {body}", trib.base);
    body
}

/// What one replica's query API reports: the total of the daily counts,
/// the counts by event, the aggregate of `n`, and every stored message id
/// (paged through `/api/events`), with how many rows the pages held.
struct Answers {
    counts: Value,
    aggregate: Value,
    total: i64,
    ids: BTreeSet<String>,
    rows: usize,
}

fn answers(trib: &Trib) -> Answers {
    let counts = api(trib, "/api/counts?bucket=day&group_by=event");
    let total = counts["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_i64().expect("a count"))
        .sum();
    let aggregate = api(trib, "/api/aggregate?property=n");
    let (mut ids, mut rows, mut cursor) = (BTreeSet::new(), 0, None::<i64>);
    loop {
        let path = match cursor {
            Some(c) => format!("/api/events?limit=1000&cursor={c}"),
            None => "/api/events?limit=1000".to_owned(),
        };
        let page = api(trib, &path);
        for row in page["rows"].as_array().expect("rows") {
            rows += 1;
            // Columns: id, message_id, type, name, ...
            ids.insert(row[1].as_str().expect("a message id").to_owned());
        }
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(rows <= 2 * EVENTS, "paging does not end: {rows} rows");
    }
    Answers {
        counts,
        aggregate,
        total,
        ids,
        rows,
    }
}

/// Checks that `trib` reports exactly the `EVENTS` events sent, once each.
fn assert_exactly_once(trib: &Trib, expected: &BTreeSet<String>) -> Answers {
    let a = answers(trib);
    assert_eq!(a.total, EVENTS as i64, "{}: {}", trib.base, a.counts);
    assert_eq!(a.rows, EVENTS, "{}: rows paged", trib.base);
    assert!(
        &a.ids == expected,
        "{}: the stored message ids differ from those sent ({} distinct)",
        trib.base,
        a.ids.len()
    );
    let sum = (EVENTS * (EVENTS - 1) / 2) as f64;
    assert_eq!(
        (a.aggregate["count"].as_i64(), a.aggregate["sum"].as_f64()),
        (Some(EVENTS as i64), Some(sum)),
        "{}: {}",
        trib.base,
        a.aggregate
    );
    a
}

/// A PostgreSQL database of the test's own, dropped (with its
/// connections) at the end.
struct Database {
    name: String,
}

impl Database {
    fn create() -> Self {
        let name = unique_name("trib_replicas", '_');
        admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        Self { name }
    }

    /// The URL the replicas store events at.
    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:5432/{}?sslmode=disable",
            self.name
        )
    }

    /// `(count(*), count(DISTINCT message_id))` of the events table, read
    /// by the test itself.
    fn counts(&self) -> (i64, i64) {
        let mut direct = postgres::Client::connect(
            &format!("host=127.0.0.1 user=postgres dbname={}", self.name),
            postgres::NoTls,
        )
        .expect("connect to the test database");
        let row = direct
            .query_one(
                "SELECT count(*), count(DISTINCT message_id) FROM events",
                &[],
            )
            .expect("count the events");
        (row.get(0), row.get(1))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn admin() -> postgres::Client {
    postgres::Client::connect(
        "host=127.0.0.1 user=postgres dbname=postgres",
        postgres::NoTls,
    )
    .expect("connect to PostgreSQL")
}

#[test]
fn two_replicas_share_redis_and_postgresql_and_count_every_event_once() {
    if !backend_available("PostgreSQL", POSTGRES) || !backend_available("Redis", REDIS) {
        return;
    }
    let started = Instant::now();
    let database = Database::create();
    let app = app();
    let replicas = [
        replica(&app, &database.url()),
        replica(&app, &database.url()),
    ];
    assert_ne!(replicas[0].base, replicas[1].base);
    let client = crate::support::client();

    // The fresh database's first requests: FIRST_REQUESTS empty batches
    // per replica, all released at once, each opening the store (and so
    // applying its migrations) at the same moment.
    let barrier = std::sync::Barrier::new(replicas.len() * FIRST_REQUESTS);
    std::thread::scope(|s| {
        for trib in &replicas {
            for _ in 0..FIRST_REQUESTS {
                let (barrier, client) = (&barrier, &client);
                s.spawn(move || {
                    barrier.wait();
                    let empty = json!({ "batch": [] });
                    assert_eq!(post_batch(client, trib, "a first request", &empty), (0, 0));
                });
            }
        }
    });

    // In rounds, both replicas at once (two threads released together):
    // first batches 2k and 2k+1, one to each, then each of the last
    // RACED_BATCHES batches to both, whose new message ids must be stored
    // once.
    let batches = EVENTS / PER_BATCH;
    let raced = batches - RACED_BATCHES;
    let rounds: Vec<[usize; 2]> = (0..raced)
        .step_by(2)
        .map(|b| [b, b + 1])
        .chain((raced..batches).map(|b| [b, b]))
        .collect();
    let sending = Instant::now();
    let mut per_replica = [(0, 0); 2];
    for round in rounds {
        assert!(
            sending.elapsed() < SEND_LIMIT,
            "sending took over {SEND_LIMIT:?}"
        );
        let barrier = std::sync::Barrier::new(2);
        let answers: Vec<(u64, u64)> = std::thread::scope(|s| {
            let senders: Vec<_> = replicas
                .iter()
                .zip(round)
                .map(|(trib, batch)| {
                    let (barrier, client) = (&barrier, &client);
                    s.spawn(move || {
                        barrier.wait();
                        send(client, trib, batch)
                    })
                })
                .collect();
            senders
                .into_iter()
                .map(|h| h.join().expect("a sender panicked"))
                .collect()
        });
        let together = (answers[0].0 + answers[1].0, answers[0].1 + answers[1].1);
        let one = PER_BATCH as u64;
        let wanted = if round[0] == round[1] {
            (one, one)
        } else {
            (2 * one, 0)
        };
        assert_eq!(
            together, wanted,
            "(stored, duplicates) of batches {round:?}: {answers:?}"
        );
        for (total, answer) in per_replica.iter_mut().zip(answers) {
            *total = (total.0 + answer.0, total.1 + answer.1);
        }
    }
    let send_time = sending.elapsed();
    assert!(send_time < SEND_LIMIT, "sending took {send_time:?}");

    // Each replica reports exactly the events sent through both.
    let expected: BTreeSet<String> = (0..EVENTS).map(|n| format!("replica-msg-{n}")).collect();
    let reading = Instant::now();
    let first = assert_exactly_once(&replicas[0], &expected);
    let second = assert_exactly_once(&replicas[1], &expected);
    assert_eq!(first.counts, second.counts, "the replicas' counts differ");
    assert_eq!(
        first.aggregate, second.aggregate,
        "the replicas' aggregates differ"
    );
    let read_time = reading.elapsed();
    assert_eq!(database.counts(), (EVENTS as i64, EVENTS as i64));

    // Retries through the other replica: the app deduplicates by
    // messageId in the shared database, so nothing is stored twice.
    for batch in 0..6 {
        let other = &replicas[(batch + 1) % 2];
        assert_eq!(
            send(&client, other, batch),
            (0, PER_BATCH as u64),
            "batch {batch} resent to {}",
            other.base
        );
    }
    for trib in &replicas {
        let again = assert_exactly_once(trib, &expected);
        assert_eq!(again.counts, first.counts);
    }
    assert_eq!(database.counts(), (EVENTS as i64, EVENTS as i64));

    // Key-value in Redis: written through one replica, read through the
    // other (and by the test from Redis itself), deleted through the other.
    let key = unique_name("trib-it:replicas", ':');
    let kv = |trib: &Trib, action: &str, value: &str| -> String {
        let (status, body) = trib.get(&format!("/kv/kv-{action}?key={key}&value={value}"));
        assert_eq!(status, 200, "kv-{action} on {}: {body}", trib.base);
        body
    };
    assert_eq!(kv(&replicas[0], "set", "from-replica-0"), "ok");
    assert_eq!(kv(&replicas[1], "get", ""), "from-replica-0");
    let mut redis = redis::Client::open("redis://127.0.0.1:6379")
        .and_then(|c| c.get_connection())
        .expect("the test connects to Redis");
    let in_redis: Option<String> = redis::cmd("GET").arg(&key).query(&mut redis).expect("GET");
    assert_eq!(in_redis.as_deref(), Some("from-replica-0"));
    assert_eq!(kv(&replicas[1], "set", "from-replica-1"), "ok");
    assert_eq!(kv(&replicas[0], "get", ""), "from-replica-1");
    assert_eq!(kv(&replicas[1], "delete", ""), "ok");
    assert_eq!(kv(&replicas[0], "exists", ""), "false");

    eprintln!(
        "replicas: {EVENTS} events in {batches} batches sent in {send_time:?}, \
         the last {RACED_BATCHES} to both at once ({per_replica:?} stored and duplicates \
         per replica); read back from both in {read_time:?}; {:?} in all",
        started.elapsed()
    );
    drop(replicas);
    drop(database);
}
