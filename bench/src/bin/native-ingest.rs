//! The native ingest peer: what a user might run instead of the ingest
//! function. A hyper HTTP/1.1 server on tokio (one task per connection, as
//! `trib`'s front door) speaking the same Segment batch API with the same
//! crates the function uses: `event-model` parses and validates each
//! message (Segment's rules, clock-skew correction, generated ids), and
//! `event-store`'s statements store the events (deduplicated by message
//! id), their rollups and dead letters, one transaction per request, in
//! SQLite with WAL and `synchronous=FULL`, like `trib`.
//!
//! As a serious native server would, it commits with a group commit: one
//! writer thread owns the connection, takes every request waiting for it,
//! runs each in a savepoint of one transaction (so one request's failure
//! spoils no other) and answers them all after the one synced `COMMIT`.
//! No transform chain runs: it matches `trib` with pass-through slots.
//!
//! Usage: `native-ingest ADDR DATABASE [WRITE_KEYS]`, with `WRITE_KEYS` as
//! the `write_keys` variable (`key=source,...`; default `dev-write-key=dev`).
//! `DATABASE` must already have the event store's schema (the benchmark
//! lets the ingest function migrate it, then copies it).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use event_model::Received;
use event_model::segment::{self, Invalid, MAX_BATCH_EVENTS, MAX_REQUEST_BYTES, TYPES};
use event_store::Param;
use event_store::rollup::{self, Rollups};
use event_store::statements::{
    EVENT_COLUMNS, INSERT_DEAD_LETTER, ROWS_PER_INSERT, insert_events_returning,
};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper_util::rt::TokioIo;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Requests committed together at most (their rows in one transaction).
const MAX_GROUP: usize = 64;

/// One request's writes, and where its outcome goes.
struct Job {
    source: String,
    received_ms: i64,
    events: Vec<Received>,
    dead: Vec<DeadLetter>,
    /// Events stored (new), or why the request failed.
    reply: oneshot::Sender<Result<u64, String>>,
}

/// A rejected message to keep, with why (as the function keeps it).
struct DeadLetter {
    code: String,
    reason: String,
    raw: String,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: native-ingest ADDR DATABASE [WRITE_KEYS]";
    let addr: SocketAddr = args.next().context(usage)?.parse().context(usage)?;
    let database = PathBuf::from(args.next().context(usage)?);
    let keys = args.next().unwrap_or_else(|| "dev-write-key=dev".into());
    let keys: Arc<HashMap<String, String>> = Arc::new(
        keys.split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, s)| (k.trim().to_owned(), s.trim().to_owned()))
            .collect(),
    );
    let conn = rusqlite::Connection::open(&database)
        .with_context(|| format!("cannot open {}", database.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(64);
    let (jobs, queue) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || writer(conn, queue))
        .context("cannot start the writer thread")?;

    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr, keys, jobs))
}

