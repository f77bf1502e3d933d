//! Spin's outbound Redis API (`fermyon:spin/redis@2.0.0` and
//! `spin:redis/redis@3.0.0`) on the `redis` crate, one backend for both
//! generations (the adapters are in `outbound_redis_impl.rs`).
//!
//! A component may open only addresses its `allowed_outbound_hosts`
//! names with the `redis` or `rediss` scheme, checked against the host
//! and port the connection would really use (6379 when the address gives
//! none, for both schemes, as the `redis` crate connects). A denied or
//! unparseable address is `invalid-address`, as in Spin, and one warning
//! in the log; a server that does not answer is `other` with the cause.
//!
//! Connections are pooled per app and address: every `open` of an address
//! shares one multiplexed, self-reconnecting connection, so a request does
//! not pay a TCP (and TLS) handshake. A command that changes a
//! connection's state (`SELECT`, `AUTH`, `MULTI`, `WATCH`, `SUBSCRIBE`,
//! `CLIENT` ...) or blocks it (`BLPOP`, `XREAD` ...) would reach or stall
//! every other user of a shared connection, so from the first such
//! `execute` on, that guest connection runs on a private connection of its
//! own (closed with the resource), which is what every Spin connection is.
//! Private connections per address are capped (`too-many-connections`).
//!
//! Passwords in addresses never reach a log line or an error message: the
//! address is shown as `scheme://host:port`, and any error text is scrubbed
//! of the password.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, Value};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::allowed_hosts::{AllowedHosts, Destination};

/// How long connecting (TCP, TLS and the handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command on a shared connection may wait for its answer;
/// commands that may block run on private connections, with no limit but
/// the request's own.
const SHARED_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Private connections open at once to one address.
const MAX_PRIVATE_PER_ADDRESS: usize = 64;

/// Spin's Redis error cases, for both generations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    /// An address that does not parse, or one the component may not reach.
    #[error("invalid address")]
    InvalidAddress,
    /// Too many private connections are open to the address.
    #[error("too many connections")]
    TooManyConnections,
    /// A value was not of the type the command needs.
    #[error("type error")]
    TypeError,
    /// Anything else, with the cause.
    #[error("{0}")]
    Other(String),
}

/// An argument of `execute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// An integer, sent as its decimal text.
    Int64(i64),
    /// Bytes, sent as they are.
    Binary(Vec<u8>),
}

/// One value of `execute`'s answer (arrays are flattened, as in Spin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// No value.
    Nil,
    /// A status such as `OK`.
    Status(String),
    /// An integer.
    Int64(i64),
    /// Bytes.
    Binary(Vec<u8>),
}

/// The app's Redis connections, shared by every component.
pub struct RedisPools {
    shared: Mutex<HashMap<String, Arc<OnceCell<ConnectionManager>>>>,
    private: Mutex<HashMap<String, Arc<Semaphore>>>,
    max_private_per_address: usize,
    blocked: crate::blocked_networks::BlockedNetworks,
}

impl Default for RedisPools {
    fn default() -> Self {
        Self::with_limit(MAX_PRIVATE_PER_ADDRESS)
    }
}

impl RedisPools {
    /// Pools allowing `max_private` private connections per address.
    pub fn with_limit(max_private: usize) -> Self {
        Self {
            shared: Mutex::default(),
            private: Mutex::default(),
            max_private_per_address: max_private.max(1),
            blocked: Default::default(),
        }
    }

    /// Refuses hosts in the runtime config's `block_networks`.
    pub fn with_blocked(mut self, blocked: crate::blocked_networks::BlockedNetworks) -> Self {
        self.blocked = blocked;
        self
    }

    /// The address's shared connection, connecting on first use (a failed
    /// connect is retried by the next `open`).
    async fn shared(&self, target: &Target) -> Result<ConnectionManager, RedisError> {
        let cell = {
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.entry(target.key.clone()).or_default().clone()
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(SHARED_RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50));
        cell.get_or_try_init(|| ConnectionManager::new_with_config(target.client.clone(), config))
            .await
            .cloned()
            .map_err(|e| target.failed(&e))
    }

