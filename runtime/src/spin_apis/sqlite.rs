//! Spin's SQLite API on embedded SQLite files.
//!
//! A database is reachable only from components that list its label in
//! `sqlite_databases` (otherwise `access-denied`). `default` is
//! `.spin/sqlite_db.db` under the app (where `spin up` keeps it) unless the
//! runtime config maps it elsewhere. Each `open` gets its own connection to
//! a file (so `changes` and `last-insert-rowid` are per connection, as in
//! Spin); an in-memory database is one shared connection. Calls are
//! blocking, so they run on tokio's blocking pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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

/// Where a database lives.
#[derive(Debug)]
pub struct Database {
    path: Option<PathBuf>,
    /// The one connection of an in-memory database.
    memory: Option<Arc<Mutex<rusqlite::Connection>>>,
}

impl Database {
    /// A database in the file at `path`, or in memory with `None`.
    pub fn new(path: Option<PathBuf>) -> Result<Self, SqlError> {
        let memory = match path {
            Some(_) => None,
            None => Some(Arc::new(Mutex::new(
                rusqlite::Connection::open_in_memory().map_err(io)?,
            ))),
        };
        Ok(Self { path, memory })
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// A connection for one `open`.
    pub fn connect(&self) -> Result<Connection, SqlError> {
        if let Some(memory) = &self.memory {
            return Ok(Connection(memory.clone()));
        }
        let path = self.path.as_ref().ok_or(SqlError::NoSuchDatabase)?;
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = rusqlite::Connection::open(path).map_err(io)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(io)?;
        Ok(Connection(Arc::new(Mutex::new(conn))))
    }
}

fn io(e: rusqlite::Error) -> SqlError {
    SqlError::Io(e.to_string())
}

/// The app's databases by label, shared by every instance.
#[derive(Debug, Default)]
pub struct Databases {
    dbs: HashMap<String, Arc<Database>>,
}

impl Databases {
    /// Databases by label; `default` is added at `default_path` unless given.
    pub fn new(
        mut dbs: HashMap<String, Arc<Database>>,
        default_path: PathBuf,
    ) -> Result<Self, SqlError> {
        if !dbs.contains_key("default") {
            dbs.insert(
                "default".into(),
                Arc::new(Database::new(Some(default_path))?),
            );
        }
        Ok(Self { dbs })
    }

    /// The database under `label`.
    pub fn get(&self, label: &str) -> Option<&Arc<Database>> {
        self.dbs.get(label)
    }

    /// Runs `--sqlite` statements before serving: `@file[:label]` runs the
    /// file as a batch, anything else is one statement on `default`.
    pub fn run_startup_statement(&self, spec: &str) -> anyhow::Result<()> {
        let (sql, label) = match spec.strip_prefix('@') {
            Some(file) => {
                let (file, label) = match file.rsplit_once(':') {
                    Some((f, l)) if !l.is_empty() && !l.contains('/') => (f, l),
                    _ => (file, "default"),
                };
                let sql = std::fs::read_to_string(file.trim())
                    .map_err(|e| anyhow::anyhow!("--sqlite @{file}: cannot read: {e}"))?;
                (sql, label.trim())
            }
            None => (spec.to_owned(), "default"),
        };
        let db = self
            .get(label)
            .ok_or_else(|| anyhow::anyhow!("--sqlite {spec}: no database {label:?} is defined"))?;
        let conn = db
            .connect()
            .map_err(|e| anyhow::anyhow!("--sqlite {spec}: {e}"))?;
        let guard = conn.0.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .execute_batch(&sql)
            .map_err(|e| anyhow::anyhow!("--sqlite {spec}: {e}"))
    }
}

/// What one component may open.
#[derive(Debug, Clone)]
pub struct SqliteAccess {
    allowed: Arc<[String]>,
    dbs: Arc<Databases>,
}

/// An open connection, as held in an instance's resource table.
#[derive(Debug, Clone)]
pub struct Connection(Arc<Mutex<rusqlite::Connection>>);

impl SqliteAccess {
    /// Access to the `allowed` labels of `dbs`.
    pub fn new(allowed: &[String], dbs: Arc<Databases>) -> Self {
        Self {
            allowed: allowed.into(),
            dbs,
        }
    }

    /// Opens `label` if the component may.
    pub async fn open(&self, label: String) -> Result<Connection, SqlError> {
        if !self.allowed.contains(&label) {
            return Err(SqlError::AccessDenied);
        }
        let db = self
            .dbs
            .get(&label)
            .ok_or(SqlError::NoSuchDatabase)?
            .clone();
        tokio::task::spawn_blocking(move || db.connect())
            .await
            .map_err(|e| SqlError::Io(e.to_string()))?
    }
}

impl Connection {
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<R, SqlError> + Send + 'static,
    ) -> Result<R, SqlError> {
        let conn = self.0.clone();
        tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(|e| e.into_inner())))
            .await
            .map_err(|e| SqlError::Io(e.to_string()))?
    }

    /// Runs one statement with positional parameters.
    pub async fn execute(&self, statement: String, params: Vec<Value>) -> Result<Rows, SqlError> {
        self.blocking(move |conn| {
            let mut stmt = conn.prepare_cached(&statement).map_err(io)?;
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
        })
        .await
    }

    /// The rowid of the last insert on this connection.
    pub async fn last_insert_rowid(&self) -> i64 {
        self.blocking(|conn| Ok(conn.last_insert_rowid()))
            .await
            .unwrap_or(0)
    }

    /// Rows changed by the last statement on this connection.
    pub async fn changes(&self) -> u64 {
        self.blocking(|conn| Ok(conn.changes())).await.unwrap_or(0)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn all_value_types_round_trip_with_parameters() {
        let dir = tempfile::tempdir().expect("dir");
        let dbs =
            Arc::new(Databases::new(HashMap::new(), dir.path().join("db.sqlite")).expect("dbs"));
        let access = SqliteAccess::new(&["default".to_owned()], dbs.clone());
        assert_eq!(
            SqliteAccess::new(&[], dbs)
                .open("default".into())
                .await
                .err(),
            Some(SqlError::AccessDenied)
        );
        let conn = access.open("default".into()).await.expect("opens");
        conn.execute(
            "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)".into(),
            vec![],
        )
        .await
        .expect("create");
        let row = vec![
            Value::Integer(-7),
            Value::Real(2.5),
            Value::Text("héllo".into()),
            Value::Blob(vec![0, 255]),
            Value::Null,
        ];
        conn.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)".into(), row.clone())
            .await
            .expect("insert");
        assert_eq!(conn.changes().await, 1);
        assert_eq!(conn.last_insert_rowid().await, 1);
        let rows = conn
            .execute(
                "SELECT * FROM t WHERE i = ?".into(),
                vec![Value::Integer(-7)],
            )
            .await
            .expect("select");
        assert_eq!(rows.columns, vec!["i", "r", "s", "b", "n"]);
        assert_eq!(rows.rows, vec![row]);
        let err = conn
            .execute("SELEC nonsense".into(), vec![])
            .await
            .expect_err("syntax");
        assert!(matches!(err, SqlError::Io(_)));
    }
}
