//! The Redis trigger (`[[trigger.redis]]`) against the machine's real
//! Redis: the test publishes with a Redis client of its own, and the
//! `redis-trigger-p2` (spin-sdk 5) and `redis-trigger-p3` (spin-sdk 7)
//! guests append every payload they get to a list, which the test reads
//! back; trib's `trib_redis_messages_total` must agree. The apps have no
//! HTTP trigger, so they also show that such an app runs.
//!
//! The tests of this module run one at a time: the reconnect test kills
//! every pub/sub connection on the server (`CLIENT KILL TYPE pubsub`).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{
    AppDir, Trib, assert_mentions, backend_available, build_wasm, repo_root, trib,
};

const SERVER: &str = "127.0.0.1:6379";
const ADDRESS: &str = "redis://127.0.0.1:6379";
/// How long a test waits for trib to subscribe or to handle what was sent.
const LIMIT: Duration = Duration::from_secs(60);

/// An app with a spin-sdk 5 and a spin-sdk 7 handler, each on its own
/// channel. The app's address is built from a variable; `p3` names its
/// own address (the per-trigger override).
const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "redis-trigger"
[application.trigger.redis]
address = "redis://{{ redis_host }}"
[variables]
redis_host = { default = "127.0.0.1:6379" }
channel_p2 = { default = "{channel_p2}" }
[[trigger.redis]]
channel = "{{ channel_p2 }}"
component = "p2"
[[trigger.redis]]
channel = "{channel_p3}"
component = "p3"
address = "redis://127.0.0.1:6379/0"
[component.p2]
source = "{trigger_p2}"
allowed_outbound_hosts = ["redis://127.0.0.1:6379"]
[component.p2.variables]
address = "redis://127.0.0.1:6379"
key = "{key_p2}"
[component.p3]
source = "{trigger_p3}"
allowed_outbound_hosts = ["redis://127.0.0.1:6379"]
[component.p3.variables]
address = "redis://127.0.0.1:6379"
key = "{key_p3}"
"#;

/// Serialises this module's tests (see the module doc).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The two guests, built once per test process.
fn trigger_guests() -> &'static (PathBuf, PathBuf) {
    static GUESTS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let dir = repo_root().join("tests/guests");
        (
            build_wasm(&dir, "redis-trigger-p2"),
            build_wasm(&dir, "redis-trigger-p3"),
        )
    })
}

/// Names (channels, keys) no other test or run uses.
fn unique(test: &str) -> String {
    crate::support::unique_name(&format!("trib-it:{test}"), ':')
}

/// A connection of the test's own to the machine's Redis.
fn redis() -> redis::Connection {
    redis::Client::open(ADDRESS)
        .and_then(|c| c.get_connection())
        .expect("the test connects to Redis")
}

/// One running app: its channels, the lists its guests fill, and trib.
struct Running {
    channel_p2: String,
    channel_p3: String,
    key_p2: String,
    key_p3: String,
    trib: Trib,
    _app: AppDir,
}

impl Running {
    /// Starts the app for `test` and waits until trib has subscribed to
    /// both channels.
    fn start(test: &str, con: &mut redis::Connection) -> Self {
        let (p2, p3) = trigger_guests();
        let id = unique(test);
        let (channel_p2, channel_p3) = (format!("{id}:ch2"), format!("{id}:ch3"));
        let (key_p2, key_p3) = (format!("{id}:got2"), format!("{id}:got3"));
        let app = AppDir::new(
            &APP.replace("{trigger_p2}", &p2.display().to_string())
                .replace("{trigger_p3}", &p3.display().to_string())
                .replace("{channel_p2}", &channel_p2)
                .replace("{channel_p3}", &channel_p3)
                .replace("{key_p2}", &key_p2)
                .replace("{key_p3}", &key_p3),
        );
        let trib = Trib::start_with(
            &app,
            &crate::support::shared_cache(),
            &["--admin-listen", "127.0.0.1:0"],
        );
        assert!(
            !trib.banner.contains("Serving"),
            "no HTTP listener without HTTP triggers:\n{}",
            trib.banner
        );
        assert_mentions(
            &trib.banner,
            &["Active Channels:", &channel_p2, &channel_p3],
        );
        let running = Self {
            channel_p2,
            channel_p3,
            key_p2,
            key_p3,
            trib,
            _app: app,
        };
        running.wait_subscribed(con);
        running
    }

