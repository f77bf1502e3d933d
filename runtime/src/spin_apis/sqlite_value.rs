//! Spin's SQLite values and errors, independent of the WIT generation, and
//! running one statement on a connection: parameters in, rows out.

use rusqlite::types::{Value as SqlValue, ValueRef};

/// Spin's SQLite error cases.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// No database is configured under the label.
    #[error("no such database")]
    NoSuchDatabase,
    /// The component did not list the label in `sqlite_databases`.
    #[error("access denied")]
    AccessDenied,
    /// The connection handle is not valid.
    #[error("invalid connection")]
    InvalidConnection,
    /// SQLite failed (syntax, constraint, I/O...).
    #[error("{0}")]
    Io(String),
}

/// A column value, independent of the WIT generation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `integer(s64)`.
    Integer(i64),
    /// `real(f64)`.
    Real(f64),
    /// `text(string)`.
    Text(String),
    /// `blob(list<u8>)`.
    Blob(Vec<u8>),
    /// `null`.
    Null,
}

/// A query's column names and rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows of values, in column order.
    pub rows: Vec<Vec<Value>>,
}

/// SQLite's own error, as the guest receives it.
pub(super) fn io(e: rusqlite::Error) -> SqlError {
    SqlError::Io(e.to_string())
}

/// Runs `statement` with positional `params`; prepared statements are
/// cached per connection.
pub(super) fn run(
    conn: &rusqlite::Connection,
    statement: &str,
    params: Vec<Value>,
) -> Result<Rows, SqlError> {
    let mut stmt = conn.prepare_cached(statement).map_err(io)?;
    let columns: Vec<String> = stmt
        .column_names()
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    let params: Vec<SqlValue> = params.into_iter().map(to_sql).collect();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(io)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(io)? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(from_sql(row.get_ref(i).map_err(io)?));
        }
        out.push(values);
    }
    Ok(Rows { columns, rows: out })
}

fn to_sql(v: Value) -> SqlValue {
    match v {
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
        Value::Null => SqlValue::Null,
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Null => Value::Null,
    }
}
