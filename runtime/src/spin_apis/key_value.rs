//! Key-value stores, on SQLite or Redis ([`Backend`]). SQLite stores keep
//! Spin's layout: one table `spin_key_value(store, key, value)` per
//! database file, so a `.spin/` directory written by `spin up` reads the
//! same under `trib up`; Redis stores are [`super::key_value_redis`].
//!
//! A store is reachable only from components that list its label in
//! `key_value_stores` (otherwise `access-denied`). The `default` label is an
//! embedded file under the app's `.spin/` directory unless the runtime config
//! maps it elsewhere. SQLite calls are blocking, so they run on tokio's
//! blocking pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use super::key_value_redis::RedisKvStore;

/// Spin's key-value error cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// No store is configured under the label.
    #[error("no such store")]
    NoSuchStore,
    /// The component did not list the label in `key_value_stores`.
    #[error("access denied")]
    AccessDenied,
    /// The instance holds too many open stores.
    #[error("store table full")]
    StoreTableFull,
    /// The backend failed.
    #[error("{0}")]
    Other(String),
}

/// One SQLite database holding stores; opened on first use.
pub struct SqliteStore {
    path: Option<PathBuf>,
    conn: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// A store in the file at `path`, or in memory with `None`.
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            conn: Mutex::new(None),
        }
    }

    /// Where the data lives, for the startup message.
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, KvError> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.connect().map_err(|e| KvError::Other(e.to_string()))?);
        }
        let conn = guard
            .as_ref()
            .ok_or_else(|| KvError::Other("no connection".into()))?;
        f(conn).map_err(|e| KvError::Other(e.to_string()))
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = match &self.path {
            Some(path) => super::sqlite_file::open(path, super::sqlite_file::BUSY_TIMEOUT, true)?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )?;
        Ok(conn)
    }
}

/// Where one store's data lives.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A table in a SQLite file (or in memory).
    Sqlite(Arc<SqliteStore>),
    /// A Redis server.
    Redis(Arc<RedisKvStore>),
}

/// The app's stores by label, shared by every instance.
#[derive(Debug, Default)]
pub struct KeyValueStores {
    stores: HashMap<String, Backend>,
}

impl KeyValueStores {
    /// Stores by label; `default` is added at `default_path` (in memory
    /// without one) unless given.
    pub fn new(mut stores: HashMap<String, Backend>, default_path: Option<PathBuf>) -> Self {
        stores
            .entry("default".to_owned())
            .or_insert_with(|| Backend::Sqlite(Arc::new(SqliteStore::new(default_path))));
        Self { stores }
    }

    /// Whether `label` is configured.
    pub fn contains(&self, label: &str) -> bool {
        self.stores.contains_key(label)
    }

    /// The store for `label`.
    pub fn get(&self, label: &str) -> Option<&Backend> {
        self.stores.get(label)
    }
}

/// What one component may open.
#[derive(Debug, Clone)]
pub struct KeyValueAccess {
    allowed: Arc<[String]>,
    stores: Arc<KeyValueStores>,
}

/// An open store, as held in an instance's resource table.
#[derive(Debug, Clone)]
pub struct StoreHandle {
    label: String,
    backend: Backend,
}

impl KeyValueAccess {
    /// Access to the `allowed` labels of `stores`.
    pub fn new(allowed: &[String], stores: Arc<KeyValueStores>) -> Self {
        Self {
            allowed: allowed.into(),
            stores,
        }
    }

    /// Opens `label` if the component may.
    pub fn open(&self, label: &str) -> Result<StoreHandle, KvError> {
        if !self.allowed.iter().any(|l| l == label) {
            return Err(KvError::AccessDenied);
        }
        let store = self.stores.get(label).ok_or(KvError::NoSuchStore)?;
        Ok(StoreHandle {
            label: label.to_owned(),
            backend: store.clone(),
        })
    }
}

