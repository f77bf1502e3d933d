//! Where events go: Spin's SQLite API, with versioned migrations applied on
//! first use. Every request's events, their dedup keys and its dead letters
//! are written in one transaction, so an acknowledged event is never lost
//! and a retried one is never counted twice.

use spin_sdk::sqlite::{Connection, Value};

use crate::validate::Event;

/// Schema versions, applied in order; each runs once per database.
const MIGRATIONS: &[&str] = &[
    // 1: events, deduplicated by (source, message_id); dead letters.
    "CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        message_id TEXT NOT NULL,
        type TEXT NOT NULL,
        name TEXT,
        user_id TEXT,
        anonymous_id TEXT,
        timestamp_ms INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        properties TEXT NOT NULL,
        raw TEXT NOT NULL,
        UNIQUE (source, message_id)
    );
    CREATE INDEX IF NOT EXISTS events_by_time ON events (source, timestamp_ms);
    CREATE INDEX IF NOT EXISTS events_by_name ON events (source, name, timestamp_ms);
    CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        received_at_ms INTEGER NOT NULL,
        code TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw TEXT NOT NULL
    );",
];

/// A rejected message to keep, with why.
pub struct DeadLetter {
    /// Machine code of the rule that failed.
    pub code: &'static str,
    /// The reason, naming the field.
    pub reason: String,
    /// The message as received.
    pub raw: String,
}

/// Opens the database and brings its schema up to date.
pub async fn open() -> anyhow::Result<Connection> {
    let conn = Connection::open_default()
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e:?}"))?;
    exec(
        &conn,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)",
        vec![],
    )
    .await?;
    let applied = conn
        .execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            vec![],
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let current = applied
        .first()
        .and_then(|row| row.get::<i64>(0))
        .unwrap_or(0);
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        exec(&conn, "BEGIN IMMEDIATE", vec![]).await?;
        for statement in migration
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            exec(&conn, statement, vec![]).await?;
        }
        exec(
            &conn,
            "INSERT OR IGNORE INTO schema_migrations (version) VALUES (?)",
            vec![Value::Integer(version)],
        )
        .await?;
        exec(&conn, "COMMIT", vec![]).await?;
    }
    Ok(conn)
}

/// Stores `events` (duplicates of stored message ids are skipped) and
/// `dead` letters in one transaction; returns how many events were new.
pub async fn store(
    conn: &Connection,
    source: &str,
    received_ms: i64,
    events: &[Event],
    dead: &[DeadLetter],
) -> anyhow::Result<u64> {
    exec(conn, "BEGIN IMMEDIATE", vec![]).await?;
    let result = async {
        let mut stored = 0;
        for e in events {
            exec(
                conn,
                "INSERT OR IGNORE INTO events (source, message_id, type, name, user_id, anonymous_id, timestamp_ms, received_at_ms, properties, raw)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    text(source),
                    text(&e.message_id),
                    text(&e.kind),
                    opt(&e.name),
                    opt(&e.user_id),
                    opt(&e.anonymous_id),
                    Value::Integer(e.timestamp_ms),
                    Value::Integer(received_ms),
                    text(&e.properties),
                    text(&e.raw),
                ],
            )
            .await?;
            stored += conn.changes().await;
        }
        for d in dead {
            exec(
                conn,
                "INSERT INTO dead_letters (source, received_at_ms, code, reason, raw) VALUES (?, ?, ?, ?, ?)",
                vec![text(source), Value::Integer(received_ms), text(d.code), text(&d.reason), text(&d.raw)],
            )
            .await?;
        }
        anyhow::Ok(stored)
    }
    .await;
    match result {
        Ok(stored) => {
            exec(conn, "COMMIT", vec![]).await?;
            Ok(stored)
        }
        Err(e) => {
            let _ = exec(conn, "ROLLBACK", vec![]).await;
            Err(e)
        }
    }
}

async fn exec(conn: &Connection, sql: &str, params: Vec<Value>) -> anyhow::Result<()> {
    let result = conn
        .execute(sql, params)
        .await
        .map_err(|e| anyhow::anyhow!("{sql}: {e:?}"))?;
    result
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{sql}: {e:?}"))?;
    Ok(())
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn opt(s: &Option<String>) -> Value {
    s.as_deref().map_or(Value::Null, text)
}