    /// Waits until trib is subscribed to both channels (the server's own
    /// count of subscribers, `PUBSUB NUMSUB`).
    fn wait_subscribed(&self, con: &mut redis::Connection) {
        for channel in [&self.channel_p2, &self.channel_p3] {
            wait(
                &format!("a subscriber on {channel}"),
                || subscribers(con, channel) == 1,
                || self.trib.log(),
            );
        }
    }

    /// Deletes the guests' lists.
    fn clean(&self, con: &mut redis::Connection) {
        let _: () = redis::cmd("DEL")
            .arg(&self.key_p2)
            .arg(&self.key_p3)
            .query(con)
            .expect("DEL");
    }
}

/// Subscribers on `channel`, as the server counts them.
fn subscribers(con: &mut redis::Connection, channel: &str) -> i64 {
    let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(con)
        .expect("PUBSUB NUMSUB");
    counts.first().map_or(0, |(_, n)| *n)
}

/// Publishes `payload` on `channel` and checks that one subscriber (trib)
/// got it.
fn publish(con: &mut redis::Connection, channel: &str, payload: &str) {
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(payload)
        .query(con)
        .expect("PUBLISH");
    assert_eq!(receivers, 1, "trib receives what is published on {channel}");
}

/// The list a guest fills.
fn received(con: &mut redis::Connection, key: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query(con)
        .expect("LRANGE")
}