impl StoreHandle {
    /// Runs `f` on the SQLite store's connection with the store's label,
    /// on tokio's blocking pool (each method handles Redis stores first).
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &str) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, KvError> {
        let Backend::Sqlite(store) = &self.backend else {
            return Err(KvError::Other("not a SQLite store".into()));
        };
        let store = store.clone();
        let label = self.label.clone();
        tokio::task::spawn_blocking(move || store.with(|conn| f(conn, &label)))
            .await
            .map_err(|e| KvError::Other(format!("key-value task failed: {e}")))?
    }

    /// The store's Redis server, if it is on one.
    fn redis(&self) -> Option<&RedisKvStore> {
        match &self.backend {
            Backend::Redis(redis) => Some(redis),
            Backend::Sqlite(_) => None,
        }
    }

    /// The value of `key`, if any.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(redis) = self.redis() {
            return redis.get(key).await;
        }
        self.blocking(move |conn, label| {
            conn.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![label, key], |row| row.get(0))
                .optional()
        })
        .await
    }

    /// Sets `key` to `value`.
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        if let Some(redis) = self.redis() {
            return redis.set(key, value).await;
        }
        self.blocking(move |conn, label| {
            conn.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![label, key, value])
            .map(|_| ())
        })
        .await
    }

    /// Deletes `key` (no error if absent).
    pub async fn delete(&self, key: String) -> Result<(), KvError> {
        if let Some(redis) = self.redis() {
            return redis.delete(key).await;
        }
        self.blocking(move |conn, label| {
            conn.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute(params![label, key])
                .map(|_| ())
        })
        .await
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: String) -> Result<bool, KvError> {
        if let Some(redis) = self.redis() {
            return redis.exists(key).await;
        }
        self.blocking(move |conn, label| {
            conn.prepare_cached("SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .exists(params![label, key])
        })
        .await
    }

    /// Every key in the store.
    pub async fn keys(&self) -> Result<Vec<String>, KvError> {
        if let Some(redis) = self.redis() {
            return redis.keys().await;
        }
        self.blocking(move |conn, label| {
            let mut stmt = conn
                .prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            let keys = stmt
                .query_map(params![label], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(keys)
        })
        .await
    }
}

/// A compare-and-swap ticket (`wasi:keyvalue/atomics.cas`): the value seen
/// by `current`, which `swap` requires to be unchanged.
#[derive(Debug, Clone)]
pub struct Cas {
    /// The store.
    pub store: StoreHandle,
    /// The key.
    pub key: String,
    /// What `current` last read (`None`: not read yet).
    pub seen: Option<Option<Vec<u8>>>,
}

/// Why a swap did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapError {
    /// The value changed since `current`.
    Changed,
    /// The backend failed.
    Store(KvError),
}

