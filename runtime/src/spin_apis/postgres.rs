//! Spin's PostgreSQL API (`spin:postgres/postgres@4.x`) on `tokio-postgres`.
//!
//! A component may connect only to servers its `allowed_outbound_hosts`
//! names with the `postgres` scheme (port 5432 unless given), as in Spin.
//! Connections are pooled per component and address across instances: a
//! guest's `open` takes an idle client when there is one, and dropping the
//! resource hands it back after a `ROLLBACK` and a session reset (what
//! `DISCARD ALL` does, but for the statements trib prepared itself), so
//! nothing a request left behind (a transaction, `SET ROLE`, `search_path`,
//! temporary tables, `PREPARE`d statements, advisory locks) reaches the
//! next one. Prepared statements are cached per client, so a statement a
//! function runs on every request is parsed once. Open connections per
//! address are capped, idle ones included; an `open` past the cap waits
//! for one to come back, then fails.
//!
//! TLS follows the address's `sslmode` (`prefer` by default, as libpq does):
//! rustls with the web PKI roots plus any root the guest adds through
//! `connection-builder.set-ca-root`.

#![allow(
    clippy::result_large_err,
    reason = "errors are the WIT type the guest receives; boxing them would only be undone"
)]

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, Statement};

use super::p3::spin::postgres4_2_0::postgres as pg;
use super::postgres_values::{Param, column, decode_row};
use crate::allowed_hosts::{AllowedHosts, Destination};

/// Idle clients a pool keeps per component and address; more are closed
/// when returned.
const MAX_IDLE_PER_ADDRESS: usize = 32;
/// Connections open at once to one address, idle ones included: well under
/// PostgreSQL's default `max_connections` of 100.
const MAX_OPEN_PER_ADDRESS: usize = 64;
/// How long an `open` waits for a connection under the cap.
const OPEN_WAIT: Duration = Duration::from_secs(5);

/// What a returned client runs before it is pooled: everything `DISCARD
/// ALL` does except `DEALLOCATE ALL`, which would drop the statements trib
/// prepared and cached (statements the guest prepared with SQL are
/// deallocated one by one).
const RESET_SESSION: &str = "ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
    UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";
/// Prepared statements a client keeps; the cache is cleared when full.
const MAX_CACHED_STATEMENTS: usize = 128;

/// The app's connection pools, shared by every component.
pub struct PostgresPools {
    idle: Mutex<HashMap<PoolKey, Vec<PooledClient>>>,
    /// Open connections by address, each holding a permit.
    open: Mutex<HashMap<String, Arc<Semaphore>>>,
    max_open_per_address: usize,
    open_wait: Duration,
    blocked: crate::blocked_networks::BlockedNetworks,
}

impl Default for PostgresPools {
    fn default() -> Self {
        Self::with_limits(MAX_OPEN_PER_ADDRESS, OPEN_WAIT)
    }
}

/// Clients are shared only between opens of one component with the same
/// address and roots.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    component: Arc<str>,
    address: String,
    ca_root: Option<String>,
}

/// A client, its statement cache and its place under the address's cap.
struct PooledClient {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
    _open: OwnedSemaphorePermit,
}

/// What one component may reach.
#[derive(Clone)]
pub struct PostgresAccess {
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
    pools: Arc<PostgresPools>,
}

impl PostgresPools {
    /// Pools allowing `max_open` connections per address, an `open` waiting
    /// at most `wait` for one.
    pub fn with_limits(max_open: usize, wait: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            open: Mutex::default(),
            max_open_per_address: max_open.max(1),
            open_wait: wait,
            blocked: Default::default(),
        }
    }

    /// Refuses hosts in the runtime config's `block_networks`.
    pub fn with_blocked(mut self, blocked: crate::blocked_networks::BlockedNetworks) -> Self {
        self.blocked = blocked;
        self
    }

    /// A place under `address`'s cap: free, or made by closing an idle
    /// client of that address (another component's, say), or given back
    /// within the wait.
    async fn reserve(&self, address: &str) -> Result<OwnedSemaphorePermit, pg::Error> {
        let cap = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.entry(address.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_open_per_address)))
                .clone()
        };
        if let Ok(permit) = cap.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let evicted = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.iter_mut()
                .filter(|(key, _)| key.address == address)
                .find_map(|(_, clients)| clients.pop())
        };
        drop(evicted);
        match tokio::time::timeout(self.open_wait, cap.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(pg::Error::ConnectionFailed(format!(
                "too many connections to this address: {} are open (trib's limit per address); none was returned within {:?}",
                self.max_open_per_address, self.open_wait
            ))),
        }
    }
}

