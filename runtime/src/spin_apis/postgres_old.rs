//! The PostgreSQL interfaces older SDKs import, `fermyon:spin/postgres@2.0.0`
//! (on `rdbms-types`) and `spin:postgres/postgres@3.0.0`, on the same pools,
//! checks and value conversions as `@4` ([`super::postgres`]): their
//! parameters become `@4` parameters and `@4` results are narrowed to
//! their types, as Spin narrows them (a value the older WIT has no variant
//! for arrives as `unsupported`, its column type as `other`).

#![allow(
    clippy::result_large_err,
    reason = "errors are the WIT type the guest receives; boxing them would only be undone"
)]

use std::sync::Arc;

use wasmtime::component::Resource;

use super::SpinView;
use super::p2::fermyon::spin::{postgres as pg2, rdbms_types as rt};
use super::p2::spin::postgres3_0_0::postgres as pg3;
use super::p3::spin::postgres4_2_0::postgres as pg;
use super::postgres::Connection;
use super::postgres_impl::SharedConnection;

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

/// A `@4` query error as the older WIT's string.
fn query_text(e: pg::QueryError) -> String {
    match e {
        pg::QueryError::Text(m) => m,
        pg::QueryError::DbError(db) => db.as_text,
    }
}

impl From<pg::Error> for rt::Error {
    fn from(e: pg::Error) -> Self {
        match e {
            pg::Error::ConnectionFailed(m) => Self::ConnectionFailed(m),
            pg::Error::BadParameter(m) => Self::BadParameter(m),
            pg::Error::QueryFailed(q) => Self::QueryFailed(query_text(q)),
            pg::Error::ValueConversionFailed(m) => Self::ValueConversionFailed(m),
            pg::Error::Other(m) => Self::Other(m),
        }
    }
}

impl From<pg::Error> for pg3::Error {
    fn from(e: pg::Error) -> Self {
        match e {
            pg::Error::ConnectionFailed(m) => Self::ConnectionFailed(m),
            pg::Error::BadParameter(m) => Self::BadParameter(m),
            pg::Error::QueryFailed(q) => Self::QueryFailed(query_text(q)),
            pg::Error::ValueConversionFailed(m) => Self::ValueConversionFailed(m),
            pg::Error::Other(m) => Self::Other(m),
        }
    }
}

/// A `rdbms-types` parameter as `@4` takes it; PostgreSQL has no unsigned
/// integers, so those are refused as Spin refuses them.
fn param2(v: rt::ParameterValue) -> Result<pg::ParameterValue, rt::Error> {
    use pg::ParameterValue as P;
    use rt::ParameterValue as R;
    Ok(match v {
        R::Boolean(v) => P::Boolean(v),
        R::Int8(v) => P::Int8(v),
        R::Int16(v) => P::Int16(v),
        R::Int32(v) => P::Int32(v),
        R::Int64(v) => P::Int64(v),
        R::Uint8(_) | R::Uint16(_) | R::Uint32(_) | R::Uint64(_) => {
            return Err(rt::Error::ValueConversionFailed(
                "Postgres does not support unsigned integers".into(),
            ));
        }
        R::Floating32(v) => P::Floating32(v),
        R::Floating64(v) => P::Floating64(v),
        R::Str(v) => P::Str(v),
        R::Binary(v) => P::Binary(v),
        R::DbNull => P::DbNull,
    })
}

fn param3(v: pg3::ParameterValue) -> pg::ParameterValue {
    use pg::ParameterValue as P;
    use pg3::ParameterValue as R;
    match v {
        R::Boolean(v) => P::Boolean(v),
        R::Int8(v) => P::Int8(v),
        R::Int16(v) => P::Int16(v),
        R::Int32(v) => P::Int32(v),
        R::Int64(v) => P::Int64(v),
        R::Floating32(v) => P::Floating32(v),
        R::Floating64(v) => P::Floating64(v),
        R::Str(v) => P::Str(v),
        R::Binary(v) => P::Binary(v),
        R::Date(v) => P::Date(v),
        R::Time(v) => P::Time(v),
        R::Datetime(v) => P::Datetime(v),
        R::Timestamp(v) => P::Timestamp(v),
        R::DbNull => P::DbNull,
    }
}

fn type2(t: pg::DbDataType) -> rt::DbDataType {
    use pg::DbDataType as D;
    use rt::DbDataType as R;
    match t {
        D::Boolean => R::Boolean,
        D::Int8 => R::Int8,
        D::Int16 => R::Int16,
        D::Int32 => R::Int32,
        D::Int64 => R::Int64,
        D::Floating32 => R::Floating32,
        D::Floating64 => R::Floating64,
        D::Str => R::Str,
        D::Binary => R::Binary,
        _ => R::Other,
    }
}