    /// A connection of its own for one guest connection, under the cap.
    async fn private(
        &self,
        target: &Target,
    ) -> Result<(MultiplexedConnection, OwnedSemaphorePermit), RedisError> {
        let cap = {
            let mut private = self.private.lock().unwrap_or_else(|e| e.into_inner());
            private
                .entry(target.key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_private_per_address)))
                .clone()
        };
        let permit = cap
            .try_acquire_owned()
            .map_err(|_| RedisError::TooManyConnections)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        let conn = target
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| target.failed(&e))?;
        Ok((conn, permit))
    }
}

/// Where a guest connection goes, without the password in anything shown.
struct Target {
    client: Client,
    /// The pool key: the whole address, as the guest gave it.
    key: String,
    /// `scheme://host:port`, for logs and errors.
    shown: String,
    /// Host and port dialled, for `block_networks`.
    host: String,
    port: u16,
    password: Option<String>,
}

impl Target {
    /// An error's text, its password (if any) replaced.
    fn failed(&self, e: &redis::RedisError) -> RedisError {
        if is_type_error(e) {
            return RedisError::TypeError;
        }
        RedisError::Other(self.scrub(format!("{}: {e}", self.shown)))
    }

    fn scrub(&self, mut text: String) -> String {
        if let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) {
            text = text.replace(password, "***");
        }
        text.replace(&self.key, &self.shown)
    }
}

/// Whether the answer could not be converted to what the function returns
/// (`type-error`). Errors the server sends, `WRONGTYPE` and `INCR` of a
/// non-number included, are `other` with the server's text, as Spin
/// reports them.
fn is_type_error(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        redis::ErrorKind::UnexpectedReturnType | redis::ErrorKind::Parse
    )
}

/// What one component may reach.
#[derive(Clone)]
pub struct RedisAccess {
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
    pools: Arc<RedisPools>,
}

impl std::fmt::Debug for RedisAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAccess")
            .field("component", &self.component)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl RedisAccess {
    /// Access for `component` with these allowed hosts.
    pub fn new(component: &str, allowed: Arc<AllowedHosts>, pools: Arc<RedisPools>) -> Self {
        Self {
            component: component.into(),
            allowed,
            pools,
        }
    }

    /// Opens a connection to `address` if the component may reach it.
    pub async fn open(&self, address: String) -> Result<Connection, RedisError> {
        let target = self.target(address)?;
        if let Err(refused) = self.pools.blocked.check(&target.host, target.port).await {
            tracing::warn!(component = %self.component, "{refused}");
            return Err(RedisError::Other(refused));
        }
        let shared = self.pools.shared(&target).await?;
        Ok(Connection {
            target,
            shared,
            private: OnceCell::new(),
            pools: self.pools.clone(),
        })
    }

    /// The parsed, allowed destination of `address`.
    fn target(&self, address: String) -> Result<Target, RedisError> {
        let info = address
            .as_str()
            .into_connection_info()
            .map_err(|_| RedisError::InvalidAddress)?;
        let (scheme, host, port) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => ("redis", host.clone(), *port),
            ConnectionAddr::TcpTls { host, port, .. } => ("rediss", host.clone(), *port),
            _ => {
                tracing::warn!(component = %self.component, "Redis over a Unix socket is not permitted");
                return Err(RedisError::InvalidAddress);
            }
        };
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let dest = Destination {
            scheme,
            host: &host,
            port,
        };
        let shown = dest.to_string();
        if let Err(refused) = self.allowed.permit(&dest) {
            tracing::warn!(component = %self.component, "{refused}");
            return Err(RedisError::InvalidAddress);
        }
        let password = info.redis_settings().password().map(str::to_owned);
        let client = Client::open(info).map_err(|_| RedisError::InvalidAddress)?;
        Ok(Target {
            client,
            key: address,
            shown,
            host,
            port,
            password,
        })
    }
}

