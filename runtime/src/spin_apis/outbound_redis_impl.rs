//! `fermyon:spin/redis@2.0.0` (spin-sdk 5, synchronous functions) and
//! `spin:redis/redis@3.0.0` (spin-sdk 7, `async func`s) on top of
//! [`super::outbound_redis`].

use wasmtime::component::{Accessor, Resource};

use super::outbound_redis::{Param, RedisError, Reply, SharedConnection};
use super::p2::fermyon::spin::redis as v2;
use super::p3::spin::redis::redis as v3;
use super::{SpinHost, SpinView};

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

/// The backend's types in one generation's generated types.
macro_rules! redis_conversions {
    ($gen:ident) => {
        impl From<RedisError> for $gen::Error {
            fn from(e: RedisError) -> Self {
                match e {
                    RedisError::InvalidAddress => Self::InvalidAddress,
                    RedisError::TooManyConnections => Self::TooManyConnections,
                    RedisError::TypeError => Self::TypeError,
                    RedisError::Other(m) => Self::Other(m),
                }
            }
        }

        impl From<$gen::RedisParameter> for Param {
            fn from(p: $gen::RedisParameter) -> Self {
                match p {
                    $gen::RedisParameter::Int64(i) => Self::Int64(i),
                    $gen::RedisParameter::Binary(b) => Self::Binary(b),
                }
            }
        }

        impl From<Reply> for $gen::RedisResult {
            fn from(r: Reply) -> Self {
                match r {
                    Reply::Nil => Self::Nil,
                    Reply::Status(s) => Self::Status(s),
                    Reply::Int64(i) => Self::Int64(i),
                    Reply::Binary(b) => Self::Binary(b),
                }
            }
        }
    };
}

redis_conversions!(v2);
redis_conversions!(v3);

/// The answer of `execute` in a generation's result type.
fn replies<R: From<Reply>>(result: Result<Vec<Reply>, RedisError>) -> Result<Vec<R>, RedisError> {
    result.map(|replies| replies.into_iter().map(R::from).collect())
}

impl SpinView<'_> {
    fn push_redis(
        &mut self,
        conn: SharedConnection,
    ) -> Result<Resource<SharedConnection>, RedisError> {
        self.table
            .push(conn)
            .map_err(|_| RedisError::TooManyConnections)
    }

    fn redis_connection(
        &self,
        conn: &Resource<SharedConnection>,
    ) -> Result<SharedConnection, RedisError> {
        self.table
            .get(conn)
            .cloned()
            .map_err(|_| RedisError::Other("could not find connection for resource".into()))
    }
}

/// Runs `$call` on the backend connection behind `$conn` (a guest handle),
/// the error in the generation's type.
macro_rules! on_connection {
    ($conn:expr, |$c:ident| $call:expr) => {
        Ok(match $conn {
            Ok($c) => $call.await.map_err(Into::into),
            Err(e) => Err(e.into()),
        })
    };
}

impl v2::Host for SpinView<'_> {}

