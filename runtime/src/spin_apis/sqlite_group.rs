//! Group commit: guest transactions on one SQLite file share WAL syncs.
//!
//! With `synchronous=FULL` every `COMMIT` syncs the WAL, and under
//! concurrent load that sync is most of a transaction's time. Here one
//! writer connection per database holds an outer transaction; a guest's
//! `BEGIN` waits at the writer gate (one guest transaction at a time, as
//! before) and becomes `SAVEPOINT trib_member` on the writer, its
//! statements run there, and its `COMMIT` is `RELEASE trib_member` followed
//! by a wait for the group's real `COMMIT`. The member that finds nobody
//! waiting at the gate (or a full group) commits the outer transaction,
//! with one sync, and every member's `COMMIT` returns its outcome: a failed
//! group commit fails them all, so no member is acknowledged unless its
//! data is on disk. A guest's `ROLLBACK` rolls back its savepoint only.
//!
//! Isolation: members run one after another (the gate), so a member sees
//! the earlier members' released work, exactly as if they had committed
//! first; readers on other connections see none of it until the group is
//! committed, i.e. synced. Nothing of one member's connection state reaches
//! the next: its temporary objects are dropped when it ends, transaction
//! and `trib_member` savepoint statements of its own are refused, and so
//! are pragmas that change the connection.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::{AttachPolicy, Database, LOCKED, attach_allowed, drop_private_state};
use crate::spin_apis::sqlite_value::{Counters, Rows, SqlError, Value, io, run_counted};
#[cfg(test)]
use crate::spin_apis::sqlite_value::{Kind, classify};

/// The savepoint a member's transaction is on the writer.
const SAVEPOINT: &str = "trib_member";

/// Members after which a group is committed even with guests waiting, so a
/// steady stream of transactions never holds acknowledgements back long.
const MAX_MEMBERS: usize = 64;

/// Age after which a group is committed even with guests waiting.
const MAX_AGE: Duration = Duration::from_millis(20);

/// Pragmas that change how the connection behaves (durability, locking,
/// constraints...): a member may not set them on the shared writer.
const CONNECTION_PRAGMAS: &[&str] = &[
    "analysis_limit",
    "auto_vacuum",
    "automatic_index",
    "busy_timeout",
    "cache_size",
    "cache_spill",
    "case_sensitive_like",
    "cell_size_check",
    "checkpoint_fullfsync",
    "count_changes",
    "defer_foreign_keys",
    "foreign_keys",
    "fullfsync",
    "hard_heap_limit",
    "ignore_check_constraints",
    "journal_mode",
    "journal_size_limit",
    "legacy_alter_table",
    "locking_mode",
    "mmap_size",
    "query_only",
    "read_uncommitted",
    "recursive_triggers",
    "reverse_unordered_selects",
    "secure_delete",
    "soft_heap_limit",
    "synchronous",
    "temp_store",
    "threads",
    "trusted_schema",
    "wal_autocheckpoint",
    "wal_checkpoint",
    "writable_schema",
];

/// One database's group-commit writer: its connection, the open group and
/// who waits at the gate.
#[derive(Debug)]
pub(crate) struct GroupWriter {
    /// `BEGIN`s waiting at the gate: a member hands the commit on to them
    /// rather than syncing alone.
    waiting: AtomicUsize,
    /// The writer connection and its outer transaction.
    state: Mutex<WriterState>,
    /// Groups committed (each one sync), for tests and logs.
    commits: AtomicU64,
    /// Test hook: the next group commit fails as SQLite's would.
    #[cfg(test)]
    pub(super) fail_commits: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct WriterState {
    conn: Option<rusqlite::Connection>,
    /// Set while trib itself runs a statement: the authorizer lets only
    /// trib begin, commit or roll back, or touch `trib_member`.
    trusted: Arc<AtomicBool>,
    /// Set by the authorizer when a member creates a temporary object,
    /// which is dropped when the member ends.
    temp_created: Arc<AtomicBool>,
    /// The group whose outer transaction is open, if any.
    open: Option<Arc<Group>>,
}

/// One outer transaction and the members in it.
#[derive(Debug)]
pub(crate) struct Group {
    /// Members whose work is released into the outer transaction.
    released: AtomicUsize,
    started: Instant,
    /// `None` until the group is committed or has failed.
    outcome: watch::Sender<Option<Result<(), String>>>,
}

impl Group {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            released: AtomicUsize::new(0),
            started: Instant::now(),
            outcome: watch::channel(None).0,
        })
    }

    fn finish(&self, outcome: Result<(), String>) {
        self.outcome.send_replace(Some(outcome));
    }

    fn outcome(&self) -> Option<Result<(), String>> {
        self.outcome.borrow().clone()
    }

    /// Waits until the group is committed or has failed.
    async fn settled(&self) -> Result<(), String> {
        let mut rx = self.outcome.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Ok(())),
            Err(_) => Err("the group commit was abandoned".to_owned()),
        }
    }
}

