//! WASIp3 test guest: every behaviour the runtime tests need, one path each.

use spin_sdk::http::{BoxBody, FullBody, IntoResponse, Request, Response, box_body};
use spin_sdk::http_service;

#[macro_use]
#[path = "../../wire.rs"]
mod wire;

use wire::unhex;

/// Requests this instance has handled, this one included: 1 in a fresh
/// instance, more in a reused one.
static INVOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let invocation = INVOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let path = req.uri().path().to_owned();
    let tail = path.rsplit('/').next().unwrap_or_default();
    match tail {
        // How many requests this instance has handled, this one included.
        "count" => Ok(text(format!("invocation {invocation} at {path}\n"))),
        // Streams the request body straight back, chunk by chunk.
        "echo" => Ok(Response::new(box_body(req.into_body()))),
        // Lists the `spin-*` headers the host set, one `name: value` a line.
        "headers" => Ok(text(spin_headers(&req))),
        // Answers after `?ms=N` milliseconds, without using CPU.
        "sleep" => {
            let ms = query(&req, "ms").and_then(|ms| ms.parse().ok()).unwrap_or(1000);
            spin_sdk::time::sleep(std::time::Duration::from_millis(ms)).await;
            Ok(text(format!("slept {ms} ms\n")))
        }
        // Never answers and never yields: only the host's epoch deadline
        // can stop it.
        "spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        // Grows memory until the host refuses.
        "hog" => {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            loop {
                blocks.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        // Reads the whole body, then reports its length.
        "consume" => {
            use http_body_util::BodyExt;
            let body = req.into_body().collect().await?.to_bytes();
            Ok(text(format!("{} bytes\n", body.len())))
        }
        "kv-set" | "kv-get" | "kv-delete" | "kv-exists" | "kv-keys" => key_value(&req, tail).await,
        "var" => {
            let name = query(&req, "name").unwrap_or_default();
            Ok(match spin_sdk::variables::get(&name).await {
                Ok(value) => text(value),
                Err(e) => failed(e),
            })
        }
        "sql" => sql(req).await,
        "pg" => postgres(req).await,
        // Reads the guest file `?path=` (from the component's `files`).
        "file" => {
            let path = query(&req, "path").unwrap_or_default();
            Ok(match std::fs::read_to_string(&path) {
                Ok(content) => text(content),
                Err(e) => failure(format!("{:?}", e.kind())),
            })
        }
        // Writes the guest file `?path=`; mounts are read-only.
        "write-file" => {
            let path = query(&req, "path").unwrap_or_default();
            Ok(match std::fs::write(&path, b"x") {
                Ok(()) => text("written".into()),
                Err(e) => failure(format!("{:?}", e.kind())),
            })
        }
        // Writes `?out=` to stdout and `?err=` to stderr, a line each.
        "print" => {
            use std::io::Write as _;
            let out = query(&req, "out").unwrap_or_default();
            let err = query(&req, "err").unwrap_or_default();
            println!("{out}");
            eprintln!("{err}");
            std::io::stdout().flush()?;
            Ok(text("printed".into()))
        }
        "env" => {
            let name = query(&req, "name").unwrap_or_default();
            Ok(text(std::env::var(&name).unwrap_or_else(|_| "<unset>".into())))
        }
        // Fetches `?url=` and answers with its status and body.
        "fetch" => {
            let url = query(&req, "url").unwrap_or_default();
            Ok(match spin_sdk::http::get(&url).await {
                Ok(resp) => {
                    use http_body_util::BodyExt;
                    let status = resp.status();
                    let body = resp.into_body().collect().await?.to_bytes();
                    text(format!("{} {}", status.as_u16(), String::from_utf8_lossy(&body)))
                }
                Err(e) => failed(e),
            })
        }
        // Sets `relayed` in the default store, then fetches the URL in the
        // `x-relay` header: one request that uses key-value and outbound
        // HTTP (the tracing tests follow it).
        "relay" => {
            let store = spin_sdk::key_value::Store::open("default").await?;
            store.set("relayed", "yes").await?;
            let url = req
                .headers()
                .get("x-relay")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let out = http::Request::get(url).body(http_body_util::Empty::<bytes::Bytes>::new())?;
            Ok(match spin_sdk::http::send(out).await {
                Ok(resp) => {
                    use http_body_util::BodyExt;
                    let status = resp.status();
                    let body = resp.into_body().collect().await?.to_bytes();
                    text(format!("{} {}", status.as_u16(), String::from_utf8_lossy(&body)))
                }
                Err(e) => failed(e),
            })
        }
        "trap" => core::arch::wasm32::unreachable(),
        "panic" => panic!("the p3 guest was asked to panic"),
        "error" => anyhow::bail!("the p3 guest returned an error"),
        _ => Ok(text(format!("hello from p3 at {path}\n"))),
    }
}

/// `kv-*?store=S&key=K&value=V`: one key-value operation; errors are a 500
/// whose body is the error variant, so tests can check Spin's error cases.
async fn key_value(req: &Request, action: &str) -> anyhow::Result<Response<BoxBody>> {
    use spin_sdk::key_value::Store;
    let label = query(req, "store").unwrap_or_else(|| "default".into());
    let key = query(req, "key").unwrap_or_default();
    let store = match Store::open(&label).await {
        Ok(store) => store,
        Err(e) => return Ok(failed(e)),
    };
    let result = match action {
        "kv-set" => store
            .set(&key, query(req, "value").unwrap_or_default())
            .await
            .map(|()| "ok".to_owned()),
        "kv-get" => store.get(&key).await.map(|v| match v {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => "<none>".to_owned(),
        }),
        "kv-delete" => store.delete(&key).await.map(|()| "ok".to_owned()),
        "kv-exists" => store.exists(&key).await.map(|b| b.to_string()),
        _ => store.get_keys().await.collect().await.map(|keys| keys.join(",")),
    };
    Ok(match result {
        Ok(body) => text(body),
        Err(e) => failed(e),
    })
}

/// `POST sql?db=LABEL`: the body's first line is a statement, each further
/// line a parameter (`i:42`, `r:2.5`, `t:text`, `b:hex`, `n`). The answer is
/// the columns joined by `|`, then one line per row in the same encoding.
async fn sql(req: Request) -> anyhow::Result<Response<BoxBody>> {
    use spin_sdk::sqlite::{Connection, Value};
    let db = query(&req, "db").unwrap_or_else(|| "default".into());
    let (statement, params) = statement(req, |param| match param {
        Some(("i", v)) => Value::Integer(v.parse().unwrap_or_default()),
        Some(("r", v)) => Value::Real(v.parse().unwrap_or_default()),
        Some(("t", v)) => Value::Text(v.to_owned()),
        Some(("b", v)) => Value::Blob(unhex(v)),
        _ => Value::Null,
    })
    .await?;
    let conn = match Connection::open(&db).await {
        Ok(conn) => conn,
        Err(e) => return Ok(failed(e)),
    };
    let result = match conn.execute(statement, params).await {
        Ok(result) => result,
        Err(e) => return Ok(failed(e)),
    };
    let mut out = result.columns().join("|");
    let rows = match result.collect().await {
        Ok(rows) => rows,
        Err(e) => return Ok(failed(e)),
    };
    push_rows!(out, rows);
    let changes = conn.changes().await;
    out.push_str(&format!("\nchanges={changes} rowid={}", conn.last_insert_rowid().await));
    Ok(text(out))
}

/// `POST pg?address=URL&op=query|execute`: the body's first line is a
/// statement, each further line a typed parameter (`bool:true`, `i16:`,
/// `i32:`, `i64:`, `f64:`, `str:`, `bin:hex`, `json:`, `dec:`, `uuid:`,
/// `date:y-m-d`, `ts:unix-seconds`, `dt:y-m-d h:m:s`, `ai64:1,,3`,
/// `astr:a,,b`, `null`). The answer is `name:type` per column, then one
/// line per row of `Debug`-printed values; `execute` answers `rows=N`.
async fn postgres(req: Request) -> anyhow::Result<Response<BoxBody>> {
    use spin_sdk::pg::{Connection, ParameterValue as P};
    let address = query(&req, "address")
        .unwrap_or_default()
        .replace("%3F", "?")
        .replace("%3D", "=");
    let op = query(&req, "op").unwrap_or_else(|| "query".into());
    let list = |v: &str| -> Vec<Option<String>> {
        v.split(',').map(|x| (!x.is_empty()).then(|| x.to_owned())).collect()
    };
    let num = |v: &str| v.parse::<i64>().unwrap_or_default();
    let (statement, params) = statement(req, |param| match param {
        Some(("bool", v)) => P::Boolean(v == "true"),
        Some(("i16", v)) => P::Int16(num(v) as i16),
        Some(("i32", v)) => P::Int32(num(v) as i32),
        Some(("i64", v)) => P::Int64(num(v)),
        Some(("f64", v)) => P::Floating64(v.parse().unwrap_or_default()),
        Some(("str", v)) => P::Str(v.to_owned()),
        Some(("bin", v)) => P::Binary(unhex(v)),
        Some(("json", v)) => P::Jsonb(v.as_bytes().to_vec()),
        Some(("dec", v)) => P::Decimal(v.to_owned()),
        Some(("uuid", v)) => P::Uuid(v.to_owned()),
        Some(("ts", v)) => P::Timestamp(num(v)),
        Some(("date", v)) => {
            let p: Vec<i64> = v.split('-').map(num).collect();
            P::Date((p[0] as i32, p[1] as u8, p[2] as u8))
        }
        Some(("dt", v)) => {
            let p: Vec<i64> = v.split(['-', ' ', ':']).map(num).collect();
            P::Datetime((p[0] as i32, p[1] as u8, p[2] as u8, p[3] as u8, p[4] as u8, p[5] as u8, 0))
        }
        Some(("ai64", v)) => P::ArrayInt64(list(v).iter().map(|x| x.as_deref().map(num)).collect()),
        Some(("astr", v)) => P::ArrayStr(list(v)),
        _ => P::DbNull,
    })
    .await?;
    let conn = match Connection::open(address).await {
        Ok(conn) => conn,
        Err(e) => return Ok(failed(e)),
    };
    if op == "execute" {
        return Ok(match conn.execute(statement, params).await {
            Ok(n) => text(format!("rows={n}")),
            Err(e) => failed(e),
        });
    }
    let result = match conn.query(statement, params).await {
        Ok(result) => result,
        Err(e) => return Ok(failed(e)),
    };
    let columns: Vec<String> = result
        .columns()
        .iter()
        .map(|c| format!("{}:{:?}", c.name, c.data_type))
        .collect();
    let width = columns.len();
    let mut out = columns.join("|");
    let rows = match result.collect().await {
        Ok(rows) => rows,
        Err(e) => return Ok(failed(e)),
    };
    for row in rows {
        let cells: Vec<String> = (0..width).map(|i| format!("{:?}", row[i])).collect();
        out.push('\n');
        out.push_str(&cells.join("|"));
    }
    Ok(text(out))
}

fn failure(body: String) -> Response<BoxBody> {
    let mut resp = text(body);
    *resp.status_mut() = spin_sdk::http::StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

/// A host error as a test reads it: a 500 with its `Debug` text.
fn failed(e: impl std::fmt::Debug) -> Response<BoxBody> {
    failure(format!("{e:?}"))
}

/// A SQL request's body: the statement on its first line, each further line
/// a parameter `KIND:VALUE` (split in two, when it has a `:`), made a value
/// by `value`.
async fn statement<V>(req: Request, value: impl Fn(Option<(&str, &str)>) -> V) -> anyhow::Result<(String, Vec<V>)> {
    use http_body_util::BodyExt;
    let body = req.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body);
    let mut lines = body.lines();
    let statement = lines.next().unwrap_or_default().to_owned();
    Ok((statement, lines.map(|line| value(line.split_once(':'))).collect()))
}



fn query(req: &Request, key: &str) -> Option<String> {
    wire::param(req.uri().query()?, key)
}

fn text(body: String) -> Response<BoxBody> {
    Response::new(box_body(FullBody::new(bytes::Bytes::from(body))))
}

fn spin_headers(req: &Request) -> String {
    let mut lines: Vec<String> = req
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("spin-"))
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("<binary>")))
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}