/// An open connection, held in the instance's resource table.
pub struct Connection {
    /// Taken only by `drop`, to hand the client back to its pool.
    inner: Option<PooledClient>,
    key: PoolKey,
    pools: Arc<PostgresPools>,
}

/// What `connection-builder` has gathered before `build`.
#[derive(Debug, Clone)]
pub struct Builder {
    address: String,
    ca_root: Option<String>,
}

impl std::fmt::Debug for PostgresAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresAccess")
            .field("component", &self.component)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl PostgresAccess {
    /// Access for `component` with these allowed hosts.
    pub fn new(component: &str, allowed: Arc<AllowedHosts>, pools: Arc<PostgresPools>) -> Self {
        Self {
            component: component.into(),
            allowed,
            pools,
        }
    }

    /// Opens (or reuses) a connection to `address`.
    pub async fn open(&self, address: String) -> Result<Connection, pg::Error> {
        self.build(Builder::new(address)).await
    }

    /// Opens a connection as `builder` describes.
    pub async fn build(&self, builder: Builder) -> Result<Connection, pg::Error> {
        let config = Config::from_str(&builder.address)
            .map_err(|e| pg::Error::ConnectionFailed(format!("invalid address: {e}")))?;
        for (host, port) in self.check_allowed(&config)? {
            self.pools
                .blocked
                .check(&host, port)
                .await
                .map_err(pg::Error::ConnectionFailed)?;
        }
        let key = PoolKey {
            component: self.component.clone(),
            address: builder.address,
            ca_root: builder.ca_root,
        };
        let reused = self
            .pools
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.get_mut(&key).and_then(Vec::pop));
        let client = match reused {
            Some(client) if !client.client.is_closed() => client,
            stale => {
                drop(stale);
                let open = self.pools.reserve(&key.address).await?;
                connect(&config, key.ca_root.as_deref(), open).await?
            }
        };
        Ok(Connection {
            inner: Some(client),
            key,
            pools: self.pools.clone(),
        })
    }

    /// Checks every host of `config` against the allow-list; returns them
    /// with their ports.
    fn check_allowed(&self, config: &Config) -> Result<Vec<(String, u16)>, pg::Error> {
        let ports = config.get_ports();
        let mut destinations = Vec::new();
        for (i, host) in config.get_hosts().iter().enumerate() {
            let Host::Tcp(name) = host else {
                return Err(pg::Error::ConnectionFailed(
                    "Unix-socket addresses are not supported: give a host name".into(),
                ));
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let host = name.trim_matches(['[', ']']).to_ascii_lowercase();
            let dest = Destination {
                scheme: "postgres",
                host: &host,
                port,
            };
            self.allowed
                .permit(&dest)
                .map_err(|e| pg::Error::ConnectionFailed(e.to_string()))?;
            destinations.push((host, port));
        }
        if destinations.is_empty() {
            return Err(pg::Error::ConnectionFailed(
                "the address names no host".into(),
            ));
        }
        Ok(destinations)
    }
}

impl Builder {
    /// A builder for `address`.
    pub fn new(address: String) -> Self {
        Self {
            address,
            ca_root: None,
        }
    }

    /// Trusts `pem` as a root certificate for this connection.
    pub fn set_ca_root(&mut self, pem: String) -> Result<(), pg::Error> {
        roots(Some(&pem))?;
        self.ca_root = Some(pem);
        Ok(())
    }
}

async fn connect(
    config: &Config,
    ca_root: Option<&str>,
    open: OwnedSemaphorePermit,
) -> Result<PooledClient, pg::Error> {
    let tls_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| pg::Error::Other(format!("TLS setup: {e}")))?
    .with_root_certificates(roots(ca_root)?)
    .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
    let (client, connection) = config.connect(tls).await.map_err(connection_failed)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection closed");
        }
    });
    Ok(PooledClient {
        client,
        statements: Mutex::default(),
        _open: open,
    })
}

/// The error with its causes, and a hint when TLS is what failed.
fn connection_failed(e: tokio_postgres::Error) -> pg::Error {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if message.contains("TLS") {
        message.push_str(
            " (the server's certificate must be trusted: give its CA with connection-builder.set-ca-root, or add sslmode=disable to the address on a trusted network)",
        );
    }
    pg::Error::ConnectionFailed(message)
}

