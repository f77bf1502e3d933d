//! Spin's SQLite API on embedded SQLite files.
//!
//! A database is reachable only from components that list its label in
//! `sqlite_databases` (otherwise `access-denied`). `default` is
//! `.spin/sqlite_db.db` under the app (where `spin up` keeps it) unless the
//! runtime config maps it elsewhere. Each `open` gets a connection of its
//! own (so `changes` and `last-insert-rowid` are per connection, as in
//! Spin), taken from the database's idle connections when it can be (their
//! prepared statements stay cached; a transaction a guest left open is
//! rolled back before reuse); an in-memory database is one shared
//! connection. Files are in WAL mode, and transactions of one process take
//! turns at the database's writer gate. Calls are blocking, so they run on
//! tokio's blocking pool.

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

/// Idle connections a file database keeps for reuse.
const MAX_IDLE: usize = 16;

/// Where a database lives, its idle connections and its writer gate.
#[derive(Debug)]
pub struct Database {
    path: Option<PathBuf>,
    /// The one connection of an in-memory database.
    memory: Option<Arc<Mutex<rusqlite::Connection>>>,
    /// Connections of earlier opens, their statement caches warm.
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// One transaction at a time per database in this process: a `BEGIN`
    /// waits here (parked, in order) rather than in SQLite's sleeping busy
    /// handler, which under load turns into long, unfair waits.
    writer: Arc<tokio::sync::Semaphore>,
    /// Whether this process has put the file in WAL mode (it stays so).
    wal: Mutex<bool>,
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
        Ok(Self {
            path,
            memory,
            idle: Mutex::default(),
            writer: Arc::new(tokio::sync::Semaphore::new(1)),
            wal: Mutex::new(false),
        })
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// A connection for one `open`: an idle one when there is one.
    pub fn connect(self: &Arc<Self>) -> Result<Connection, SqlError> {
        let handle = match &self.memory {
            Some(memory) => Handle::Shared(memory.clone()),
            None => {
                // Reset on the way out of the pool, here on the blocking
                // pool rather than in `drop` on an async worker.
                let reused = self
                    .idle
                    .lock()
                    .ok()
                    .and_then(|mut idle| idle.pop())
                    .filter(|conn| conn.execute_batch(RESET).is_ok());
                let conn = match reused {
                    Some(conn) => conn,
                    None => self.open_file()?,
                };
                Handle::Pooled(Mutex::new(Some(conn)))
            }
        };
        Ok(Connection(Arc::new(Inner {
            handle,
            db: self.clone(),
            permit: Mutex::new(None),
        })))
    }

