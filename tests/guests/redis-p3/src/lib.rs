//! spin-sdk 7 test guest for Spin's Redis API (`spin:redis/redis@3.0.0`,
//! whose functions are `async`) and for key-value stores on Redis. The
//! same paths and transcripts as the spin-sdk 5 guest:
//!
//! - `redis?address=A&prefix=P`: every operation, keys under `P`;
//! - `open?address=A`: `open` alone, and the error the guest gets;
//! - `kv?store=S&prefix=P`: `spin:key-value@3.0.0`.

use spin_sdk::http::{FullBody, IntoResponse, Request, Response, box_body};
use spin_sdk::http_service;
use spin_sdk::redis::{Connection, Error, RedisParameter, RedisResult};

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let param = |key: &str| -> String {
        query
            .split('&')
            .find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_owned()))
            .unwrap_or_default()
    };
    let tail = req.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
    let result = match tail.as_str() {
        "redis" => walk(&param("address"), &param("prefix")).await,
        "open" => Ok(match Connection::open(param("address")).await {
            Ok(_) => "open = ok".to_owned(),
            Err(e) => format!("open = {}", error(e)),
        }),
        "kv" => key_value(&param("store"), &param("prefix")).await,
        other => Err(format!("no walk {other:?}")),
    };
    let (status, body) = match result {
        Ok(transcript) => (200, transcript),
        Err(e) => (500, e),
    };
    let mut resp = Response::new(box_body(FullBody::new(bytes::Bytes::from(body))));
    *resp.status_mut() = spin_sdk::http::StatusCode::from_u16(status)?;
    Ok(resp)
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
async fn walk(address: &str, p: &str) -> Result<String, String> {
    let conn = Connection::open(address).await.map_err(error)?;
    let key = |s: &str| format!("{p}{s}");
    let bin = |s: &str| RedisParameter::Binary(s.as_bytes().to_vec());
    let mut log = Vec::new();
    log.push(format!("set = {}", show(conn.set(key("s"), b"v\x01w").await)));
    log.push(format!("get = {}", show(conn.get(key("s")).await.map(text))));
    log.push(format!("get missing = {}", show(conn.get(key("missing")).await.map(text))));
    log.push(format!("incr = {}", show(conn.incr(key("n")).await)));
    log.push(format!("incr = {}", show(conn.incr(key("n")).await)));
    log.push(format!("incr text = {}", conn.incr(key("s")).await.map_or_else(kind, |v| v.to_string())));
    let members = ["a", "b", "a"];
    log.push(format!("sadd = {}", show(conn.sadd(key("set"), members).await)));
    log.push(format!("sadd text = {}", conn.sadd(key("s"), members).await.map_or_else(kind, |v| v.to_string())));
    let sorted = |r: Result<Vec<String>, Error>| {
        show(r.map(|mut m| {
            m.sort();
            m
        }))
    };
    log.push(format!("smembers = {}", sorted(conn.smembers(key("set")).await)));
    log.push(format!("srem = {}", show(conn.srem(key("set"), ["a", "zzz"]).await)));
    log.push(format!("smembers = {}", sorted(conn.smembers(key("set")).await)));
    log.push(format!("publish = {}", show(conn.publish(key("channel"), b"hello subscribers").await)));
    let e = key("e");
    log.push(format!("execute SET = {}", results(conn.execute("SET", [bin(&e), RedisParameter::Int64(2)]).await)));
    log.push(format!("execute INCRBY = {}", results(conn.execute("INCRBY", [bin(&e), RedisParameter::Int64(40)]).await)));
    log.push(format!("execute MGET = {}", results(conn.execute("MGET", [bin(&e), bin(&key("missing"))]).await)));
    log.push(format!("execute RPUSH = {}", results(conn.execute("RPUSH", [bin(&key("list")), bin("x"), RedisParameter::Int64(7)]).await)));
    log.push(format!(
        "execute LRANGE = {}",
        results(conn.execute("LRANGE", [bin(&key("list")), RedisParameter::Int64(0), RedisParameter::Int64(-1)]).await)
    ));
    log.push(format!("execute PING = {}", results(conn.execute("PING", []).await)));
    log.push(format!("execute GET none = {}", results(conn.execute("GET", [bin(&key("missing"))]).await)));
    log.push(format!(
        "execute unknown = {}",
        conn.execute("NO-SUCH-COMMAND", []).await.map_or_else(kind, |_| "ok".into())
    ));
    // A SELECT moves only this guest connection to database 1; the rest
    // of the app's connections stay where they were.
    log.push(format!("execute SELECT = {}", results(conn.execute("SELECT", [RedisParameter::Int64(1)]).await)));
    log.push(format!("get in db 1 = {}", show(conn.get(key("s")).await.map(text))));
    log.push(format!("execute SELECT = {}", results(conn.execute("SELECT", [RedisParameter::Int64(0)]).await)));
    let all = ["s", "n", "set", "e", "list", "missing"].map(key);
    log.push(format!("del = {}", show(conn.del(all).await)));
    log.push(format!("get after del = {}", show(conn.get(key("s")).await.map(text))));
    Ok(log.join("\n"))
}

/// `spin:key-value@3.0.0` on the store `label`, keys under `p`.
async fn key_value(label: &str, p: &str) -> Result<String, String> {
    use spin_sdk::key_value::Store;
    let store = Store::open(label).await.map_err(|e| format!("{e:?}"))?;
    let key = |s: &str| format!("{p}{s}");
    let mut log = Vec::new();
    log.push(format!("get seeded = {:?}", store.get(key("seeded")).await.map(text)));
    log.push(format!("set a = {:?}", store.set(key("a"), b"1").await));
    log.push(format!("set b = {:?}", store.set(key("b"), b"from-p3").await));
    log.push(format!("get a = {:?}", store.get(key("a")).await.map(text)));
    log.push(format!("exists a = {:?}", store.exists(key("a")).await));
    log.push(format!("get missing = {:?}", store.get(key("missing")).await.map(text)));
    let mine = store.get_keys().await.collect().await.map(|keys| {
        let mut keys: Vec<String> = keys.into_iter().filter_map(|k| k.strip_prefix(p).map(str::to_owned)).collect();
        keys.sort();
        keys.join(",")
    });
    log.push(format!("keys = {mine:?}"));
    log.push(format!("delete a = {:?}", store.delete(key("a")).await));
    log.push(format!("exists a = {:?}", store.exists(key("a")).await));
    Ok(log.join("\n"))
}