/// An open guest connection, held in the instance's resource table.
pub struct Connection {
    target: Target,
    shared: ConnectionManager,
    /// Set by the first command that must not run on the shared connection;
    /// every later command of this guest connection runs here.
    private: OnceCell<(MultiplexedConnection, OwnedSemaphorePermit)>,
    pools: Arc<RedisPools>,
}

/// A connection shared between the table and in-flight async calls.
pub type SharedConnection = Arc<Connection>;

/// A connection to run one command on.
enum Conn {
    Shared(ConnectionManager),
    Private(MultiplexedConnection),
}

impl Connection {
    /// Where this guest connection's next command runs; `private` moves it
    /// to its own connection for good.
    async fn conn(&self, private: bool) -> Result<Conn, RedisError> {
        if let Some((conn, _)) = self.private.get() {
            return Ok(Conn::Private(conn.clone()));
        }
        if !private {
            return Ok(Conn::Shared(self.shared.clone()));
        }
        let (conn, _) = self
            .private
            .get_or_try_init(|| self.pools.private(&self.target))
            .await?;
        Ok(Conn::Private(conn.clone()))
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
        private: bool,
    ) -> Result<T, RedisError> {
        let result = match self.conn(private).await? {
            Conn::Shared(mut c) => cmd.query_async(&mut c).await,
            Conn::Private(mut c) => cmd.query_async(&mut c).await,
        };
        result.map_err(|e| self.target.failed(&e))
    }

    /// `PUBLISH channel payload`.
    pub async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), RedisError> {
        let _: i64 = self
            .run(redis::cmd("PUBLISH").arg(channel).arg(payload), false)
            .await?;
        Ok(())
    }

    /// `GET key`.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, RedisError> {
        self.run(redis::cmd("GET").arg(key), false).await
    }

    /// `SET key value`.
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), RedisError> {
        let _: Value = self
            .run(redis::cmd("SET").arg(key).arg(value), false)
            .await?;
        Ok(())
    }

    /// `INCR key`.
    pub async fn incr(&self, key: String) -> Result<i64, RedisError> {
        self.run(redis::cmd("INCR").arg(key), false).await
    }

    /// `DEL keys...`: how many existed.
    pub async fn del(&self, keys: Vec<String>) -> Result<u32, RedisError> {
        self.run(redis::cmd("DEL").arg(keys), false).await
    }

    /// `SADD key values...`: how many were new.
    pub async fn sadd(&self, key: String, values: Vec<String>) -> Result<u32, RedisError> {
        self.run(redis::cmd("SADD").arg(key).arg(values), false)
            .await
    }

    /// `SMEMBERS key`.
    pub async fn smembers(&self, key: String) -> Result<Vec<String>, RedisError> {
        self.run(redis::cmd("SMEMBERS").arg(key), false).await
    }

    /// `SREM key values...`: how many were there.
    pub async fn srem(&self, key: String, values: Vec<String>) -> Result<u32, RedisError> {
        self.run(redis::cmd("SREM").arg(key).arg(values), false)
            .await
    }

    /// Any command, its answer flattened into Spin's result kinds.
    pub async fn execute(
        &self,
        command: String,
        arguments: Vec<Param>,
    ) -> Result<Vec<Reply>, RedisError> {
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                Param::Int64(i) => cmd.arg(i),
                Param::Binary(b) => cmd.arg(b),
            };
        }
        let value: Value = self.run(&cmd, needs_own_connection(&command)).await?;
        let mut replies = Vec::new();
        flatten(value, &mut replies).map_err(|e| RedisError::Other(self.target.scrub(e)))?;
        Ok(replies)
    }
}

