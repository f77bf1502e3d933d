//! Spin's outbound Redis API (`fermyon:spin/redis@2.0.0` for spin-sdk 5,
//! `spin:redis/redis@3.0.0` for spin-sdk 7) and key-value stores on Redis
//! (`type = "redis"` in the runtime config) against the machine's real
//! Redis, through the `redis-p2` and `redis-p3` guests; what the guests
//! write is read back from Redis itself.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{AppDir, Trib, backend_available, build_wasm, repo_root, shared_cache};

const SERVER: &str = "127.0.0.1:6379";
const ADDRESS: &str = "redis://127.0.0.1:6379";
/// A password the tests put in addresses: it must never be shown.
const PASSWORD: &str = "hunter2-secret";

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "redis-api"
[variables]
redis_host = { default = "127.0.0.1:6379" }
[[trigger.http]]
route = "/p2/..."
component = "p2"
[[trigger.http]]
route = "/p3/..."
component = "p3"
[component.p2]
source = "{redis_p2}"
allowed_outbound_hosts = ["redis://{{ redis_host }}", "redis://127.0.0.1:{down}"]
key_value_stores = ["cache"]
[component.p3]
source = "{redis_p3}"
allowed_outbound_hosts = ["redis://{{ redis_host }}", "redis://127.0.0.1:{down}"]
key_value_stores = ["cache"]
"#;

const RUNTIME_CONFIG: &str = r#"
[key_value_store.cache]
type = "redis"
url = "redis://127.0.0.1:6379/0"
"#;

/// The two guests, built once per test process.
fn redis_guests() -> &'static (PathBuf, PathBuf) {
    static GUESTS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let dir = repo_root().join("tests/guests");
        (build_wasm(&dir, "redis-p2"), build_wasm(&dir, "redis-p3"))
    })
}

/// The app, its runtime config, and `trib up` serving it; `down` is an
/// allowed port nothing listens on.
fn start(down: u16) -> (AppDir, Trib) {
    let (p2, p3) = redis_guests();
    let app = AppDir::new(
        &APP.replace("{redis_p2}", &p2.display().to_string())
            .replace("{redis_p3}", &p3.display().to_string())
            .replace("{down}", &down.to_string()),
    );
    let rc = app.path().join("runtime-config.toml");
    std::fs::write(&rc, RUNTIME_CONFIG).expect("runtime config");
    let rc = rc.display().to_string();
    let trib = Trib::start_with(&app, &shared_cache(), &["--runtime-config-file", &rc]);
    (app, trib)
}

/// A key prefix no other test or run uses.
fn prefix(test: &str) -> String {
    crate::support::unique_name(&format!("trib-it:{test}"), ':') + ":"
}

/// A connection of the test's own to the machine's Redis.
fn redis() -> redis::Connection {
    redis::Client::open(ADDRESS)
        .and_then(|c| c.get_connection())
        .expect("the test connects to Redis")
}

/// The string at `key`, read by the test itself.
fn read(con: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(con).expect("GET")
}

/// Deletes every key under `prefix`.
fn clean(con: &mut redis::Connection, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(con)
        .expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query(con).expect("DEL");
    }
}

const WALK: &str = r#"set = ()
get = "v\u{1}w"
get missing = "none"
incr = 1
incr = 2
incr text = other
sadd = 2
sadd text = other
smembers = ["a", "b"]
srem = 1
smembers = ["b"]
publish = ()
execute SET = status:OK
execute INCRBY = int:42
execute MGET = bin:42,nil
execute RPUSH = int:2
execute LRANGE = bin:x,bin:7
execute PING = status:PONG
execute GET none = nil
execute unknown = other
execute SELECT = status:OK
get in db 1 = "none"
execute SELECT = status:OK
del = 5
get after del = "none""#;

#[test]
fn every_redis_operation_answers_as_in_spin_in_both_generations() {
    if !backend_available("Redis", SERVER) {
        return;
    }
    let (_app, trib) = start(crate::support::closed_port());
    let mut con = redis();
    for generation in ["p2", "p3"] {
        let p = prefix(&format!("walk-{generation}"));
        // A subscriber of the test's own sees what the guest publishes.
        let mut listener = redis();
        let mut pubsub = listener.as_pubsub();
        pubsub.subscribe(format!("{p}channel")).expect("subscribe");
        pubsub
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let (status, body) = trib.get(&format!("/{generation}/redis?address={ADDRESS}&prefix={p}"));
        assert_eq!((status, body.as_str()), (200, WALK), "{generation}");
        let message = pubsub.get_message().expect("the published message");
        assert_eq!(message.get_channel_name(), format!("{p}channel"));
        assert_eq!(message.get_payload_bytes(), b"hello subscribers");
        // Nothing is left behind, and the guest's SELECT moved no other
        // connection: the test's own keys are still on database 0.
        assert_eq!(read(&mut con, &format!("{p}s")), None, "{generation}");
        clean(&mut con, &p);
    }
}

