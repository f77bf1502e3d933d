//! Versioned schema migrations (`schema/vN.sql`, written once for both
//! dialects), applied in order and each exactly once per database, inside a transaction that holds the
//! database's migration lock (SQLite's write lock, a PostgreSQL advisory
//! lock), so concurrent first requests never race.

#[cfg(feature = "spin")]
use crate::{Db, Param};

/// The schema versions, in order; version N is `VERSIONS[N - 1]`.
pub const VERSIONS: &[&str] = &[
    include_str!("schema/v1.sql"),
    include_str!("schema/v2.sql"),
    include_str!("schema/v3.sql"),
    include_str!("schema/v4.sql"),
];

/// The version that added rollups: applying it also rolls up the events
/// already stored ([`backfill_rollups`]).
pub const ROLLUPS_VERSION: i64 = 3;

/// A version's statements for SQLite (`sqlite`) or PostgreSQL.
pub fn statements(version_sql: &str, sqlite: bool) -> Vec<String> {
    let (id, blob) = if sqlite {
        ("INTEGER PRIMARY KEY", "BLOB")
    } else {
        ("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA")
    };
    version_sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{id}", id)
        .replace("{blob}", blob)
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The advisory lock key that serialises migrations on PostgreSQL.
#[cfg(feature = "spin")]
const PG_MIGRATION_LOCK: i64 = 0x0074_7269_626d_6967; // "tribmig"

#[cfg(feature = "spin")]
async fn current_version(db: &Db) -> anyhow::Result<i64> {
    let rows = db
        .rows(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            vec![],
        )
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_i64())
        .unwrap_or(0))
}

/// Brings the schema up to date.
#[cfg(feature = "spin")]
pub(crate) async fn apply(db: &Db) -> anyhow::Result<()> {
    let target = VERSIONS.len() as i64;
    // The common case, an up-to-date database, costs one query; the table
    // is created only when reading it fails.
    if let Ok(version) = current_version(db).await
        && version >= target
    {
        return Ok(());
    }
    db.begin().await?;
    let result = async {
        if let Db::Postgres(_) = db {
            db.rows(
                "SELECT pg_advisory_xact_lock(?1)",
                vec![Param::Int(PG_MIGRATION_LOCK)],
            )
            .await?;
        }
        // Created under the lock: outside it, the first requests of two
        // replicas on one PostgreSQL database race, and `IF NOT EXISTS`
        // does not stop the loser's error (23505 or 42710, "type
        // schema_migrations already exists").
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)",
            vec![],
        )
        .await?;
        let from = current_version(db).await?;
        let sqlite = matches!(db, Db::Sqlite(_));
        for (index, version_sql) in VERSIONS.iter().enumerate() {
            let version = index as i64 + 1;
            if version <= from {
                continue;
            }
            for statement in statements(version_sql, sqlite) {
                db.execute(&statement, vec![]).await?;
            }
            if version == ROLLUPS_VERSION {
                backfill_rollups(db).await?;
            }
            db.execute(
                "INSERT INTO schema_migrations (version) VALUES (?1) ON CONFLICT DO NOTHING",
                vec![Param::Int(version)],
            )
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => db.commit().await,
        Err(e) => {
            db.rollback().await;
            Err(e)
        }
    }
}

/// Events read per page while backfilling rollups: bounds the memory of
/// one page's rollups.
#[cfg(feature = "spin")]
const BACKFILL_EVENTS: i64 = 20_000;

/// Rolls up every stored event (a database from before rollups existed),
/// a page of events at a time, inside the migration's transaction: either
/// the whole history is rolled up with the version recorded, or neither.
#[cfg(feature = "spin")]
async fn backfill_rollups(db: &Db) -> anyhow::Result<()> {
    use crate::Cell;
    use crate::rollup::{BACKFILL_PAGE, Rollups};
    let mut last = 0;
    loop {
        let rows = db
            .cells(
                BACKFILL_PAGE,
                vec![Param::Int(last), Param::Int(BACKFILL_EVENTS)],
            )
            .await?;
        let Some(end) = rows.last().and_then(|r| r.first()).and_then(Cell::int) else {
            return Ok(());
        };
        let mut rollups = Rollups::new();
        for row in &rows {
            let (Some(source), Some(timestamp_ms)) = (row[1].text(), row[4].int()) else {
                anyhow::bail!("backfill: an events row without source or time: {row:?}");
            };
            rollups.add(source, row[2].text(), row[3].text(), timestamp_ms);
        }
        db.add_rollups(&mut rollups).await?;
        last = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_gets_its_key_and_no_comments() {
        let sqlite = statements(VERSIONS[0], true);
        assert_eq!(sqlite.len(), 4);
        assert!(sqlite[0].contains("id INTEGER PRIMARY KEY,"));
        assert!(
            sqlite
                .iter()
                .all(|s| !s.contains("--") && !s.contains("{id}"))
        );
        let pg = statements(VERSIONS[0], false);
        assert!(pg[3].contains("id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"));
        let v3 = VERSIONS[ROLLUPS_VERSION as usize - 1];
        assert!(statements(v3, true)[0].contains("users BLOB NOT NULL"));
        assert!(statements(v3, false)[0].contains("users BYTEA NOT NULL"));
    }
}