impl v2::HostConnection for SpinView<'_> {
    async fn open(&mut self, address: String) -> Fallible<Resource<SharedConnection>, v2::Error> {
        let conn = match self.ctx.redis.open(address).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(self.push_redis(conn.into()).map_err(Into::into))
    }

    async fn publish(
        &mut self,
        conn: Resource<SharedConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Fallible<(), v2::Error> {
        on_connection!(self.redis_connection(&conn), |c| c
            .publish(channel, payload))
    }

    async fn get(
        &mut self,
        conn: Resource<SharedConnection>,
        key: String,
    ) -> Fallible<Option<Vec<u8>>, v2::Error> {
        on_connection!(self.redis_connection(&conn), |c| c.get(key))
    }

    async fn set(
        &mut self,
        conn: Resource<SharedConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Fallible<(), v2::Error> {
        on_connection!(self.redis_connection(&conn), |c| c.set(key, value))
    }

    async fn incr(
        &mut self,
        conn: Resource<SharedConnection>,
        key: String,
    ) -> Fallible<i64, v2::Error> {
        on_connection!(self.redis_connection(&conn), |c| c.incr(key))
    }

    async fn del(
        &mut self,
        conn: Resource<SharedConnection>,
        keys: Vec<String>,
    ) -> Fallible<u32, v2::Error> {
        on_connection!(self.redis_connection(&conn), |c| c.del(keys))
    }

    async fn sadd(
        &mut self,
        conn: Resource<SharedConnection>,
        key: String,
        values: Vec<String>,
    ) -> Fallible<u32, v2::Error> {
        on_connection!(self.redis_connection(&conn), |c| c.sadd(key, values))
    }

    async fn smembers(
        &mut self,
        conn: Resource<SharedConnection>,
        key: String,
    ) -> Fallible<Vec<String>, v2::Error> {
        on_connection!(self.redis_connection(&conn), |c| c.smembers(key))
    }

    async fn srem(
        &mut self,
        conn: Resource<SharedConnection>,
        key: String,
        values: Vec<String>,
    ) -> Fallible<u32, v2::Error> {
        on_connection!(self.redis_connection(&conn), |c| c.srem(key, values))
    }

    async fn execute(
        &mut self,
        conn: Resource<SharedConnection>,
        command: String,
        arguments: Vec<v2::RedisParameter>,
    ) -> Fallible<Vec<v2::RedisResult>, v2::Error> {
        let arguments = arguments.into_iter().map(Param::from).collect();
        Ok(match self.redis_connection(&conn) {
            Ok(c) => replies(c.execute(command, arguments).await).map_err(Into::into),
            Err(e) => Err(e.into()),
        })
    }

    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

/// The backend connection behind a guest handle, cloned out of the table
/// so the call can wait without holding the store.
fn connection<T>(
    accessor: &Accessor<T, SpinHost>,
    conn: &Resource<SharedConnection>,
) -> Result<SharedConnection, RedisError> {
    accessor.with(|mut access| access.get().redis_connection(conn))
}

impl v3::Host for SpinView<'_> {}

impl v3::HostConnection for SpinView<'_> {
    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl<T> v3::HostConnectionWithStore<T> for SpinHost {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Fallible<Resource<SharedConnection>, v3::Error> {
        let access = accessor.with(|mut a| a.get().ctx.redis.clone());
        let conn = match access.open(address).await {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(accessor.with(|mut a| a.get().push_redis(conn.into()).map_err(Into::into)))
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Fallible<(), v3::Error> {
        on_connection!(connection(accessor, &conn), |c| c.publish(channel, payload))
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        key: String,
    ) -> Fallible<Option<Vec<u8>>, v3::Error> {
        on_connection!(connection(accessor, &conn), |c| c.get(key))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Fallible<(), v3::Error> {
        on_connection!(connection(accessor, &conn), |c| c.set(key, value))
    }

    async fn incr(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        key: String,
    ) -> Fallible<i64, v3::Error> {
        on_connection!(connection(accessor, &conn), |c| c.incr(key))
    }

    async fn del(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        keys: Vec<String>,
    ) -> Fallible<u32, v3::Error> {
        on_connection!(connection(accessor, &conn), |c| c.del(keys))
    }

    async fn sadd(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        key: String,
        values: Vec<String>,
    ) -> Fallible<u32, v3::Error> {
        on_connection!(connection(accessor, &conn), |c| c.sadd(key, values))
    }

    async fn smembers(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        key: String,
    ) -> Fallible<Vec<String>, v3::Error> {
        on_connection!(connection(accessor, &conn), |c| c.smembers(key))
    }

    async fn srem(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        key: String,
        values: Vec<String>,
    ) -> Fallible<u32, v3::Error> {
        on_connection!(connection(accessor, &conn), |c| c.srem(key, values))
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        command: String,
        arguments: Vec<v3::RedisParameter>,
    ) -> Fallible<Vec<v3::RedisResult>, v3::Error> {
        let arguments = arguments.into_iter().map(Param::from).collect();
        Ok(match connection(accessor, &conn) {
            Ok(c) => replies(c.execute(command, arguments).await).map_err(Into::into),
            Err(e) => Err(e.into()),
        })
    }
}