#[test]
fn denied_unparseable_and_unreachable_addresses_are_spins_errors() {
    let down = crate::support::closed_port();
    let (_app, trib) = start(down);
    for generation in ["p2", "p3"] {
        for address in [
            "redis://127.0.0.1:6390".to_owned(),
            format!("redis://app:{PASSWORD}@10.9.8.7:6379"),
            "rediss://127.0.0.1:6379".to_owned(),
            "not-an-address".to_owned(),
        ] {
            assert_eq!(
                trib.get(&format!("/{generation}/open?address={address}")),
                (200, "open = invalid-address".to_owned()),
                "{generation} {address}"
            );
        }
        // Allowed, but nothing listens: `other`, with the cause and the
        // address, and without the password.
        let (status, body) = trib.get(&format!(
            "/{generation}/open?address=redis://app:{PASSWORD}@127.0.0.1:{down}"
        ));
        assert_eq!(status, 200, "{body}");
        assert!(
            body.starts_with(&format!("open = other: redis://127.0.0.1:{down}: ")),
            "{generation}: {body}"
        );
        assert!(!body.contains(PASSWORD), "{body}");
        // The walk fails at `open` the same way, as an error, not a trap.
        let (status, body) = trib.get(&format!(
            "/{generation}/redis?address=redis://127.0.0.1:{down}&prefix=x"
        ));
        assert_eq!(status, 500, "{body}");
        assert!(body.starts_with("other: "), "{body}");
    }
    let log = trib.log();
    assert!(
        log.contains("address redis://10.9.8.7:6379 is not permitted"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "{log}");
}

#[test]
fn key_value_interfaces_store_in_redis() {
    if !backend_available("Redis", SERVER) {
        return;
    }
    let (_app, trib) = start(crate::support::closed_port());
    let mut con = redis();
    for generation in ["p2", "p3"] {
        let p = prefix(&format!("kv-{generation}"));
        let _: () = redis::cmd("SET")
            .arg(format!("{p}seeded"))
            .arg("from-redis")
            .query(&mut con)
            .expect("SET");
        let (status, body) = trib.get(&format!("/{generation}/kv?store=cache&prefix={p}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            [
                "get seeded = Ok(\"from-redis\")",
                "set a = Ok(())",
                "set b = Ok(())",
                "get a = Ok(\"1\")",
                "exists a = Ok(true)",
                "get missing = Ok(\"none\")",
                "keys = Ok(\"a,b,seeded\")",
                "delete a = Ok(())",
                "exists a = Ok(false)",
            ]
            .join("\n"),
            "{generation}"
        );
        assert_eq!(
            read(&mut con, &format!("{p}b")),
            Some(format!("from-{generation}"))
        );
        assert_eq!(read(&mut con, &format!("{p}a")), None);
        clean(&mut con, &p);
    }
    let p = prefix("wkv");
    let (status, body) = trib.get(&format!("/p2/wkv?store=cache&prefix={p}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        [
            "get w = Ok(\"a\")",
            "exists w = Ok(true)",
            "increment = Ok(5)",
            "increment = Ok(10)",
            "get ctr = Ok(\"10\")",
            "set_many = Ok(())",
            "get_many = Ok(\"x=1,z=none\")",
            "delete_many = Ok(())",
            "list_keys = Ok(\"ctr,w,y\")",
            "current = Ok(\"a\")",
            "swap = true",
            "contended swap = cas-failed",
            "final w = Ok(\"c\")",
        ]
        .join("\n")
    );
    assert_eq!(read(&mut con, &format!("{p}ctr")), Some("10".into()));
    assert_eq!(read(&mut con, &format!("{p}w")), Some("c".into()));
    assert_eq!(read(&mut con, &format!("{p}y")), Some("2".into()));
    clean(&mut con, &p);
}