async fn serve(
    addr: SocketAddr,
    keys: Arc<HashMap<String, String>>,
    jobs: mpsc::Sender<Job>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("Serving http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let keys = keys.clone();
        let jobs = jobs.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let keys = keys.clone();
                let jobs = jobs.clone();
                async move {
                    let response = match handle(req, &keys, &jobs).await {
                        Ok(r) | Err(r) => r,
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Reply {
    reply(status, json!({"code": code, "message": message.into()}))
}

/// The ingest function's request handling, natively.
async fn handle(
    req: http::Request<hyper::body::Incoming>,
    keys: &HashMap<String, String>,
    jobs: &mpsc::Sender<Job>,
) -> Result<Reply, Reply> {
    let path = req.uri().path().to_owned();
    if path == "/.well-known/spin/health" {
        return Ok(reply(StatusCode::OK, json!("OK")));
    }
    let kind = path
        .strip_prefix("/v1/")
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    if req.method() != Method::POST {
        return Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use POST",
        ));
    }
    if kind != "batch" && !TYPES.contains(&kind.as_str()) {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no endpoint /v1/{kind}"),
        ));
    }
    let basic_key = basic_auth_user(&req);
    let gzip = req
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = read_body(req, gzip).await?;
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("body is not valid JSON: {e}"),
        )
    })?;
    let key = basic_key.or_else(|| {
        payload
            .get("writeKey")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(key) = key else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no write key: send it as the Basic-auth user name or as writeKey",
        ));
    };
    let source = keys
        .get(&key)
        .cloned()
        .ok_or_else(|| error(StatusCode::FORBIDDEN, "forbidden", "unknown write key"))?;
    let received_ms = now_ms();

    let (events, dead, rejected) = if kind == "batch" {
        let messages = payload
            .get("batch")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "missing_field",
                    "batch must be an array of messages",
                )
            })?;
        if messages.len() > MAX_BATCH_EVENTS {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "too_large",
                format!(
                    "batch has {} messages; the limit is {MAX_BATCH_EVENTS}",
                    messages.len()
                ),
            ));
        }
        let sent_at = payload.get("sentAt").and_then(Value::as_str);
        let mut events = Vec::with_capacity(messages.len());
        let mut dead = Vec::new();
        let mut rejected = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            match segment::check(message, None, sent_at, received_ms) {
                Ok(received) => events.push(received),
                Err(Invalid {
                    code,
                    message: reason,
                }) => {
                    rejected.push(json!({
                        "index": index,
                        "messageId": message.get("messageId"),
                        "code": code,
                        "message": reason,
                    }));
                    dead.push(DeadLetter {
                        code: code.to_owned(),
                        reason,
                        raw: segment::json_text(&segment::envelope(message)),
                    });
                }
            }
        }
        (events, dead, rejected)
    } else {
        let event = segment::check(&payload, Some(&kind), None, received_ms)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.code, e.message))?;
        (vec![event], Vec::new(), Vec::new())
    };
    // As the chain does: the first event with a message id is kept, later
    // ones in the batch are duplicates.
    let before = events.len();
    let mut seen = HashSet::with_capacity(before);
    let events: Vec<Received> = events
        .into_iter()
        .filter(|e| seen.insert(e.event.message_id.clone()))
        .collect();
    let in_batch_duplicates = (before - events.len()) as u64;
    let count = events.len() as u64;

    let (tx, rx) = oneshot::channel();
    let job = Job {
        source,
        received_ms,
        events,
        dead,
        reply: tx,
    };
    let internal = |why: String| {
        eprintln!("native-ingest: {why}");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the event store failed; retry",
        )
    };
    jobs.send(job)
        .map_err(|_| internal("the writer thread is gone".into()))?;
    let stored = rx
        .await
        .map_err(|_| internal("the writer thread dropped the request".into()))?
        .map_err(internal)?;
    Ok(reply(
        StatusCode::OK,
        json!({"success": true, "stored": stored, "duplicates": count - stored + in_batch_duplicates, "filtered": 0, "rejected": rejected}),
    ))
}

async fn read_body(
    req: http::Request<hyper::body::Incoming>,
    gzip: bool,
) -> Result<Vec<u8>, Reply> {
    let too_large = || {
        error(
            StatusCode::BAD_REQUEST,
            "too_large",
            format!("request body is over the limit of {MAX_REQUEST_BYTES} bytes"),
        )
    };
    let body = Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<LengthLimitError>() {
                too_large()
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "cannot read the request body",
                )
            }
        })?
        .to_bytes();
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("body is not valid gzip: {e}"),
            )
        })?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    Ok(out)
}

fn basic_auth_user<B>(req: &http::Request<B>) -> Option<String> {
    use base64::Engine as _;
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let user = decoded.split(':').next()?.to_owned();
    (!user.is_empty()).then_some(user)
}

/// The writer thread: every request waiting when it is free goes into one
/// transaction, each in a savepoint, then one `COMMIT` (one WAL sync)
/// answers them all.
fn writer(conn: rusqlite::Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit_group(&conn, &group);
        for (job, outcome) in group.into_iter().zip(outcomes) {
            let _ = job.reply.send(outcome);
        }
    }
}

