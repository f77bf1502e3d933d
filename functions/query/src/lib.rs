//! The analytics read API over the events `ingest` stores.
//!
//! Every request needs `Authorization: Bearer TOKEN`; tokens come from the
//! `read_tokens` variable (`token=source` pairs, comma-separated) and give
//! read access to one source. Endpoints (times in ms since the epoch,
//! `from` inclusive, `to` exclusive):
//! - `GET /api/counts?bucket=minute|hour|day&group_by=event|property:PATH&event=NAME`:
//!   events and unique users per bucket (and group);
//! - `GET /api/aggregate?property=PATH&event=NAME`: count, sum, avg, min,
//!   max, p50, p90, p99 of a numeric property;
//! - `GET /api/event-names`, `GET /api/property-keys?event=NAME`: what has
//!   been seen;
//! - `GET /api/events?limit=N&cursor=C`: raw events, newest first, paged;
//! - `GET /api/dead-letters?limit=N&cursor=C`: rejected messages with reasons.
//!
//! Inputs are validated and only ever bound as SQL parameters; an unknown
//! property path is a `400`, never part of a statement.

pub mod params;

use json_reply::{Reply, error, reply};
use serde_json::{Value as Json, json};
use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::sqlite::{Connection, Value};

use crate::params::{BadParam, Params, property_path};

#[http_service]
async fn query(req: Request) -> impl IntoResponse {
    match handle(req).await {
        Ok(resp) | Err(resp) => resp,
    }
}

impl From<BadParam> for Reply {
    fn from(e: BadParam) -> Self {
        error(StatusCode::BAD_REQUEST, "invalid_parameter", e.0)
    }
}

fn internal(e: impl std::fmt::Debug) -> Reply {
    eprintln!("query: {e:?}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the event store failed",
    )
}

async fn handle(req: Request) -> Result<Reply, Reply> {
    let source = authorize(&req).await?;
    let endpoint = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let p = Params::parse(req.uri().query().unwrap_or_default());
    let from = p.time("from", 0)?;
    let to = p.time("to", i64::MAX)?;
    let conn = Connection::open_default().await.map_err(internal)?;
    let db = Db { conn, source };
    let body = match endpoint.as_str() {
        "counts" => counts(&db, &p, from, to).await?,
        "aggregate" => aggregate(&db, &p, from, to).await?,
        "event-names" => {
            let rows = db
                .rows("SELECT DISTINCT name FROM events WHERE source = ? AND type = 'track' ORDER BY name", vec![])
                .await?;
            json!({"event_names": rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>()})
        }
        "property-keys" => {
            let mut sql = "SELECT DISTINCT j.key FROM events, json_each(events.properties) AS j WHERE source = ?".to_owned();
            let mut params = vec![];
            if let Some(event) = p.get("event") {
                sql.push_str(" AND name = ?");
                params.push(Value::Text(event.to_owned()));
            }
            sql.push_str(" ORDER BY j.key");
            let rows = db.rows(&sql, params).await?;
            json!({"property_keys": rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>()})
        }
        "events" => page(&db, &p, "SELECT id, message_id, type, name, user_id, anonymous_id, timestamp_ms, properties FROM events WHERE source = ? AND id < ? AND timestamp_ms >= ? AND timestamp_ms < ? ORDER BY id DESC LIMIT ?", Some((from, to))).await?,
        "dead-letters" => page(&db, &p, "SELECT id, code, reason, received_at_ms, raw FROM dead_letters WHERE source = ? AND id < ? ORDER BY id DESC LIMIT ?", None).await?,
        _ => return Err(error(StatusCode::NOT_FOUND, "not_found", format!("no endpoint /api/{endpoint}"))),
    };
    Ok(reply(StatusCode::OK, body))
}

/// The connection and the source the token may read.
struct Db {
    conn: Connection,
    source: String,
}

impl Db {
    /// Rows as JSON values; the source is always the first parameter.
    async fn rows(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Vec<Json>>, Reply> {
        let mut all = vec![Value::Text(self.source.clone())];
        all.extend(params);
        let result = self.conn.execute(sql, all).await.map_err(internal)?;
        let rows = result.collect().await.map_err(internal)?;
        Ok(rows
            .into_iter()
            .map(|row| row.values.iter().map(to_json).collect())
            .collect())
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Integer(i) => json!(i),
        Value::Real(f) => json!(f),
        Value::Text(s) => json!(s),
        Value::Blob(_) => Json::Null,
        Value::Null => Json::Null,
    }
}

/// Fails with `400` unless some event of the source has `path`.
async fn known_property(db: &Db, path: &str) -> Result<String, Reply> {
    let json_path = property_path(path)?;
    let found = db
        .rows(
            "SELECT 1 FROM events WHERE source = ? AND json_extract(properties, ?) IS NOT NULL LIMIT 1",
            vec![Value::Text(json_path.clone())],
        )
        .await?;
    if found.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "unknown_property",
            format!("no event has the property {path:?}"),
        ));
    }
    Ok(json_path)
}

