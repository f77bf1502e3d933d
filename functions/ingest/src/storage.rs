//! Where events go: the shared [`event_store`] (Spin's SQLite by default,
//! PostgreSQL when `database_url` says so). Every request's events, their
//! dedup keys and its dead letters are written in one transaction, so an
//! acknowledged event is never lost and a retried one is never counted
//! twice. The rollups the query API reads are updated in that transaction
//! too, from the rows the insert reports as new.

use event_store::rollup::Rollups;
use event_store::statements::{
    EVENT_COLUMNS, INSERT_DEAD_LETTER, ROWS_PER_INSERT, insert_events_returning,
};
use event_store::{Cell, Db, Param};

use event_model::Received;

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

/// Stores `events` (duplicates of stored message ids are skipped), adds
/// the new ones to the rollups, and stores `dead` letters, in one
/// transaction; returns how many events were new.
pub async fn store(
    db: &Db,
    source: &str,
    received_ms: i64,
    events: &[Received],
    dead: &[DeadLetter],
) -> anyhow::Result<u64> {
    db.begin().await?;
    let result = async {
        let mut stored = 0;
        let mut rollups = Rollups::new();
        for chunk in events.chunks(ROWS_PER_INSERT) {
            // Only the rows inserted come back: a resent event adds nothing.
            let new = db
                .cells(
                    &insert_events_returning(chunk.len()),
                    event_params(source, received_ms, chunk),
                )
                .await?;
            stored += new.len() as u64;
            for row in &new {
                let Some(timestamp_ms) = row.get(2).and_then(Cell::int) else {
                    anyhow::bail!("the insert returned a row without a time: {row:?}");
                };
                rollups.add(
                    source,
                    row.first().and_then(Cell::text),
                    row.get(1).and_then(Cell::text),
                    timestamp_ms,
                );
            }
        }
        db.add_rollups(&mut rollups).await?;
        for d in dead {
            db.execute(
                INSERT_DEAD_LETTER,
                vec![
                    text(source),
                    Param::Int(received_ms),
                    text(&d.code),
                    text(&d.reason),
                    text(&d.raw),
                ],
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

fn event_params(source: &str, received_ms: i64, events: &[Received]) -> Vec<Param> {
    let mut params = Vec::with_capacity(events.len() * EVENT_COLUMNS);
    for Received { event: e, raw } in events {
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
            text(raw),
        ]);
    }
    params
}

fn text(s: &str) -> Param {
    Param::Text(s.to_owned())
}
