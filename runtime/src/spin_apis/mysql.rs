//! Spin's MySQL API (`fermyon:spin/mysql@2.0.0` and `spin:mysql/mysql@3.0.0`)
//! on `mysql_async`.
//!
//! A component may connect only to servers its `allowed_outbound_hosts`
//! names with the `mysql` scheme (port 3306 unless given), as in Spin.
//! Each component has a small pool per address, shared by its instances:
//! `open` takes a connection from it and dropping the resource hands it
//! back, reset by the server (`COM_RESET_CONNECTION`) so that nothing a
//! request left behind reaches the next one.
//!
//! Addresses are URLs as Spin takes them (`mysql://user:pass@host:port/db`);
//! `ssl-mode` (or `sslmode`) other than `DISABLED` turns TLS on (rustls
//! with the web PKI roots), as in Spin. Columns map to Spin's types the way
//! Spin maps them: integers by size and sign, `FLOAT`/`DOUBLE`, text as
//! `str` and binary strings and blobs as `binary`; a value of any other
//! type (a `DECIMAL`, a `DATE`) fails the query with
//! `value-conversion-failed`, as it does in Spin.
//!
//! The address holds the password: it is never logged, printed or put in
//! an error.

#![allow(
    clippy::result_large_err,
    reason = "errors are the WIT type the guest receives; boxing them would only be undone"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::{FromValue, Queryable as _};
use mysql_async::{Opts, OptsBuilder, PoolConstraints, PoolOpts, SslOpts};

use super::p3::spin::mysql::mysql as my;
use crate::allowed_hosts::{AllowedHosts, Destination};

/// Connections a component's pool for one address keeps open at most.
const MAX_PER_POOL: usize = 16;
/// Pools the app keeps (one per component and address); past it, new
/// addresses get a pool that is dropped with its connections.
const MAX_POOLS: usize = 256;
/// How long an idle pooled connection stays open (with none, `mysql_async`
/// would keep no idle connection at all past the pool's minimum of 0).
const IDLE_TTL: Duration = Duration::from_secs(60);
/// How long `open` waits for the server (or for a pooled connection).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a query's rows may hold in the host, as Spin caps them.
const MAX_RESULT_BYTES: usize = 64 * 1024 * 1024;

/// The app's MySQL pools, shared by every component.
#[derive(Default)]
pub struct MysqlPools {
    pools: Mutex<HashMap<PoolKey, mysql_async::Pool>>,
    blocked: crate::blocked_networks::BlockedNetworks,
}

impl MysqlPools {
    /// Refuses hosts in the runtime config's `block_networks`.
    pub fn with_blocked(mut self, blocked: crate::blocked_networks::BlockedNetworks) -> Self {
        self.blocked = blocked;
        self
    }
}

/// A pool serves one component and one address (credentials included).
#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    component: Arc<str>,
    address: String,
}

/// What one component may reach.
#[derive(Clone)]
pub struct MysqlAccess {
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
    pools: Arc<MysqlPools>,
}

impl std::fmt::Debug for MysqlAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlAccess")
            .field("component", &self.component)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// An open connection, held (shared) in the instance's resource table.
pub struct Connection {
    conn: tokio::sync::Mutex<mysql_async::Conn>,
}

/// A connection shared between the table and an in-flight async call.
pub type SharedConnection = Arc<Connection>;

/// A query's answer.
#[derive(Debug, Clone)]
pub struct Rows {
    /// The result's columns.
    pub columns: Vec<my::Column>,
    /// Its rows, values in column order.
    pub rows: Vec<Vec<my::DbValue>>,
}

impl MysqlAccess {
    /// Access for `component` with these allowed hosts.
    pub fn new(component: &str, allowed: Arc<AllowedHosts>, pools: Arc<MysqlPools>) -> Self {
        Self {
            component: component.into(),
            allowed,
            pools,
        }
    }