/// Commands that change the state of the connection they run on, or may
/// block it: run on a shared connection they would reach, or stall, every
/// other user of it.
fn needs_own_connection(command: &str) -> bool {
    let name = command
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    matches!(
        name.as_str(),
        "AUTH"
            | "HELLO"
            | "SELECT"
            | "MULTI"
            | "EXEC"
            | "DISCARD"
            | "WATCH"
            | "UNWATCH"
            | "CLIENT"
            | "RESET"
            | "QUIT"
            | "READONLY"
            | "READWRITE"
            | "ASKING"
            | "SUBSCRIBE"
            | "UNSUBSCRIBE"
            | "PSUBSCRIBE"
            | "PUNSUBSCRIBE"
            | "SSUBSCRIBE"
            | "SUNSUBSCRIBE"
            | "MONITOR"
            | "SYNC"
            | "PSYNC"
            | "REPLCONF"
            | "BLPOP"
            | "BRPOP"
            | "BRPOPLPUSH"
            | "BLMOVE"
            | "BLMPOP"
            | "BZPOPMIN"
            | "BZPOPMAX"
            | "BZMPOP"
            | "XREAD"
            | "XREADGROUP"
            | "WAIT"
            | "WAITAOF"
    )
}

/// Appends `value` to `out` in Spin's kinds: arrays and sets flattened,
/// `OK` a status, doubles and big numbers as their decimal text, booleans
/// as 0 and 1; maps, attributes, formatted strings and pushes are refused
/// as Spin refuses them.
fn flatten(value: Value, out: &mut Vec<Reply>) -> Result<(), String> {
    match value {
        Value::Nil => out.push(Reply::Nil),
        Value::Int(i) => out.push(Reply::Int64(i)),
        Value::BulkString(b) => out.push(Reply::Binary(b)),
        Value::SimpleString(s) => out.push(Reply::Status(s)),
        Value::Okay => out.push(Reply::Status("OK".into())),
        Value::Array(values) | Value::Set(values) => {
            for v in values {
                flatten(v, out)?;
            }
        }
        Value::Double(d) => out.push(Reply::Binary(d.to_string().into_bytes())),
        Value::Boolean(b) => out.push(Reply::Int64(i64::from(b))),
        // Its decimal digits (the `num-bigint` feature is off).
        Value::BigNumber(digits) => out.push(Reply::Binary(digits)),
        Value::ServerError(e) => return Err(format!("{e:?}")),
        Value::Map(_) => return Err("Redis Map type is not supported".into()),
        Value::Attribute { .. } => return Err("Redis Attribute type is not supported".into()),
        Value::VerbatimString { .. } => {
            return Err("Redis string with format attribute is not supported".into());
        }
        Value::Push { .. } => return Err("Redis Pub/Sub types are not supported".into()),
        _ => return Err("this Redis answer type is not supported".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "127.0.0.1:6379";

    /// Whether the machine's Redis is up; under `CI=true` it must be.
    pub(crate) fn server_up() -> bool {
        let up = SERVER.parse().is_ok_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        });
        assert!(
            up || std::env::var("CI").as_deref() != Ok("true"),
            "Redis is not running on {SERVER}, and CI=true requires it"
        );
        up
    }

    fn access(rules: &[&str], pools: &Arc<RedisPools>) -> RedisAccess {
        let allowed = AllowedHosts::parse(rules).expect("rules");
        RedisAccess::new("test", Arc::new(allowed), pools.clone())
    }

    /// A key prefix no other test or run uses.
    fn prefix(test: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("trib-test:{test}:{}:{nanos}:", std::process::id())
    }

    #[tokio::test]
    async fn block_networks_refuse_an_allowed_address_before_dialling() {
        let blocked = crate::blocked_networks::BlockedNetworks::parse(&["private"]).expect("valid");
        let pools = Arc::new(RedisPools::default().with_blocked(blocked));
        let redis = access(&["redis://127.0.0.1:6379"], &pools);
        let err = redis
            .open("redis://:hunter2@127.0.0.1:6379".into())
            .await
            .err()
            .expect("blocked");
        assert_eq!(
            err,
            RedisError::Other(
                "address 127.0.0.1:6379 is in the runtime config's block_networks".into()
            )
        );
    }

    #[tokio::test]
    async fn every_operation_on_a_real_server() {
        if !server_up() {
            return;
        }
        let pools = Arc::new(RedisPools::default());
        let redis = access(&["redis://127.0.0.1:6379"], &pools);
        let conn = redis
            .open("redis://127.0.0.1:6379".into())
            .await
            .expect("opens");
        let p = prefix("ops");
        let (k, n, s) = (format!("{p}k"), format!("{p}n"), format!("{p}s"));
        assert_eq!(conn.get(k.clone()).await, Ok(None));
        conn.set(k.clone(), b"v\0x".to_vec()).await.expect("set");
        assert_eq!(conn.get(k.clone()).await, Ok(Some(b"v\0x".to_vec())));
        assert_eq!(conn.incr(n.clone()).await, Ok(1));
        assert_eq!(conn.incr(n.clone()).await, Ok(2));
        assert!(
            matches!(conn.incr(k.clone()).await, Err(RedisError::Other(m)) if m.contains("not an integer")),
            "a server error is `other` with its text"
        );
        assert_eq!(
            conn.sadd(s.clone(), vec!["a".into(), "b".into(), "a".into()])
                .await,
            Ok(2)
        );
        assert!(matches!(
            conn.sadd(k.clone(), vec!["a".into()]).await,
            Err(RedisError::Other(m)) if m.contains("WRONGTYPE")
        ));
        // An answer the function cannot return is `type-error`: a set
        // member that is not UTF-8, for `smembers`.
        let binary = format!("{p}binary-set");
        conn.execute(
            "SADD".into(),
            vec![
                Param::Binary(binary.clone().into_bytes()),
                Param::Binary(vec![0xff, 0xfe]),
            ],
        )
        .await
        .expect("sadd");
        assert_eq!(
            conn.smembers(binary.clone()).await,
            Err(RedisError::TypeError)
        );
        assert_eq!(conn.del(vec![binary]).await, Ok(1));
        let mut members = conn.smembers(s.clone()).await.expect("smembers");
        members.sort();
        assert_eq!(members, ["a", "b"]);
        assert_eq!(
            conn.srem(s.clone(), vec!["a".into(), "z".into()]).await,
            Ok(1)
        );
        conn.publish(format!("{p}channel"), b"hi".to_vec())
            .await
            .expect("publish");
        assert_eq!(
            conn.execute(
                "SET".into(),
                vec![
                    Param::Binary(format!("{p}e").into_bytes()),
                    Param::Int64(-5)
                ]
            )
            .await,
            Ok(vec![Reply::Status("OK".into())])
        );
        assert_eq!(
            conn.execute(
                "INCRBY".into(),
                vec![Param::Binary(format!("{p}e").into_bytes()), Param::Int64(2)]
            )
            .await,
            Ok(vec![Reply::Int64(-3)])
        );
        assert_eq!(
            conn.execute(
                "MGET".into(),
                vec![
                    Param::Binary(format!("{p}e").into_bytes()),
                    Param::Binary(format!("{p}missing").into_bytes())
                ]
            )
            .await,
            Ok(vec![Reply::Binary(b"-3".to_vec()), Reply::Nil])
        );
        assert!(matches!(
            conn.execute("NO-SUCH-COMMAND".into(), vec![]).await,
            Err(RedisError::Other(_))
        ));
        assert_eq!(
            conn.del(vec![k, n, s, format!("{p}e"), format!("{p}missing")])
                .await,
            Ok(4),
            "four of the five keys existed"
        );
        assert!(
            conn.private.get().is_none(),
            "plain commands share the pool's connection"
        );
    }

    #[tokio::test]
    async fn state_changing_commands_get_a_connection_of_their_own() {
        if !server_up() {
            return;
        }
        let pools = Arc::new(RedisPools::with_limit(1));
        let redis = access(&["redis://127.0.0.1:6379"], &pools);
        let address = "redis://127.0.0.1:6379".to_owned();
        let a = redis.open(address.clone()).await.expect("opens");
        let b = redis.open(address.clone()).await.expect("opens");
        let p = prefix("select");
        let key = format!("{p}k");
        // A SELECT on one guest connection does not move the other.
        assert_eq!(
            a.execute("select".into(), vec![Param::Int64(5)]).await,
            Ok(vec![Reply::Status("OK".into())])
        );
        a.set(key.clone(), b"in-db-5".to_vec()).await.expect("set");
        assert_eq!(b.get(key.clone()).await, Ok(None), "b is still on db 0");
        assert_eq!(a.get(key.clone()).await, Ok(Some(b"in-db-5".to_vec())));
        // A transaction queued on a's own connection leaves b's commands alone.
        assert_eq!(
            a.execute("MULTI".into(), vec![]).await,
            Ok(vec![Reply::Status("OK".into())])
        );
        assert_eq!(b.incr(format!("{p}n")).await, Ok(1), "b is not queued");
        assert_eq!(
            a.execute("DEL".into(), vec![Param::Binary(key.clone().into_bytes())])
                .await,
            Ok(vec![Reply::Status("QUEUED".into())])
        );
        assert_eq!(
            a.execute("EXEC".into(), vec![]).await,
            Ok(vec![Reply::Int64(1)])
        );
        // The cap on private connections holds until one is dropped.
        assert_eq!(
            b.execute("SELECT".into(), vec![Param::Int64(0)]).await,
            Err(RedisError::TooManyConnections)
        );
        drop(a);
        assert_eq!(
            b.execute("SELECT".into(), vec![Param::Int64(0)]).await,
            Ok(vec![Reply::Status("OK".into())])
        );
        assert_eq!(b.del(vec![format!("{p}n")]).await, Ok(1));
    }

    #[tokio::test]
    async fn denied_unparseable_and_unreachable_addresses() {
        let pools = Arc::new(RedisPools::default());
        let redis = access(&["redis://127.0.0.1:6379", "redis://127.0.0.1:1"], &pools);
        for address in [
            "redis://127.0.0.1:6380",
            "redis://10.0.0.1:6379",
            "rediss://127.0.0.1:6379",
            "redis://user:hunter2@127.0.0.1:6390",
            "not a url",
            "http://127.0.0.1:6379",
            "redis+unix:///tmp/redis.sock",
        ] {
            assert_eq!(
                redis.open(address.into()).await.err(),
                Some(RedisError::InvalidAddress),
                "{address}"
            );
        }
        // Nothing listens on port 1: `other`, naming the address but never
        // the password.
        let Err(RedisError::Other(message)) =
            redis.open("redis://user:hunter2@127.0.0.1:1".into()).await
        else {
            panic!("an unreachable server is `other`");
        };
        assert!(message.starts_with("redis://127.0.0.1:1: "), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn answers_flatten_as_in_spin() {
        let mut out = Vec::new();
        flatten(
            Value::Array(vec![
                Value::Okay,
                Value::Int(3),
                Value::Set(vec![Value::BulkString(b"x".to_vec()), Value::Nil]),
                Value::Boolean(true),
                Value::Double(1.5),
                Value::SimpleString("PONG".into()),
            ]),
            &mut out,
        )
        .expect("flattens");
        assert_eq!(
            out,
            [
                Reply::Status("OK".into()),
                Reply::Int64(3),
                Reply::Binary(b"x".to_vec()),
                Reply::Nil,
                Reply::Int64(1),
                Reply::Binary(b"1.5".to_vec()),
                Reply::Status("PONG".into()),
            ]
        );
        assert!(flatten(Value::Map(vec![]), &mut out).is_err());
        assert!(needs_own_connection("select"));
        assert!(needs_own_connection("BLPOP"));
        assert!(!needs_own_connection("GET"));
    }
}
