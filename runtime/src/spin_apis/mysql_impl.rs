//! `fermyon:spin/mysql@2.0.0` (spin-sdk 5.x, on `rdbms-types`) and
//! `spin:mysql/mysql@3.0.0` (spin-sdk 7, `async func`s) on top of
//! [`super::mysql`]: the two generations differ only in their types.

#![allow(
    clippy::result_large_err,
    reason = "errors are the WIT type the guest receives; boxing them would only be undone"
)]

use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use super::mysql::{Connection, SharedConnection};
use super::p2::fermyon::spin::{mysql as my2, rdbms_types as rt};
use super::p3::spin::mysql::mysql as my;
use super::{SpinHost, SpinView};

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

impl From<my::Error> for rt::Error {
    fn from(e: my::Error) -> Self {
        match e {
            my::Error::ConnectionFailed(m) => Self::ConnectionFailed(m),
            my::Error::BadParameter(m) => Self::BadParameter(m),
            my::Error::QueryFailed(m) => Self::QueryFailed(m),
            my::Error::ValueConversionFailed(m) => Self::ValueConversionFailed(m),
            my::Error::Other(m) => Self::Other(m),
        }
    }
}

impl From<rt::ParameterValue> for my::ParameterValue {
    fn from(v: rt::ParameterValue) -> Self {
        use rt::ParameterValue as P;
        match v {
            P::Boolean(v) => Self::Boolean(v),
            P::Int8(v) => Self::Int8(v),
            P::Int16(v) => Self::Int16(v),
            P::Int32(v) => Self::Int32(v),
            P::Int64(v) => Self::Int64(v),
            P::Uint8(v) => Self::Uint8(v),
            P::Uint16(v) => Self::Uint16(v),
            P::Uint32(v) => Self::Uint32(v),
            P::Uint64(v) => Self::Uint64(v),
            P::Floating32(v) => Self::Floating32(v),
            P::Floating64(v) => Self::Floating64(v),
            P::Str(v) => Self::Str(v),
            P::Binary(v) => Self::Binary(v),
            P::DbNull => Self::DbNull,
        }
    }
}

impl From<my::DbValue> for rt::DbValue {
    fn from(v: my::DbValue) -> Self {
        use my::DbValue as V;
        match v {
            V::Boolean(v) => Self::Boolean(v),
            V::Int8(v) => Self::Int8(v),
            V::Int16(v) => Self::Int16(v),
            V::Int32(v) => Self::Int32(v),
            V::Int64(v) => Self::Int64(v),
            V::Uint8(v) => Self::Uint8(v),
            V::Uint16(v) => Self::Uint16(v),
            V::Uint32(v) => Self::Uint32(v),
            V::Uint64(v) => Self::Uint64(v),
            V::Floating32(v) => Self::Floating32(v),
            V::Floating64(v) => Self::Floating64(v),
            V::Str(v) => Self::Str(v),
            V::Binary(v) => Self::Binary(v),
            V::DbNull => Self::DbNull,
            V::Unsupported => Self::Unsupported,
        }
    }
}

impl From<my::DbDataType> for rt::DbDataType {
    fn from(t: my::DbDataType) -> Self {
        use my::DbDataType as D;
        match t {
            D::Boolean => Self::Boolean,
            D::Int8 => Self::Int8,
            D::Int16 => Self::Int16,
            D::Int32 => Self::Int32,
            D::Int64 => Self::Int64,
            D::Uint8 => Self::Uint8,
            D::Uint16 => Self::Uint16,
            D::Uint32 => Self::Uint32,
            D::Uint64 => Self::Uint64,
            D::Floating32 => Self::Floating32,
            D::Floating64 => Self::Floating64,
            D::Str => Self::Str,
            D::Binary => Self::Binary,
            D::Other => Self::Other,
        }
    }
}

impl SpinView<'_> {
    fn push_mysql(&mut self, conn: Connection) -> Result<Resource<SharedConnection>, my::Error> {
        self.table
            .push(Arc::new(conn))
            .map_err(|_| my::Error::ConnectionFailed("too many connections".into()))
    }

    fn mysql(&self, conn: &Resource<SharedConnection>) -> Result<SharedConnection, my::Error> {
        self.table
            .get(conn)
            .cloned()
            .map_err(|_| my::Error::ConnectionFailed("no connection found".into()))
    }
}

// `rdbms-types` has no functions; its `Host` is in `postgres_old`.

impl my2::Host for SpinView<'_> {}

impl my2::HostConnection for SpinView<'_> {
    async fn open(&mut self, address: String) -> Fallible<Resource<SharedConnection>, rt::Error> {
        let conn = match self.ctx.mysql.open(address).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(self.push_mysql(conn).map_err(Into::into))
    }

    async fn query(
        &mut self,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<rt::ParameterValue>,
    ) -> Fallible<rt::RowSet, rt::Error> {
        let conn = match self.mysql(&conn) {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e.into())),
        };
        let params = params.into_iter().map(Into::into).collect();
        Ok(conn
            .query(statement, params)
            .await
            .map(|rows| rt::RowSet {
                columns: rows
                    .columns
                    .into_iter()
                    .map(|c| rt::Column {
                        name: c.name,
                        data_type: c.data_type.into(),
                    })
                    .collect(),
                rows: rows
                    .rows
                    .into_iter()
                    .map(|r| r.into_iter().map(Into::into).collect())
                    .collect(),
            })
            .map_err(Into::into))
    }

    async fn execute(
        &mut self,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<rt::ParameterValue>,
    ) -> Fallible<(), rt::Error> {
        let conn = match self.mysql(&conn) {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e.into())),
        };
        let params = params.into_iter().map(Into::into).collect();
        Ok(conn.execute(statement, params).await.map_err(Into::into))
    }

    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl my::Host for SpinView<'_> {}

impl my::HostConnection for SpinView<'_> {
    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

fn shared<T>(
    accessor: &Accessor<T, SpinHost>,
    conn: &Resource<SharedConnection>,
) -> Result<SharedConnection, my::Error> {
    accessor.with(|mut access| access.get().mysql(conn))
}

impl<T> my::HostConnectionWithStore<T> for SpinHost {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Fallible<Resource<SharedConnection>, my::Error> {
        let access = accessor.with(|mut a| a.get().ctx.mysql.clone());
        let conn = match access.open(address).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        Ok(accessor.with(|mut a| a.get().push_mysql(conn)))
    }

    async fn query(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<my::ParameterValue>,
    ) -> Fallible<
        (
            Vec<my::Column>,
            StreamReader<Vec<my::DbValue>>,
            FutureReader<Result<(), my::Error>>,
        ),
        my::Error,
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

    async fn execute(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<my::ParameterValue>,
    ) -> Fallible<(), my::Error> {
        Ok(match shared(accessor, &conn) {
            Ok(conn) => conn.execute(statement, params).await,
            Err(e) => Err(e),
        })
    }
}
