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

pub mod key_value;
mod p2_impl;
mod p3_impl;
pub mod sqlite;
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
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value.store": crate::spin_apis::key_value::StoreHandle,
            "fermyon:spin/sqlite.connection": crate::spin_apis::sqlite::Connection,
            "wasi:keyvalue/store.bucket": crate::spin_apis::key_value::StoreHandle,
            "wasi:keyvalue/atomics.cas": crate::spin_apis::key_value::Cas,
        },
    });
}

/// Bindings for spin-sdk 7 guests.
#[expect(missing_docs, reason = "generated from WIT; the WIT files document it")]
pub mod p3 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tributary:host/spin-p3",
        imports: { default: async | trappable },
        with: {
            "spin:key-value/key-value.store": crate::spin_apis::key_value::StoreHandle,
            "spin:sqlite/sqlite.connection": crate::spin_apis::sqlite::Connection,
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
}

/// A borrow of the store's Spin state and resource table.
pub struct SpinView<'a> {
    /// The Spin state.
    pub ctx: &'a mut SpinCtx,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
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
