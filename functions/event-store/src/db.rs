//! The connection to the configured backend, through Spin's SQLite and
//! PostgreSQL APIs.

use serde_json::Value as Json;
use spin_sdk::{pg, sqlite};

use crate::migrations;
use crate::reports::Dialect;
use crate::rollup::{self, Rollups};
use crate::statements::EventFilter;
use crate::value;
use crate::{Cell, Param};

/// An open connection to the configured backend.
pub enum Db {
    /// Spin's SQLite API.
    Sqlite(sqlite::Connection),
    /// Spin's PostgreSQL API.
    Postgres(pg::Connection),
}

impl Db {
    /// Opens the backend `database_url` names and brings its schema up to
    /// date (migrations run once per database, under a lock).
    pub async fn open() -> anyhow::Result<Db> {
        let url = spin_sdk::variables::get("database_url")
            .await
            .unwrap_or_default();
        let db = match url.trim() {
            "" | "sqlite" => Db::Sqlite(open_sqlite("default").await?),
            url if url.starts_with("sqlite:") => Db::Sqlite(open_sqlite(&url[7..]).await?),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Db::Postgres(
                    pg::Connection::open(url)
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e:?}"))?,
                )
            }
            other => anyhow::bail!(
                "database_url {:?} is neither sqlite, sqlite:LABEL nor a postgres:// URL",
                redact(other)
            ),
        };
        migrations::apply(&db).await?;
        Ok(db)
    }

    /// Rows as JSON values, in column order.
    pub async fn rows(&self, sql: &str, params: Vec<Param>) -> anyhow::Result<Vec<Vec<Json>>> {
        self.query(sql, params, |v| value::sqlite_json(&v), value::pg_json)
            .await
    }

    /// Rows with their values' types kept (bytes stay bytes), in column
    /// order.
    pub async fn cells(&self, sql: &str, params: Vec<Param>) -> anyhow::Result<Vec<Vec<Cell>>> {
        self.query(sql, params, value::sqlite_cell, |v| {
            value::pg_cell(v.clone())
        })
        .await
    }

    /// Runs `sql` and turns each value of each row into a `T`, by the
    /// backend's own conversion.
    async fn query<T>(
        &self,
        sql: &str,
        params: Vec<Param>,
        from_sqlite: impl Fn(sqlite::Value) -> T,
        from_pg: impl Fn(&pg::DbValue) -> T,
    ) -> anyhow::Result<Vec<Vec<T>>> {
        match self {
            Db::Sqlite(conn) => {
                let params = params
                    .into_iter()
                    .map(Param::into_sqlite)
                    .collect::<Vec<_>>();
                let rows = conn
                    .execute(sql, params)
                    .await
                    .map_err(|e| failed(sql, e))?
                    .collect()
                    .await
                    .map_err(|e| failed(sql, e))?;
                Ok(rows
                    .into_iter()
                    .map(|row| row.values.into_iter().map(&from_sqlite).collect())
                    .collect())
            }
            Db::Postgres(conn) => {
                let sql = numbered_to_dollar(sql);
                let params = params.into_iter().map(Param::into_pg).collect::<Vec<_>>();
                let result = conn
                    .query(sql.as_str(), params)
                    .await
                    .map_err(|e| failed(&sql, e))?;
                let width = result.columns().len();
                let rows = result.collect().await.map_err(|e| failed(&sql, e))?;
                Ok(rows
                    .iter()
                    .map(|row| (0..width).map(|i| from_pg(&row[i])).collect())
                    .collect())
            }
        }
    }

    /// Adds `rollups` (the changes of newly stored events) to the stored
    /// rollups, inside the caller's transaction: reads the rows' sketches,
    /// merges, and writes counts (added in SQL) and merged sketches. On
    /// PostgreSQL the rows are first created and locked in key order
    /// ([`rollup::lock_rows`]), so concurrent writers take turns per row.
    pub async fn add_rollups(&self, rollups: &mut Rollups) -> anyhow::Result<()> {
        if rollups.is_empty() {
            return Ok(());
        }
        let mut stored = Vec::new();
        for keys in rollups.key_chunks() {
            if let Db::Postgres(_) = self {
                let (sql, params) = rollup::lock_rows(&keys);
                self.execute(&sql, params).await?;
            }
            let (sql, params) = rollup::select_stored(&keys);
            for row in self.cells(&sql, params).await? {
                let mut cells = row.into_iter();
                let mut next = || cells.next().unwrap_or(Cell::Null);
                let (source, width, bucket, scope, name, users) =
                    (next(), next(), next(), next(), next(), next());
                let (Some(source), Some(width), Some(bucket), Some(scope), Some(name)) = (
                    source.into_text(),
                    width.int(),
                    bucket.int(),
                    scope.int(),
                    name.into_text(),
                ) else {
                    anyhow::bail!("a rollups row of unexpected types");
                };
                stored.push(
                    rollup::stored_row(
                        source,
                        width,
                        bucket,
                        scope,
                        name,
                        users.bytes().unwrap_or_default(),
                    )
                    .map_err(anyhow::Error::msg)?,
                );
            }
        }
        for (key, sketch) in &stored {
            rollups.merge_stored(key, sketch);
        }
        for rows in rollups.row_chunks() {
            let (sql, params) = rollup::upsert(&rows);
            self.execute(&sql, params).await?;
        }
        Ok(())
    }

    /// Runs a statement; returns the number of rows it changed.
    pub async fn execute(&self, sql: &str, params: Vec<Param>) -> anyhow::Result<u64> {
        match self {
            Db::Sqlite(conn) => {
                self.rows(sql, params).await?;
                Ok(conn.changes().await)
            }
            Db::Postgres(conn) => {
                let sql = numbered_to_dollar(sql);
                let params = params.into_iter().map(Param::into_pg).collect::<Vec<_>>();
                conn.execute(sql.as_str(), params)
                    .await
                    .map_err(|e| failed(&sql, e))
            }
        }
    }

    /// Starts a write transaction (SQLite takes its write lock at once, so
    /// two writers never deadlock on an upgrade).
    pub async fn begin(&self) -> anyhow::Result<()> {
        let sql = match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            Db::Postgres(_) => "BEGIN",
        };
        self.execute(sql, vec![]).await.map(drop)
    }

    /// Commits the transaction.
    pub async fn commit(&self) -> anyhow::Result<()> {
        self.execute("COMMIT", vec![]).await.map(drop)
    }

    /// Rolls the transaction back (errors are ignored: the connection may
    /// already have done so).
    pub async fn rollback(&self) {
        let _ = self.execute("ROLLBACK", vec![]).await;
    }

    /// The JSON value at `path` (property names) of the `properties`
    /// column, with `param` the placeholder number its path is bound to.
    /// Compare with [`Db::path_param`].
    pub fn json_value(&self, param: usize) -> String {
        match self {
            Db::Sqlite(_) => format!("json_extract(properties, ?{param})"),
            Db::Postgres(_) => format!("(properties::jsonb #> CAST(?{param} AS text)::text[])"),
        }
    }

    /// The numeric value at the path bound to `param`, and the condition
    /// that it is a number.
    pub fn json_number(&self, param: usize) -> (String, String) {
        match self {
            Db::Sqlite(_) => (
                format!("CAST(json_extract(properties, ?{param}) AS REAL)"),
                format!("json_type(properties, ?{param}) IN ('integer', 'real')"),
            ),
            Db::Postgres(_) => (
                format!(
                    "CAST(properties::jsonb #>> CAST(?{param} AS text)::text[] AS double precision)"
                ),
                format!(
                    "jsonb_typeof(properties::jsonb #> CAST(?{param} AS text)::text[]) = 'number'"
                ),
            ),
        }
    }

    /// A `SELECT` of the distinct top-level property keys of the events
    /// `filter` selects, as column `key`, with its parameters.
    pub fn property_keys(&self, filter: &EventFilter<'_>) -> (String, Vec<Param>) {
        let (condition, params) = filter.condition();
        let sql = match self {
            Db::Sqlite(_) => format!(
                "SELECT DISTINCT j.key AS key FROM events, json_each(events.properties) AS j WHERE {condition} ORDER BY key"
            ),
            Db::Postgres(_) => format!(
                "SELECT DISTINCT jsonb_object_keys(properties::jsonb) AS key FROM events WHERE {condition} ORDER BY key"
            ),
        };
        (sql, params)
    }

    /// The bound form of a property path (validated names, no quoting
    /// needed beyond what each dialect's path syntax wants).
    pub fn path_param(&self, names: &[String]) -> Param {
        self.dialect().path_param(names)
    }

    /// The SQL dialect of the backend, for the statements of
    /// [`crate::reports`].
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// A backend's error (its types have only `Debug`), with the statement
/// that failed as context.
fn failed(sql: &str, e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow::anyhow!("{e:?}").context(sql.to_owned())
}

async fn open_sqlite(label: &str) -> anyhow::Result<sqlite::Connection> {
    sqlite::Connection::open(label)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the SQLite database {label:?}: {e:?}"))
}

/// A URL with any password hidden, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `?N` placeholders (SQLite's numbered form) as PostgreSQL's `$N`; a bare
/// `?` takes the next number. The statements are ours, with no `?` inside
/// string literals.
fn numbered_to_dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut next = 1;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        out.push('$');
        if chars.peek().is_some_and(char::is_ascii_digit) {
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                out.push(d);
            }
        } else {
            out.push_str(&next.to_string());
            next += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_translate_for_postgres() {
        assert_eq!(
            numbered_to_dollar("SELECT ?1, ?12 WHERE a = ?2"),
            "SELECT $1, $12 WHERE a = $2"
        );
        assert_eq!(
            numbered_to_dollar("VALUES (?, ?, ?)"),
            "VALUES ($1, $2, $3)"
        );
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://user:secret@db:5432/x"),
            "postgres://***@db:5432/x"
        );
        assert_eq!(redact("nonsense"), "nonsense");
    }
}
