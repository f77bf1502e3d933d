//! WASIp2 test guest: every behaviour the runtime tests need, one path each.

use futures::{SinkExt, StreamExt};
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

#[macro_use]
#[path = "../../wire.rs"]
mod wire;

use wire::unhex;

/// Requests this instance has handled, this one included: 1 in a fresh
/// instance, more in a reused one.
static INVOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let invocation = INVOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let full = req.path_with_query().unwrap_or_default();
    let (path, query) = full.split_once('?').unwrap_or((&full, ""));
    let (path, query) = (path.to_owned(), query.to_owned());
    let tail = path.rsplit('/').next().unwrap_or_default();
    match tail {
        // How many requests this instance has handled, this one included.
        "count" => respond(out, 200, format!("invocation {invocation} at {path}\n")).await,
        "echo" => echo(req, out).await,
        "headers" => {
            let mut lines: Vec<String> = req
                .headers()
                .entries()
                .into_iter()
                .filter(|(name, _)| name.starts_with("spin-"))
                .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(&value)))
                .collect();
            lines.sort();
            respond(out, 200, lines.join("\n") + "\n").await
        }
        "kv-set" | "kv-get" | "kv-delete" | "kv-exists" | "kv-keys" => reply(out, key_value(&query, tail)).await,
        "var" => reply(out, spin_sdk::variables::get(&param(&query, "name")).map_err(debug)).await,
        "config" => {
            let name = param(&query, "name");
            match spin_sdk::wit::wasi::config::store::get(&name) {
                Ok(Some(value)) => respond(out, 200, value).await,
                Ok(None) => respond(out, 404, "<none>".into()).await,
                Err(e) => respond(out, 500, debug(e)).await,
            }
        }
        "sql" | "sql3" | "pg4" => {
            let body = match req.into_body().await {
                Ok(body) => String::from_utf8_lossy(&body).into_owned(),
                Err(e) => return respond(out, 400, debug(e)).await,
            };
            let run = match tail {
                "sql" => sql2,
                "sql3" => sql3,
                _ => pg4,
            };
            reply(out, run(&query, &body)).await
        }
        "fetch" => {
            let request = spin_sdk::http::Request::get(param(&query, "url")).build();
            let result = spin_sdk::http::send::<_, spin_sdk::http::Response>(request).await;
            let result = result.map(|resp| format!("{} {}", resp.status(), String::from_utf8_lossy(resp.body())));
            reply(out, result.map_err(debug)).await
        }
        "wkv" => reply(out, wasi_keyvalue(&param(&query, "store"))).await,
        "trap" => core::arch::wasm32::unreachable(),
        "panic" => panic!("the p2 guest was asked to panic"),
        _ => respond(out, 200, format!("hello from p2 at {path}\n")).await,
    }
}

fn param(query: &str, key: &str) -> String {
    wire::param(query, key).unwrap_or_default()
}

