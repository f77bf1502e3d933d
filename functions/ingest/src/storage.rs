//! Where events go: the shared [`event_store`] (Spin's SQLite by default,
//! PostgreSQL when `database_url` says so). Every request's events, their
//! dedup keys and its dead letters are written in one transaction, so an
//! acknowledged event is never lost and a retried one is never counted
//! twice.

use event_store::{Db, Param};

use crate::validate::Event;

/// A rejected message to keep, with why.
pub struct DeadLetter {
    /// Machine code of the rule that failed.
    pub code: String,
    /// The reason, naming the field.
    pub reason: String,
    /// The message as received.
    pub raw: String,
}

/// Opens the configured store, its schema up to date.
pub async fn open() -> anyhow::Result<Db> {
    Db::open().await
}

/// Stores `events` (duplicates of stored message ids are skipped) and
/// `dead` letters in one transaction; returns how many events were new.
pub async fn store(
    db: &Db,
    source: &str,
    received_ms: i64,
    events: &[Event],
    dead: &[DeadLetter],
) -> anyhow::Result<u64> {
    db.begin().await?;
    let result = async {
        let mut stored = 0;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            stored += db.execute(&insert_events(chunk.len()), event_params(source, received_ms, chunk)).await?;
        }
        for d in dead {
            db.execute(
                "INSERT INTO dead_letters (source, received_at_ms, code, reason, raw) VALUES (?1, ?2, ?3, ?4, ?5)",
                vec![text(source), Param::Int(received_ms), text(&d.code), text(&d.reason), text(&d.raw)],
            )
            .await?;
        }
        anyhow::Ok(stored)
    }
    .await;
    match result {
        Ok(stored) => {
            db.commit().await?;
            Ok(stored)
        }
        Err(e) => {
            db.rollback().await;
            Err(e)
        }
    }
}

/// Events per `INSERT`: one statement stores many rows (one round trip to
/// the host instead of one per event); 500 rows of 10 parameters stay well
/// under both SQLite's and PostgreSQL's parameter limits.
const ROWS_PER_INSERT: usize = 500;

/// Columns of an `events` row, in `insert_events` order.
const EVENT_COLUMNS: usize = 10;

/// `INSERT` of `rows` events; a row whose message id the source already
/// has is skipped, so the statement's change count is what was new.
/// Placeholders are positional (`?`): the store numbers them for
/// PostgreSQL.
fn insert_events(rows: usize) -> String {
    const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let mut sql = String::with_capacity(200 + rows * (ROW.len() + 2));
    sql.push_str(
        "INSERT INTO events (source, message_id, type, name, user_id, anonymous_id, timestamp_ms, received_at_ms, properties, raw) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(ROW);
    }
    sql.push_str(" ON CONFLICT (source, message_id) DO NOTHING");
    sql
}

fn event_params(source: &str, received_ms: i64, events: &[Event]) -> Vec<Param> {
    let mut params = Vec::with_capacity(events.len() * EVENT_COLUMNS);
    for e in events {
        params.extend([
            text(source),
            text(&e.message_id),
            text(&e.kind),
            Param::opt_text(e.name.as_deref()),
            Param::opt_text(e.user_id.as_deref()),
            Param::opt_text(e.anonymous_id.as_deref()),
            Param::Int(e.timestamp_ms),
            Param::Int(received_ms),
            text(&e.properties),
            text(&e.raw),
        ]);
    }
    params
}

fn text(s: &str) -> Param {
    Param::Text(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_insert_has_a_row_of_parameters_per_event() {
        let sql = insert_events(2);
        assert_eq!(sql.matches('?').count(), 2 * EVENT_COLUMNS);
        assert!(sql.ends_with("?, ?) ON CONFLICT (source, message_id) DO NOTHING"));
    }
}
