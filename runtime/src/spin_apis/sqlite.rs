//! Spin's SQLite API on embedded SQLite files.
//!
//! A database is reachable only from components that list its label in
//! `sqlite_databases` (otherwise `access-denied`). `default` is
//! `.spin/sqlite_db.db` under the app (where `spin up` keeps it) unless the
//! runtime config maps it elsewhere. Each `open` gets a connection of its
//! own (so `changes` and `last-insert-rowid` are per connection, as in
//! Spin), taken from the idle connections that the same component left
//! (their prepared statements stay cached; a transaction left open is
//! rolled back, and temporary tables, views and triggers and attached
//! databases are dropped before reuse); an in-memory database is one shared
//! connection. Guests cannot `ATTACH` files (nor `VACUUM INTO` one) unless
//! the runtime config sets `allow_attach_file`, and then only files inside
//! the app directory: SQLite's authorizer checks every statement as it is
//! prepared. Files are in WAL mode, and transactions of one process take
//! turns at the database's writer gate, waiting at most the busy timeout.
//! Calls are blocking, so they run on tokio's blocking pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

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

/// Idle connections a file database keeps for reuse, per component.
const MAX_IDLE: usize = 16;

/// How long a statement waits for the database (SQLite's busy timeout, and
/// the writer gate) before it fails as `database is locked`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What SQLite says when the database stays busy; Spin passes it on as is.
const LOCKED: &str = "database is locked";

/// Who a connection is for: idle connections go back to their owner only,
/// so nothing one component leaves on a connection reaches another.
type Owner = Arc<str>;

/// Where a database lives, its idle connections and its writer gate.
#[derive(Debug)]
pub struct Database {
    path: Option<PathBuf>,
    /// The one connection of an in-memory database.
    memory: Option<Arc<Mutex<rusqlite::Connection>>>,
    /// Connections of earlier opens by owner, their statement caches warm.
    idle: Mutex<HashMap<Owner, Vec<rusqlite::Connection>>>,
    /// One transaction at a time per database in this process: a `BEGIN`
    /// waits here (parked, in order) rather than in SQLite's sleeping busy
    /// handler, which under load turns into long, unfair waits.
    writer: Arc<tokio::sync::Semaphore>,
    /// Whether this process has put the file in WAL mode (it stays so).
    wal: Mutex<bool>,
    /// What guests may attach, if anything.
    attach: AttachPolicy,
    /// How long a statement waits in SQLite's busy handler.
    busy_timeout: Duration,
    /// How long a `BEGIN` waits at the writer gate.
    gate_timeout: Duration,
}

/// Which files a guest's `ATTACH` may name.
#[derive(Debug, Clone, Default)]
pub enum AttachPolicy {
    /// None (Spin's `allow_attach_file` unset).
    #[default]
    Refuse,
    /// Files whose real path is inside this (resolved) app directory.
    InsideApp(PathBuf),
}

impl Database {
    /// A database in the file at `path`, or in memory with `None`; guests
    /// may attach what `attach` allows.
    pub fn new(path: Option<PathBuf>, attach: AttachPolicy) -> Result<Self, SqlError> {
        let memory = match path {
            Some(_) => None,
            None => {
                let conn = rusqlite::Connection::open_in_memory().map_err(io)?;
                guard(&conn, &attach);
                Some(Arc::new(Mutex::new(conn)))
            }
        };
        Ok(Self {
            path,
            memory,
            idle: Mutex::default(),
            writer: Arc::new(tokio::sync::Semaphore::new(1)),
            wal: Mutex::new(false),
            attach,
            busy_timeout: BUSY_TIMEOUT,
            gate_timeout: BUSY_TIMEOUT,
        })
    }

    /// The same database with other waits (tests make them short, or turn
    /// SQLite's own busy handler off to see that the gate does the waiting).
    #[cfg(test)]
    fn with_timeouts(mut self, busy: Duration, gate: Duration) -> Self {
        self.busy_timeout = busy;
        self.gate_timeout = gate;
        self
    }

