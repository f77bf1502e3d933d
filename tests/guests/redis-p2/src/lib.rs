//! spin-sdk 5 test guest for Spin's Redis API (`fermyon:spin/redis@2.0.0`)
//! and for key-value stores on Redis. Each path runs one scripted walk and
//! answers its transcript, one line a step, so a test compares the whole
//! of it (the spin-sdk 7 guest answers the same lines):
//!
//! - `redis?address=A&prefix=P`: every operation, keys under `P`;
//! - `open?address=A`: `open` alone, and the error the guest gets;
//! - `kv?store=S&prefix=P`: `fermyon:spin/key-value@2.0.0`;
//! - `wkv?store=S&prefix=P`: `wasi:keyvalue` store, atomics and batch.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::redis::{Connection, Error, RedisParameter, RedisResult};

#[http_component]
fn handle(req: Request) -> Response {
    let query = req.query().to_owned();
    let param = |key: &str| -> String {
        query
            .split('&')
            .find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_owned()))
            .unwrap_or_default()
    };
    let tail = req.path().rsplit('/').next().unwrap_or_default().to_owned();
    let result = match tail.as_str() {
        "redis" => walk(&param("address"), &param("prefix")),
        "open" => Ok(match Connection::open(&param("address")) {
            Ok(_) => "open = ok".to_owned(),
            Err(e) => format!("open = {}", error(e)),
        }),
        "kv" => key_value(&param("store"), &param("prefix")),
        "wkv" => wasi_keyvalue(&param("store"), &param("prefix")),
        other => Err(format!("no walk {other:?}")),
    };
    match result {
        Ok(transcript) => Response::new(200, transcript),
        Err(e) => Response::new(500, e),
    }
}

/// Spin's error variant as the transcript shows it, with its text.
fn error(e: Error) -> String {
    match e {
        Error::InvalidAddress => "invalid-address".into(),
        Error::TooManyConnections => "too-many-connections".into(),
        Error::TypeError => "type-error".into(),
        Error::Other(m) => format!("other: {m}"),
    }
}

/// The variant alone, for errors whose text the server words.
fn kind(e: Error) -> String {
    error(e).split(':').next().unwrap_or_default().to_owned()
}

fn show<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => error(e),
    }
}

fn results(r: Result<Vec<RedisResult>, Error>) -> String {
    match r {
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                RedisResult::Nil => "nil".to_owned(),
                RedisResult::Status(s) => format!("status:{s}"),
                RedisResult::Int64(i) => format!("int:{i}"),
                RedisResult::Binary(b) => format!("bin:{}", String::from_utf8_lossy(&b)),
            })
            .collect::<Vec<_>>()
            .join(","),
        Err(e) => error(e),
    }
}

fn text(v: Option<Vec<u8>>) -> String {
    v.map_or("none".to_owned(), |b| String::from_utf8_lossy(&b).into_owned())
}

/// Every operation of the interface, on keys under `p`.
fn walk(address: &str, p: &str) -> Result<String, String> {
    let conn = Connection::open(address).map_err(error)?;
    let key = |s: &str| format!("{p}{s}");
    let bin = |s: &str| RedisParameter::Binary(s.as_bytes().to_vec());
    let mut log = Vec::new();
    log.push(format!("set = {}", show(conn.set(&key("s"), &b"v\x01w".to_vec()))));
    log.push(format!("get = {}", show(conn.get(&key("s")).map(text))));
    log.push(format!("get missing = {}", show(conn.get(&key("missing")).map(text))));
    log.push(format!("incr = {}", show(conn.incr(&key("n")))));
    log.push(format!("incr = {}", show(conn.incr(&key("n")))));
    log.push(format!("incr text = {}", conn.incr(&key("s")).map_or_else(kind, |v| v.to_string())));
    let members = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
    log.push(format!("sadd = {}", show(conn.sadd(&key("set"), &members))));
    log.push(format!("sadd text = {}", conn.sadd(&key("s"), &members).map_or_else(kind, |v| v.to_string())));
    let sorted = |r: Result<Vec<String>, Error>| {
        show(r.map(|mut m| {
            m.sort();
            m
        }))
    };
    log.push(format!("smembers = {}", sorted(conn.smembers(&key("set")))));
    let gone = vec!["a".to_owned(), "zzz".to_owned()];
    log.push(format!("srem = {}", show(conn.srem(&key("set"), &gone))));
    log.push(format!("smembers = {}", sorted(conn.smembers(&key("set")))));
    log.push(format!("publish = {}", show(conn.publish(&key("channel"), &b"hello subscribers".to_vec()))));
    let e = key("e");
    log.push(format!("execute SET = {}", results(conn.execute("SET", &[bin(&e), RedisParameter::Int64(2)]))));
    log.push(format!("execute INCRBY = {}", results(conn.execute("INCRBY", &[bin(&e), RedisParameter::Int64(40)]))));
    log.push(format!("execute MGET = {}", results(conn.execute("MGET", &[bin(&e), bin(&key("missing"))]))));
    log.push(format!("execute RPUSH = {}", results(conn.execute("RPUSH", &[bin(&key("list")), bin("x"), RedisParameter::Int64(7)]))));
    log.push(format!(
        "execute LRANGE = {}",
        results(conn.execute("LRANGE", &[bin(&key("list")), RedisParameter::Int64(0), RedisParameter::Int64(-1)]))
    ));
    log.push(format!("execute PING = {}", results(conn.execute("PING", &[]))));
    log.push(format!("execute GET none = {}", results(conn.execute("GET", &[bin(&key("missing"))]))));
    log.push(format!(
        "execute unknown = {}",
        conn.execute("NO-SUCH-COMMAND", &[]).map_or_else(kind, |_| "ok".into())
    ));
    // A SELECT moves only this guest connection to database 1; the rest
    // of the app's connections stay where they were.
    log.push(format!("execute SELECT = {}", results(conn.execute("SELECT", &[RedisParameter::Int64(1)]))));
    log.push(format!("get in db 1 = {}", show(conn.get(&key("s")).map(text))));
    log.push(format!("execute SELECT = {}", results(conn.execute("SELECT", &[RedisParameter::Int64(0)]))));
    let all = ["s", "n", "set", "e", "list", "missing"].map(key).to_vec();
    log.push(format!("del = {}", show(conn.del(&all))));
    log.push(format!("get after del = {}", show(conn.get(&key("s")).map(text))));
    Ok(log.join("\n"))
}