async fn counts(db: &Db, p: &Params, from: i64, to: i64) -> Result<Json, Reply> {
    let bucket = p.bucket()?;
    // `?1` is the source (bound by `rows`); the rest are numbered by position.
    let mut params = vec![
        Value::Integer(bucket),
        Value::Integer(from),
        Value::Integer(to),
    ];
    let group = match p.get("group_by") {
        None | Some("") => "NULL".to_owned(),
        Some("event") => "name".to_owned(),
        Some(other) => match other.strip_prefix("property:") {
            Some(path) => {
                params.push(Value::Text(known_property(db, path).await?));
                format!("json_extract(properties, ?{})", params.len() + 1)
            }
            None => {
                return Err(
                    BadParam(format!("group_by {other:?} must be event or property:PATH")).into(),
                );
            }
        },
    };
    let mut sql = format!(
        "SELECT (timestamp_ms / ?2) * ?2 AS bucket, {group} AS grp, count(*), count(DISTINCT COALESCE(user_id, anonymous_id))
         FROM events WHERE source = ?1 AND timestamp_ms >= ?3 AND timestamp_ms < ?4"
    );
    if let Some(event) = p.get("event") {
        params.push(Value::Text(event.to_owned()));
        sql.push_str(&format!(" AND name = ?{}", params.len() + 1));
    }
    sql.push_str(" GROUP BY bucket, grp ORDER BY bucket, grp");
    let rows = db.rows(&sql, params).await?;
    let buckets: Vec<Json> = rows
        .into_iter()
        .map(|r| json!({"start": r[0], "group": r[1], "count": r[2], "unique_users": r[3]}))
        .collect();
    Ok(json!({"bucket_ms": bucket, "buckets": buckets}))
}

async fn aggregate(db: &Db, p: &Params, from: i64, to: i64) -> Result<Json, Reply> {
    let path = p
        .get("property")
        .ok_or_else(|| BadParam("property is required".into()))?;
    let json_path = known_property(db, path).await?;
    // `?1` source, `?2` path, `?3`/`?4` the window, `?5` the event.
    let mut sql = "SELECT CAST(json_extract(properties, ?2) AS REAL) AS v FROM events
         WHERE source = ?1 AND timestamp_ms >= ?3 AND timestamp_ms < ?4
         AND json_type(properties, ?2) IN ('integer', 'real')"
        .to_owned();
    let mut params = vec![
        Value::Text(json_path),
        Value::Integer(from),
        Value::Integer(to),
    ];
    if let Some(event) = p.get("event") {
        sql.push_str(" AND name = ?5");
        params.push(Value::Text(event.to_owned()));
    }
    sql.push_str(" ORDER BY v");
    let values: Vec<f64> = db
        .rows(&sql, params)
        .await?
        .into_iter()
        .filter_map(|r| r[0].as_f64())
        .collect();
    if values.is_empty() {
        return Ok(json!({"count": 0}));
    }
    let n = values.len();
    let sum: f64 = values.iter().sum();
    let pct = |q: f64| values[((q * (n - 1) as f64).round() as usize).min(n - 1)];
    Ok(json!({
        "count": n, "sum": sum, "avg": sum / n as f64,
        "min": values[0], "max": values[n - 1],
        "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
    }))
}

/// A page of rows by descending id; `cursor` is the last id seen.
async fn page(db: &Db, p: &Params, sql: &str, window: Option<(i64, i64)>) -> Result<Json, Reply> {
    let limit = p.limit("limit", 100, 1000)?;
    let cursor = match p.get("cursor") {
        None | Some("") => i64::MAX,
        Some(c) => c
            .parse()
            .map_err(|_| BadParam("cursor must be a number from next_cursor".into()))?,
    };
    let mut params = vec![Value::Integer(cursor)];
    if let Some((from, to)) = window {
        params.push(Value::Integer(from));
        params.push(Value::Integer(to));
    }
    params.push(Value::Integer(limit));
    let rows = db.rows(sql, params).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r[0].clone()))
        .flatten();
    Ok(json!({"rows": rows, "next_cursor": next}))
}

/// The source a bearer token may read.
async fn authorize(req: &Request) -> Result<String, Reply> {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer TOKEN",
            )
        })?;
    let tokens = spin_sdk::variables::get("read_tokens")
        .await
        .map_err(|e| internal(format!("read_tokens: {e:?}")))?;
    tokens
        .split(',')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(t, _)| *t == token)
        .map(|(_, source)| source.to_owned())
        .ok_or_else(|| error(StatusCode::FORBIDDEN, "forbidden", "unknown token"))
}