    /// The file, if any.
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// A connection for one `open` by `owner`: an idle one of the same
    /// owner's when there is one.
    fn connect(self: &Arc<Self>, owner: &Owner) -> Result<Connection, SqlError> {
        let handle = match &self.memory {
            Some(memory) => Handle::Shared(memory.clone()),
            None => {
                // Reset on the way out of the pool, here on the blocking
                // pool rather than in `drop` on an async worker.
                let reused = self
                    .idle
                    .lock()
                    .ok()
                    .and_then(|mut idle| idle.get_mut(owner).and_then(Vec::pop))
                    .filter(|conn| reset(conn).is_ok());
                let conn = match reused {
                    Some(conn) => conn,
                    None => {
                        let conn = self.open_file()?;
                        guard(&conn, &self.attach);
                        conn
                    }
                };
                Handle::Pooled(Mutex::new(Some(conn)))
            }
        };
        Ok(Connection(Arc::new(Inner {
            handle,
            db: self.clone(),
            owner: owner.clone(),
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
        conn.busy_timeout(self.busy_timeout).map_err(io)?;
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

/// Installs the authorizer that keeps a guest's SQL inside its database:
/// every statement is checked as SQLite prepares it (including the ones
/// SQLite runs for `VACUUM INTO`), so no spelling of `ATTACH` gets past.
fn guard(conn: &rusqlite::Connection, attach: &AttachPolicy) {
    let attach = attach.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match ctx.action {
        AuthAction::Attach { filename } => attach_allowed(&attach, filename),
        AuthAction::Detach { .. } => match attach {
            AttachPolicy::Refuse => Authorization::Deny,
            AttachPolicy::InsideApp(_) => Authorization::Allow,
        },
        _ => Authorization::Allow,
    }));
}

/// Whether `filename` may be attached. The empty name is SQLite's own
/// private temporary database (plain `VACUUM` attaches one), never a file
/// anyone else can see.
fn attach_allowed(attach: &AttachPolicy, filename: &str) -> Authorization {
    if filename.is_empty() {
        return Authorization::Allow;
    }
    let AttachPolicy::InsideApp(root) = attach else {
        return Authorization::Deny;
    };
    // URIs and `:memory:` names are refused: only plain paths are checked.
    if filename.starts_with("file:") || filename.starts_with(':') {
        return Authorization::Deny;
    }
    let path = Path::new(filename);
    // A file that does not exist yet is judged by its directory.
    let resolved = path.canonicalize().or_else(|_| {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        parent
            .canonicalize()
            .map(|dir| dir.join(path.file_name().unwrap_or_default()))
    });
    match resolved {
        Ok(real) if real.starts_with(root) && !real.starts_with(root.join(".spin")) => {
            Authorization::Allow
        }
        _ => Authorization::Deny,
    }
}

/// Makes a pooled connection look new: what the last user left in the
/// temporary schema and any database it attached are dropped, then
/// `changes` and `last-insert-rowid` are zeroed.
fn reset(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let attached: Vec<String> = conn
        .prepare_cached("SELECT name FROM pragma_database_list WHERE name NOT IN ('main', 'temp')")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for name in attached {
        conn.execute("DETACH DATABASE ?1", [name])?;
    }
    let temp: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT type, name FROM temp.sqlite_master \
             WHERE type IN ('trigger', 'view', 'table') AND name NOT LIKE 'sqlite_%' \
             AND name != 'trib_reset' ORDER BY type = 'table'",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (kind, name) in temp {
        let kind = match kind.as_str() {
            "trigger" => "TRIGGER",
            "view" => "VIEW",
            _ => "TABLE",
        };
        conn.execute_batch(&format!(
            "DROP {kind} IF EXISTS temp.\"{}\"",
            name.replace('"', "\"\"")
        ))?;
    }
    conn.execute_batch(RESET)
}

/// The app's databases by label, shared by every instance.
#[derive(Debug, Default)]
pub struct Databases {
    dbs: HashMap<String, Arc<Database>>,
}

impl Databases {
    /// Databases by label; `default` is added at `default_path` (refusing
    /// attachments) unless given.
    pub fn new(
        mut dbs: HashMap<String, Arc<Database>>,
        default_path: PathBuf,
    ) -> Result<Self, SqlError> {
        if !dbs.contains_key("default") {
            dbs.insert(
                "default".into(),
                Arc::new(Database::new(Some(default_path), AttachPolicy::Refuse)?),
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
        // The operator's own statements: a connection of their own, with
        // no guest's restrictions.
        let result = match &db.memory {
            Some(memory) => memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .execute_batch(&sql)
                .map_err(io),
            None => db
                .open_file()
                .and_then(|c| c.execute_batch(&sql).map_err(io)),
        };
        result.map_err(|e| anyhow::anyhow!("--sqlite {spec}: {e}"))
    }
}

/// What one component may open.
#[derive(Debug, Clone)]
pub struct SqliteAccess {
    component: Owner,
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
    /// Whose idle list the connection returns to.
    owner: Owner,
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
        if let Ok(mut idle) = self.db.idle.lock() {
            let idle = idle.entry(self.owner.clone()).or_default();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
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
    /// Access for `component` to the `allowed` labels of `dbs`.
    pub fn new(component: &str, allowed: &[String], dbs: Arc<Databases>) -> Self {
        Self {
            component: component.into(),
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
        let owner = self.component.clone();
        tokio::task::spawn_blocking(move || db.connect(&owner))
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
            // Bounded: a transaction that never ends (or a guest waiting on
            // itself through a second connection) must not stall every
            // writer; the waiter fails as SQLite's busy handler would.
            let db = &self.0.db;
            let permit = tokio::time::timeout(db.gate_timeout, db.writer.clone().acquire_owned())
                .await
                .map_err(|_| SqlError::Io(LOCKED.to_owned()))?
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
        let access = SqliteAccess::new("test", &["default".to_owned()], dbs.clone());
        assert_eq!(
            SqliteAccess::new("test", &[], dbs)
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

    /// Databases whose `default` file waits `busy` in SQLite's busy handler
    /// and `gate` at the writer gate.
    fn with_waits(dir: &Path, busy: Duration, gate: Duration) -> Arc<Databases> {
        let db = Database::new(Some(dir.join("db.sqlite")), AttachPolicy::Refuse)
            .expect("db")
            .with_timeouts(busy, gate);
        let dbs = HashMap::from([("default".to_owned(), Arc::new(db))]);
        Arc::new(Databases::new(dbs, dir.join("unused.sqlite")).expect("dbs"))
    }

    #[tokio::test]
    async fn a_reused_connection_starts_clean_and_transactions_take_turns() {
        let dir = tempfile::tempdir().expect("dir");
        // SQLite's own busy handler is off: a second writer that got past
        // the gate would fail at once with "database is locked", so the
        // wait below can only be the gate's.
        let dbs = with_waits(dir.path(), Duration::ZERO, Duration::from_secs(30));
        let access = SqliteAccess::new("test", &["default".to_owned()], dbs);
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
        let mut waiting = tokio::spawn({
            let second = second.clone();
            async move { second.execute("BEGIN IMMEDIATE".into(), vec![]).await }
        });
        // Parked at the gate: neither through nor failed (without the gate
        // it would fail at once, the busy handler being off).
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut waiting)
                .await
                .is_err(),
            "the second BEGIN did not wait"
        );
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
        let access = SqliteAccess::new("test", &["default".to_owned()], dbs);
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

    #[tokio::test]
    async fn a_writer_waits_at_the_gate_only_as_long_as_the_busy_timeout() {
        let dir = tempfile::tempdir().expect("dir");
        let dbs = with_waits(dir.path(), Duration::ZERO, Duration::from_millis(200));
        let access = SqliteAccess::new("test", &["default".to_owned()], dbs);
        let first = access.open("default".into()).await.expect("opens");
        first.execute("BEGIN".into(), vec![]).await.expect("begin");
        // The same guest begins on a second connection: it would wait for
        // itself forever.
        let second = access.open("default".into()).await.expect("opens");
        let started = std::time::Instant::now();
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            second.execute("BEGIN".into(), vec![]),
        )
        .await
        .expect("the wait is bounded")
        .expect_err("busy");
        assert_eq!(err, SqlError::Io(LOCKED.to_owned()));
        assert!(started.elapsed() >= Duration::from_millis(200));
        // The first transaction is unharmed.
        first
            .execute("COMMIT".into(), vec![])
            .await
            .expect("commit");
        second
            .execute("BEGIN".into(), vec![])
            .await
            .expect("now free");
    }

    async fn sql(conn: &Connection, statement: &str) -> Result<Rows, SqlError> {
        conn.execute(statement.to_owned(), vec![]).await
    }

    #[tokio::test]
    async fn guests_cannot_attach_or_vacuum_into_files_by_default() {
        let dir = tempfile::tempdir().expect("dir");
        let dbs =
            Arc::new(Databases::new(HashMap::new(), dir.path().join("db.sqlite")).expect("dbs"));
        let access = SqliteAccess::new("test", &["default".to_owned()], dbs);
        let conn = access.open("default".into()).await.expect("opens");
        sql(&conn, "CREATE TABLE t (i INTEGER)")
            .await
            .expect("create");
        let other = dir.path().join("other.db");
        let kv = dir.path().join(".spin/sqlite_key_value.db");
        for statement in [
            format!("ATTACH '{}' AS o", other.display()),
            format!("attach database '{}' as kv", kv.display()),
            format!("ATTACH 'file:{}?mode=rwc' AS o", other.display()),
            format!("VACUUM INTO '{}'", other.display()),
        ] {
            let err = sql(&conn, &statement).await.expect_err(&statement);
            assert!(
                matches!(&err, SqlError::Io(m) if m.contains("not authorized") || m.contains("authorization denied")),
                "{statement}: {err:?}"
            );
        }
        assert!(!other.exists(), "a refused statement created a file");
        assert!(!kv.exists());
        // Plain VACUUM (SQLite's own temporary database) still works.
        sql(&conn, "VACUUM").await.expect("vacuum");
    }

    #[tokio::test]
    async fn allow_attach_file_admits_files_inside_the_app_only() {
        let app = tempfile::tempdir().expect("dir");
        let outside = tempfile::tempdir().expect("dir");
        let root = app.path().canonicalize().expect("resolves");
        let db = Database::new(
            Some(root.join("db.sqlite")),
            AttachPolicy::InsideApp(root.clone()),
        )
        .expect("db");
        let dbs = HashMap::from([("default".to_owned(), Arc::new(db))]);
        let dbs = Arc::new(Databases::new(dbs, root.join("unused.sqlite")).expect("dbs"));
        let access = SqliteAccess::new("test", &["default".to_owned()], dbs);
        let conn = access.open("default".into()).await.expect("opens");
        let inside = root.join("data/extra.db");
        std::fs::create_dir_all(inside.parent().expect("parent")).expect("dir");
        sql(&conn, &format!("ATTACH '{}' AS extra", inside.display()))
            .await
            .expect("inside the app");
        sql(&conn, "DETACH extra").await.expect("detach");
        let escape = outside.path().join("x.db");
        let sneaky = format!("{}/data/../../{}", root.display(), escape.display());
        for target in [
            escape.display().to_string(),
            sneaky,
            root.join(".spin/sqlite_key_value.db").display().to_string(),
        ] {
            let err = sql(&conn, &format!("ATTACH '{target}' AS o"))
                .await
                .expect_err(&target);
            assert!(
                matches!(&err, SqlError::Io(m) if m.contains("not authorized")),
                "{err:?}"
            );
        }
        assert!(!escape.exists());
    }

    #[tokio::test]
    async fn temporary_objects_never_reach_the_next_user_of_a_connection() {
        let dir = tempfile::tempdir().expect("dir");
        let dbs =
            Arc::new(Databases::new(HashMap::new(), dir.path().join("db.sqlite")).expect("dbs"));
        let a = SqliteAccess::new("a", &["default".to_owned()], dbs.clone());
        let b = SqliteAccess::new("b", &["default".to_owned()], dbs.clone());
        let conn = a.open("default".into()).await.expect("opens");
        sql(&conn, "CREATE TABLE events (i INTEGER)")
            .await
            .expect("create");
        sql(&conn, "CREATE TABLE spy (i INTEGER)")
            .await
            .expect("create");
        sql(&conn, "CREATE TEMP TABLE notes (x)")
            .await
            .expect("temp");
        sql(
            &conn,
            "CREATE TEMP TRIGGER copy AFTER INSERT ON main.events BEGIN INSERT INTO spy VALUES (new.i); END",
        )
        .await
        .expect("trigger");
        sql(&conn, "CREATE TEMP VIEW v AS SELECT 1")
            .await
            .expect("view");
        drop(conn);
        // Another component never gets A's connection; A's next open gets
        // it back with nothing of the last request's.
        for access in [&b, &a] {
            let conn = access.open("default".into()).await.expect("opens");
            let temp = sql(
                &conn,
                "SELECT name FROM temp.sqlite_master WHERE name != 'trib_reset'",
            )
            .await
            .expect("temp schema");
            assert_eq!(temp.rows, Vec::<Vec<Value>>::new());
            sql(&conn, "INSERT INTO events VALUES (1)")
                .await
                .expect("insert");
            drop(conn);
        }
        let conn = b.open("default".into()).await.expect("opens");
        let spied = sql(&conn, "SELECT count(*) FROM spy").await.expect("count");
        assert_eq!(spied.rows, vec![vec![Value::Integer(0)]]);
        let idle = dbs
            .get("default")
            .expect("db")
            .idle
            .lock()
            .expect("lock")
            .len();
        assert_eq!(idle, 2, "one idle list per component");
    }
}