/// `fermyon:spin/key-value@2.0.0` on the store `label`, keys under `p`.
fn key_value(label: &str, p: &str) -> Result<String, String> {
    use spin_sdk::key_value::Store;
    let store = Store::open(label).map_err(|e| format!("{e:?}"))?;
    let key = |s: &str| format!("{p}{s}");
    let mut log = Vec::new();
    log.push(format!("get seeded = {:?}", store.get(&key("seeded")).map(text)));
    log.push(format!("set a = {:?}", store.set(&key("a"), b"1")));
    log.push(format!("set b = {:?}", store.set(&key("b"), b"from-p2")));
    log.push(format!("get a = {:?}", store.get(&key("a")).map(text)));
    log.push(format!("exists a = {:?}", store.exists(&key("a"))));
    log.push(format!("get missing = {:?}", store.get(&key("missing")).map(text)));
    let mine = store.get_keys().map(|keys| {
        let mut keys: Vec<String> = keys.into_iter().filter_map(|k| k.strip_prefix(p).map(str::to_owned)).collect();
        keys.sort();
        keys.join(",")
    });
    log.push(format!("keys = {mine:?}"));
    log.push(format!("delete a = {:?}", store.delete(&key("a"))));
    log.push(format!("exists a = {:?}", store.exists(&key("a"))));
    Ok(log.join("\n"))
}

/// `wasi:keyvalue` store, atomics and batch on `label`, keys under `p`.
fn wasi_keyvalue(label: &str, p: &str) -> Result<String, String> {
    use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};
    let bucket = store::open(label).map_err(|e| format!("{e:?}"))?;
    let key = |s: &str| format!("{p}{s}");
    let mut log = Vec::new();
    let _ = bucket.set(&key("w"), b"a");
    log.push(format!("get w = {:?}", bucket.get(&key("w")).map(text)));
    log.push(format!("exists w = {:?}", bucket.exists(&key("w"))));
    log.push(format!("increment = {:?}", atomics::increment(&bucket, &key("ctr"), 5)));
    log.push(format!("increment = {:?}", atomics::increment(&bucket, &key("ctr"), 5)));
    log.push(format!("get ctr = {:?}", bucket.get(&key("ctr")).map(text)));
    let pairs = vec![(key("x"), b"1".to_vec()), (key("y"), b"2".to_vec())];
    log.push(format!("set_many = {:?}", batch::set_many(&bucket, &pairs)));
    let got = batch::get_many(&bucket, &[key("x"), key("z")]).map(|kvs| {
        kvs.into_iter()
            .map(|(k, v)| format!("{}={}", k.strip_prefix(p).unwrap_or(&k), text(v)))
            .collect::<Vec<_>>()
            .join(",")
    });
    log.push(format!("get_many = {got:?}"));
    log.push(format!("delete_many = {:?}", batch::delete_many(&bucket, &[key("x")])));
    let listed = bucket.list_keys(None).map(|r| {
        let mut keys: Vec<String> = r.keys.into_iter().filter_map(|k| k.strip_prefix(p).map(str::to_owned)).collect();
        keys.sort();
        keys.join(",")
    });
    log.push(format!("list_keys = {listed:?}"));
    // An uncontended swap succeeds.
    let cas = atomics::Cas::new(&bucket, &key("w")).map_err(|e| format!("{e:?}"))?;
    log.push(format!("current = {:?}", cas.current().map(text)));
    log.push(format!("swap = {:?}", atomics::swap(cas, b"b").is_ok()));
    // A swap after someone else wrote fails with a fresh ticket.
    let cas = atomics::Cas::new(&bucket, &key("w")).map_err(|e| format!("{e:?}"))?;
    let _ = cas.current();
    let _ = bucket.set(&key("w"), b"c");
    let outcome = match atomics::swap(cas, b"d") {
        Ok(()) => "swapped".to_owned(),
        Err(atomics::CasError::CasFailed(_)) => "cas-failed".to_owned(),
        Err(e) => format!("{e:?}"),
    };
    log.push(format!("contended swap = {outcome}"));
    log.push(format!("final w = {:?}", bucket.get(&key("w")).map(text)));
    Ok(log.join("\n"))
}