impl StoreHandle {
    /// Adds `delta` to the 8-byte little-endian integer at `key` (missing
    /// counts as 0) in one transaction, and returns the new value.
    pub async fn increment(&self, key: String, delta: i64) -> Result<i64, KvError> {
        if let Some(redis) = self.redis() {
            return redis.increment(key, delta).await;
        }
        self.blocking(move |conn, label| {
            let tx = conn.unchecked_transaction()?;
            let old: Option<Vec<u8>> = tx
                .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![label, key], |row| row.get(0))
                .optional()?;
            let old = match old {
                None => 0,
                Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                    Ok(b) => i64::from_le_bytes(b),
                    Err(_) => {
                        return Err(rusqlite::Error::InvalidColumnType(
                            0,
                            "value is not an 8-byte integer".into(),
                            rusqlite::types::Type::Blob,
                        ));
                    }
                },
            };
            let new = old.wrapping_add(delta);
            tx.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![label, key, new.to_le_bytes().to_vec()])?;
            tx.commit()?;
            Ok(new)
        })
        .await
    }

    /// The values of `keys`, `None` for missing ones, in the order asked.
    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, KvError> {
        if let Some(redis) = self.redis() {
            return redis.get_many(keys).await;
        }
        self.blocking(move |conn, label| {
            let mut stmt = conn
                .prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?;
            keys.into_iter()
                .map(|key| {
                    let value = stmt
                        .query_row(params![label, key], |row| row.get(0))
                        .optional()?;
                    Ok((key, value))
                })
                .collect()
        })
        .await
    }

    /// Sets every pair in one transaction.
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        if let Some(redis) = self.redis() {
            return redis.set_many(pairs).await;
        }
        self.blocking(move |conn, label| {
            let tx = conn.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?;
                for (key, value) in pairs {
                    stmt.execute(params![label, key, value])?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// Deletes every key in one transaction.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), KvError> {
        if let Some(redis) = self.redis() {
            return redis.delete_many(keys).await;
        }
        self.blocking(move |conn, label| {
            let tx = conn.unchecked_transaction()?;
            {
                let mut stmt =
                    tx.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?;
                for key in keys {
                    stmt.execute(params![label, key])?;
                }
            }
            tx.commit()
        })
        .await
    }

    /// Writes `value` at `key` only if it still holds `seen`.
    pub async fn swap(
        &self,
        key: String,
        seen: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<(), SwapError> {
        if let Some(redis) = self.redis() {
            return redis.swap(key, seen, value).await;
        }
        let changed = self
            .blocking(move |conn, label| {
                let tx = conn.unchecked_transaction()?;
                let now: Option<Vec<u8>> = tx
                    .prepare_cached(
                        "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    )?
                    .query_row(params![label, key], |row| row.get(0))
                    .optional()?;
                if now != seen {
                    return Ok(true);
                }
                tx.prepare_cached(
                    "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![label, key, value])?;
                tx.commit()?;
                Ok(false)
            })
            .await
            .map_err(SwapError::Store)?;
        if changed {
            Err(SwapError::Changed)
        } else {
            Ok(())
        }
    }
}

impl KeyValueStores {
    /// The app's key-value stores: the runtime config's, plus `default`
    /// under the app's `.spin/` directory (where `spin up` keeps it). A
    /// component that names an undefined store stops startup.
    pub fn for_app(
        app: &crate::manifest::App,
        config: &crate::runtime_config::RuntimeConfig,
    ) -> anyhow::Result<Self> {
        let stores = config
            .key_value_stores
            .iter()
            .map(|(label, store)| {
                use crate::runtime_config::KeyValueStoreConfig;
                let backend = match store {
                    KeyValueStoreConfig::Spin { path } => {
                        Backend::Sqlite(Arc::new(SqliteStore::new(path.clone())))
                    }
                    KeyValueStoreConfig::Redis { url } => {
                        let redis = RedisKvStore::new(url).map_err(|e| {
                            anyhow::anyhow!("key_value_store.{label}: {e}")
                        })?;
                        tracing::info!(store = %label, server = redis.summary(), "key-value store on Redis");
                        Backend::Redis(Arc::new(redis))
                    }
                };
                Ok((label.clone(), backend))
            })
            .collect::<anyhow::Result<_>>()?;
        let stores = Self::new(
            stores,
            config
                .state_dir(app)
                .map(|dir| dir.join("sqlite_key_value.db")),
        );
        for component in app.components.values() {
            for label in &component.key_value_stores {
                if !stores.contains(label) {
                    anyhow::bail!(
                        "component {:?} uses key-value store {label:?}, which is not defined: add [key_value_store.{label}] to the runtime config (--runtime-config-file)",
                        component.id
                    );
                }
            }
        }
        if app
            .components
            .values()
            .any(|c| c.key_value_stores.iter().any(|l| l == "default"))
            && let Some(Backend::Sqlite(store)) = stores.get("default")
            && let Some(path) = store.path()
        {
            tracing::info!(path = %path.display(), "storing default key-value data");
        }
        Ok(stores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allowed: &[&str], dir: &std::path::Path) -> KeyValueAccess {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let stores = KeyValueStores::new(HashMap::new(), Some(dir.join("kv.db")));
        KeyValueAccess::new(&allowed, Arc::new(stores))
    }

    #[tokio::test]
    async fn round_trip_and_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let kv = access(&["default", "missing"], dir.path());
        assert_eq!(
            access(&[], dir.path()).open("default").err(),
            Some(KvError::AccessDenied)
        );
        assert_eq!(kv.open("missing").err(), Some(KvError::NoSuchStore));
        let store = kv.open("default").expect("opens");
        assert_eq!(store.get("a".into()).await, Ok(None));
        store.set("a".into(), b"1".to_vec()).await.expect("set");
        store
            .set("a".into(), b"2".to_vec())
            .await
            .expect("overwrite");
        store.set("b".into(), b"3".to_vec()).await.expect("set");
        assert_eq!(store.get("a".into()).await, Ok(Some(b"2".to_vec())));
        assert_eq!(store.exists("b".into()).await, Ok(true));
        assert_eq!(store.keys().await, Ok(vec!["a".into(), "b".into()]));
        store.delete("a".into()).await.expect("delete");
        store
            .delete("a".into())
            .await
            .expect("delete of a missing key is fine");
        assert_eq!(store.exists("a".into()).await, Ok(false));
    }

    #[tokio::test]
    async fn atomics_and_batches() {
        let dir = tempfile::tempdir().expect("dir");
        let store = access(&["default"], dir.path())
            .open("default")
            .expect("opens");
        assert_eq!(store.increment("n".into(), 5).await, Ok(5));
        assert_eq!(store.increment("n".into(), -2).await, Ok(3));
        store
            .set("text".into(), b"abc".to_vec())
            .await
            .expect("set");
        assert!(store.increment("text".into(), 1).await.is_err());
        store
            .set_many(vec![
                ("x".into(), b"1".to_vec()),
                ("y".into(), b"2".to_vec()),
            ])
            .await
            .expect("set many");
        assert_eq!(
            store.get_many(vec!["x".into(), "z".into()]).await,
            Ok(vec![("x".into(), Some(b"1".to_vec())), ("z".into(), None)])
        );
        store
            .delete_many(vec!["x".into(), "y".into()])
            .await
            .expect("delete many");
        assert_eq!(store.exists("y".into()).await, Ok(false));
        assert_eq!(
            store.swap("s".into(), None, b"first".to_vec()).await,
            Ok(())
        );
        assert_eq!(
            store.swap("s".into(), None, b"second".to_vec()).await,
            Err(SwapError::Changed)
        );
        assert_eq!(
            store
                .swap("s".into(), Some(b"first".to_vec()), b"second".to_vec())
                .await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn data_survives_a_new_connection() {
        let dir = tempfile::tempdir().expect("dir");
        access(&["default"], dir.path())
            .open("default")
            .expect("opens")
            .set("k".into(), b"v".to_vec())
            .await
            .expect("set");
        let again = access(&["default"], dir.path())
            .open("default")
            .expect("opens");
        assert_eq!(again.get("k".into()).await, Ok(Some(b"v".to_vec())));
    }
}