fn type3(t: pg::DbDataType) -> pg3::DbDataType {
    use pg::DbDataType as D;
    use pg3::DbDataType as R;
    match t {
        D::Boolean => R::Boolean,
        D::Int8 => R::Int8,
        D::Int16 => R::Int16,
        D::Int32 => R::Int32,
        D::Int64 => R::Int64,
        D::Floating32 => R::Floating32,
        D::Floating64 => R::Floating64,
        D::Str => R::Str,
        D::Binary => R::Binary,
        D::Date => R::Date,
        D::Time => R::Time,
        D::Datetime => R::Datetime,
        D::Timestamp => R::Timestamp,
        _ => R::Other,
    }
}

fn value2(v: pg::DbValue) -> rt::DbValue {
    use pg::DbValue as V;
    use rt::DbValue as R;
    match v {
        V::Boolean(v) => R::Boolean(v),
        V::Int8(v) => R::Int8(v),
        V::Int16(v) => R::Int16(v),
        V::Int32(v) => R::Int32(v),
        V::Int64(v) => R::Int64(v),
        V::Floating32(v) => R::Floating32(v),
        V::Floating64(v) => R::Floating64(v),
        V::Str(v) => R::Str(v),
        V::Binary(v) => R::Binary(v),
        V::DbNull => R::DbNull,
        _ => R::Unsupported,
    }
}

fn value3(v: pg::DbValue) -> pg3::DbValue {
    use pg::DbValue as V;
    use pg3::DbValue as R;
    match v {
        V::Boolean(v) => R::Boolean(v),
        V::Int8(v) => R::Int8(v),
        V::Int16(v) => R::Int16(v),
        V::Int32(v) => R::Int32(v),
        V::Int64(v) => R::Int64(v),
        V::Floating32(v) => R::Floating32(v),
        V::Floating64(v) => R::Floating64(v),
        V::Str(v) => R::Str(v),
        V::Binary(v) => R::Binary(v),
        V::Date(v) => R::Date(v),
        V::Time(v) => R::Time(v),
        V::Datetime(v) => R::Datetime(v),
        V::Timestamp(v) => R::Timestamp(v),
        V::DbNull => R::DbNull,
        _ => R::Unsupported,
    }
}

fn rows2(rows: pg::RowSet) -> rt::RowSet {
    rt::RowSet {
        columns: rows
            .columns
            .into_iter()
            .map(|c| rt::Column {
                name: c.name,
                data_type: type2(c.data_type),
            })
            .collect(),
        rows: rows
            .rows
            .into_iter()
            .map(|r| r.into_iter().map(value2).collect())
            .collect(),
    }
}

fn rows3(rows: pg::RowSet) -> pg3::RowSet {
    pg3::RowSet {
        columns: rows
            .columns
            .into_iter()
            .map(|c| pg3::Column {
                name: c.name,
                data_type: type3(c.data_type),
            })
            .collect(),
        rows: rows
            .rows
            .into_iter()
            .map(|r| r.into_iter().map(value3).collect())
            .collect(),
    }
}

impl SpinView<'_> {
    /// Opens a connection for an older interface and puts it in the table.
    async fn pg_open_old(
        &mut self,
        address: String,
    ) -> Result<Resource<SharedConnection>, pg::Error> {
        let conn: Connection = self.ctx.postgres.open(address).await?;
        self.table
            .push(Arc::new(conn))
            .map_err(|_| pg::Error::ConnectionFailed("too many connections".into()))
    }

    fn pg_old(&self, conn: &Resource<SharedConnection>) -> Result<SharedConnection, pg::Error> {
        self.table
            .get(conn)
            .cloned()
            .map_err(|_| pg::Error::ConnectionFailed("no connection found".into()))
    }
}

impl rt::Host for SpinView<'_> {}

impl pg2::Host for SpinView<'_> {}

