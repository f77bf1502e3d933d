//! Spin's PostgreSQL API (`spin:postgres/postgres@4.x`) on `tokio-postgres`.
//!
//! A component may connect only to servers its `allowed_outbound_hosts`
//! names with the `postgres` scheme (port 5432 unless given), as in Spin.
//! Connections are pooled per address across instances: a guest's `open`
//! takes an idle client when there is one, and dropping the resource hands
//! it back after a `ROLLBACK`, so a guest that left a transaction open never
//! leaks it into the next request. Prepared statements are cached per
//! client, so a statement a function runs on every request is parsed once.
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

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, Statement};

use super::p3::spin::postgres::postgres as pg;
use super::postgres_values::{Param, column, decode_row};
use crate::allowed_hosts::{AllowedHosts, Destination};

/// Idle clients a pool keeps per address; more are closed when returned.
const MAX_IDLE_PER_ADDRESS: usize = 32;
/// Prepared statements a client keeps; the cache is cleared when full.
const MAX_CACHED_STATEMENTS: usize = 128;

/// The app's connection pools, shared by every component.
#[derive(Default)]
pub struct PostgresPools {
    idle: Mutex<HashMap<PoolKey, Vec<PooledClient>>>,
}

/// Clients are shared only between opens of the same address and roots.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    address: String,
    ca_root: Option<String>,
}

/// A client and its statement cache.
struct PooledClient {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

/// What one component may reach.
#[derive(Clone)]
pub struct PostgresAccess {
    allowed: Arc<AllowedHosts>,
    pools: Arc<PostgresPools>,
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
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl PostgresAccess {
    /// Access for a component with these allowed hosts.
    pub fn new(allowed: Arc<AllowedHosts>, pools: Arc<PostgresPools>) -> Self {
        Self { allowed, pools }
    }

    /// Opens (or reuses) a connection to `address`.
    pub async fn open(&self, address: String) -> Result<Connection, pg::Error> {
        self.build(Builder::new(address)).await
    }

    /// Opens a connection as `builder` describes.
    pub async fn build(&self, builder: Builder) -> Result<Connection, pg::Error> {
        let config = Config::from_str(&builder.address)
            .map_err(|e| pg::Error::ConnectionFailed(format!("invalid address: {e}")))?;
        self.check_allowed(&config)?;
        let key = PoolKey {
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
            _ => connect(&config, key.ca_root.as_deref()).await?,
        };
        Ok(Connection {
            inner: Some(client),
            key,
            pools: self.pools.clone(),
        })
    }

    fn check_allowed(&self, config: &Config) -> Result<(), pg::Error> {
        let ports = config.get_ports();
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
            if !self.allowed.allows(&dest) {
                return Err(pg::Error::ConnectionFailed(format!(
                    "address {dest} is not permitted: add it to the component's allowed_outbound_hosts"
                )));
            }
        }
        if config.get_hosts().is_empty() {
            return Err(pg::Error::ConnectionFailed(
                "the address names no host".into(),
            ));
        }
        Ok(())
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

async fn connect(config: &Config, ca_root: Option<&str>) -> Result<PooledClient, pg::Error> {
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
            if client.client.batch_execute("ROLLBACK").await.is_err() {
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
