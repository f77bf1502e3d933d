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
use std::path::PathBuf;
use std::sync::Arc;

use super::sqlite_pool::Owner;
pub use super::sqlite_pool::{AttachPolicy, Connection, Database};
pub use super::sqlite_value::{Rows, SqlError, Value};

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
        default_path: Option<PathBuf>,
    ) -> Result<Self, SqlError> {
        if !dbs.contains_key("default") {
            dbs.insert(
                "default".into(),
                Arc::new(Database::new(default_path, AttachPolicy::Refuse)?),
            );
        }
        Ok(Self { dbs })
    }

    /// The database under `label`.
    pub fn get(&self, label: &str) -> Option<&Arc<Database>> {
        self.dbs.get(label)
    }

    /// Runs the operator's `--sqlite` SQL on the database `label` before
    /// serving.
    pub fn run_startup_sql(&self, statement: &StartupSql) -> anyhow::Result<()> {
        let db = self.get(&statement.label).ok_or_else(|| {
            anyhow::anyhow!(
                "--sqlite {}: no database {:?} is defined",
                statement.origin,
                statement.label
            )
        })?;
        db.execute_trusted(&statement.sql)
            .map_err(|e| anyhow::anyhow!("--sqlite {}: {e}", statement.origin))
    }
}

/// SQL to run before serving (Spin's `--sqlite`): a statement for the
/// `default` database, or a file's statements for the labelled one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupSql {
    /// The database label.
    pub label: String,
    /// The statements.
    pub sql: String,
    /// How the operator wrote it, for error messages.
    pub origin: String,
}

/// What one component may open.
#[derive(Debug, Clone)]
pub struct SqliteAccess {
    component: Owner,
    allowed: Arc<[String]>,
    dbs: Arc<Databases>,
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

impl Databases {
    /// The app's SQLite databases: the runtime config's, plus `default`
    /// under the app's `.spin/` directory. A component naming an undefined
    /// database stops startup.
    pub fn for_app(
        app: &crate::manifest::App,
        config: &crate::runtime_config::RuntimeConfig,
    ) -> anyhow::Result<Self> {
        let mut dbs = std::collections::HashMap::new();
        for (label, db) in &config.sqlite_databases {
            let attach = if db.allow_attach_file {
                let root = anyhow::Context::with_context(app.root.canonicalize(), || {
                    format!("cannot resolve the app directory {}", app.root.display())
                })?;
                AttachPolicy::InsideApp(root)
            } else {
                AttachPolicy::Refuse
            };
            dbs.insert(
                label.clone(),
                Arc::new(Database::new(db.path.clone(), attach)?),
            );
        }
        let dbs = Self::new(
            dbs,
            config.state_dir(app).map(|dir| dir.join("sqlite_db.db")),
        )?;
        for component in app.components.values() {
            for label in &component.sqlite_databases {
                if dbs.get(label).is_none() {
                    anyhow::bail!(
                        "component {:?} uses SQLite database {label:?}, which is not defined: add [sqlite_database.{label}] to the runtime config (--runtime-config-file)",
                        component.id
                    );
                }
            }
        }
        Ok(dbs)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::sqlite_pool::LOCKED;
    use super::*;

    #[tokio::test]
    async fn all_value_types_round_trip_with_parameters() {
        let dir = tempfile::tempdir().expect("dir");
        let dbs = Arc::new(
            Databases::new(HashMap::new(), Some(dir.path().join("db.sqlite"))).expect("dbs"),
        );
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
        Arc::new(Databases::new(dbs, Some(dir.join("unused.sqlite"))).expect("dbs"))
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
        let dbs = Arc::new(
            Databases::new(HashMap::new(), Some(dir.path().join("db.sqlite"))).expect("dbs"),
        );
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
        let dbs = Arc::new(
            Databases::new(HashMap::new(), Some(dir.path().join("db.sqlite"))).expect("dbs"),
        );
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
        let dbs = Arc::new(Databases::new(dbs, Some(root.join("unused.sqlite"))).expect("dbs"));
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
        let dbs = Arc::new(
            Databases::new(HashMap::new(), Some(dir.path().join("db.sqlite"))).expect("dbs"),
        );
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
