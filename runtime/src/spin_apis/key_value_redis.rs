//! Key-value stores on a Redis server (`[key_value_store.NAME] type =
//! "redis"`, `url = "redis://..."`), Spin's layout: a guest's key is the
//! Redis key, its value the string's bytes, so data written through `spin
//! up` reads the same under `trib up` and other Redis clients see it.
//!
//! One multiplexed, self-reconnecting connection per store, opened on first
//! use (a server that is down fails that call with `other`, and the next
//! call tries again). Increments are Redis's own `INCRBY` (the value is the
//! number's decimal text, as in Spin); a compare-and-swap is one Lua script
//! that writes only if the value is still what `current` read, so it is
//! atomic without holding a connection per ticket. The URL's password
//! never reaches a log line, an error or `Debug`.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo};
use tokio::sync::OnceCell;

use super::key_value::{KvError, SwapError};
use crate::runtime_config::RedisUrl;

/// How long connecting (TCP, TLS and the handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys `SCAN` returns per round trip when listing.
const SCAN_BATCH: usize = 1000;

/// Writes `ARGV[3]` at `KEYS[1]` only if it still holds `ARGV[2]` (with
/// `ARGV[1] == "1"`) or is absent (`ARGV[1] == "0"`); 1 if it wrote.
const SWAP_SCRIPT: &str = r"
local now = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if now ~= ARGV[2] then return 0 end
elseif now then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

/// One Redis server holding a store.
pub struct RedisKvStore {
    client: Client,
    /// `redis://host:port/db`, for logs and errors.
    shown: String,
    password: Option<String>,
    conn: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisKvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKvStore")
            .field("server", &self.shown)
            .finish_non_exhaustive()
    }
}