    /// A new connection to the file, in WAL mode: readers never block the
    /// writer, and a commit is one sequential write (still synced, so an
    /// acknowledged write survives a crash).
    fn open_file(&self) -> Result<rusqlite::Connection, SqlError> {
        let path = self.path.as_ref().ok_or(SqlError::NoSuchDatabase)?;
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = rusqlite::Connection::open(path).map_err(io)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(io)?;
        // Once per process, by one connection at a time: switching the
        // journal mode needs the file to itself and does not wait for it.
        let mut wal = self.wal.lock().unwrap_or_else(|e| e.into_inner());
        if !*wal {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(io)?;
            *wal = true;
        }
        drop(wal);
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
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
        conn.0
            .with(|c| c.execute_batch(&sql).map_err(io))
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
pub struct Connection(Arc<Inner>);

/// The state behind one `open`.
#[derive(Debug)]
struct Inner {
    handle: Handle,
    db: Arc<Database>,
    /// Held from `BEGIN` until the connection is back in autocommit.
    permit: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

/// Run on a connection taken from the pool: its next user must
/// see `changes` and `last-insert-rowid` at 0, as on a new connection
/// (SQLite has no call to reset them, but an insert with rowid 0 and an
/// update of no rows do), and nothing of this user's.
const RESET: &str = "CREATE TEMP TABLE IF NOT EXISTS trib_reset (x);
    INSERT INTO temp.trib_reset (rowid, x) VALUES (0, 0);
    DELETE FROM temp.trib_reset;
    UPDATE temp.trib_reset SET x = 0 WHERE 0;";

#[derive(Debug)]
enum Handle {
    /// A file connection, returned to the pool when the open is dropped.
    Pooled(Mutex<Option<rusqlite::Connection>>),
    /// The in-memory database's one connection.
    Shared(Arc<Mutex<rusqlite::Connection>>),
}

impl Inner {
    fn with<R>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<R, SqlError>,
    ) -> Result<R, SqlError> {
        match &self.handle {
            Handle::Pooled(conn) => {
                let guard = conn.lock().unwrap_or_else(|e| e.into_inner());
                f(guard.as_ref().ok_or(SqlError::InvalidConnection)?)
            }
            Handle::Shared(conn) => f(&conn.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

impl Drop for Inner {
    /// Rolls back what the guest left open, then keeps the connection.
    fn drop(&mut self) {
        let Handle::Pooled(conn) = &self.handle else {
            return;
        };
        let Some(conn) = conn.lock().ok().and_then(|mut c| c.take()) else {
            return;
        };
        // Rolled back at once: an idle connection must not hold the lock.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        if let Ok(mut idle) = self.db.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }
}

/// Whether `statement` starts a transaction (`BEGIN ...`).
fn begins_transaction(statement: &str) -> bool {
    statement
        .trim_start()
        .get(..5)
        .is_some_and(|w| w.eq_ignore_ascii_case("begin"))
}

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
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || inner.with(f))
            .await
            .map_err(|e| SqlError::Io(e.to_string()))?
    }

    /// Runs one statement with positional parameters. A `BEGIN` first
    /// waits for the database's writer gate, which opens again once the
    /// connection is back in autocommit.
    pub async fn execute(&self, statement: String, params: Vec<Value>) -> Result<Rows, SqlError> {
        let holds_permit = self.0.permit.lock().is_ok_and(|p| p.is_some());
        if begins_transaction(&statement) && !holds_permit {
            let permit = self
                .0
                .db
                .writer
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| SqlError::Io(e.to_string()))?;
            if let Ok(mut slot) = self.0.permit.lock() {
                *slot = Some(permit);
            }
        }
        let (result, autocommit) = self
            .blocking(move |conn| {
                let result = run(conn, &statement, params);
                Ok((result, conn.is_autocommit()))
            })
            .await?;
        if autocommit && let Ok(mut slot) = self.0.permit.lock() {
            slot.take();
        }
        result
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

fn run(conn: &rusqlite::Connection, statement: &str, params: Vec<Value>) -> Result<Rows, SqlError> {
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

    #[tokio::test]
    async fn a_reused_connection_starts_clean_and_transactions_take_turns() {
        let dir = tempfile::tempdir().expect("dir");
        let dbs =
            Arc::new(Databases::new(HashMap::new(), dir.path().join("db.sqlite")).expect("dbs"));
        let access = SqliteAccess::new(&["default".to_owned()], dbs);
        let first = access.open("default".into()).await.expect("opens");
        first
            .execute("CREATE TABLE t (i INTEGER)".into(), vec![])
            .await
            .expect("create");
        first
            .execute("INSERT INTO t VALUES (1)".into(), vec![])
            .await
            .expect("insert");
        first.execute("BEGIN".into(), vec![]).await.expect("begin");
        first
            .execute("INSERT INTO t VALUES (2)".into(), vec![])
            .await
            .expect("insert");
        // A second writer waits at the gate while the first is inside.
        let second = access.open("default".into()).await.expect("opens");
        let waiting = tokio::spawn({
            let second = second.clone();
            async move { second.execute("BEGIN IMMEDIATE".into(), vec![]).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(first); // left open: rolled back, then pooled
        waiting.await.expect("joins").expect("begins");
        second
            .execute("COMMIT".into(), vec![])
            .await
            .expect("commit");
        drop(second);
        let third = access.open("default".into()).await.expect("opens");
        assert_eq!(
            (third.changes().await, third.last_insert_rowid().await),
            (0, 0)
        );
        let rows = third
            .execute("SELECT count(*) FROM t".into(), vec![])
            .await
            .expect("count");
        assert_eq!(rows.rows, vec![vec![Value::Integer(1)]]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_opens_of_a_new_file_all_write() {
        let dir = tempfile::tempdir().expect("dir");
        let dbs =
            Arc::new(Databases::new(HashMap::new(), dir.path().join("db.sqlite")).expect("dbs"));
        let access = SqliteAccess::new(&["default".to_owned()], dbs);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let access = access.clone();
                tokio::spawn(async move {
                    let conn = access.open("default".into()).await?;
                    conn.execute("CREATE TABLE IF NOT EXISTS t (i INTEGER)".into(), vec![])
                        .await?;
                    conn.execute("BEGIN IMMEDIATE".into(), vec![]).await?;
                    conn.execute("INSERT INTO t VALUES (?)".into(), vec![Value::Integer(i)])
                        .await?;
                    conn.execute("COMMIT".into(), vec![]).await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("joins").expect("writes");
        }
        let conn = access.open("default".into()).await.expect("opens");
        let rows = conn
            .execute("SELECT count(*) FROM t".into(), vec![])
            .await
            .expect("count");
        assert_eq!(rows.rows, vec![vec![Value::Integer(8)]]);
    }
}
