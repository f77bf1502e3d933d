//! One SQLite database: its file, its pooled connections (per owner,
//! reset on reuse, every guest statement checked by SQLite's authorizer),
//! its writer gate (one transaction at a time per database in this
//! process, waiting at most the busy timeout) and, for a file, its group
//! commit writer ([`group`]): guests' transactions and autocommit writes
//! run there and share WAL syncs; reads run on the guest's own connection.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use super::sqlite_value::{Counters, Kind, Rows, SqlError, Value, classify, io, run_counted};

#[path = "sqlite_group.rs"]
mod group;

use group::{GroupWriter, Member};

/// Idle connections a file database keeps for reuse, per component.
const MAX_IDLE: usize = 16;

use super::sqlite_file::BUSY_TIMEOUT;

/// What SQLite says when the database stays busy; Spin passes it on as is.
pub(super) const LOCKED: &str = "database is locked";

/// Who a connection is for: idle connections go back to their owner only,
/// so nothing one component leaves on a connection reaches another.
pub(super) type Owner = Arc<str>;

/// Where a database lives, its idle connections and its writer gate.
#[derive(Debug)]
pub struct Database {
    path: Option<PathBuf>,
    /// The one connection of an in-memory database.
    memory: Option<Arc<Mutex<rusqlite::Connection>>>,
    /// Connections of earlier opens by owner, their statement caches warm.
    pub(super) idle: Mutex<HashMap<Owner, Vec<rusqlite::Connection>>>,
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
    /// The group-commit writer (a file database's; unused in memory).
    group: GroupWriter,
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
            group: GroupWriter::new(),
        })
    }

    /// The same database with other waits (tests make them short, or turn
    /// SQLite's own busy handler off to see that the gate does the waiting).
    #[cfg(test)]
    pub(super) fn with_timeouts(mut self, busy: Duration, gate: Duration) -> Self {
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
    pub(super) fn connect(self: &Arc<Self>, owner: &Owner) -> Result<Connection, SqlError> {
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
            txn: tokio::sync::Mutex::new(Txn::None),
            counters: Mutex::default(),
        })))
    }

    /// Runs the operator's own SQL (`--sqlite`) on a connection of its own,
    /// with no guest's restrictions.
    pub(super) fn execute_trusted(&self, sql: &str) -> Result<(), SqlError> {
        match &self.memory {
            Some(memory) => memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .execute_batch(sql)
                .map_err(io),
            None => self.open_file()?.execute_batch(sql).map_err(io),
        }
    }

    /// A new connection to the file, in WAL mode: readers never block the
    /// writer, and a commit is one sequential write (still synced, so an
    /// acknowledged write survives a crash).
    fn open_file(&self) -> Result<rusqlite::Connection, SqlError> {
        let path = self.path.as_ref().ok_or(SqlError::NoSuchDatabase)?;
        // WAL once per process, by one connection at a time: switching the
        // journal mode needs the file to itself and does not wait for it.
        let mut wal = self.wal.lock().unwrap_or_else(|e| e.into_inner());
        let conn = super::sqlite_file::open(path, self.busy_timeout, !*wal).map_err(io)?;
        *wal = true;
        drop(wal);
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
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
    drop_private_state(conn)?;
    conn.execute_batch(RESET)
}

/// Whether a guest made `conn` its own: a temporary table, view, trigger
/// or index, or an attached database. Such a connection keeps its
/// statements and transactions to itself (they may name those objects),
/// outside group commit.
fn has_private_state(conn: &rusqlite::Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM temp.sqlite_master WHERE name != 'trib_reset') \
         OR EXISTS (SELECT 1 FROM pragma_database_list WHERE name NOT IN ('main', 'temp'))",
    )?
    .query_row([], |row| row.get(0))
}

/// Drops what a user left in the temporary schema and detaches what it
/// attached.
fn drop_private_state(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
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
    Ok(())
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
    /// The guest's transaction, if any (also serialises its statements).
    txn: tokio::sync::Mutex<Txn>,
    /// What `changes` and `last-insert-rowid` answer.
    counters: Mutex<Counters>,
}

/// Where a guest's transaction runs.
#[derive(Debug, Default)]
enum Txn {
    /// None open (or one the guest began with `SAVEPOINT`, on its own
    /// connection, outside the gate, as SQLite alone would run it).
    #[default]
    None,
    /// In the group writer.
    Member(Member),
    /// On the guest's own connection, holding the gate until the connection
    /// is back in autocommit (an in-memory database, or a connection with
    /// temporary objects or attachments of its own).
    Own(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit),
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
        // A transaction in the group writer is rolled back to its savepoint.
        *self.txn.get_mut() = Txn::None;
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