/// A guest transaction in a group: it holds the gate until it ends. One
/// dropped unfinished (its guest gone, a cancelled call) is rolled back.
#[derive(Debug)]
pub(crate) struct Member {
    db: Arc<Database>,
    parts: Option<Parts>,
}

#[derive(Debug)]
struct Parts {
    permit: OwnedSemaphorePermit,
    group: Arc<Group>,
    /// Set when the outer transaction ended under this member (a statement
    /// with `OR ROLLBACK`, `RAISE(ROLLBACK)`, or an I/O error rolled it
    /// back): its work is gone and its `COMMIT` fails.
    aborted: Option<String>,
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(parts) = self.parts.take() {
            let _ = self.db.group.abandon(parts);
        }
    }
}

/// Locks `m`, also after a panic elsewhere (the state stays consistent:
/// every change to it is one assignment).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GroupWriter {
    /// A writer for one database; its connection opens with the first
    /// member.
    pub(super) fn new() -> Self {
        Self {
            waiting: AtomicUsize::new(0),
            state: Mutex::default(),
            commits: AtomicU64::new(0),
            #[cfg(test)]
            fail_commits: Arc::default(),
        }
    }

    /// Groups committed so far.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// `BEGIN`s waiting at the gate now.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Waits for the gate (at most the gate timeout), counted as a waiter
    /// so the member ahead hands its commit on.
    pub(super) async fn gate(db: &Arc<Database>) -> Result<OwnedSemaphorePermit, SqlError> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        db.group.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&db.group.waiting);
        // Bounded: a transaction that never ends (or a guest waiting on
        // itself through a second connection) must not stall every writer;
        // the waiter fails as SQLite's busy handler would.
        tokio::time::timeout(db.gate_timeout, db.writer.clone().acquire_owned())
            .await
            .map_err(|_| SqlError::Io(LOCKED.to_owned()))?
            .map_err(|e| SqlError::Io(e.to_string()))
    }

    /// Takes the gate for work outside the group (a transaction on a
    /// guest's own connection): the open group, if any, is committed first
    /// so the writer holds no lock.
    pub(super) async fn exclusive(db: &Arc<Database>) -> Result<OwnedSemaphorePermit, SqlError> {
        let permit = Self::gate(db).await?;
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = lock(&db.group.state);
            db.group.commit_open(&mut state);
            permit
        })
        .await
        .map_err(|e| SqlError::Io(e.to_string()))
    }

    /// Starts a member: through the gate, then a savepoint in the open
    /// group (a new group begins the outer transaction).
    pub(super) async fn join(db: &Arc<Database>) -> Result<Member, SqlError> {
        let permit = Self::gate(db).await?;
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = lock(&db.group.state);
            let group = db.group.savepoint(&db, &mut state)?;
            drop(state);
            Ok(Member {
                db,
                parts: Some(Parts {
                    permit,
                    group,
                    aborted: None,
                }),
            })
        })
        .await
        .map_err(|e| SqlError::Io(e.to_string()))?
    }

    /// The open group with a fresh `trib_member` savepoint in it.
    fn savepoint(&self, db: &Database, state: &mut WriterState) -> Result<Arc<Group>, SqlError> {
        if state.conn.is_none() {
            let conn = db.open_file()?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(io)?;
            writer_guard(
                &conn,
                db.attach.clone(),
                state.trusted.clone(),
                state.temp_created.clone(),
            );
            #[cfg(test)]
            {
                let fail = self.fail_commits.clone();
                conn.commit_hook(Some(move || fail.swap(false, Ordering::Relaxed)));
            }
            state.conn = Some(conn);
        }
        let group = match &state.open {
            Some(group) => group.clone(),
            None => {
                trusted(state, "BEGIN IMMEDIATE").map_err(io)?;
                let group = Group::new();
                state.open = Some(group.clone());
                group
            }
        };
        if let Err(e) = trusted(state, &format!("SAVEPOINT {SAVEPOINT}")) {
            self.close_if_empty(state);
            return Err(io(e));
        }
        Ok(group)
    }

    /// Runs a member's statement on the writer.
    pub(super) async fn run(
        member: &mut Member,
        statement: String,
        params: Vec<Value>,
        counters: Counters,
    ) -> Result<(Rows, Counters), SqlError> {
        let parts = member.parts.as_mut().ok_or(SqlError::InvalidConnection)?;
        if let Some(why) = &parts.aborted {
            return Err(SqlError::Io(why.clone()));
        }
        let db = member.db.clone();
        let group = parts.group.clone();
        let (result, aborted) = tokio::task::spawn_blocking(move || {
            let mut state = lock(&db.group.state);
            let conn = state.conn.as_ref().ok_or(SqlError::InvalidConnection)?;
            let mut counters = counters;
            let result = run_counted(conn, &statement, params, &mut counters);
            let aborted = conn.is_autocommit();
            if aborted {
                // The statement ended the outer transaction: every member's
                // released work is gone, so none of them may be
                // acknowledged.
                let why = format!(
                    "the transaction was rolled back: {}",
                    result
                        .as_ref()
                        .err()
                        .map_or("by the statement".to_owned(), ToString::to_string)
                );
                tracing::warn!("sqlite group commit: {why}");
                group.finish(Err(why.clone()));
                state.open = None;
                drop_temp(&mut state);
                return Ok((result.map(|rows| (rows, counters)), Some(why)));
            }
            Ok((result.map(|rows| (rows, counters)), None))
        })
        .await
        .map_err(|e| SqlError::Io(e.to_string()))??;
        if aborted.is_some()
            && let Some(parts) = member.parts.as_mut()
        {
            parts.aborted = aborted;
        }
        result
    }

    /// Ends a member with `COMMIT`: its savepoint is released into the
    /// group, and it returns once the group is committed (synced), with
    /// the group's outcome.
    pub(super) async fn commit(mut member: Member) -> Result<(), SqlError> {
        let db = member.db.clone();
        let Parts {
            permit,
            group,
            aborted,
        } = member.parts.take().ok_or(SqlError::InvalidConnection)?;
        if let Some(why) = aborted {
            return Err(SqlError::Io(why));
        }
        let leader = {
            let db = db.clone();
            let group = group.clone();
            tokio::task::spawn_blocking(move || {
                let mut state = lock(&db.group.state);
                if let Err(e) = trusted(&state, &format!("RELEASE {SAVEPOINT}")) {
                    // Not released: roll this member back, the group stays.
                    let _ = rollback_member(&state);
                    drop_temp(&mut state);
                    db.group.close_if_empty(&mut state);
                    return Err(io(e));
                }
                drop_temp(&mut state);
                let released = group.released.fetch_add(1, Ordering::Relaxed) + 1;
                let lead = db.group.waiting.load(Ordering::Relaxed) == 0
                    || released >= MAX_MEMBERS
                    || group.started.elapsed() >= MAX_AGE;
                if lead {
                    db.group.commit_open(&mut state);
                }
                drop(permit);
                Ok(lead)
            })
            .await
            .map_err(|e| SqlError::Io(e.to_string()))??
        };
        if !leader {
            // A guest is waiting to join: it (or a later member) commits.
            // Should everyone behind this member leave instead, this task
            // takes the gate and commits the group itself; spawned, so it
            // runs even if this guest is gone.
            tokio::spawn(Self::flush(db, group.clone()));
        }
        group.settled().await.map_err(SqlError::Io)
    }

    /// Ends a member with `ROLLBACK`: its savepoint is rolled back, the
    /// rest of the group is untouched.
    pub(super) async fn rollback(mut member: Member) -> Result<(), SqlError> {
        let parts = member.parts.take().ok_or(SqlError::InvalidConnection)?;
        let db = member.db.clone();
        tokio::task::spawn_blocking(move || db.group.abandon(parts))
            .await
            .map_err(|e| SqlError::Io(e.to_string()))?
    }

    /// Rolls a member back (also when its guest is gone mid-transaction).
    fn abandon(&self, parts: Parts) -> Result<(), SqlError> {
        let Parts {
            permit, aborted, ..
        } = parts;
        let mut state = lock(&self.state);
        let result = match aborted {
            // The outer transaction is gone, and with it the savepoint.
            Some(_) => Ok(()),
            None => rollback_member(&state).map_err(io),
        };
        drop_temp(&mut state);
        self.close_if_empty(&mut state);
        drop(permit);
        result
    }

    /// Ends an outer transaction nobody has released anything into (it
    /// would hold the write lock for nothing).
    fn close_if_empty(&self, state: &mut WriterState) {
        let empty = state
            .open
            .as_ref()
            .is_some_and(|g| g.released.load(Ordering::Relaxed) == 0);
        if empty {
            let _ = trusted(state, "ROLLBACK");
            if let Some(group) = state.open.take() {
                group.finish(Ok(()));
            }
        }
    }

    /// Commits the open group, if any (the caller holds the gate), and
    /// tells its members.
    fn commit_open(&self, state: &mut WriterState) {
        let Some(group) = state.open.take() else {
            return;
        };
        let outcome = trusted(state, "COMMIT").map_err(|e| e.to_string());
        if let Err(why) = &outcome {
            // Whatever SQLite left, none of it is acknowledged.
            if state.conn.as_ref().is_some_and(|c| !c.is_autocommit()) {
                let _ = trusted(state, "ROLLBACK");
            }
            tracing::warn!(
                members = group.released.load(Ordering::Relaxed),
                "sqlite group commit failed: {why}"
            );
        } else {
            self.commits.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(
                members = group.released.load(Ordering::Relaxed),
                "sqlite group committed"
            );
        }
        group.finish(outcome);
    }

    /// Commits `group` unless someone else does first: waits for the gate
    /// or the group's outcome, whichever comes first.
    async fn flush(db: Arc<Database>, group: Arc<Group>) {
        let ours = group.clone();
        let gate = db.writer.clone();
        tokio::select! {
            _ = ours.settled() => {}
            permit = gate.acquire_owned() => {
                let Ok(permit) = permit else { return };
                let _ = tokio::task::spawn_blocking(move || {
                    let mut state = lock(&db.group.state);
                    let ours = state.open.as_ref().is_some_and(|g| Arc::ptr_eq(g, &group));
                    if ours && group.outcome().is_none() {
                        db.group.commit_open(&mut state);
                    }
                    drop(permit);
                })
                .await;
            }
        }
    }
}

