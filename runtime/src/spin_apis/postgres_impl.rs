//! `spin:postgres/postgres@4.2.0` (and, through semver, the 4.0.0 and
//! 4.1.0 imports of older SDKs) on top of [`super::postgres`].
//!
//! The synchronous functions hold the store for their duration, as a
//! synchronous import must; the `-async` ones clone the connection out of
//! the table and let other tasks of the instance run while they wait.

#![allow(
    clippy::result_large_err,
    reason = "errors are the WIT type the guest receives; boxing them would only be undone"
)]

use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use super::p3::spin::postgres4_2_0::postgres as pg;
use super::postgres::{Builder, Connection};
use super::{SpinHost, SpinView};

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

/// A connection shared between the table and an in-flight async call.
pub type SharedConnection = Arc<Connection>;

impl SpinView<'_> {
    fn push_connection(
        &mut self,
        conn: Connection,
    ) -> Result<Resource<SharedConnection>, pg::Error> {
        self.table
            .push(Arc::new(conn))
            .map_err(|_| pg::Error::Other("too many connections opened".into()))
    }

    fn pg_connection(
        &self,
        conn: &Resource<SharedConnection>,
    ) -> Result<SharedConnection, pg::Error> {
        self.table
            .get(conn)
            .cloned()
            .map_err(|_| pg::Error::Other("invalid connection handle".into()))
    }
}

impl pg::Host for SpinView<'_> {}

impl pg::HostConnection for SpinView<'_> {
    async fn open(&mut self, address: String) -> Fallible<Resource<SharedConnection>, pg::Error> {
        let conn = match self.ctx.postgres.open(address).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.push_connection(conn))
    }

    async fn query(
        &mut self,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<pg::ParameterValue>,
    ) -> Fallible<pg::RowSet, pg::Error> {
        let conn = match self.pg_connection(&conn) {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        Ok(conn.query(statement, params).await)
    }

    async fn execute(
        &mut self,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<pg::ParameterValue>,
    ) -> Fallible<u64, pg::Error> {
        let conn = match self.pg_connection(&conn) {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        Ok(conn.execute(statement, params).await)
    }

    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

fn shared<T>(
    accessor: &Accessor<T, SpinHost>,
    conn: &Resource<SharedConnection>,
) -> Result<SharedConnection, pg::Error> {
    accessor.with(|mut access| access.get().pg_connection(conn))
}

impl<T> pg::HostConnectionWithStore<T> for SpinHost {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Fallible<Resource<SharedConnection>, pg::Error> {
        let access = accessor.with(|mut a| a.get().ctx.postgres.clone());
        let conn = match access.open(address).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        Ok(accessor.with(|mut a| a.get().push_connection(conn)))
    }

    async fn query_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<pg::ParameterValue>,
    ) -> Fallible<
        (
            Vec<pg::Column>,
            StreamReader<pg::Row>,
            FutureReader<Result<(), pg::Error>>,
        ),
        pg::Error,
    > {
        let rows = match shared(accessor, &conn) {
            Ok(conn) => conn.query(statement, params).await,
            Err(e) => Err(e),
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => return Ok(Err(e)),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, rows.rows)?;
            let done = FutureReader::new(&mut access, async { Ok::<_, wasmtime::Error>(Ok(())) })?;
            Ok(Ok((rows.columns, stream, done)))
        })
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<pg::ParameterValue>,
    ) -> Fallible<u64, pg::Error> {
        Ok(match shared(accessor, &conn) {
            Ok(conn) => conn.execute(statement, params).await,
            Err(e) => Err(e),
        })
    }
}

impl pg::HostConnectionBuilder for SpinView<'_> {
    async fn new(&mut self, address: String) -> wasmtime::Result<Resource<Builder>> {
        Ok(self.table.push(Builder::new(address))?)
    }

    async fn set_ca_root(
        &mut self,
        builder: Resource<Builder>,
        certificate: String,
    ) -> Fallible<(), pg::Error> {
        Ok(self.table.get_mut(&builder)?.set_ca_root(certificate))
    }

    async fn build(
        &mut self,
        builder: Resource<Builder>,
    ) -> Fallible<Resource<SharedConnection>, pg::Error> {
        let builder = self.table.get(&builder)?.clone();
        let conn = match self.ctx.postgres.build(builder).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.push_connection(conn))
    }

    async fn drop(&mut self, builder: Resource<Builder>) -> wasmtime::Result<()> {
        self.table.delete(builder)?;
        Ok(())
    }
}

impl<T> pg::HostConnectionBuilderWithStore<T> for SpinHost {
    async fn build_async(
        accessor: &Accessor<T, Self>,
        builder: Resource<Builder>,
    ) -> Fallible<Resource<SharedConnection>, pg::Error> {
        let (access, builder) = accessor.with(|mut a| {
            let view = a.get();
            let builder = view.table.get(&builder).cloned();
            (view.ctx.postgres.clone(), builder)
        });
        let conn = match access.build(builder?).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        Ok(accessor.with(|mut a| a.get().push_connection(conn)))
    }
}
