//! What happened to one request, shared by everything that serves it: the
//! request path, its response body and the instance that runs it.
//!
//! Three things hang on it:
//! - flags the host (not the guest) decides a status by (body too large,
//!   memory limit hit);
//! - whether the client is still there to take the response: when it goes
//!   away, the instance working for it has no one to work for and is
//!   stopped (by its expiration in `instances.rs`);
//! - the request's capacity (pool and component slots), held until the last
//!   of those lets go of it, so an instance still running for a departed
//!   client still counts against the limits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;

use futures::task::AtomicWaker;

use crate::admission::Admitted;

/// The shared record of one request.
#[derive(Debug, Default)]
pub struct RequestOutcome {
    /// The request body exceeded the size limit.
    pub body_too_large: AtomicBool,
    /// The guest tried to grow memory past its limit.
    pub memory_exceeded: AtomicBool,
    /// The client went away before the response was delivered.
    abandoned: AtomicBool,
    /// Woken when the request is abandoned.
    waker: AtomicWaker,
    /// Released when the last holder of the outcome drops it.
    capacity: OnceLock<Admitted>,
    /// The request's span, for the instance that serves it.
    trace: OnceLock<crate::telemetry::RequestTrace>,
}

impl RequestOutcome {
    /// Keeps `capacity` until the request and its instance are both done.
    pub fn hold(&self, capacity: Admitted) {
        // Set once per request; a second admission would be a bug, and
        // dropping it releases it at once, which is the safe side.
        let _ = self.capacity.set(capacity);
    }

    /// Names the request's span (set once, before an instance takes it).
    pub fn set_trace(&self, trace: crate::telemetry::RequestTrace) {
        let _ = self.trace.set(trace);
    }

    /// The request's span (an untraced one if none was set).
    pub fn trace(&self) -> Option<&crate::telemetry::RequestTrace> {
        self.trace.get()
    }

    /// Whether the client went away before the response was delivered.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// Held for as long as a response may still reach its client: dropped
/// without [`Delivery::delivered`], it marks the request abandoned.
#[derive(Debug)]
pub struct Delivery {
    outcome: Arc<RequestOutcome>,
    delivered: bool,
}

impl Delivery {
    /// Starts watching `outcome`'s delivery.
    pub fn new(outcome: Arc<RequestOutcome>) -> Self {
        Self {
            outcome,
            delivered: false,
        }
    }

    /// The response was delivered, or failed in a way the client was told
    /// of: nothing more to watch.
    pub fn delivered(&mut self) {
        self.delivered = true;
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if !self.delivered {
            self.outcome.abandon();
        }
    }
}

/// The requests one instance is serving (or has served and may still be
/// working for), shared by its store and its expiration.
#[derive(Debug, Clone, Default)]
pub struct InstanceRequests(Arc<Mutex<Vec<Arc<RequestOutcome>>>>);

impl InstanceRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<RequestOutcome>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a request the instance has accepted, forgetting those nobody
    /// else holds any more.
    pub fn push(&self, outcome: Arc<RequestOutcome>) {
        let mut requests = self.lock();
        requests.retain(|o| Arc::strong_count(o) > 1);
        requests.push(outcome);
    }

    /// Flags every request as having hit the memory limit.
    pub fn memory_exceeded(&self) {
        for outcome in self.lock().iter() {
            outcome.memory_exceeded.store(true, Ordering::Release);
        }
    }

    /// Whether the instance works only for clients that have gone away;
    /// otherwise `waker` is woken when that changes.
    pub fn all_abandoned(&self, waker: &Waker) -> bool {
        let requests = self.lock();
        for outcome in requests.iter() {
            outcome.waker.register(waker);
        }
        every_one_abandoned(&requests)
    }

    /// Whether every request the instance had was abandoned (and there was
    /// at least one).
    pub fn abandoned(&self) -> bool {
        every_one_abandoned(&self.lock())
    }

    /// The instance is idle: it holds on to no request (nor its capacity).
    pub fn clear(&self) {
        let mut requests = self.lock();
        if !requests.is_empty() {
            requests.clear();
        }
    }
}

/// At least one request, and every one of them abandoned.
fn every_one_abandoned(requests: &[Arc<RequestOutcome>]) -> bool {
    !requests.is_empty() && requests.iter().all(|o| o.is_abandoned())
}