/// Polls `ready` until it holds; fails the test with `log()` after
/// [`LIMIT`].
fn wait(what: &str, mut ready: impl FnMut() -> bool, log: impl Fn() -> String) {
    let deadline = Instant::now() + LIMIT;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "not within {LIMIT:?}: {what}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The labels of one component's messages on one channel.
fn labels(component: &str, channel: &str, outcome: &str) -> String {
    format!("component=\"{component}\",channel=\"{channel}\",outcome=\"{outcome}\"")
}

#[test]
fn a_thousand_messages_run_a_thousand_instances_of_each_sdk_generation() {
    if !backend_available("Redis", SERVER) {
        return;
    }
    let _serial = one_at_a_time();
    let mut con = redis();
    let app = Running::start("thousand", &mut con);
    const N: usize = 1000;
    for i in 0..N {
        publish(&mut con, &app.channel_p2, &format!("m{i}"));
        publish(&mut con, &app.channel_p3, &format!("m{i}"));
    }
    let m2 = labels("p2", &app.channel_p2, "ok");
    let m3 = labels("p3", &app.channel_p3, "ok");
    let name = trib::metrics::REDIS_MESSAGES;
    app.trib.wait_metric(name, &m2, N as f64, LIMIT);
    let scrape = app.trib.wait_metric(name, &m3, N as f64, LIMIT);
    // Exactly N each, in the order published (one message at a time per
    // server, as Spin handles them), and nothing else counted.
    let expected: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(
        received(&mut con, &app.key_p2),
        expected,
        "spin-sdk 5 guest"
    );
    assert_eq!(
        received(&mut con, &app.key_p3),
        expected,
        "spin-sdk 7 guest"
    );
    for (component, channel) in [("p2", &app.channel_p2), ("p3", &app.channel_p3)] {
        for outcome in ["error", "trap", "timeout", "memory"] {
            assert_eq!(
                scrape.get_or_zero(name, &labels(component, channel, outcome)),
                0.0,
                "{component} {outcome}"
            );
        }
    }
    app.clean(&mut con);
}

#[test]
fn a_trapping_or_failing_handler_does_not_stop_the_next_message() {
    if !backend_available("Redis", SERVER) {
        return;
    }
    let _serial = one_at_a_time();
    let mut con = redis();
    let app = Running::start("trap", &mut con);
    for channel in [&app.channel_p2, &app.channel_p3] {
        for payload in ["trap", "fail", "after"] {
            publish(&mut con, channel, payload);
        }
    }
    let name = trib::metrics::REDIS_MESSAGES;
    for (component, channel) in [("p2", &app.channel_p2), ("p3", &app.channel_p3)] {
        app.trib
            .wait_metric(name, &labels(component, channel, "ok"), 1.0, LIMIT);
        let scrape = app.trib.scrape();
        assert_eq!(scrape.get(name, &labels(component, channel, "trap")), 1.0);
        assert_eq!(scrape.get(name, &labels(component, channel, "error")), 1.0);
    }
    assert_eq!(received(&mut con, &app.key_p2), ["after"]);
    assert_eq!(received(&mut con, &app.key_p3), ["after"]);
    assert_mentions(
        &app.trib.log(),
        &["Redis handler failed", "Redis handler returned an error"],
    );
    app.clean(&mut con);
}

#[test]
fn a_killed_subscription_is_made_again_and_later_messages_arrive() {
    if !backend_available("Redis", SERVER) {
        return;
    }
    let _serial = one_at_a_time();
    let mut con = redis();
    let app = Running::start("reconnect", &mut con);
    publish(&mut con, &app.channel_p2, "before");
    publish(&mut con, &app.channel_p3, "before");
    let name = trib::metrics::REDIS_MESSAGES;
    app.trib
        .wait_metric(name, &labels("p2", &app.channel_p2, "ok"), 1.0, LIMIT);
    app.trib
        .wait_metric(name, &labels("p3", &app.channel_p3, "ok"), 1.0, LIMIT);

    // Both triggers share one server, so one pub/sub connection.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut con)
        .expect("CLIENT KILL");
    assert!(killed >= 1, "trib's subscription was killed");
    // Resubscribed: trib counts the reconnection once the channels are
    // subscribed again, and the server sees the subscribers.
    // At least once: a reconnect that races the server's cleanup of the
    // killed client may itself be dropped and made again.
    app.trib
        .wait_metrics("a Redis trigger reconnect", LIMIT, |m| {
            m.find(trib::metrics::REDIS_RECONNECTS, "server=\"127.0.0.1:6379\"")
                .is_some_and(|n| n >= 1.0)
        });
    app.wait_subscribed(&mut con);
    publish(&mut con, &app.channel_p2, "after");
    publish(&mut con, &app.channel_p3, "after");
    app.trib
        .wait_metric(name, &labels("p2", &app.channel_p2, "ok"), 2.0, LIMIT);
    app.trib
        .wait_metric(name, &labels("p3", &app.channel_p3, "ok"), 2.0, LIMIT);
    assert_eq!(received(&mut con, &app.key_p2), ["before", "after"]);
    assert_eq!(received(&mut con, &app.key_p3), ["before", "after"]);
    assert_mentions(&app.trib.log(), &["Redis trigger lost its connection"]);
    app.clean(&mut con);
}

#[test]
fn a_component_without_a_redis_handler_stops_startup() {
    let app = AppDir::new(
        r#"
spin_manifest_version = 2
[application]
name = "not-a-handler"
[application.trigger.redis]
address = "redis://127.0.0.1:6379"
[[trigger.redis]]
channel = "never"
component = "web"
[component.web]
source = "{p2}"
"#,
    );
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(app.manifest())
        .arg("--cache-dir")
        .arg(crate::support::shared_cache())
        .env("TRIB_LOG", "warn")
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert_mentions(
        lines[0],
        &[
            "component \"web\"",
            "exports neither fermyon:spin/inbound-redis",
            "spin:redis/inbound-redis@3.0.0",
        ],
    );
}
