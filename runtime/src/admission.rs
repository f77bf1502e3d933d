//! Back-pressure: who may start a request now, who waits, who is turned away.
//!
//! Two limits apply to every request: the instance pool (one slot per request
//! in flight, shared by all components) and the component's own
//! `max_concurrency`. A request that finds either exhausted waits in a
//! bounded queue for at most the queue timeout; past the bound, or after the
//! wait, it is answered `503` with `Retry-After` instead of failing inside
//! Wasmtime with "maximum concurrent instance limit reached".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Queueing settings.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Requests that may wait at once, across components.
    pub max_queued: usize,
    /// How long one request may wait.
    pub timeout: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            max_queued: 1024,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The shared pool of request slots and the queue in front of it.
pub struct Admission {
    pool: Arc<Semaphore>,
    capacity: usize,
    queued: AtomicUsize,
    settings: QueueSettings,
    /// `trib_pool_slots_in_use`, registered once: every request moves it.
    in_use: metrics::Gauge,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("capacity", &self.capacity)
            .field("queued", &self.queued)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The queue was already full.
    #[error("queue full")]
    QueueFull,
    /// Waited the whole queue timeout without getting capacity.
    #[error("no capacity within the queue timeout")]
    Timeout,
}

impl Rejected {
    /// The metric label for this rejection.
    pub fn limit(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Timeout => "queue_timeout",
        }
    }
}

/// Capacity held by one request until its response is finished.
pub struct Admitted {
    _pool: OwnedSemaphorePermit,
    _component: Option<OwnedSemaphorePermit>,
    in_use: metrics::Gauge,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted").finish_non_exhaustive()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.in_use.decrement(1.0);
    }
}

impl Admission {
    /// A pool of `capacity` request slots with the given queue.
    pub fn new(capacity: usize, settings: QueueSettings) -> Self {
        metrics::gauge!(crate::metrics::POOL_CAPACITY).set(capacity as f64);
        Self {
            pool: Arc::new(Semaphore::new(capacity)),
            capacity,
            queued: AtomicUsize::new(0),
            settings,
            in_use: metrics::gauge!(crate::metrics::POOL_IN_USE),
        }
    }

    /// Pool slots in total.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests waiting now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Suggested `Retry-After` seconds for a rejected request.
    pub fn retry_after_secs(&self) -> u64 {
        self.settings.timeout.as_secs().clamp(1, 60)
    }

    /// Takes a pool slot and, if the component is limited, one of its
    /// slots; waits in the queue when either is exhausted.
    pub async fn admit(&self, component: Option<&Arc<Semaphore>>) -> Result<Admitted, Rejected> {
        // Fast path: capacity is free, nobody waits.
        if let Ok(pool) = self.pool.clone().try_acquire_owned() {
            match component.map(|c| c.clone().try_acquire_owned()) {
                None => return Ok(self.admitted(pool, None)),
                Some(Ok(c)) => return Ok(self.admitted(pool, Some(c))),
                Some(Err(_)) => drop(pool),
            }
        }
        if self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q < self.settings.max_queued).then_some(q + 1)
            })
            .is_err()
        {
            return Err(Rejected::QueueFull);
        }
        metrics::gauge!(crate::metrics::QUEUED).increment(1.0);
        let wait = async {
            // Component first: waiting for it must not hold a pool slot that
            // other components could use.
            let component = match component {
                Some(c) => Some(c.clone().acquire_owned().await.ok()?),
                None => None,
            };
            let pool = self.pool.clone().acquire_owned().await.ok()?;
            Some((pool, component))
        };
        let result = tokio::time::timeout(self.settings.timeout, wait).await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(crate::metrics::QUEUED).decrement(1.0);
        match result {
            Ok(Some((pool, component))) => Ok(self.admitted(pool, component)),
            _ => Err(Rejected::Timeout),
        }
    }

    fn admitted(
        &self,
        pool: OwnedSemaphorePermit,
        component: Option<OwnedSemaphorePermit>,
    ) -> Admitted {
        self.in_use.increment(1.0);
        Admitted {
            _pool: pool,
            _component: component,
            in_use: self.in_use.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_queued: usize, ms: u64) -> QueueSettings {
        QueueSettings {
            max_queued,
            timeout: Duration::from_millis(ms),
        }
    }

    /// Lets other tasks run until `n` requests wait in `admission`'s queue;
    /// fails the test if that does not happen within a second.
    async fn until_queued(admission: &Admission, n: usize) {
        let wait = async {
            while admission.queued() != n {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(1), wait)
            .await
            .unwrap_or_else(|_| panic!("{} queued, not {n}", admission.queued()));
    }

    #[tokio::test]
    async fn waits_then_admits_when_capacity_frees() {
        let admission = Arc::new(Admission::new(1, settings(4, 2_000)));
        let first = admission.admit(None).await.expect("free slot");
        let waiter = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit(None).await.map(|_| ()) }
        });
        until_queued(&admission, 1).await;
        assert!(!waiter.is_finished(), "admitted while the slot was held");
        drop(first);
        assert_eq!(waiter.await.expect("task"), Ok(()));
        assert_eq!(admission.queued(), 0);
    }

    #[tokio::test]
    async fn full_queue_and_timeout_are_rejections() {
        let admission = Arc::new(Admission::new(1, settings(1, 100)));
        let _held = admission.admit(None).await.expect("free slot");
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit(None).await.map(|_| ()) }
        });
        until_queued(&admission, 1).await;
        assert_eq!(
            admission.admit(None).await.map(|_| ()),
            Err(Rejected::QueueFull)
        );
        assert_eq!(queued.await.expect("task"), Err(Rejected::Timeout));
    }

    #[tokio::test]
    async fn component_limit_applies_before_the_pool() {
        let admission = Admission::new(8, settings(8, 100));
        let component = Arc::new(Semaphore::new(1));
        let _one = admission.admit(Some(&component)).await.expect("first");
        assert_eq!(
            admission.admit(Some(&component)).await.map(|_| ()),
            Err(Rejected::Timeout)
        );
        // Other components still get pool slots.
        assert!(admission.admit(None).await.is_ok());
    }
}
