//! The app a server is serving now, replaceable while it serves
//! (`trib watch`).
//!
//! Each request reads the current app once, with one atomic load, and
//! keeps that `Arc` until its response is done: a request already running
//! when the app is replaced finishes on the version it started on, and
//! every request after the swap gets the new one. Nothing is locked and
//! the listener never closes.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::app::LoadedApp;

/// The served app, swapped in one atomic store.
pub struct LiveApp {
    current: ArcSwap<LoadedApp>,
}

impl std::fmt::Debug for LiveApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveApp")
            .field("name", &self.current.load().name())
            .finish_non_exhaustive()
    }
}

impl LiveApp {
    /// Serves `app` until it is replaced.
    pub fn new(app: Arc<LoadedApp>) -> Self {
        Self {
            current: ArcSwap::new(app),
        }
    }

    /// The app new requests go to; the caller keeps it for the whole
    /// request, so a swap never changes the app under a running request.
    pub fn current(&self) -> Arc<LoadedApp> {
        self.current.load_full()
    }

    /// Makes `app` the one new requests go to and returns the one it
    /// replaces (still serving the requests that hold it).
    pub fn replace(&self, app: Arc<LoadedApp>) -> Arc<LoadedApp> {
        self.current.swap(app)
    }
}
