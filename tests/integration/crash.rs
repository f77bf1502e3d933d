//! Crash safety of ingestion: `kill -9` during load, restart, resend.
//!
//! A Segment client treats `200` as "stored" and retries anything else,
//! including a connection that died mid-request. So two promises must hold
//! across a hard crash: an event whose request was answered `200` is on
//! disk after the crash (the store committed before answering), and a
//! retried batch never stores an event twice (deduplication by `messageId`
//! happens in the transaction that stores it). This test runs the data app
//! with its real transform chain, posts batches from several clients at
//! once, SIGKILLs `trib` while they are in flight, checks the acknowledged
//! events survived, then resends every batch and checks each `messageId`
//! is stored exactly once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{AppDir, Trib, client};

/// The data app as `spin.toml` wires it (the transform chain with its
/// settings included), without the query API, with the components from
/// the test build and a write key of its own.
fn app() -> AppDir {
    crate::support::data_app(
        "crash-test",
        "crash-key=crash",
        None,
        [
            (
                "transform_redact",
                r#"{"paths": "email,phone,ip", "mode": "hash"}"#,
            ),
            ("transform_enrich", "{}"),
            ("transform_filter", "{}"),
            (
                "transform_validate",
                r#"{"rules": {"Order Completed": {"properties": {"total": {"type": "number", "minimum": 0}}}}}"#,
            ),
        ],
    )
}

const CLIENTS: usize = 4;
const EVENTS_PER_BATCH: usize = 25;
/// Load before the kill: long enough for many commits, short enough that
/// the whole test stays well under a minute.
const LOAD: Duration = Duration::from_secs(3);

/// The body of batch `batch` of client `client`: every `messageId` unique
/// across the test, so a stored row maps back to exactly one send.
fn batch_body(client: usize, batch: usize) -> String {
    let events: Vec<serde_json::Value> = (0..EVENTS_PER_BATCH)
        .map(|e| {
            serde_json::json!({
                "type": "track",
                "userId": format!("user-{client}"),
                "event": if e % 5 == 0 { "Order Completed" } else { "Product Viewed" },
                "messageId": message_id(client, batch, e),
                "properties": { "total": e, "email": format!("u{client}@example.com") },
            })
        })
        .collect();
    serde_json::json!({ "batch": events }).to_string()
}

fn message_id(client: usize, batch: usize, event: usize) -> String {
    format!("crash-{client}-{batch}-{event}")
}

/// Posts one batch; `Ok(status)` for any HTTP answer, `Err` when the
/// connection failed (as it does for requests in flight at the kill).
fn post_batch(http: &reqwest::blocking::Client, base: &str, body: String) -> Result<u16, String> {
    http.post(format!("{base}/v1/batch"))
        .basic_auth("crash-key", Some(""))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// How many rows each `messageId` of source `crash` has in the app's
/// SQLite file. Fails loudly if the file or the table is missing: an empty
/// answer must mean "nothing stored", never "looked in the wrong place".
fn stored(app: &AppDir) -> HashMap<String, i64> {
    let db = app.sqlite();
    let mut stmt = db
        .prepare(
            "SELECT message_id, count(*) FROM events WHERE source = 'crash' GROUP BY message_id",
        )
        .unwrap_or_else(|e| panic!("the events table is not readable: {e}"));
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query events")
        .collect::<Result<_, _>>()
        .expect("read events")
}

#[test]
fn kill_9_during_ingest_loses_no_acknowledged_event_and_duplicates_none() {
    let started = Instant::now();
    let app = app();
    let trib = Trib::start(&app);
    let base = trib.base.clone();

    // Batches each client sent (all of them, answered or not) and those
    // answered 200, by client.
    let sent = Mutex::new(BTreeMap::<usize, usize>::new());
    let acked = Mutex::new(Vec::<(usize, usize)>::new());
    let unexpected = Mutex::new(Vec::<String>::new());
    let answered = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);
    let mut trib = Some(trib);
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (sent, acked, unexpected, answered, killed, base) =
                (&sent, &acked, &unexpected, &answered, &killed, &base);
            s.spawn(move || {
                let http = client();
                for b in 0.. {
                    if killed.load(Ordering::SeqCst) {
                        break;
                    }
                    sent.lock().expect("lock").insert(c, b + 1);
                    match post_batch(&http, base, batch_body(c, b)) {
                        Ok(200) => {
                            acked.lock().expect("lock").push((c, b));
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(status) => {
                            unexpected
                                .lock()
                                .expect("lock")
                                .push(format!("client {c} batch {b}: {status}"));
                        }
                        // The kill: this batch's fate is unknown.
                        Err(_) => break,
                    }
                }
            });
        }
        // Kill only once commits are flowing, so that requests are in
        // flight at every stage when it lands.
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.load(Ordering::SeqCst) < CLIENTS * 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(LOAD);
        // `Trib`'s drop is `Child::kill`, which on Unix is SIGKILL: no
        // shutdown code runs, exactly as with `kill -9`.
        drop(trib.take());
        killed.store(true, Ordering::SeqCst);
    });
    let unexpected = unexpected.into_inner().expect("lock");
    assert!(
        unexpected.is_empty(),
        "non-200 answers under load: {unexpected:?}"
    );
    let sent = sent.into_inner().expect("lock");
    let acked = acked.into_inner().expect("lock");
    let total_batches: usize = sent.values().sum();
    assert!(
        acked.len() >= CLIENTS * 2,
        "too little load before the kill: {} batches acknowledged",
        acked.len()
    );
    assert!(
        total_batches > acked.len(),
        "no request was in flight at the kill"
    );

    // Restart on the same app directory: every acknowledged event must be
    // there before anything is resent.
    let trib = Trib::start(&app);
    let after_crash = stored(&app);
    let lost: Vec<String> = acked
        .iter()
        .flat_map(|&(c, b)| (0..EVENTS_PER_BATCH).map(move |e| message_id(c, b, e)))
        .filter(|id| !after_crash.contains_key(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost in the crash, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );

    // Resend everything, as a retrying client would.
    let http = client();
    for (&c, &batches) in &sent {
        for b in 0..batches {
            let status = post_batch(&http, &trib.base, batch_body(c, b))
                .unwrap_or_else(|e| panic!("resend of client {c} batch {b} failed: {e}"));
            assert_eq!(
                status,
                200,
                "resend of client {c} batch {b}\n{}",
                trib.log()
            );
        }
    }
    let after_resend = stored(&app);
    let mut missing = 0;
    let mut duplicated = Vec::new();
    for (&c, &batches) in &sent {
        for b in 0..batches {
            for e in 0..EVENTS_PER_BATCH {
                let id = message_id(c, b, e);
                match after_resend.get(&id) {
                    None => missing += 1,
                    Some(1) => {}
                    Some(&n) => duplicated.push((id, n)),
                }
            }
        }
    }
    let expected = total_batches * EVENTS_PER_BATCH;
    eprintln!(
        "crash test: {} batches sent, {} acknowledged before the kill, {} events stored \
         after the crash, {} after resending (expected {expected}), {} s",
        total_batches,
        acked.len(),
        after_crash.len(),
        after_resend.len(),
        started.elapsed().as_secs()
    );
    assert_eq!(missing, 0, "events missing after the resend");
    assert!(
        duplicated.is_empty(),
        "stored more than once: {duplicated:?}"
    );
    assert_eq!(
        after_resend.len(),
        expected,
        "rows for messageIds that were never sent"
    );
}
