//! Spin's host APIs for guests of both SDK generations.
//!
//! Bindings are generated from `wit/host.wit`: world `spin-p2` (what
//! spin-sdk 5.x imports: `fermyon:spin/*@2.0.0`, `wasi:config`) and world
//! `spin-p3` (what spin-sdk 7 imports: `spin:*@3.0.0`, whose functions are
//! `async func`s run concurrently on the store). Each capability has one
//! backend ([`crate::variables`], [`key_value`]) and thin adapters per WIT
//! generation, so behaviour cannot drift between SDKs.
//!
//! State lives in [`SpinCtx`] inside the store; host functions reach it
//! through [`SpinView`], and the zero-sized [`SpinHost`] names that view for
//! the async (`Accessor`-based) p3 functions.

/// Conversions between the shared backends' types and one WIT generation's
/// generated types (`kv`, `vars` and `sql` are that generation's modules).
macro_rules! generation_conversions {
    ($kv:ident, $vars:ident, $sql:ident) => {
        impl From<$crate::spin_apis::key_value::KvError> for $kv::Error {
            fn from(e: $crate::spin_apis::key_value::KvError) -> Self {
                use $crate::spin_apis::key_value::KvError;
                match e {
                    KvError::NoSuchStore => Self::NoSuchStore,
                    KvError::AccessDenied => Self::AccessDenied,
                    KvError::StoreTableFull => Self::StoreTableFull,
                    KvError::Other(m) => Self::Other(m),
                }
            }
        }

        impl From<$crate::variables::Lookup> for $vars::Error {
            fn from(e: $crate::variables::Lookup) -> Self {
                use $crate::variables::Lookup;
                match e {
                    Lookup::InvalidName(m) => Self::InvalidName(m),
                    Lookup::Undefined(m) => Self::Undefined(m),
                    Lookup::Provider(m) => Self::Provider(m),
                }
            }
        }

        impl From<$crate::spin_apis::sqlite::SqlError> for $sql::Error {
            fn from(e: $crate::spin_apis::sqlite::SqlError) -> Self {
                use $crate::spin_apis::sqlite::SqlError;
                match e {
                    SqlError::NoSuchDatabase => Self::NoSuchDatabase,
                    SqlError::AccessDenied => Self::AccessDenied,
                    SqlError::InvalidConnection => Self::InvalidConnection,
                    SqlError::Io(m) => Self::Io(m),
                }
            }
        }

        impl From<$sql::Value> for $crate::spin_apis::sqlite::Value {
            fn from(v: $sql::Value) -> Self {
                match v {
                    $sql::Value::Integer(i) => Self::Integer(i),
                    $sql::Value::Real(f) => Self::Real(f),
                    $sql::Value::Text(s) => Self::Text(s),
                    $sql::Value::Blob(b) => Self::Blob(b),
                    $sql::Value::Null => Self::Null,
                }
            }
        }

        impl From<$crate::spin_apis::sqlite::Value> for $sql::Value {
            fn from(v: $crate::spin_apis::sqlite::Value) -> Self {
                use $crate::spin_apis::sqlite::Value;
                match v {
                    Value::Integer(i) => Self::Integer(i),
                    Value::Real(f) => Self::Real(f),
                    Value::Text(s) => Self::Text(s),
                    Value::Blob(b) => Self::Blob(b),
                    Value::Null => Self::Null,
                }
            }
        }

        /// Rows in this generation's record types.
        fn query_result(rows: $crate::spin_apis::sqlite::Rows) -> $sql::QueryResult {
            $sql::QueryResult {
                columns: rows.columns,
                rows: rows.rows.into_iter().map(row).collect(),
            }
        }

        fn row(values: Vec<$crate::spin_apis::sqlite::Value>) -> $sql::RowResult {
            $sql::RowResult {
                values: values.into_iter().map(Into::into).collect(),
            }
        }
    };
}

/// The synchronous SQLite `connection` resource of one WIT generation
/// (`sql` is its module): `open`, `execute` and `drop` are the same for
/// both; `$extra` adds what only that generation has.
macro_rules! sync_sqlite_connection {
    ($sql:ident, { $($extra:tt)* }) => {
        impl $sql::HostConnection for $crate::spin_apis::SpinView<'_> {
            async fn open(
                &mut self,
                database: String,
            ) -> wasmtime::Result<
                Result<wasmtime::component::Resource<$crate::spin_apis::sqlite::Connection>, $sql::Error>,
            > {
                Ok(self.sqlite_open(database).await.map_err(Into::into))
            }

            async fn execute(
                &mut self,
                conn: wasmtime::component::Resource<$crate::spin_apis::sqlite::Connection>,
                statement: String,
                parameters: Vec<$sql::Value>,
            ) -> wasmtime::Result<Result<$sql::QueryResult, $sql::Error>> {
                let params = parameters
                    .into_iter()
                    .map($crate::spin_apis::sqlite::Value::from)
                    .collect();
                Ok(self
                    .sqlite_execute(&conn, statement, params)
                    .await
                    .map(query_result)
                    .map_err(Into::into))
            }

            async fn drop(
                &mut self,
                conn: wasmtime::component::Resource<$crate::spin_apis::sqlite::Connection>,
            ) -> wasmtime::Result<()> {
                self.table.delete(conn)?;
                Ok(())
            }

            $($extra)*
        }
    };
}