/// The `Debug` text of a host error: what a test reads from a 500.
fn debug(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

/// One key-value operation (see the p3 guest); errors are a 500 whose body
/// is the error variant.
fn key_value(query: &str, action: &str) -> Result<String, String> {
    let store = spin_sdk::key_value::Store::open(param(query, "store").as_str()).map_err(debug)?;
    let key = param(query, "key");
    match action {
        "kv-set" => store.set(&key, param(query, "value").as_bytes()).map(|()| "ok".to_owned()),
        "kv-get" => store.get(&key).map(|v| match v {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => "<none>".to_owned(),
        }),
        "kv-delete" => store.delete(&key).map(|()| "ok".to_owned()),
        "kv-exists" => store.exists(&key).map(|b| b.to_string()),
        _ => store.get_keys().map(|mut keys| {
            keys.sort();
            keys.join(",")
        }),
    }
    .map_err(debug)
}

/// A SQL request's body (see the p3 guest's `sql`): the statement on its
/// first line, and each further line a parameter `KIND:VALUE`, made a
/// value by `value` from `KIND`'s first letter (`n` without one).
fn statement<V>(body: &str, value: impl Fn(char, String) -> V) -> (&str, Vec<V>) {
    let mut lines = body.lines();
    let statement = lines.next().unwrap_or_default();
    let params = lines
        .map(|line| match line.split_once(':') {
            Some((kind, v)) => value(kind.chars().next().unwrap_or('n'), v.to_owned()),
            None => value('n', String::new()),
        })
        .collect();
    (statement, params)
}



/// The `fermyon:spin/sqlite@2.0.0` interface.
fn sql2(query: &str, body: &str) -> Result<String, String> {
    use spin_sdk::sqlite::{Connection, Value};
    let (statement, params) = statement(body, |kind, v| match kind {
        'i' => Value::Integer(v.parse().unwrap_or_default()),
        'r' => Value::Real(v.parse().unwrap_or_default()),
        't' => Value::Text(v),
        'b' => Value::Blob(unhex(&v)),
        _ => Value::Null,
    });
    let conn = Connection::open(param(query, "db").as_str()).map_err(debug)?;
    let result = conn.execute(statement, &params).map_err(debug)?;
    let mut out = result.columns.join("|");
    push_rows!(out, &result.rows);
    Ok(out)
}

/// `spin:postgres/postgres@4.0.0` (spin-sdk 5's `pg4`): the body's first
/// line is a query, each further line a text (`t:`) or 64-bit (`i:`)
/// parameter; the answer is the rows' values, `Debug`-printed.
fn pg4(query: &str, body: &str) -> Result<String, String> {
    use spin_sdk::pg4::{Connection, ParameterValue};
    let (statement, params) = statement(body, |kind, v| match kind {
        'i' => ParameterValue::Int64(v.parse().unwrap_or_default()),
        't' => ParameterValue::Str(v),
        _ => ParameterValue::DbNull,
    });
    let address = param(query, "address").replace("%3F", "?").replace("%3D", "=");
    let conn = Connection::open(&address).map_err(debug)?;
    let rows = conn.query(statement, &params).map_err(debug)?;
    Ok(rows.rows.iter().map(|row| format!("{row:?}")).collect::<Vec<_>>().join("\n"))
}

/// The `spin:sqlite/sqlite@3.0.0` interface (spin-sdk 5's `sqlite3`).
fn sql3(query: &str, body: &str) -> Result<String, String> {
    use spin_sdk::sqlite3::{Connection, Value};
    let (statement, params) = statement(body, |kind, v| match kind {
        'i' => Value::Integer(v.parse().unwrap_or_default()),
        't' => Value::Text(v),
        _ => Value::Null,
    });
    let conn = Connection::open(param(query, "db").as_str()).map_err(debug)?;
    let result = conn.execute(statement, &params).map_err(debug)?;
    Ok(format!(
        "rows={} changes={} rowid={}",
        result.rows.len(),
        conn.changes(),
        conn.last_insert_rowid()
    ))
}

/// A scripted walk through `wasi:keyvalue` (store, atomics, batch); one
/// line per step, so a test can compare the whole transcript.
fn wasi_keyvalue(label: &str) -> Result<String, String> {
    use spin_sdk::wit::wasi::keyvalue::{atomics, batch, store};
    let bucket = store::open(label).map_err(debug)?;
    let mut log = Vec::new();
    let show = |v: Option<Vec<u8>>| v.map_or("none".to_owned(), |b| String::from_utf8_lossy(&b).into_owned());
    let _ = bucket.set("w1", b"a");
    log.push(format!("get w1 = {:?}", bucket.get("w1").map(show)));
    log.push(format!("exists w1 = {:?}", bucket.exists("w1")));
    log.push(format!("increment = {:?}", atomics::increment(&bucket, "ctr", 5)));
    log.push(format!("increment = {:?}", atomics::increment(&bucket, "ctr", 5)));
    let pairs = vec![("x".to_owned(), b"1".to_vec()), ("y".to_owned(), b"2".to_vec())];
    log.push(format!("set_many = {:?}", batch::set_many(&bucket, &pairs)));
    let keys = vec!["x".to_owned(), "z".to_owned()];
    let got = batch::get_many(&bucket, &keys).map(|kvs| {
        kvs.into_iter().map(|(k, v)| format!("{k}={}", show(v))).collect::<Vec<_>>().join(",")
    });
    log.push(format!("get_many = {got:?}"));
    log.push(format!("delete_many = {:?}", batch::delete_many(&bucket, &["x".to_owned()])));
    let listed = bucket.list_keys(None).map(|r| {
        let mut keys = r.keys;
        keys.sort();
        keys.join(",")
    });
    log.push(format!("list_keys = {listed:?}"));
    // An uncontended swap succeeds.
    let cas = atomics::Cas::new(&bucket, "w1").expect("cas");
    log.push(format!("current = {:?}", cas.current().map(show)));
    log.push(format!("swap = {:?}", atomics::swap(cas, b"b").is_ok()));
    // A swap after someone else wrote fails with a fresh ticket.
    let cas = atomics::Cas::new(&bucket, "w1").expect("cas");
    let _ = cas.current();
    let _ = bucket.set("w1", b"c");
    let outcome = match atomics::swap(cas, b"d") {
        Ok(()) => "swapped".to_owned(),
        Err(atomics::CasError::CasFailed(_)) => "cas-failed".to_owned(),
        Err(e) => debug(e),
    };
    log.push(format!("contended swap = {outcome}"));
    log.push(format!("final w1 = {:?}", bucket.get("w1").map(show)));
    Ok(log.join("\n"))
}

/// Streams the request body back without buffering it.
async fn echo(req: IncomingRequest, out: ResponseOutparam) {
    let response = OutgoingResponse::new(Fields::new());
    let mut body = response.take_body();
    out.set(response);
    let mut stream = req.into_body_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                if body.send(chunk).await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// `Ok` as a 200 with its text, `Err` as a 500 with the error's.
async fn reply(out: ResponseOutparam, result: Result<String, String>) {
    match result {
        Ok(text) => respond(out, 200, text).await,
        Err(e) => respond(out, 500, e).await,
    }
}

async fn respond(out: ResponseOutparam, status: u16, text: String) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let _ = out.set_with_body(response, text.into_bytes()).await;
}