/// Stores `group` in one transaction; a request's failure rolls back its
/// savepoint only, a failed `COMMIT` fails them all.
fn commit_group(conn: &rusqlite::Connection, group: &[Job]) -> Vec<Result<u64, String>> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return group.iter().map(|_| Err(e.to_string())).collect();
    }
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        let outcome = (|| -> rusqlite::Result<u64> {
            conn.execute_batch("SAVEPOINT request")?;
            match store(conn, job) {
                Ok(stored) => {
                    conn.execute_batch("RELEASE request")?;
                    Ok(stored)
                }
                Err(e) => {
                    conn.execute_batch("ROLLBACK TO request; RELEASE request")?;
                    Err(e)
                }
            }
        })();
        outcomes.push(outcome.map_err(|e| e.to_string()));
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return group.iter().map(|_| Err(e.to_string())).collect();
    }
    outcomes
}

/// One request's rows, as the function writes them
/// (`functions/ingest/src/storage.rs` and `Db::add_rollups`): the events
/// with `INSERT ... RETURNING` (only new rows come back), the rollups of
/// those rows (stored sketches read, merged, upserted), the dead letters;
/// every statement from `event-store`.
fn store(conn: &rusqlite::Connection, job: &Job) -> rusqlite::Result<u64> {
    let mut stored = 0;
    let mut rollups = Rollups::new();
    for chunk in job.events.chunks(ROWS_PER_INSERT) {
        let mut params: Vec<Sql> = Vec::with_capacity(chunk.len() * EVENT_COLUMNS);
        for Received { event: e, raw } in chunk {
            params.extend([
                Sql::Text(job.source.clone()),
                Sql::Text(e.message_id.clone()),
                Sql::Text(e.kind.clone()),
                e.name.clone().map_or(Sql::Null, Sql::Text),
                e.user_id.clone().map_or(Sql::Null, Sql::Text),
                e.anonymous_id.clone().map_or(Sql::Null, Sql::Text),
                Sql::Integer(e.timestamp_ms),
                Sql::Integer(job.received_ms),
                Sql::Text(e.properties.clone()),
                Sql::Text(raw.clone()),
            ]);
        }
        let mut insert = conn.prepare_cached(&insert_events_returning(chunk.len()))?;
        let mut rows = insert.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let name: Option<String> = row.get(0)?;
            let user: Option<String> = row.get(1)?;
            rollups.add(&job.source, name.as_deref(), user.as_deref(), row.get(2)?);
            stored += 1;
        }
    }
    add_rollups(conn, &mut rollups)?;
    for d in &job.dead {
        conn.prepare_cached(INSERT_DEAD_LETTER)?
            .execute(rusqlite::params![
                job.source,
                job.received_ms,
                d.code,
                d.reason,
                d.raw
            ])?;
    }
    Ok(stored)
}

/// `Db::add_rollups` on rusqlite: each row's stored sketch merged in, then
/// the counts added.
fn add_rollups(conn: &rusqlite::Connection, rollups: &mut Rollups) -> rusqlite::Result<()> {
    if rollups.is_empty() {
        return Ok(());
    }
    let mut stored = Vec::new();
    for keys in rollups.key_chunks() {
        let (sql, params) = rollup::select_stored(&keys);
        let mut select = conn.prepare_cached(&sql)?;
        let mut rows = select.query(rusqlite::params_from_iter(
            params.into_iter().map(sql_param),
        ))?;
        while let Some(row) = rows.next()? {
            let users: Vec<u8> = row.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default();
            let (key, sketch) = rollup::stored_row(
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                &users,
            )
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Blob, e.into())
            })?;
            stored.push((key, sketch));
        }
    }
    for (key, sketch) in &stored {
        rollups.merge_stored(key, sketch);
    }
    for rows in rollups.row_chunks() {
        let (sql, params) = rollup::upsert(&rows);
        conn.prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(
                params.into_iter().map(sql_param),
            ))?;
    }
    Ok(())
}

/// An event-store parameter as rusqlite binds it.
fn sql_param(p: Param) -> Sql {
    match p {
        Param::Int(i) => Sql::Integer(i),
        Param::Real(f) => Sql::Real(f),
        Param::Text(s) => Sql::Text(s),
        Param::Blob(b) => Sql::Blob(b),
        Param::Null => Sql::Null,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
