//! Spin's WASIp2-era interfaces (spin-sdk 5.x) on top of the shared backends.

use wasmtime::component::Resource;

use super::SpinView;
use super::key_value::StoreHandle;
use super::p2::fermyon::spin::{key_value as kv, sqlite as sql, variables as vars};
use super::p2::wasi::config::store as config;
use crate::variables::Lookup;

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

generation_conversions!(kv, vars, sql);

impl SpinView<'_> {
    fn store(&self, store: &Resource<StoreHandle>) -> wasmtime::Result<StoreHandle> {
        Ok(self.table.get(store)?.clone())
    }
}

impl kv::Host for SpinView<'_> {}

impl kv::HostStore for SpinView<'_> {
    async fn open(&mut self, label: String) -> Fallible<Resource<StoreHandle>, kv::Error> {
        let handle = match self.ctx.key_value.open(&label) {
            Ok(handle) => handle,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(self
            .table
            .push(handle)
            .map_err(|_| kv::Error::StoreTableFull))
    }

    async fn get(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<Option<Vec<u8>>, kv::Error> {
        Ok(self.store(&store)?.get(key).await.map_err(Into::into))
    }

    async fn set(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Fallible<(), kv::Error> {
        Ok(self
            .store(&store)?
            .set(key, value)
            .await
            .map_err(Into::into))
    }

    async fn delete(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<(), kv::Error> {
        Ok(self.store(&store)?.delete(key).await.map_err(Into::into))
    }

    async fn exists(
        &mut self,
        store: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<bool, kv::Error> {
        Ok(self.store(&store)?.exists(key).await.map_err(Into::into))
    }

    async fn get_keys(&mut self, store: Resource<StoreHandle>) -> Fallible<Vec<String>, kv::Error> {
        Ok(self.store(&store)?.keys().await.map_err(Into::into))
    }

    async fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl vars::Host for SpinView<'_> {
    async fn get(&mut self, name: String) -> Fallible<String, vars::Error> {
        Ok(self.ctx.variables.get(&name).map_err(Into::into))
    }
}

/// `wasi:config/store` reads the component's variables: an unknown or
/// invalid name is `none`, a provider failure is `upstream`.
impl config::Host for SpinView<'_> {
    async fn get(&mut self, key: String) -> Fallible<Option<String>, config::Error> {
        Ok(match self.ctx.variables.get(&key) {
            Ok(value) => Ok(Some(value)),
            Err(Lookup::Undefined(_) | Lookup::InvalidName(_)) => Ok(None),
            Err(Lookup::Provider(m)) => Err(config::Error::Upstream(m)),
        })
    }

    async fn get_all(&mut self) -> Fallible<Vec<(String, String)>, config::Error> {
        Ok(self.ctx.variables.all().map_err(|e| match e {
            Lookup::Provider(m) | Lookup::Undefined(m) | Lookup::InvalidName(m) => {
                config::Error::Upstream(m)
            }
        }))
    }
}

impl sql::Host for SpinView<'_> {}

sync_sqlite_connection!(sql, {});
