//! Spin's WASIp3 interfaces (spin-sdk 7) on top of the shared backends.
//!
//! Their functions are `async func`s: they run concurrently on the store and
//! reach it only inside `Accessor::with`, never across an `.await`.

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use super::key_value::{KvError, StoreHandle};
use super::p3::spin::key_value::key_value as kv;
use super::p3::spin::variables::variables as vars;
use super::{SpinHost, SpinView};
use crate::variables::Lookup;

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

impl From<KvError> for kv::Error {
    fn from(e: KvError) -> Self {
        match e {
            KvError::NoSuchStore => Self::NoSuchStore,
            KvError::AccessDenied => Self::AccessDenied,
            KvError::StoreTableFull => Self::StoreTableFull,
            KvError::Other(m) => Self::Other(m),
        }
    }
}

impl From<Lookup> for vars::Error {
    fn from(e: Lookup) -> Self {
        match e {
            Lookup::InvalidName(m) => Self::InvalidName(m),
            Lookup::Undefined(m) => Self::Undefined(m),
            Lookup::Provider(m) => Self::Provider(m),
        }
    }
}

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
