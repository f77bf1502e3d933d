//! Spin's WASIp3 interfaces (spin-sdk 7) on top of the shared backends.
//!
//! Their functions are `async func`s: they run concurrently on the store and
//! reach it only inside `Accessor::with`, never across an `.await`.

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use super::key_value::StoreHandle;
use super::p3::spin::key_value::key_value as kv;
use super::p3::spin::sqlite::sqlite as sql;
use super::p3::spin::variables::variables as vars;
use super::sqlite::{Connection, Value};
use super::{SpinHost, SpinView};

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

generation_conversions!(kv, vars, sql);

fn handle<T>(
    accessor: &Accessor<T, SpinHost>,
    store: &Resource<StoreHandle>,
) -> wasmtime::Result<StoreHandle> {
    accessor.with(|mut access| Ok(access.get().table.get(store)?.clone()))
}

impl kv::Host for SpinView<'_> {}

impl kv::HostStore for SpinView<'_> {
    async fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl<T> kv::HostStoreWithStore<T> for SpinHost {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> Fallible<Resource<StoreHandle>, kv::Error> {
        accessor.with(|mut access| {
            let view = access.get();
            Ok(match view.ctx.key_value.open(&label) {
                Ok(handle) => view
                    .table
                    .push(handle)
                    .map_err(|_| kv::Error::StoreTableFull),
                Err(e) => Err(e.into()),
            })
        })
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<Option<Vec<u8>>, kv::Error> {
        Ok(handle(accessor, &store)?.get(key).await.map_err(Into::into))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Fallible<(), kv::Error> {
        Ok(handle(accessor, &store)?
            .set(key, value)
            .await
            .map_err(Into::into))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<(), kv::Error> {
        Ok(handle(accessor, &store)?
            .delete(key)
            .await
            .map_err(Into::into))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<bool, kv::Error> {
        Ok(handle(accessor, &store)?
            .exists(key)
            .await
            .map_err(Into::into))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), kv::Error>>)> {
        let result = handle(accessor, &store)?.keys().await;
        let (keys, status) = match result {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(kv::Error::from(e))),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(&mut access, async move { Ok::<_, wasmtime::Error>(status) })?;
            Ok((stream, future))
        })
    }
}

impl vars::Host for SpinView<'_> {}

impl<T> vars::HostWithStore<T> for SpinHost {
    async fn get(accessor: &Accessor<T, Self>, name: String) -> Fallible<String, vars::Error> {
        Ok(accessor.with(|mut access| access.get().ctx.variables.get(&name).map_err(Into::into)))
    }
}

impl sql::Host for SpinView<'_> {}

// The synchronous (3.0.0) half, used by spin-sdk 5.x's `sqlite3` module.
sync_sqlite_connection!(sql, {
    async fn last_insert_rowid(&mut self, conn: Resource<Connection>) -> wasmtime::Result<i64> {
        Ok(self.table.get(&conn)?.clone().last_insert_rowid().await)
    }

    async fn changes(&mut self, conn: Resource<Connection>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&conn)?.clone().changes().await)
    }
});

fn connection<T>(
    accessor: &Accessor<T, SpinHost>,
    conn: &Resource<Connection>,
) -> Option<Connection> {
    accessor.with(|mut access| access.get().table.get(conn).ok().cloned())
}

/// The asynchronous (3.1.0) half, used by spin-sdk 7.
impl<T> sql::HostConnectionWithStore<T> for SpinHost {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> Fallible<Resource<Connection>, sql::Error> {
        let access = accessor.with(|mut a| a.get().ctx.sqlite.clone());
        let conn = match access.open(database).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e.into())),
        };
        accessor.with(|mut a| {
            Ok(a.get()
                .table
                .push(conn)
                .map_err(|_| sql::Error::Io("too many connections opened".into())))
        })
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<Connection>,
        statement: String,
        parameters: Vec<sql::Value>,
    ) -> Fallible<
        (
            Vec<String>,
            StreamReader<sql::RowResult>,
            FutureReader<Result<(), sql::Error>>,
        ),
        sql::Error,
    > {
        let Some(conn) = connection(accessor, &conn) else {
            return Ok(Err(sql::Error::InvalidConnection));
        };
        let params = parameters.into_iter().map(Value::from).collect();
        let rows = match conn.execute(statement, params).await {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(e.into())),
        };
        let columns = rows.columns;
        let rows: Vec<sql::RowResult> = rows.rows.into_iter().map(row).collect();
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, rows)?;
            let done = FutureReader::new(&mut access, async { Ok::<_, wasmtime::Error>(Ok(())) })?;
            Ok(Ok((columns, stream, done)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        let conn = connection(accessor, &conn)
            .ok_or_else(|| wasmtime::format_err!("invalid connection"))?;
        Ok(conn.last_insert_rowid().await)
    }

    async fn changes_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<Connection>,
    ) -> wasmtime::Result<u64> {
        let conn = connection(accessor, &conn)
            .ok_or_else(|| wasmtime::format_err!("invalid connection"))?;
        Ok(conn.changes().await)
    }
}