impl pg2::HostConnection for SpinView<'_> {
    async fn open(&mut self, address: String) -> Fallible<Resource<SharedConnection>, rt::Error> {
        Ok(self.pg_open_old(address).await.map_err(Into::into))
    }

    async fn query(
        &mut self,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<rt::ParameterValue>,
    ) -> Fallible<rt::RowSet, rt::Error> {
        let params = match params.into_iter().map(param2).collect() {
            Ok(params) => params,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match self.pg_old(&conn) {
            Ok(conn) => conn.query(statement, params).await.map(rows2),
            Err(e) => Err(e),
        }
        .map_err(Into::into))
    }

    async fn execute(
        &mut self,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<rt::ParameterValue>,
    ) -> Fallible<u64, rt::Error> {
        let params = match params.into_iter().map(param2).collect() {
            Ok(params) => params,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match self.pg_old(&conn) {
            Ok(conn) => conn.execute(statement, params).await,
            Err(e) => Err(e),
        }
        .map_err(Into::into))
    }

    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl pg3::Host for SpinView<'_> {}

impl pg3::HostConnection for SpinView<'_> {
    async fn open(&mut self, address: String) -> Fallible<Resource<SharedConnection>, pg3::Error> {
        Ok(self.pg_open_old(address).await.map_err(Into::into))
    }

    async fn query(
        &mut self,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<pg3::ParameterValue>,
    ) -> Fallible<pg3::RowSet, pg3::Error> {
        let params = params.into_iter().map(param3).collect();
        Ok(match self.pg_old(&conn) {
            Ok(conn) => conn.query(statement, params).await.map(rows3),
            Err(e) => Err(e),
        }
        .map_err(Into::into))
    }

    async fn execute(
        &mut self,
        conn: Resource<SharedConnection>,
        statement: String,
        params: Vec<pg3::ParameterValue>,
    ) -> Fallible<u64, pg3::Error> {
        let params = params.into_iter().map(param3).collect();
        Ok(match self.pg_old(&conn) {
            Ok(conn) => conn.execute(statement, params).await,
            Err(e) => Err(e),
        }
        .map_err(Into::into))
    }

    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowed_hosts::AllowedHosts;
    use crate::spin_apis::postgres::{PostgresAccess, PostgresPools};

    const SERVER: &str = "127.0.0.1:5432";
    const ADDRESS: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";

    fn server_up() -> bool {
        let up = SERVER.parse().is_ok_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok()
        });
        assert!(
            up || std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL is not running on {SERVER}, and CI=true requires it"
        );
        up
    }

    #[test]
    fn unsigned_parameters_are_refused_as_spin_refuses_them() {
        let err = param2(rt::ParameterValue::Uint32(1)).expect_err("unsigned");
        assert!(
            matches!(&err, rt::Error::ValueConversionFailed(m) if m.contains("unsigned")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn older_interfaces_narrow_the_values_of_4() {
        if !server_up() {
            return;
        }
        let allowed = AllowedHosts::parse(&["postgres://127.0.0.1:5432"]).expect("rule");
        let access =
            PostgresAccess::new("old", Arc::new(allowed), Arc::new(PostgresPools::default()));
        let conn = access.open(ADDRESS.into()).await.expect("opens");
        let params = [
            rt::ParameterValue::Int32(7),
            rt::ParameterValue::Str("héllo".into()),
            rt::ParameterValue::Binary(vec![0, 255]),
            rt::ParameterValue::Boolean(true),
            rt::ParameterValue::Floating64(2.5),
            rt::ParameterValue::DbNull,
        ]
        .into_iter()
        .map(param2)
        .collect::<Result<Vec<_>, _>>()
        .expect("params");
        let rows = conn
            .query(
                "SELECT $1::int4 AS i, $2::text AS t, $3::bytea AS b, $4::bool AS f, $5::float8 AS d, $6::int8 AS n, \
                 '2026-11-26'::date AS day, gen_random_uuid() AS u"
                    .into(),
                params,
            )
            .await
            .expect("query");
        let v2 = rows2(rows.clone());
        assert_eq!(
            format!("{:?}", v2.rows),
            "[[DbValue::Int32(7), DbValue::Str(\"héllo\"), DbValue::Binary([0, 255]), DbValue::Boolean(true), DbValue::Floating64(2.5), DbValue::DbNull, DbValue::Unsupported, DbValue::Unsupported]]"
        );
        let v3 = rows3(rows);
        let text = format!("{:?} {:?}", v3.columns, v3.rows);
        assert!(text.contains("DbValue::Date((2026, 11, 26))"), "{text}");
        assert!(text.contains("DbDataType::Date"), "{text}");
        assert!(text.ends_with("DbValue::Unsupported]]"), "{text}");
        let err = conn
            .query("SELECT * FROM trib_no_such_table".into(), vec![])
            .await
            .expect_err("no table");
        let rt::Error::QueryFailed(m) = rt::Error::from(err) else {
            panic!("not query-failed");
        };
        assert!(m.contains("trib_no_such_table"), "{m}");
    }
}
