//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) on the same stores
//! as Spin's own key-value interface, with the same access rules.

use wasmtime::component::Resource;

use super::SpinView;
use super::key_value::{Cas, KvError, StoreHandle, SwapError};
use super::p2::wasi::keyvalue::{atomics, batch, store};

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

/// The open bucket behind a handle, or an early `no-such-store` answer.
macro_rules! bucket {
    ($view:expr, $handle:expr) => {
        match $view.bucket(&$handle) {
            Ok(bucket) => bucket,
            Err(e) => return Ok(Err(e)),
        }
    };
}

impl From<KvError> for store::Error {
    fn from(e: KvError) -> Self {
        match e {
            KvError::NoSuchStore => Self::NoSuchStore,
            KvError::AccessDenied => Self::AccessDenied,
            KvError::StoreTableFull => Self::Other("store table full".into()),
            KvError::Other(m) => Self::Other(m),
        }
    }
}

impl SpinView<'_> {
    fn bucket(&self, bucket: &Resource<StoreHandle>) -> Result<StoreHandle, store::Error> {
        self.table
            .get(bucket)
            .cloned()
            .map_err(|_| store::Error::NoSuchStore)
    }
}

impl store::Host for SpinView<'_> {
    async fn open(&mut self, identifier: String) -> Fallible<Resource<StoreHandle>, store::Error> {
        let handle = match self.ctx.key_value.open(&identifier) {
            Ok(handle) => handle,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(self
            .table
            .push(handle)
            .map_err(|_| store::Error::Other("store table full".into())))
    }
}

impl store::HostBucket for SpinView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<Option<Vec<u8>>, store::Error> {
        let bucket = bucket!(self, bucket);
        Ok(bucket.get(key).await.map_err(Into::into))
    }

    async fn set(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Fallible<(), store::Error> {
        let bucket = bucket!(self, bucket);
        Ok(bucket.set(key, value).await.map_err(Into::into))
    }

    async fn delete(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<(), store::Error> {
        let bucket = bucket!(self, bucket);
        Ok(bucket.delete(key).await.map_err(Into::into))
    }

    async fn exists(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<bool, store::Error> {
        let bucket = bucket!(self, bucket);
        Ok(bucket.exists(key).await.map_err(Into::into))
    }

    /// All keys at once; cursors are not supported (as in Spin).
    async fn list_keys(
        &mut self,
        bucket: Resource<StoreHandle>,
        cursor: Option<String>,
    ) -> Fallible<store::KeyResponse, store::Error> {
        if cursor.is_some() {
            return Ok(Err(store::Error::Other(
                "list_keys: cursor not supported".into(),
            )));
        }
        let bucket = bucket!(self, bucket);
        Ok(bucket
            .keys()
            .await
            .map(|keys| store::KeyResponse { keys, cursor: None })
            .map_err(Into::into))
    }

    async fn drop(&mut self, bucket: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::HostCas for SpinView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> Fallible<Resource<Cas>, store::Error> {
        let store = bucket!(self, bucket);
        Ok(self
            .table
            .push(Cas {
                store,
                key,
                seen: None,
            })
            .map_err(|_| store::Error::Other("too many open handles".into())))
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Fallible<Option<Vec<u8>>, store::Error> {
        let Ok(ticket) = self.table.get(&cas).cloned() else {
            return Ok(Err(store::Error::Other(
                "compare and swap not found".into(),
            )));
        };
        let value = match ticket.store.get(ticket.key.clone()).await {
            Ok(value) => value,
            Err(e) => return Ok(Err(e.into())),
        };
        self.table.get_mut(&cas)?.seen = Some(value.clone());
        Ok(Ok(value))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for SpinView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
        delta: i64,
    ) -> Fallible<i64, store::Error> {
        let bucket = bucket!(self, bucket);
        Ok(bucket.increment(key, delta).await.map_err(Into::into))
    }

    /// Writes only if the value is still what `current` saw; on a conflict
    /// the guest gets a fresh ticket to retry with.
    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> Fallible<(), atomics::CasError> {
        let ticket = self.table.delete(cas)?;
        let seen = ticket.seen.clone().unwrap_or(None);
        match ticket.store.swap(ticket.key.clone(), seen, value).await {
            Ok(()) => Ok(Ok(())),
            Err(SwapError::Store(e)) => Ok(Err(atomics::CasError::StoreError(e.into()))),
            Err(SwapError::Changed) => {
                let retry = Cas {
                    seen: None,
                    ..ticket
                };
                let retry = self.table.push(retry)?;
                Ok(Err(atomics::CasError::CasFailed(retry)))
            }
        }
    }
}

impl batch::Host for SpinView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> Fallible<Vec<(String, Option<Vec<u8>>)>, store::Error> {
        let bucket = bucket!(self, bucket);
        Ok(bucket.get_many(keys).await.map_err(Into::into))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Fallible<(), store::Error> {
        let bucket = bucket!(self, bucket);
        Ok(bucket.set_many(pairs).await.map_err(Into::into))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> Fallible<(), store::Error> {
        let bucket = bucket!(self, bucket);
        Ok(bucket.delete_many(keys).await.map_err(Into::into))
    }
}