/// Runs trib's own statement on the writer, past the authorizer (prepared
/// afresh each time: a cached statement would be found by a guest sending
/// the same text, and skip the authorizer).
fn trusted(state: &WriterState, sql: &str) -> rusqlite::Result<()> {
    let conn = state.conn.as_ref().ok_or(rusqlite::Error::InvalidQuery)?;
    state.trusted.store(true, Ordering::Relaxed);
    let result = conn.execute_batch(sql);
    state.trusted.store(false, Ordering::Relaxed);
    result
}

/// Undoes the current member's savepoint.
fn rollback_member(state: &WriterState) -> rusqlite::Result<()> {
    trusted(
        state,
        &format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}"),
    )
}

/// Drops what a member created in the temporary schema, so the next member
/// (maybe another component) never sees it.
fn drop_temp(state: &mut WriterState) {
    if !state.temp_created.swap(false, Ordering::Relaxed) {
        return;
    }
    if let Some(conn) = &state.conn {
        state.trusted.store(true, Ordering::Relaxed);
        let dropped = drop_private_state(conn);
        state.trusted.store(false, Ordering::Relaxed);
        if let Err(e) = dropped {
            // Never reuse a connection that may carry one member's objects.
            tracing::warn!("sqlite group writer: cannot drop temporary objects: {e}");
            if state.open.is_none() {
                state.conn = None;
            }
        }
    }
}