fn roots(extra: Option<&str>) -> Result<rustls::RootCertStore, pg::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra {
        let mut reader = pem.as_bytes();
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut reader) {
            let cert =
                cert.map_err(|e| pg::Error::BadParameter(format!("invalid CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| pg::Error::BadParameter(format!("invalid CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(pg::Error::BadParameter(
                "the CA root holds no PEM certificate".into(),
            ));
        }
    }
    Ok(roots)
}

impl Connection {
    /// Runs a query and returns its columns and rows.
    pub async fn query(
        &self,
        statement: String,
        params: Vec<pg::ParameterValue>,
    ) -> Result<pg::RowSet, pg::Error> {
        let (client, stmt, params) = self.prepared(&statement, params).await?;
        let rows = client
            .client
            .query(&stmt, &Param::refs(&params))
            .await
            .map_err(query_failed)?;
        let columns = stmt.columns().iter().map(column).collect();
        let rows = rows.iter().map(decode_row).collect::<Result<Vec<_>, _>>()?;
        Ok(pg::RowSet { columns, rows })
    }

    /// Runs a command and returns the number of rows it affected.
    pub async fn execute(
        &self,
        statement: String,
        params: Vec<pg::ParameterValue>,
    ) -> Result<u64, pg::Error> {
        let (client, stmt, params) = self.prepared(&statement, params).await?;
        client
            .client
            .execute(&stmt, &Param::refs(&params))
            .await
            .map_err(query_failed)
    }

    /// The client, `statement` prepared on it, and the validated `params`.
    async fn prepared(
        &self,
        statement: &str,
        params: Vec<pg::ParameterValue>,
    ) -> Result<(&PooledClient, Statement, Vec<Param>), pg::Error> {
        let client = self
            .inner
            .as_ref()
            .ok_or_else(|| pg::Error::Other("the connection is closed".into()))?;
        let stmt = client.prepare(statement).await?;
        Ok((client, stmt, Param::list(params)?))
    }
}

impl PooledClient {
    async fn prepare(&self, sql: &str) -> Result<Statement, pg::Error> {
        if let Some(stmt) = self
            .statements
            .lock()
            .ok()
            .and_then(|s| s.get(sql).cloned())
        {
            return Ok(stmt);
        }
        let stmt = self.client.prepare(sql).await.map_err(query_failed)?;
        if let Ok(mut cache) = self.statements.lock() {
            if cache.len() >= MAX_CACHED_STATEMENTS {
                cache.clear();
            }
            cache.insert(sql.to_owned(), stmt.clone());
        }
        Ok(stmt)
    }
}

impl Drop for Connection {
    /// Returns the client to its pool once any transaction is rolled back.
    fn drop(&mut self) {
        let Some(client) = self.inner.take() else {
            return;
        };
        if client.client.is_closed() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pools = self.pools.clone();
        let key = self.key.clone();
        runtime.spawn(async move {
            if reset_session(&client.client).await.is_err() {
                return;
            }
            if let Ok(mut idle) = pools.idle.lock() {
                let clients = idle.entry(key).or_default();
                if clients.len() < MAX_IDLE_PER_ADDRESS {
                    clients.push(client);
                }
            }
        });
    }
}

/// Leaves a client's session as a new connection's, but for the statements
/// trib itself prepared.
async fn reset_session(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(RESET_SESSION).await?;
    let prepared = client
        .query(
            "SELECT name FROM pg_prepared_statements WHERE from_sql",
            &[],
        )
        .await?;
    for row in prepared {
        let name: String = row.try_get(0)?;
        client
            .batch_execute(&format!("DEALLOCATE \"{}\"", name.replace('"', "\"\"")))
            .await?;
    }
    Ok(())
}

/// A server or protocol error as Spin reports it: structured when the
/// server sent one.
pub(super) fn query_failed(e: tokio_postgres::Error) -> pg::Error {
    let Some(db) = e.as_db_error() else {
        return pg::Error::QueryFailed(pg::QueryError::Text(e.to_string()));
    };
    let mut extras = Vec::new();
    let mut extra = |name: &str, value: Option<&str>| {
        if let Some(v) = value {
            extras.push((name.to_owned(), v.to_owned()));
        }
    };
    extra("hint", db.hint());
    extra("schema", db.schema());
    extra("table", db.table());
    extra("column", db.column());
    extra("constraint", db.constraint());
    pg::Error::QueryFailed(pg::QueryError::DbError(pg::DbError {
        as_text: db.to_string(),
        severity: db.severity().to_owned(),
        code: db.code().code().to_owned(),
        message: db.message().to_owned(),
        detail: db.detail().map(str::to_owned),
        extras,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "127.0.0.1:5432";
    const ADDRESS: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

    /// Whether the machine's PostgreSQL is up; under `CI=true` it must be.
    fn server_up() -> bool {
        let up = SERVER.parse().is_ok_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        });
        assert!(
            up || std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL is not running on {SERVER}, and CI=true requires it"
        );
        up
    }

    fn access(component: &str, pools: &Arc<PostgresPools>) -> PostgresAccess {
        let allowed = AllowedHosts::parse(&["postgres://127.0.0.1:5432"]).expect("rule");
        PostgresAccess::new(component, Arc::new(allowed), pools.clone())
    }

    /// The single text value `sql` selects.
    async fn one(conn: &Connection, sql: &str) -> String {
        let rows = conn.query(sql.to_owned(), vec![]).await.expect(sql).rows;
        match rows.as_slice() {
            [row] => match row.as_slice() {
                [pg::DbValue::Str(s)] => s.clone(),
                other => panic!("{sql}: {other:?}"),
            },
            other => panic!("{sql}: {} rows", other.len()),
        }
    }

    /// Waits until `component` has `n` idle clients (returning a client
    /// runs in a task of its own).
    async fn idle_clients(pools: &PostgresPools, component: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count: usize = pools
                .idle
                .lock()
                .expect("lock")
                .iter()
                .filter(|(key, _)| &*key.component == component)
                .map(|(_, clients)| clients.len())
                .sum();
            if count == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{component} has {count} idle clients, not {n}"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_pooled_session_comes_back_as_new_and_only_to_its_component() {
        if !server_up() {
            return;
        }
        let pools = Arc::new(PostgresPools::default());
        let a = access("a", &pools);
        let conn = a.open(ADDRESS.into()).await.expect("opens");
        let pid = one(&conn, "SELECT pg_backend_pid()::text").await;
        for sql in [
            "SET search_path TO trib_evil",
            "SET ROLE pg_monitor",
            "CREATE TEMP TABLE trib_leak (x int)",
            "PREPARE trib_leak_stmt AS SELECT 1",
            "SELECT pg_advisory_lock(4242)",
            "BEGIN",
        ] {
            conn.execute(sql.into(), vec![]).await.expect(sql);
        }
        drop(conn);
        idle_clients(&pools, "a", 1).await;

        let conn = a.open(ADDRESS.into()).await.expect("opens");
        assert_eq!(
            one(&conn, "SELECT pg_backend_pid()::text").await,
            pid,
            "the same pooled session"
        );
        for (sql, fresh) in [
            ("SELECT current_setting('search_path')", "\"$user\", public"),
            ("SELECT current_user::text", "postgres"),
            (
                "SELECT (to_regclass('pg_temp.trib_leak') IS NULL)::text",
                "true",
            ),
            (
                "SELECT count(*)::text FROM pg_prepared_statements WHERE from_sql",
                "0",
            ),
            (
                "SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
                "0",
            ),
        ] {
            assert_eq!(one(&conn, sql).await, fresh, "{sql}");
        }
        // Another component never gets it.
        let b = access("b", &pools);
        let other = b.open(ADDRESS.into()).await.expect("opens");
        assert_ne!(one(&other, "SELECT pg_backend_pid()::text").await, pid);
    }

    #[tokio::test]
    async fn connections_per_address_are_capped() {
        if !server_up() {
            return;
        }
        let pools = Arc::new(PostgresPools::with_limits(2, Duration::from_millis(300)));
        let (a, b) = (access("a", &pools), access("b", &pools));
        let first = a.open(ADDRESS.into()).await.expect("opens");
        let second = b.open(ADDRESS.into()).await.expect("opens");
        let err = a.open(ADDRESS.into()).await.err().expect("over the cap");
        assert!(
            matches!(&err, pg::Error::ConnectionFailed(m) if m.contains("too many connections")),
            "{err:?}"
        );
        // B's returned client is idle but still open: it is closed to make
        // room for A.
        drop(second);
        idle_clients(&pools, "b", 1).await;
        let third = a.open(ADDRESS.into()).await.expect("room was made");
        idle_clients(&pools, "b", 0).await;
        drop((first, third));
    }
}
