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

/// What `changes` and `last-insert-rowid` answer for one guest connection.
/// Kept per open rather than read from SQLite, because a guest's
/// statements may run on two SQLite connections (its own, and the group
/// writer inside a transaction) and the writer's counters also move with
/// other guests' statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Rows changed by the last completed `INSERT`, `UPDATE` or `DELETE`.
    pub changes: u64,
    /// The rowid of the last row inserted.
    pub rowid: i64,
}

/// Runs `statement`, updating `counters` as SQLite updates its own for the
/// statement: `changes` after a completed `INSERT`, `UPDATE` or `DELETE`
/// (a `WITH` that writes included), the rowid after an insert of a row.
pub(super) fn run_counted(
    conn: &rusqlite::Connection,
    statement: &str,
    params: Vec<Value>,
    counters: &mut Counters,
) -> Result<Rows, SqlError> {
    let before = conn.last_insert_rowid();
    let (rows, readonly) = run_with(conn, statement, params)?;
    let kind = classify(statement);
    if kind == Kind::Write || (kind == Kind::With && !readonly) {
        counters.changes = conn.changes();
    }
    let insert = Words(statement)
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("insert") || w.eq_ignore_ascii_case("replace"));
    let after = conn.last_insert_rowid();
    if after != before || (insert && conn.changes() > 0) {
        counters.rowid = after;
    }
    Ok(rows)
}

/// Runs `statement` with positional `params` (prepared statements are
/// cached per connection); also says whether it was read-only.
fn run_with(
    conn: &rusqlite::Connection,
    statement: &str,
    params: Vec<Value>,
) -> Result<(Rows, bool), SqlError> {
    let mut stmt = conn.prepare_cached(statement).map_err(io)?;
    let readonly = stmt.readonly();
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
    Ok((Rows { columns, rows: out }, readonly))
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

/// How a guest's statement relates to transactions, by its first words
/// (comments and blanks skipped), as SQLite reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `BEGIN ...`.
    Begin,
    /// `COMMIT ...` or `END ...`.
    Commit,
    /// `ROLLBACK [TRANSACTION]` (not `ROLLBACK TO`, a savepoint's).
    Rollback,
    /// `INSERT`, `REPLACE`, `UPDATE` or `DELETE`: writes that can join a
    /// group outside a transaction.
    Write,
    /// `WITH ...`: a write or a read, as SQLite says once it is prepared.
    With,
    /// Anything else (reads, DDL, pragmas, savepoints...).
    Other,
}

/// The kind of `statement`.
pub(super) fn classify(statement: &str) -> Kind {
    let mut words = Words(statement);
    let Some(first) = words.next() else {
        return Kind::Other;
    };
    let is = |w: &str, k: &str| w.eq_ignore_ascii_case(k);
    if is(first, "begin") {
        Kind::Begin
    } else if is(first, "commit") || is(first, "end") {
        Kind::Commit
    } else if is(first, "rollback") {
        let mut next = words.next();
        if next.is_some_and(|w| is(w, "transaction")) {
            next = words.next();
        }
        if next.is_some_and(|w| is(w, "to")) {
            Kind::Other
        } else {
            Kind::Rollback
        }
    } else if is(first, "with") {
        Kind::With
    } else if ["insert", "replace", "update", "delete"]
        .iter()
        .any(|k| is(first, k))
    {
        Kind::Write
    } else {
        Kind::Other
    }
}

/// The words of SQL text, skipping blanks, comments and punctuation.
struct Words<'a>(&'a str);

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let s = self.0.trim_start_matches(|c: char| {
                c.is_whitespace() || (!c.is_alphanumeric() && c != '_' && c != '-' && c != '/')
            });
            if let Some(rest) = s.strip_prefix("--") {
                self.0 = rest.find('\n').map_or("", |i| &rest[i..]);
            } else if let Some(rest) = s.strip_prefix("/*") {
                self.0 = rest.find("*/").map_or("", |i| &rest[i + 2..]);
            } else if s.starts_with(['-', '/']) {
                self.0 = &s[1..];
            } else {
                let end = s
                    .find(|c: char| !c.is_alphanumeric() && c != '_')
                    .unwrap_or(s.len());
                if end == 0 {
                    return None;
                }
                self.0 = &s[end..];
                return Some(&s[..end]);
            }
        }
    }
}
