//! Lazy loading and scale-to-zero, one [`ComponentSlot`] per component.
//!
//! A component nobody calls is neither compiled nor linked. Its first request
//! loads it (from the compile cache when warm: milliseconds), and after its
//! idle time with no request in flight it is unloaded again: the compiled
//! code, the `InstancePre` and the scheduler are dropped. Requests already
//! running keep what they hold, so an unload never cuts one short.
//! `min_warm > 0` loads a component at startup and keeps it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::loader::{LoadedComponent, Loader};
use crate::manifest::{Component, HttpExecutor};
use crate::metrics::ComponentMetrics;
use crate::runtime_config::ScalingPolicy;

/// One component's load state, limits and activity.
pub struct ComponentSlot {
    component: Component,
    executor: HttpExecutor,
    policy: ScalingPolicy,
    loader: Arc<Loader>,
    loaded: Mutex<Option<Arc<LoadedComponent>>>,
    load_lock: tokio::sync::Mutex<()>,
    concurrency: Option<Arc<Semaphore>>,
    in_flight: Arc<AtomicUsize>,
    /// When the slot was last used, in microseconds since `created`: an
    /// atomic, so a request marks it without taking a lock.
    last_used_us: AtomicU64,
    created: Instant,
    metrics: ComponentMetrics,
}

/// Marks a request in flight for its component; dropped when the response
/// is finished.
pub struct InFlight {
    count: Arc<AtomicUsize>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ComponentSlot {
    /// A slot for `component`, called as `executor` says; nothing is
    /// loaded yet.
    pub fn new(
        component: Component,
        executor: HttpExecutor,
        policy: ScalingPolicy,
        loader: Arc<Loader>,
    ) -> Self {
        Self {
            metrics: ComponentMetrics::new(component.id.as_str().into()),
            executor,
            concurrency: policy.max_concurrency.map(|n| Arc::new(Semaphore::new(n))),
            component,
            policy,
            loader,
            loaded: Mutex::new(None),
            load_lock: tokio::sync::Mutex::new(()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            last_used_us: AtomicU64::new(0),
            created: Instant::now(),
        }
    }

    /// The component's metric handles.
    pub fn metrics(&self) -> &ComponentMetrics {
        &self.metrics
    }

    fn touch(&self) {
        let now = self.created.elapsed().as_micros() as u64;
        self.last_used_us.fetch_max(now, Ordering::AcqRel);
    }

    fn last_used(&self) -> Instant {
        self.created + Duration::from_micros(self.last_used_us.load(Ordering::Acquire))
    }

    /// The component ID.
    pub fn id(&self) -> &str {
        &self.component.id
    }

    /// How the component is called.
    pub fn executor(&self) -> &HttpExecutor {
        &self.executor
    }

    /// The scaling policy.
    pub fn policy(&self) -> &ScalingPolicy {
        &self.policy
    }

    /// The component's own concurrency limit, if any.
    pub fn concurrency(&self) -> Option<&Arc<Semaphore>> {
        self.concurrency.as_ref()
    }

    /// Whether the component is loaded now.
    pub fn is_loaded(&self) -> bool {
        self.lock_loaded().is_some()
    }

    /// Counts a request in flight until the guard drops.
    pub fn enter(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        InFlight {
            count: self.in_flight.clone(),
        }
    }

    /// The loaded component, loading it first if needed; the flag says
    /// whether this call had to load it (a cold start).
    pub async fn get(&self) -> anyhow::Result<(Arc<LoadedComponent>, bool)> {
        if let Some(ready) = self.lock_loaded().clone() {
            return Ok((ready, false));
        }
        let _one_loader = self.load_lock.lock().await;
        if let Some(ready) = self.lock_loaded().clone() {
            return Ok((ready, false));
        }
        let loader = self.loader.clone();
        let component = self.component.clone();
        let policy = self.policy.clone();
        let executor = self.executor.clone();
        // Compiling is CPU-bound; keep it off the async workers.
        let ready =
            tokio::task::spawn_blocking(move || loader.load(&component, &policy, &executor))
                .await
                .map_err(|e| anyhow::anyhow!("loading panicked: {e}"))??;
        let ready = Arc::new(ready);
        *self.lock_loaded() = Some(ready.clone());
        self.touch();
        Ok((ready, true))
    }

    /// Installs an already loaded component (startup loading for
    /// `min_warm`).
    pub fn preload(&self, ready: Arc<LoadedComponent>) {
        *self.lock_loaded() = Some(ready);
    }

    /// Unloads the component if it has been idle for its idle time with no
    /// request in flight. Returns whether it did.
    pub fn unload_if_idle(&self, now: Instant) -> bool {
        let Some(idle) = self.policy.idle_timeout else {
            return false;
        };
        if self.policy.min_warm > 0 || self.in_flight.load(Ordering::Acquire) > 0 {
            return false;
        }
        let last = self.last_used();
        if now.saturating_duration_since(last) < idle {
            return false;
        }
        let unloaded = self.lock_loaded().take().is_some();
        if unloaded {
            tracing::info!(component = %self.component.id, idle_ms = idle.as_millis() as u64, "scaled to zero: component unloaded");
            crate::metrics::component_unloaded(&self.component.id);
        }
        unloaded
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, Option<Arc<LoadedComponent>>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Checks every slot for idleness until the returned task is aborted.
/// `slots` is asked for the current slots on every tick, so the reaper
/// follows an app that `trib watch` replaces.
pub fn spawn_reaper<F>(slots: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Vec<Arc<ComponentSlot>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let period = reap_period(&slots());
            tokio::time::sleep(period).await;
            let now = Instant::now();
            for slot in slots() {
                slot.unload_if_idle(now);
            }
        }
    })
}

/// How often to look for idle slots: a quarter of the shortest idle time
/// (so an idle component goes within 125% of it), 5 s when nothing scales
/// to zero.
fn reap_period(slots: &[Arc<ComponentSlot>]) -> Duration {
    slots
        .iter()
        .filter(|s| s.policy.min_warm == 0)
        .filter_map(|s| s.policy.idle_timeout)
        .min()
        .map_or(Duration::from_secs(5), |shortest| {
            (shortest / 4).clamp(Duration::from_millis(20), Duration::from_secs(5))
        })
}