pub mod key_value;
pub mod key_value_redis;
pub mod mysql;
mod mysql_impl;
pub mod outbound_mqtt;
mod outbound_mqtt_impl;
pub mod outbound_redis;
mod outbound_redis_impl;
mod p2_impl;
mod p3_impl;
pub mod postgres;
mod postgres_impl;
mod postgres_old;
mod postgres_values;
pub mod sqlite;
pub mod sqlite_file;
mod sqlite_pool;
mod sqlite_value;
mod wasi_keyvalue;

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::variables::ComponentVariables;

/// Bindings for spin-sdk 5.x guests.
#[expect(missing_docs, reason = "generated from WIT; the WIT files document it")]
pub mod p2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tributary:host/spin-p2",
        imports: { default: async | trappable | tracing },
        with: {
            "fermyon:spin/key-value.store": crate::spin_apis::key_value::StoreHandle,
            "fermyon:spin/sqlite.connection": crate::spin_apis::sqlite::Connection,
            "wasi:keyvalue/store.bucket": crate::spin_apis::key_value::StoreHandle,
            "wasi:keyvalue/atomics.cas": crate::spin_apis::key_value::Cas,
            "fermyon:spin/redis.connection": crate::spin_apis::outbound_redis::SharedConnection,
            "fermyon:spin/mqtt.connection": crate::spin_apis::outbound_mqtt::SharedConnection,
            "fermyon:spin/postgres.connection": crate::spin_apis::postgres_impl::SharedConnection,
            "spin:postgres/postgres.connection": crate::spin_apis::postgres_impl::SharedConnection,
            "fermyon:spin/mysql.connection": crate::spin_apis::mysql::SharedConnection,
        },
    });
}

/// Bindings for spin-sdk 7 guests.
#[expect(missing_docs, reason = "generated from WIT; the WIT files document it")]
pub mod p3 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tributary:host/spin-p3",
        imports: { default: async | trappable | tracing },
        with: {
            "spin:key-value/key-value.store": crate::spin_apis::key_value::StoreHandle,
            "spin:sqlite/sqlite.connection": crate::spin_apis::sqlite::Connection,
            "spin:postgres/postgres.connection": crate::spin_apis::postgres_impl::SharedConnection,
            "spin:postgres/postgres.connection-builder": crate::spin_apis::postgres::Builder,
            "spin:redis/redis.connection": crate::spin_apis::outbound_redis::SharedConnection,
            "spin:mqtt/mqtt.connection": crate::spin_apis::outbound_mqtt::SharedConnection,
            "spin:mysql/mysql.connection": crate::spin_apis::mysql::SharedConnection,
        },
    });
}

/// What one instance may use of Spin's APIs.
#[derive(Debug, Clone)]
pub struct SpinCtx {
    /// The component's variables, resolved at startup.
    pub variables: Arc<ComponentVariables>,
    /// Key-value stores the component may open.
    pub key_value: key_value::KeyValueAccess,
    /// SQLite databases the component may open.
    pub sqlite: sqlite::SqliteAccess,
    /// PostgreSQL servers the component may reach.
    pub postgres: postgres::PostgresAccess,
    /// Redis servers the component may reach.
    pub redis: outbound_redis::RedisAccess,
    /// MQTT brokers the component may reach.
    pub mqtt: outbound_mqtt::MqttAccess,
    /// MySQL servers the component may reach.
    pub mysql: mysql::MysqlAccess,
}

/// A borrow of the store's Spin state and resource table.
pub struct SpinView<'a> {
    /// The Spin state.
    pub ctx: &'a mut SpinCtx,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

impl SpinView<'_> {
    /// `open` for both generations' synchronous SQLite interfaces.
    async fn sqlite_open(
        &mut self,
        database: String,
    ) -> Result<wasmtime::component::Resource<sqlite::Connection>, sqlite::SqlError> {
        let conn = self.ctx.sqlite.open(database).await?;
        self.table
            .push(conn)
            .map_err(|_| sqlite::SqlError::Io("too many connections opened".into()))
    }

    /// `execute` for both generations' synchronous SQLite interfaces.
    async fn sqlite_execute(
        &mut self,
        conn: &wasmtime::component::Resource<sqlite::Connection>,
        statement: String,
        params: Vec<sqlite::Value>,
    ) -> Result<sqlite::Rows, sqlite::SqlError> {
        let conn = self
            .table
            .get(conn)
            .cloned()
            .map_err(|_| sqlite::SqlError::InvalidConnection)?;
        conn.execute(statement, params).await
    }
}

/// Names [`SpinView`] for the generated `add_to_linker` functions.
pub struct SpinHost;

impl HasData for SpinHost {
    type Data<'a> = SpinView<'a>;
}

/// Adds every Spin interface, both generations, to `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> SpinView<'_>,
) -> wasmtime::Result<()> {
    p2::SpinP2::add_to_linker::<T, SpinHost>(linker, view)?;
    p3::SpinP3::add_to_linker::<T, SpinHost>(linker, view)?;
    Ok(())
}