impl RedisKvStore {
    /// A store on the server at `url` (not contacted yet).
    pub fn new(url: &RedisUrl) -> Result<Self, String> {
        let info = url
            .expose()
            .into_connection_info()
            .map_err(|_| "not a Redis URL".to_owned())?;
        let shown = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}"),
            redis::ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
            redis::ConnectionAddr::Unix(_) => return Err("Unix sockets are not supported".into()),
            _ => return Err("this Redis address kind is not supported".into()),
        };
        let shown = format!("{shown}/{}", info.redis_settings().db());
        let password = info.redis_settings().password().map(str::to_owned);
        let client = Client::open(info).map_err(|_| "not a Redis URL".to_owned())?;
        Ok(Self {
            client,
            shown,
            password,
            conn: OnceCell::new(),
        })
    }

    /// Where the data lives (no password), for the startup message.
    pub fn summary(&self) -> &str {
        &self.shown
    }

    fn failed(&self, e: &redis::RedisError) -> KvError {
        let mut text = format!("{}: {e}", self.shown);
        if let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) {
            text = text.replace(password, "***");
        }
        KvError::Other(text)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, KvError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50));
        let mut conn = self
            .conn
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .map_err(|e| self.failed(&e))?
            .clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.failed(&e))
    }

    /// The value of `key`, if any.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        self.run(redis::cmd("GET").arg(key)).await
    }

    /// Sets `key` to `value`.
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        let _: redis::Value = self.run(redis::cmd("SET").arg(key).arg(value)).await?;
        Ok(())
    }

    /// Deletes `key` (no error if absent).
    pub async fn delete(&self, key: String) -> Result<(), KvError> {
        let _: i64 = self.run(redis::cmd("DEL").arg(key)).await?;
        Ok(())
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: String) -> Result<bool, KvError> {
        self.run(redis::cmd("EXISTS").arg(key)).await
    }

    /// Every key on the server's database, sorted; `SCAN`ned in batches so
    /// a large database does not block the server as `KEYS` would.
    pub async fn keys(&self) -> Result<Vec<String>, KvError> {
        let mut keys = Vec::new();
        let mut cursor = "0".to_owned();
        loop {
            let (next, batch): (String, Vec<String>) = self
                .run(redis::cmd("SCAN").arg(&cursor).arg("COUNT").arg(SCAN_BATCH))
                .await?;
            keys.extend(batch);
            if next == "0" {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Adds `delta` to the integer at `key` (missing counts as 0) and
    /// returns the new value.
    pub async fn increment(&self, key: String, delta: i64) -> Result<i64, KvError> {
        self.run(redis::cmd("INCRBY").arg(key).arg(delta)).await
    }

    /// The values of `keys`, `None` for missing ones, in the order asked.
    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self.run(redis::cmd("MGET").arg(&keys)).await?;
        if values.len() != keys.len() {
            return Err(KvError::Other(format!(
                "{}: MGET answered {} values for {} keys",
                self.shown,
                values.len(),
                keys.len()
            )));
        }
        Ok(keys.into_iter().zip(values).collect())
    }

    /// Sets every pair at once (`MSET`).
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("MSET");
        for (key, value) in pairs {
            cmd.arg(key).arg(value);
        }
        let _: redis::Value = self.run(&cmd).await?;
        Ok(())
    }

    /// Deletes every key at once.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        let _: i64 = self.run(redis::cmd("DEL").arg(keys)).await?;
        Ok(())
    }

    /// Writes `value` at `key` only if it still holds `seen`, atomically.
    pub async fn swap(
        &self,
        key: String,
        seen: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<(), SwapError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SWAP_SCRIPT).arg(1).arg(key);
        match seen {
            Some(seen) => cmd.arg("1").arg(seen),
            None => cmd.arg("0").arg(""),
        };
        cmd.arg(value);
        let wrote: i64 = self.run(&cmd).await.map_err(SwapError::Store)?;
        if wrote == 1 {
            Ok(())
        } else {
            Err(SwapError::Changed)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::runtime_config::KeyValueStoreConfig;

    const SERVER: &str = "127.0.0.1:6379";

    /// Whether the machine's Redis is up; under `CI=true` it must be.
    fn server_up() -> bool {
        let up = SERVER.parse().is_ok_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        });
        assert!(
            up || std::env::var("CI").as_deref() != Ok("true"),
            "Redis is not running on {SERVER}, and CI=true requires it"
        );
        up
    }

    fn app() -> crate::manifest::App {
        crate::manifest::parse(
            Path::new("spin.toml"),
            "spin_manifest_version = 2\n[application]\nname = \"a\"\n[component.api]\nsource = \"a.wasm\"\n",
        )
        .expect("valid manifest")
    }

    /// The store a runtime config with `url` defines.
    fn store(url: &str) -> RedisKvStore {
        let text = format!("[key_value_store.cache]\ntype = \"redis\"\nurl = \"{url}\"\n");
        let config =
            crate::runtime_config::parse(Path::new("rc.toml"), &text, &app()).expect("valid");
        match &config.key_value_stores["cache"] {
            KeyValueStoreConfig::Redis { url } => RedisKvStore::new(url).expect("store"),
            other => panic!("{other:?}"),
        }
    }

    /// A key prefix no other test or run uses; `clean` deletes its keys.
    fn prefix(test: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("trib-kv-test:{test}:{}:{nanos}:", std::process::id())
    }

    async fn clean(store: &RedisKvStore, prefix: &str) {
        let keys: Vec<String> = store
            .keys()
            .await
            .expect("keys")
            .into_iter()
            .filter(|k| k.starts_with(prefix))
            .collect();
        store.delete_many(keys).await.expect("clean up");
    }

    #[test]
    fn runtime_config_takes_spins_keys_and_hides_the_password() {
        let app = app();
        let text = "[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://app:s3cret@127.0.0.1:6379/2\"\n";
        let config = crate::runtime_config::parse(Path::new("rc.toml"), text, &app).expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("redis://***@127.0.0.1:6379/2"), "{debug}");
        let KeyValueStoreConfig::Redis { url } = &config.key_value_stores["cache"] else {
            panic!("{debug}");
        };
        let store = RedisKvStore::new(url).expect("store");
        assert_eq!(store.summary(), "redis://127.0.0.1:6379/2");
        assert!(!format!("{store:?}").contains("s3cret"));
        for (text, want) in [
            (
                "[key_value_store.c]\ntype = \"redis\"\n",
                "rc.toml:2:8: key_value_store.c.url: a \"redis\" store needs url",
            ),
            (
                "[key_value_store.c]\ntype = \"redis\"\nurl = \"http://x:1\"\n",
                "rc.toml:3:7: key_value_store.c.url: not a Redis URL",
            ),
            (
                "[key_value_store.c]\ntype = \"redis\"\nurl = \"redis://x:1\"\npath = \"a.db\"\n",
                "rc.toml:2:8: key_value_store.c.path: a \"redis\" store has a url, not a path",
            ),
            (
                "[key_value_store.c]\ntype = \"spin\"\nurl = \"redis://x:1\"\n",
                "rc.toml:2:8: key_value_store.c.url: a \"spin\" store has a path, not a url",
            ),
        ] {
            let err = crate::runtime_config::parse(Path::new("rc.toml"), text, &app)
                .expect_err(text)
                .to_string();
            assert!(err.starts_with(want), "{text:?}\n got: {err}\nwant: {want}");
        }
    }

    #[tokio::test]
    async fn store_operations_on_a_real_server() {
        if !server_up() {
            return;
        }
        let store = store("redis://127.0.0.1:6379");
        let p = prefix("ops");
        let k = |s: &str| format!("{p}{s}");
        assert_eq!(store.get(k("a")).await, Ok(None));
        store.set(k("a"), b"1".to_vec()).await.expect("set");
        store.set(k("a"), b"2".to_vec()).await.expect("overwrite");
        assert_eq!(store.get(k("a")).await, Ok(Some(b"2".to_vec())));
        assert_eq!(store.exists(k("a")).await, Ok(true));
        assert_eq!(store.increment(k("n"), 5).await, Ok(5));
        assert_eq!(store.increment(k("n"), -7).await, Ok(-2));
        assert_eq!(store.get(k("n")).await, Ok(Some(b"-2".to_vec())));
        store.set(k("text"), b"abc".to_vec()).await.expect("set");
        assert!(matches!(
            store.increment(k("text"), 1).await,
            Err(KvError::Other(_))
        ));
        store
            .set_many(vec![(k("x"), b"1".to_vec()), (k("y"), b"2".to_vec())])
            .await
            .expect("set many");
        assert_eq!(
            store.get_many(vec![k("x"), k("z")]).await,
            Ok(vec![(k("x"), Some(b"1".to_vec())), (k("z"), None)])
        );
        let mine = |keys: Vec<String>| -> Vec<String> {
            keys.into_iter().filter(|key| key.starts_with(&p)).collect()
        };
        assert_eq!(
            mine(store.keys().await.expect("keys")),
            [k("a"), k("n"), k("text"), k("x"), k("y")]
        );
        store
            .delete_many(vec![k("x"), k("y")])
            .await
            .expect("delete many");
        store.delete(k("a")).await.expect("delete");
        store.delete(k("a")).await.expect("a missing key is fine");
        assert_eq!(store.exists(k("a")).await, Ok(false));
        assert_eq!(mine(store.keys().await.expect("keys")), [k("n"), k("text")]);
        clean(&store, &p).await;
        assert_eq!(
            mine(store.keys().await.expect("keys")),
            Vec::<String>::new()
        );
    }

    #[tokio::test]
    async fn swap_writes_only_over_what_was_read() {
        if !server_up() {
            return;
        }
        let store = store("redis://127.0.0.1:6379");
        let p = prefix("swap");
        let key = format!("{p}s");
        assert_eq!(
            store.swap(key.clone(), None, b"first".to_vec()).await,
            Ok(())
        );
        assert_eq!(
            store.swap(key.clone(), None, b"second".to_vec()).await,
            Err(SwapError::Changed),
            "the key exists now"
        );
        assert_eq!(
            store
                .swap(key.clone(), Some(b"other".to_vec()), b"second".to_vec())
                .await,
            Err(SwapError::Changed)
        );
        assert_eq!(store.get(key.clone()).await, Ok(Some(b"first".to_vec())));
        assert_eq!(
            store
                .swap(key.clone(), Some(b"first".to_vec()), b"second".to_vec())
                .await,
            Ok(())
        );
        assert_eq!(store.get(key.clone()).await, Ok(Some(b"second".to_vec())));
        // Many concurrent read-increment-swap loops lose no update.
        store.set(key.clone(), b"0".to_vec()).await.expect("set");
        let store = std::sync::Arc::new(store);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    for _ in 0..10 {
                        loop {
                            let seen = store.get(key.clone()).await.expect("get");
                            let n: i64 = seen
                                .as_deref()
                                .and_then(|b| std::str::from_utf8(b).ok())
                                .and_then(|s| s.parse().ok())
                                .expect("a number");
                            let next = (n + 1).to_string().into_bytes();
                            match store.swap(key.clone(), seen, next).await {
                                Ok(()) => break,
                                Err(SwapError::Changed) => continue,
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(store.get(key.clone()).await, Ok(Some(b"80".to_vec())));
        clean(&store, &p).await;
    }

    #[tokio::test]
    async fn a_server_that_is_down_is_an_error_without_the_password() {
        let store = store("redis://user:hunter2@127.0.0.1:1");
        let Err(KvError::Other(message)) = store.get("k".into()).await else {
            panic!("a server that is down fails the call");
        };
        assert!(message.starts_with("redis://127.0.0.1:1/0: "), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