    /// Opens (or reuses) a connection to `address`.
    pub async fn open(&self, address: String) -> Result<Connection, my::Error> {
        let opts = options(&address)?;
        let host = opts
            .ip_or_hostname()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let dest = Destination {
            scheme: "mysql",
            host: &host,
            port: opts.tcp_port(),
        };
        self.allowed
            .permit(&dest)
            .map_err(|e| my::Error::ConnectionFailed(e.to_string()))?;
        self.pools
            .blocked
            .check(&host, opts.tcp_port())
            .await
            .map_err(my::Error::ConnectionFailed)?;
        let pool = self.pool(address, opts);
        let conn = tokio::time::timeout(OPEN_TIMEOUT, pool.get_conn())
            .await
            .map_err(|_| {
                my::Error::ConnectionFailed(format!(
                    "no connection to {dest} within {OPEN_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| my::Error::ConnectionFailed(with_causes(&e)))?;
        Ok(Connection {
            conn: tokio::sync::Mutex::new(conn),
        })
    }

    fn pool(&self, address: String, opts: Opts) -> mysql_async::Pool {
        let key = PoolKey {
            component: self.component.clone(),
            address,
        };
        let mut pools = self.pools.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(&key) {
            return pool.clone();
        }
        let pool = mysql_async::Pool::new(opts);
        if pools.len() < MAX_POOLS {
            pools.insert(key, pool.clone());
        }
        pool
    }
}

/// The server options of an address: Spin's `ssl-mode` handling, TCP only
/// (never the server's Unix socket, which the allow-list cannot name), and
/// the pool's limits.
fn options(address: &str) -> Result<Opts, my::Error> {
    let (base, query) = address.split_once('?').unwrap_or((address, ""));
    let mut tls = false;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.eq_ignore_ascii_case("ssl-mode") || key.eq_ignore_ascii_case("sslmode") {
            tls = !value.eq_ignore_ascii_case("disabled");
        } else {
            rest.push(pair);
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let opts = Opts::from_url(&url)
        .map_err(|e| my::Error::ConnectionFailed(format!("invalid address: {e}")))?;
    if opts.socket().is_some() {
        return Err(my::Error::ConnectionFailed(
            "Unix-socket addresses are not supported: give a host name".into(),
        ));
    }
    let constraints = PoolConstraints::new(0, MAX_PER_POOL)
        .ok_or_else(|| my::Error::Other("invalid pool limits".into()))?;
    Ok(OptsBuilder::from_opts(opts)
        .prefer_socket(false)
        .ssl_opts(tls.then(SslOpts::default))
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                .with_reset_connection(true)
                .with_inactive_connection_ttl(IDLE_TTL),
        )
        .into())
}

/// The error with its causes.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn query_failed(e: mysql_async::Error) -> my::Error {
    my::Error::QueryFailed(with_causes(&e))
}

fn params(values: Vec<my::ParameterValue>) -> mysql_async::Params {
    if values.is_empty() {
        return mysql_async::Params::Empty;
    }
    mysql_async::Params::Positional(values.into_iter().map(parameter).collect())
}

/// A guest's parameter as MySQL takes it.
fn parameter(value: my::ParameterValue) -> mysql_async::Value {
    use my::ParameterValue as P;
    use mysql_async::Value;
    match value {
        P::Boolean(v) => Value::from(v),
        P::Int8(v) => Value::from(v),
        P::Int16(v) => Value::from(v),
        P::Int32(v) => Value::from(v),
        P::Int64(v) => Value::from(v),
        P::Uint8(v) => Value::from(v),
        P::Uint16(v) => Value::from(v),
        P::Uint32(v) => Value::from(v),
        P::Uint64(v) => Value::from(v),
        P::Floating32(v) => Value::from(v),
        P::Floating64(v) => Value::from(v),
        P::Str(v) => Value::from(v),
        P::Binary(v) => Value::from(v),
        P::DbNull => Value::NULL,
    }
}

/// Spin's name for a column's type.
fn data_type(column: &mysql_async::Column) -> my::DbDataType {
    use my::DbDataType as D;
    let ty = column.column_type();
    let flags = column.flags();
    let signed = !flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = flags.contains(ColumnFlags::BINARY_FLAG);
    if ty.is_numeric_type() {
        match (ty, signed) {
            (ColumnType::MYSQL_TYPE_DOUBLE, _) => D::Floating64,
            (ColumnType::MYSQL_TYPE_FLOAT, _) => D::Floating32,
            (ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG, true) => D::Int32,
            (ColumnType::MYSQL_TYPE_INT24 | ColumnType::MYSQL_TYPE_LONG, false) => D::Uint32,
            (ColumnType::MYSQL_TYPE_LONGLONG, true) => D::Int64,
            (ColumnType::MYSQL_TYPE_LONGLONG, false) => D::Uint64,
            (ColumnType::MYSQL_TYPE_SHORT, true) => D::Int16,
            (ColumnType::MYSQL_TYPE_SHORT, false) => D::Uint16,
            (ColumnType::MYSQL_TYPE_TINY, true) => D::Int8,
            (ColumnType::MYSQL_TYPE_TINY, false) => D::Uint8,
            _ => D::Other,
        }
    } else if ty.is_character_type() {
        match (ty, binary) {
            (ColumnType::MYSQL_TYPE_BLOB, false) => D::Str,
            (ColumnType::MYSQL_TYPE_BLOB, true) => D::Binary,
            (ColumnType::MYSQL_TYPE_STRING | ColumnType::MYSQL_TYPE_VAR_STRING, true) => D::Binary,
            (ColumnType::MYSQL_TYPE_STRING | ColumnType::MYSQL_TYPE_VAR_STRING, false) => D::Str,
            _ => D::Other,
        }
    } else if matches!(
        ty,
        ColumnType::MYSQL_TYPE_LONG_BLOB | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
    ) {
        D::Binary
    } else {
        D::Other
    }
}

fn column(c: &mysql_async::Column) -> my::Column {
    my::Column {
        name: c.name_str().into_owned(),
        data_type: data_type(c),
    }
}

fn convert<T: FromValue>(
    value: mysql_async::Value,
    wrap: impl FnOnce(T) -> my::DbValue,
) -> Result<my::DbValue, my::Error> {
    mysql_async::from_value_opt::<T>(value)
        .map(wrap)
        .map_err(|e| my::Error::ValueConversionFailed(e.to_string()))
}

/// One value of a column, as Spin converts it.
fn value(value: mysql_async::Value, column: &my::Column) -> Result<my::DbValue, my::Error> {
    use my::{DbDataType as D, DbValue as V};
    if value == mysql_async::Value::NULL {
        return Ok(V::DbNull);
    }
    match column.data_type {
        D::Boolean => convert(value, V::Boolean),
        D::Int8 => convert(value, V::Int8),
        D::Int16 => convert(value, V::Int16),
        D::Int32 => convert(value, V::Int32),
        D::Int64 => convert(value, V::Int64),
        D::Uint8 => convert(value, V::Uint8),
        D::Uint16 => convert(value, V::Uint16),
        D::Uint32 => convert(value, V::Uint32),
        D::Uint64 => convert(value, V::Uint64),
        D::Floating32 => convert(value, V::Floating32),
        D::Floating64 => convert(value, V::Floating64),
        D::Str => convert(value, V::Str),
        D::Binary => convert(value, V::Binary),
        D::Other => Err(my::Error::ValueConversionFailed(format!(
            "cannot convert the value in column {}: its type has no form in Spin's MySQL API",
            column.name
        ))),
    }
}

fn size(v: &my::DbValue) -> usize {
    std::mem::size_of::<my::DbValue>()
        + match v {
            my::DbValue::Str(s) => s.len(),
            my::DbValue::Binary(b) => b.len(),
            _ => 0,
        }
}

impl Connection {
    /// Runs a query and returns its columns and rows.
    pub async fn query(
        &self,
        statement: String,
        values: Vec<my::ParameterValue>,
    ) -> Result<Rows, my::Error> {
        let mut conn = self.conn.lock().await;
        let mut result = conn
            .exec_iter(statement, params(values))
            .await
            .map_err(query_failed)?;
        let columns: Vec<my::Column> = result
            .columns()
            .map(|c| c.iter().map(column).collect())
            .unwrap_or_default();
        let raw: Vec<mysql_async::Row> = result.collect().await.map_err(query_failed)?;
        let mut rows = Vec::with_capacity(raw.len());
        let mut bytes = 0;
        for row in raw {
            // A value is `None` only once taken, which nothing here does.
            let values = row.unwrap_raw();
            let mut out = Vec::with_capacity(values.len());
            for (i, v) in values.into_iter().enumerate() {
                let v = v.unwrap_or(mysql_async::Value::NULL);
                let column = columns
                    .get(i)
                    .ok_or_else(|| my::Error::Other(format!("no column at index {i}")))?;
                let v = value(v, column)?;
                bytes += size(&v);
                out.push(v);
            }
            if bytes > MAX_RESULT_BYTES {
                return Err(my::Error::Other(format!(
                    "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
                )));
            }
            rows.push(out);
        }
        Ok(Rows { columns, rows })
    }

    /// Runs a command (its rows, if any, are read and dropped).
    pub async fn execute(
        &self,
        statement: String,
        values: Vec<my::ParameterValue>,
    ) -> Result<(), my::Error> {
        let mut conn = self.conn.lock().await;
        conn.exec_drop(statement, params(values))
            .await
            .map_err(query_failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use my::{DbDataType as D, DbValue as V, ParameterValue as P};

    const SERVER: &str = "127.0.0.1:3306";
    const ADDRESS: &str = "mysql://root@127.0.0.1:3306/test";

    /// Whether the machine's MariaDB is up; under `CI=true` it must be.
    fn server_up() -> bool {
        let up = SERVER.parse().is_ok_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        });
        assert!(
            up || std::env::var("CI").as_deref() != Ok("true"),
            "MariaDB (MySQL) is not running on {SERVER}, and CI=true requires it"
        );
        up
    }

    fn access(rules: &[&str]) -> MysqlAccess {
        let allowed = AllowedHosts::parse(rules).expect("rules");
        MysqlAccess::new("test", Arc::new(allowed), Arc::default())
    }

    fn table() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("trib_my_unit_{}_{nanos}", std::process::id())
    }

    #[tokio::test]
    async fn values_convert_as_spin_converts_them() {
        if !server_up() {
            return;
        }
        let conn = access(&["mysql://127.0.0.1:3306"])
            .open(ADDRESS.into())
            .await
            .expect("opens");
        let t = table();
        conn.execute(
            format!(
                "CREATE TABLE {t} (ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, \
                 mi MEDIUMINT, i INT, iu INT UNSIGNED, b BIGINT, bu BIGINT UNSIGNED, f FLOAT, d DOUBLE, \
                 v VARCHAR(20), c CHAR(3), tx TEXT, vb VARBINARY(8), bl BLOB, flag BOOLEAN, n INT)"
            ),
            vec![],
        )
        .await
        .expect("create");
        conn.execute(
            format!(
                "INSERT INTO {t} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            vec![
                P::Int8(-8),
                P::Uint8(200),
                P::Int16(-300),
                P::Uint16(60000),
                P::Int32(-70000),
                P::Int32(-2_000_000_000),
                P::Uint32(4_000_000_000),
                P::Int64(-9_000_000_000),
                P::Uint64(18_000_000_000_000_000_000),
                P::Floating32(1.5),
                P::Floating64(2.25),
                P::Str("héllo".into()),
                P::Str("abc".into()),
                P::Str("long text".into()),
                P::Binary(vec![0, 255, 16]),
                P::Binary(vec![1, 2, 3]),
                P::Boolean(true),
                P::DbNull,
            ],
        )
        .await
        .expect("insert");
        let rows = conn
            .query(format!("SELECT * FROM {t}"), vec![])
            .await
            .expect("query");
        let types: Vec<D> = rows.columns.iter().map(|c| c.data_type).collect();
        let debug = |v: &dyn std::fmt::Debug| format!("{v:?}");
        assert_eq!(
            debug(&types),
            debug(&[
                D::Int8,
                D::Uint8,
                D::Int16,
                D::Uint16,
                D::Int32,
                D::Int32,
                D::Uint32,
                D::Int64,
                D::Uint64,
                D::Floating32,
                D::Floating64,
                D::Str,
                D::Str,
                D::Str,
                D::Binary,
                D::Binary,
                D::Int8,
                D::Int32,
            ])
        );
        assert_eq!(
            debug(&rows.rows),
            debug(&[vec![
                V::Int8(-8),
                V::Uint8(200),
                V::Int16(-300),
                V::Uint16(60000),
                V::Int32(-70000),
                V::Int32(-2_000_000_000),
                V::Uint32(4_000_000_000),
                V::Int64(-9_000_000_000),
                V::Uint64(18_000_000_000_000_000_000),
                V::Floating32(1.5),
                V::Floating64(2.25),
                V::Str("héllo".into()),
                V::Str("abc".into()),
                V::Str("long text".into()),
                V::Binary(vec![0, 255, 16]),
                V::Binary(vec![1, 2, 3]),
                V::Int8(1),
                V::DbNull,
            ]])
        );
        // A parameter selects what it was bound to.
        let rows = conn
            .query(
                format!("SELECT v FROM {t} WHERE i = ? AND vb = ?"),
                vec![P::Int64(-2_000_000_000), P::Binary(vec![0, 255, 16])],
            )
            .await
            .expect("query");
        assert_eq!(debug(&rows.rows), debug(&[vec![V::Str("héllo".into())]]));
        // A type Spin has no variant for fails the query, as in Spin.
        let err = conn
            .query("SELECT CAST(1.5 AS DECIMAL(4,2)) AS d".into(), vec![])
            .await
            .expect_err("decimal");
        assert!(
            matches!(&err, my::Error::ValueConversionFailed(m) if m.contains("column d")),
            "{err:?}"
        );
        let err = conn
            .query("SELECT * FROM trib_no_such_table".into(), vec![])
            .await
            .expect_err("no table");
        assert!(
            matches!(&err, my::Error::QueryFailed(m) if m.contains("trib_no_such_table")),
            "{err:?}"
        );
        conn.execute(format!("DROP TABLE {t}"), vec![])
            .await
            .expect("drop");
    }

    #[tokio::test]
    async fn block_networks_refuse_an_allowed_address_before_dialling() {
        let blocked = crate::blocked_networks::BlockedNetworks::parse(&["private"]).expect("valid");
        let a = MysqlAccess::new(
            "test",
            Arc::new(AllowedHosts::parse(&["mysql://localhost:3306"]).expect("rules")),
            Arc::new(MysqlPools::default().with_blocked(blocked)),
        );
        let err = a
            .open("mysql://root:s3cret@localhost:3306/test".into())
            .await
            .err()
            .expect("blocked");
        let my::Error::ConnectionFailed(m) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(
            m,
            "address localhost:3306 is in the runtime config's block_networks"
        );
    }

    #[tokio::test]
    async fn addresses_are_checked_and_secrets_kept_out_of_errors() {
        let a = access(&["mysql://127.0.0.1:3306"]);
        let err = a
            .open("mysql://root:s3cret@db.example.com/test".into())
            .await
            .err()
            .expect("denied");
        let my::Error::ConnectionFailed(m) = &err else {
            panic!("{err:?}");
        };
        assert!(
            m.contains("mysql://db.example.com:3306 is not permitted"),
            "{m}"
        );
        assert!(!m.contains("s3cret"), "{m}");
        // A closed port is a connection failure, without the password.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let a = access(&[&format!("mysql://127.0.0.1:{port}")]);
        let err = a
            .open(format!("mysql://root:s3cret@127.0.0.1:{port}/test"))
            .await
            .err()
            .expect("refused");
        let my::Error::ConnectionFailed(m) = &err else {
            panic!("{err:?}");
        };
        assert!(!m.contains("s3cret"), "{m}");
        assert!(format!("{a:?}").contains("MysqlAccess"));
        let err = a.open("not a url".into()).await.err().expect("invalid");
        assert!(matches!(err, my::Error::ConnectionFailed(_)), "{err:?}");
    }

    /// The one value `sql` selects, `Debug`-printed.
    async fn one(conn: &Connection, sql: &str) -> String {
        let rows = conn.query(sql.into(), vec![]).await.expect(sql);
        format!("{:?}", rows.rows)
    }

    #[tokio::test]
    async fn a_pooled_connection_comes_back_reset() {
        if !server_up() {
            return;
        }
        let a = access(&["mysql://127.0.0.1:3306"]);
        let conn = a.open(ADDRESS.into()).await.expect("opens");
        let id = one(&conn, "SELECT CONNECTION_ID() AS id").await;
        conn.execute("SET @trib_leak = 5".into(), vec![])
            .await
            .expect("set");
        assert_eq!(
            one(&conn, "SELECT @trib_leak AS v").await,
            "[[DbValue::Int64(5)]]"
        );
        drop(conn);
        // The connection goes back in a task of its own: poll until the
        // next open gets it (the pool has no other).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let conn = a.open(ADDRESS.into()).await.expect("opens");
            let now = one(&conn, "SELECT CONNECTION_ID() AS id").await;
            if now == id {
                assert_eq!(
                    one(&conn, "SELECT @trib_leak AS v").await,
                    "[[DbValue::DbNull]]",
                    "the session was reset"
                );
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the connection never came back to the pool"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn ssl_mode_follows_spin() {
        let tls = |a: &str| options(a).expect("valid").ssl_opts().is_some();
        assert!(!tls("mysql://u:p@127.0.0.1/db"));
        assert!(!tls("mysql://u:p@127.0.0.1/db?ssl-mode=DISABLED"));
        assert!(tls("mysql://u:p@127.0.0.1/db?sslMode=VERIFY_CA"));
        assert!(tls("mysql://u:p@127.0.0.1/db?SsLmOdE=REQUIRED&pool_max=10"));
    }
}