/// The writer's authorizer: the guests' rules ([`super::guard`]) plus the
/// group's own (no transaction control, no touching `trib_member`, no
/// connection pragmas) unless trib itself is running a statement; notes
/// every temporary object created.
fn writer_guard(
    conn: &rusqlite::Connection,
    attach: AttachPolicy,
    trusted: Arc<AtomicBool>,
    temp_created: Arc<AtomicBool>,
) {
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if trusted.load(Ordering::Relaxed) {
            return Authorization::Allow;
        }
        match ctx.action {
            AuthAction::Attach { filename } => attach_allowed(&attach, filename),
            AuthAction::Transaction { .. } => Authorization::Deny,
            AuthAction::Savepoint { savepoint_name, .. }
                if savepoint_name.eq_ignore_ascii_case(SAVEPOINT) =>
            {
                Authorization::Deny
            }
            AuthAction::Pragma {
                pragma_name,
                pragma_value: Some(_),
            } if CONNECTION_PRAGMAS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(pragma_name)) =>
            {
                Authorization::Deny
            }
            AuthAction::CreateTempIndex { .. }
            | AuthAction::CreateTempTable { .. }
            | AuthAction::CreateTempTrigger { .. }
            | AuthAction::CreateTempView { .. } => {
                temp_created.store(true, Ordering::Relaxed);
                Authorization::Allow
            }
            _ => Authorization::Allow,
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::super::{Connection, Owner};
    use super::*;

    #[test]
    fn statements_are_classified_by_their_first_words() {
        for (sql, kind) in [
            ("BEGIN", Kind::Begin),
            ("  begin immediate transaction", Kind::Begin),
            ("/* hi */ BEGIN", Kind::Begin),
            ("-- note\nCOMMIT", Kind::Commit),
            ("END TRANSACTION", Kind::Commit),
            ("ROLLBACK", Kind::Rollback),
            ("rollback transaction;", Kind::Rollback),
            ("ROLLBACK TO sp", Kind::Other),
            ("ROLLBACK TRANSACTION TO SAVEPOINT sp", Kind::Other),
            ("INSERT INTO t VALUES (1)", Kind::Write),
            ("(insert", Kind::Write),
            ("WITH x AS (SELECT 1) SELECT * FROM x", Kind::With),
            ("SELECT 1", Kind::Other),
            ("CREATE TABLE t (i)", Kind::Other),
            ("", Kind::Other),
            ("-- only a comment", Kind::Other),
            ("BEGINX", Kind::Other),
        ] {
            assert_eq!(classify(sql), kind, "{sql:?}");
        }
    }

    /// A file database with table `t (i INTEGER UNIQUE)`.
    fn database(dir: &std::path::Path) -> Arc<Database> {
        let db =
            Arc::new(Database::new(Some(dir.join("db.sqlite")), AttachPolicy::Refuse).expect("db"));
        db.execute_trusted("CREATE TABLE t (i INTEGER UNIQUE)")
            .expect("create");
        db
    }

    fn connect(db: &Arc<Database>) -> Connection {
        let owner: Owner = "test".into();
        db.connect(&owner).expect("connects")
    }

    async fn sql(conn: &Connection, statement: &str) -> Result<Rows, SqlError> {
        conn.execute(statement.to_owned(), vec![]).await
    }

    /// What another process sees: only what is committed (synced).
    fn committed(db: &Database) -> Vec<i64> {
        let conn = rusqlite::Connection::open(db.path().expect("file")).expect("opens");
        let mut stmt = conn
            .prepare("SELECT i FROM t ORDER BY i")
            .expect("prepares");
        stmt.query_map([], |row| row.get(0))
            .expect("queries")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// Waits until `n` `BEGIN`s wait at the gate.
    async fn until_waiting(db: &Database, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while db.group.waiting() != n {
            assert!(Instant::now() < deadline, "never {n} waiting");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A: BEGIN, INSERT `a`; B's BEGIN waits; A's COMMIT starts (it must
    /// wait for the group). Returns A's pending COMMIT and B in its
    /// transaction.
    async fn two_members(
        db: &Arc<Database>,
        a: i64,
    ) -> (tokio::task::JoinHandle<Result<Rows, SqlError>>, Connection) {
        let first = connect(db);
        sql(&first, "BEGIN IMMEDIATE").await.expect("begin");
        sql(&first, &format!("INSERT INTO t VALUES ({a})"))
            .await
            .expect("insert");
        let second = connect(db);
        let begin = tokio::spawn({
            let second = second.clone();
            async move { sql(&second, "BEGIN").await }
        });
        until_waiting(db, 1).await;
        let mut commit = tokio::spawn(async move { sql(&first, "COMMIT").await });
        begin.await.expect("joins").expect("second begins");
        // Released into the group, not yet committed: A waits, and nobody
        // else sees its row.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut commit)
                .await
                .is_err(),
            "A's COMMIT returned before the group was committed"
        );
        assert!(
            !committed(db).contains(&a),
            "A's row is visible before its sync"
        );
        (commit, second)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_transactions_share_one_commit_and_all_are_durable() {
        let dir = tempfile::tempdir().expect("dir");
        let db = database(dir.path());
        let (commit, second) = two_members(&db, 1).await;
        // B sees A's released row, as it would after A's commit.
        let rows = sql(&second, "SELECT count(*) FROM t").await.expect("count");
        assert_eq!(rows.rows, vec![vec![Value::Integer(1)]]);
        sql(&second, "INSERT INTO t VALUES (2), (3)")
            .await
            .expect("insert");
        assert_eq!(
            (second.changes().await, second.last_insert_rowid().await),
            (2, 3)
        );
        let before = db.group.commits();
        sql(&second, "COMMIT").await.expect("B commits");
        commit.await.expect("joins").expect("A commits");
        assert_eq!(db.group.commits() - before, 1, "one sync for both");
        assert_eq!(committed(&db), vec![1, 2, 3]);

        // Many at once: every acknowledged transaction is there.
        let tasks: Vec<_> = (10..42)
            .map(|i| {
                let conn = connect(&db);
                tokio::spawn(async move {
                    sql(&conn, "BEGIN IMMEDIATE").await?;
                    sql(&conn, &format!("INSERT INTO t VALUES ({i})")).await?;
                    sql(&conn, "COMMIT").await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("joins").expect("commits");
        }
        assert_eq!(committed(&db).len(), 3 + 32);
        // A write outside a transaction is a member of its own.
        let conn = connect(&db);
        sql(&conn, "INSERT INTO t VALUES (100)")
            .await
            .expect("autocommit");
        assert_eq!(
            (conn.changes().await, conn.last_insert_rowid().await),
            (1, 36)
        );
        assert!(committed(&db).contains(&100));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rolled_back_member_leaves_no_trace_while_the_others_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let db = database(dir.path());
        let (commit, second) = two_members(&db, 1).await;
        sql(&second, "INSERT INTO t VALUES (2)")
            .await
            .expect("insert");
        sql(&second, "CREATE TEMP TABLE notes (x)")
            .await
            .expect("temp");
        sql(&second, "ROLLBACK").await.expect("rollback");
        // A's group is committed by A itself once the gate is free.
        commit.await.expect("joins").expect("A commits");
        assert_eq!(committed(&db), vec![1]);
        // Nothing of B's is left on the writer for the next member.
        sql(&second, "BEGIN").await.expect("begin");
        let temp = sql(&second, "SELECT count(*) FROM temp.sqlite_master")
            .await
            .expect("temp schema");
        assert_eq!(temp.rows, vec![vec![Value::Integer(0)]]);
        sql(&second, "COMMIT").await.expect("commit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_statement_in_one_member_does_not_spoil_the_others() {
        let dir = tempfile::tempdir().expect("dir");
        let db = database(dir.path());
        let (commit, second) = two_members(&db, 1).await;
        let err = sql(&second, "INSERT INTO t VALUES (1)")
            .await
            .expect_err("duplicate");
        assert!(
            matches!(&err, SqlError::Io(m) if m.contains("UNIQUE")),
            "{err:?}"
        );
        sql(&second, "INSERT INTO t VALUES (2)")
            .await
            .expect("insert");
        sql(
            &second,
            "CREATE TEMP TRIGGER spy AFTER INSERT ON main.t BEGIN SELECT 1; END",
        )
        .await
        .expect("temp trigger");
        sql(&second, "COMMIT").await.expect("B commits");
        commit.await.expect("joins").expect("A commits");
        assert_eq!(committed(&db), vec![1, 2]);
        // B's temporary trigger is gone before the next member runs.
        let third = connect(&db);
        sql(&third, "BEGIN").await.expect("begin");
        let temp = sql(&third, "SELECT count(*) FROM temp.sqlite_master")
            .await
            .expect("temp schema");
        assert_eq!(temp.rows, vec![vec![Value::Integer(0)]]);
        sql(&third, "COMMIT").await.expect("commit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_that_ends_the_outer_transaction_fails_every_member() {
        let dir = tempfile::tempdir().expect("dir");
        let db = database(dir.path());
        let (commit, second) = two_members(&db, 1).await;
        // OR ROLLBACK rolls back the whole (outer) transaction: A's work
        // too, so A must not be acknowledged.
        sql(&second, "INSERT OR ROLLBACK INTO t VALUES (1)")
            .await
            .expect_err("duplicate");
        let err = sql(&second, "COMMIT").await.expect_err("B's work is gone");
        assert!(
            matches!(&err, SqlError::Io(m) if m.contains("rolled back")),
            "{err:?}"
        );
        let err = commit.await.expect("joins").expect_err("A's work is gone");
        assert!(
            matches!(&err, SqlError::Io(m) if m.contains("rolled back")),
            "{err:?}"
        );
        assert_eq!(committed(&db), Vec::<i64>::new());
        // The writer is fine afterwards, and guests cannot end its
        // transaction themselves.
        sql(&second, "BEGIN").await.expect("begin");
        let err = sql(&second, "/**/ SAVEPOINT trib_member")
            .await
            .expect_err("not ours");
        assert!(
            matches!(&err, SqlError::Io(m) if m.contains("not authorized")),
            "{err:?}"
        );
        let err = sql(&second, "PRAGMA synchronous = OFF")
            .await
            .expect_err("not on the shared writer");
        assert!(
            matches!(&err, SqlError::Io(m) if m.contains("not authorized")),
            "{err:?}"
        );
        sql(&second, "INSERT INTO t VALUES (5)")
            .await
            .expect("insert");
        sql(&second, "COMMIT").await.expect("commit");
        assert_eq!(committed(&db), vec![5]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_group_commit_fails_every_member() {
        let dir = tempfile::tempdir().expect("dir");
        let db = database(dir.path());
        let (commit, second) = two_members(&db, 1).await;
        sql(&second, "INSERT INTO t VALUES (2)")
            .await
            .expect("insert");
        db.group.fail_commits.store(true, Ordering::Relaxed);
        let err = sql(&second, "COMMIT").await.expect_err("B fails");
        assert!(
            matches!(&err, SqlError::Io(m) if m.contains("constraint")),
            "{err:?}"
        );
        let err = commit.await.expect("joins").expect_err("A fails too");
        assert!(
            matches!(&err, SqlError::Io(m) if m.contains("constraint")),
            "{err:?}"
        );
        assert_eq!(committed(&db), Vec::<i64>::new());
        // The next group commits.
        sql(&second, "INSERT INTO t VALUES (3)")
            .await
            .expect("autocommit");
        assert_eq!(committed(&db), vec![3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_with_temporary_tables_keeps_its_transactions() {
        let dir = tempfile::tempdir().expect("dir");
        let db = database(dir.path());
        let conn = connect(&db);
        sql(&conn, "CREATE TEMP TABLE staged (i)")
            .await
            .expect("temp");
        sql(&conn, "INSERT INTO staged VALUES (7)")
            .await
            .expect("stage");
        sql(&conn, "BEGIN").await.expect("begin");
        sql(&conn, "INSERT INTO t SELECT i FROM staged")
            .await
            .expect("insert from its own temp table");
        sql(&conn, "COMMIT").await.expect("commit");
        assert_eq!(committed(&db), vec![7]);
        assert_eq!(db.group.commits(), 0, "not through the group writer");
    }
}