    fn counters(&self) -> Counters {
        *self.0.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_counters(&self, counters: Counters) {
        *self.0.counters.lock().unwrap_or_else(|e| e.into_inner()) = counters;
    }

    /// Runs one statement with positional parameters. On a file database a
    /// `BEGIN` joins the group writer (waiting at the writer gate) and the
    /// transaction's statements run there until its `COMMIT`, which returns
    /// once the group is synced, or its `ROLLBACK`; an `INSERT`, `UPDATE`
    /// or `DELETE` outside a transaction is a one-statement member. Reads
    /// outside a transaction run on the guest's own connection. In memory
    /// (nothing to sync), and on a connection with temporary objects or
    /// attachments of its own, a `BEGIN` waits at the gate and the
    /// transaction runs on the guest's connection.
    pub async fn execute(&self, statement: String, params: Vec<Value>) -> Result<Rows, SqlError> {
        let kind = classify(&statement);
        let db = self.0.db.clone();
        let mut txn = self.0.txn.lock().await;
        match &mut *txn {
            Txn::Member(member) => match kind {
                Kind::Begin => Err(SqlError::Io(
                    "cannot start a transaction within a transaction".to_owned(),
                )),
                Kind::Commit | Kind::Rollback => {
                    self.check_syntax(&statement).await?;
                    let Txn::Member(member) = std::mem::take(&mut *txn) else {
                        return Err(SqlError::InvalidConnection);
                    };
                    if kind == Kind::Commit {
                        GroupWriter::commit(member).await?;
                    } else {
                        GroupWriter::rollback(member).await?;
                    }
                    Ok(Rows::default())
                }
                _ => {
                    let (rows, counters) =
                        GroupWriter::run(member, statement, params, self.counters()).await?;
                    self.set_counters(counters);
                    Ok(rows)
                }
            },
            Txn::Own(_) => self.own(&mut txn, statement, params).await,
            Txn::None => {
                let pooled = matches!(self.0.handle, Handle::Pooled(_));
                match kind {
                    Kind::Begin if !pooled => {
                        *txn = Txn::Own(GroupWriter::gate(&db).await?);
                        self.own(&mut txn, statement, params).await
                    }
                    Kind::Begin | Kind::Write | Kind::With if pooled => {
                        match self.route(&statement, kind).await? {
                            Route::Own => self.own(&mut txn, statement, params).await,
                            Route::OwnExclusive => {
                                *txn = Txn::Own(GroupWriter::exclusive(&db).await?);
                                self.own(&mut txn, statement, params).await
                            }
                            Route::Group if kind == Kind::Begin => {
                                *txn = Txn::Member(GroupWriter::join(&db).await?);
                                Ok(Rows::default())
                            }
                            Route::Group => {
                                // One statement in a transaction of its own.
                                *txn = Txn::Member(GroupWriter::join(&db).await?);
                                let Txn::Member(member) = &mut *txn else {
                                    return Err(SqlError::InvalidConnection);
                                };
                                let ran =
                                    GroupWriter::run(member, statement, params, self.counters())
                                        .await;
                                let Txn::Member(member) = std::mem::take(&mut *txn) else {
                                    return Err(SqlError::InvalidConnection);
                                };
                                match ran {
                                    Ok((rows, counters)) => {
                                        GroupWriter::commit(member).await?;
                                        self.set_counters(counters);
                                        Ok(rows)
                                    }
                                    Err(e) => {
                                        let _ = GroupWriter::rollback(member).await;
                                        Err(e)
                                    }
                                }
                            }
                        }
                    }
                    _ => self.own(&mut txn, statement, params).await,
                }
            }
        }
    }

    /// Runs a statement on the guest's own connection; a transaction held
    /// there releases the gate once the connection is back in autocommit.
    async fn own(
        &self,
        txn: &mut Txn,
        statement: String,
        params: Vec<Value>,
    ) -> Result<Rows, SqlError> {
        let mut counters = self.counters();
        let (result, counters, autocommit) = self
            .blocking(move |conn| {
                let result = run_counted(conn, &statement, params, &mut counters);
                Ok((result, counters, conn.is_autocommit()))
            })
            .await?;
        self.set_counters(counters);
        if autocommit && matches!(txn, Txn::Own(_)) {
            *txn = Txn::None;
        }
        result
    }

    /// Where a `BEGIN` or a write outside a transaction runs: SQLite checks
    /// its syntax first (on the guest's connection, without running it).
    async fn route(&self, statement: &str, kind: Kind) -> Result<Route, SqlError> {
        let statement = statement.to_owned();
        self.blocking(move |conn| {
            let readonly = conn.prepare_cached(&statement).map_err(io)?.readonly();
            if !conn.is_autocommit() {
                // In a transaction the guest began with `SAVEPOINT`: SQLite
                // answers (a `BEGIN` fails there, as it should).
                return Ok(Route::Own);
            }
            let private = has_private_state(conn).map_err(io)?;
            Ok(match kind {
                Kind::Begin if private => Route::OwnExclusive,
                Kind::With if readonly => Route::Own,
                _ if private => Route::Own,
                _ => Route::Group,
            })
        })
        .await
    }

    /// SQLite's syntax check of a `COMMIT` or `ROLLBACK` (prepared, never
    /// run, on the guest's connection); the plain spellings need none.
    async fn check_syntax(&self, statement: &str) -> Result<(), SqlError> {
        let plain = statement.trim().trim_end_matches(';').trim_end();
        if [
            "COMMIT",
            "END",
            "ROLLBACK",
            "COMMIT TRANSACTION",
            "END TRANSACTION",
            "ROLLBACK TRANSACTION",
        ]
        .iter()
        .any(|p| p.eq_ignore_ascii_case(plain))
        {
            return Ok(());
        }
        let statement = statement.to_owned();
        self.blocking(move |conn| conn.prepare(&statement).map(drop).map_err(io))
            .await
    }

    /// The rowid of the last insert on this connection.
    pub async fn last_insert_rowid(&self) -> i64 {
        self.counters().rowid
    }

    /// Rows changed by the last statement on this connection.
    pub async fn changes(&self) -> u64 {
        self.counters().changes
    }
}

/// Where [`Connection::route`] sends a statement.
enum Route {
    /// The guest's own connection, as is.
    Own,
    /// The guest's own connection, holding the gate (the group committed).
    OwnExclusive,
    /// The group writer.
    Group,
}
