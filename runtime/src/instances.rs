//! Runs requests for one component on fresh (or, by policy, reused) instances.
//!
//! Scheduling is `wasmtime-wasi-http`'s [`ProxyHandler`]: it keeps a queue of
//! requests and a set of workers, each owning one store and instance. This
//! module supplies the policy: how an instance is made, how many requests it
//! may take (one by default, so every request is isolated as in Spin), and
//! what happens when it ends.
//!
//! An instance lives only while someone wants its work: it is stopped (at
//! its next epoch tick, or at once if it is waiting) when every client it
//! is working for has gone away, when its request outlives the request
//! timeout, and when the server shuts down past its grace period.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, Proxy, ProxyHandler, ProxyPre, ShouldAccept,
    WorkerExpiration, WorkerState, WorkerStatus,
};

use crate::host::{HostState, InstanceTemplate};
use crate::metrics::ComponentMetrics;
use crate::outcome::{InstanceRequests, RequestOutcome};

/// How `ProxyHandler` words the error of a worker it stopped at the deadline.
const EXPIRED: &str = "guest timed out";

/// Set when the server gives up on its in-flight requests: every instance
/// still running stops.
static HALTED: AtomicBool = AtomicBool::new(false);
/// Instances alive in this process.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Stops every running instance (shutdown past its grace period) and
/// waits up to `wait` for them to be gone; returns how many are left.
pub async fn halt_all(wait: Duration) -> usize {
    HALTED.store(true, Ordering::Release);
    HALT.notify_waiters();
    let deadline = tokio::time::Instant::now() + wait;
    // Each instance notices at its next epoch tick or wake-up; a short poll
    // is enough for a path taken once per process.
    while LIVE.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    LIVE.load(Ordering::Acquire)
}

/// Wakes instances that run outside a [`ProxyHandler`] (Wagi's commands)
/// when the server halts.
static HALT: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Counts an instance alive until dropped, so [`halt_all`] waits for it.
pub(crate) struct LiveInstance(());

impl LiveInstance {
    /// Marks one more instance alive.
    pub(crate) fn enter() -> Self {
        LIVE.fetch_add(1, Ordering::AcqRel);
        Self(())
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves once the server halts (at once if it already has).
pub(crate) async fn halted() {
    let notified = HALT.notified();
    if HALTED.load(Ordering::Acquire) {
        return;
    }
    notified.await;
}

/// How instances of a component are reused and bounded in time.
#[derive(Debug, Clone)]
pub struct InstancePolicy {
    /// Requests one instance may serve over its life (1 = fresh instance per
    /// request, Spin's isolation).
    pub max_requests_per_instance: usize,
    /// Requests one instance may serve at the same time (WASIp3 only).
    pub max_concurrent_per_instance: usize,
    /// How long a reused instance may sit idle before it is dropped.
    pub idle_timeout: Duration,
    /// Wall-clock limit for producing a response.
    pub request_timeout: Option<Duration>,
    /// Instances made ahead of demand and kept ready (0: made on demand).
    pub spare_instances: usize,
}

impl Default for InstancePolicy {
    fn default() -> Self {
        Self {
            max_requests_per_instance: 1,
            max_concurrent_per_instance: 1,
            idle_timeout: Duration::from_secs(1),
            request_timeout: None,
            spare_instances: 0,
        }
    }
}

/// The request handler of one component.
pub type ComponentHandler = ProxyHandler<ComponentInstances>;

/// Everything needed to make instances of one component.
pub struct ComponentInstances {
    maker: Arc<InstanceMaker>,
    spares: Arc<Spares>,
    policy: InstancePolicy,
}

impl ComponentInstances {
    /// A scheduler for `pre`, whose instances start from `template`.
    pub fn handler(
        engine: Engine,
        pre: ProxyPre<HostState>,
        template: InstanceTemplate,
        policy: InstancePolicy,
    ) -> ComponentHandler {
        let metrics = ComponentMetrics::new(template.component.clone());
        ProxyHandler::new(Self {
            spares: Arc::new(Spares::new(policy.spare_instances, metrics.clone())),
            maker: Arc::new(InstanceMaker {
                engine,
                pre,
                metrics,
                template,
                instances_created: AtomicU64::new(0),
            }),
            policy,
        })
    }

    /// The component ID.
    pub fn component(&self) -> &str {
        &self.maker.template.component
    }

    /// Instances created so far (spares included).
    pub fn instances_created(&self) -> u64 {
        self.maker.instances_created.load(Ordering::Relaxed)
    }
}

impl HandlerState for ComponentInstances {
    type StoreData = HostState;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiration, Worker>> {
        let busy = self.spares.wanted();
        let (mut store, proxy) = match self.spares.take() {
            Some(spare) => spare,
            None => {
                // Nothing ready for a component with steady traffic: keep
                // one coming for the next request.
                if busy {
                    self.spares.replenish(&self.maker);
                }
                self.maker.make().await?
            }
        };
        // Counted from now, not from when a spare was made.
        store.set_epoch_deadline(1);
        LIVE.fetch_add(1, Ordering::AcqRel);
        self.maker.metrics.instance_active();
        let requests = store.data().limits.outcomes.clone();
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: Expiration {
                idle_timeout: self.policy.idle_timeout,
                request_timeout: self.policy.request_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
                requests,
            },
            state: Worker {
                metrics: self.maker.metrics.clone(),
                policy: self.policy.clone(),
                spares: busy.then(|| (self.spares.clone(), self.maker.clone())),
            },
        })
    }
}

/// Makes the stores and instances of one component; shared with the tasks
/// that make spares ahead of demand.
struct InstanceMaker {
    engine: Engine,
    pre: ProxyPre<HostState>,
    template: InstanceTemplate,
    metrics: ComponentMetrics,
    instances_created: AtomicU64,
}

impl InstanceMaker {
    /// A new store with fresh host state and a new instance in it.
    async fn make(&self) -> wasmtime::Result<(Store<HostState>, Proxy)> {
        let started = Instant::now();
        let started_at = crate::telemetry::export::tracer().map(|_| std::time::SystemTime::now());
        let mut store = Store::new(&self.engine, self.template.state());
        store.limiter(|state| &mut state.limits);
        // Yield to the async runtime on every epoch tick so a busy guest
        // cannot starve other requests on its worker thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.instances_created.fetch_add(1, Ordering::Relaxed);
        self.metrics.instantiated(started.elapsed());
        if let Some(at) = started_at {
            store.data_mut().instantiated = Some((at, std::time::SystemTime::now()));
        }
        Ok((store, proxy))
    }
}

/// Spare instances of all components together may hold at most this many
/// pool slots (set from the pool's headroom at load, so spares never starve
/// requests of slots).
static SPARE_BUDGET: AtomicUsize = AtomicUsize::new(0);
/// Spares that exist now (ready or being made), all components together.
static SPARES_HELD: AtomicUsize = AtomicUsize::new(0);

/// Lets spare instances hold up to `slots` pool slots in all.
pub fn set_spare_budget(slots: usize) {
    SPARE_BUDGET.store(slots, Ordering::Release);
}

/// How long a spare waits for a request before it is dropped: a component
/// that has gone quiet gives its pool slot and memory back.
const SPARE_IDLE: Duration = Duration::from_secs(1);

/// Instances made ahead of demand, so a request finds its fresh instance
/// ready instead of waiting for one to be made. Each spare serves exactly
/// the one worker that takes it, as if made on demand: nothing is shared
/// between requests. Spares are made only for a component whose requests
/// come within [`SPARE_IDLE`] of each other, and dropped after
/// [`SPARE_IDLE`] without a taker.
struct Spares {
    /// Ready spares, the oldest first.
    ready: std::sync::Mutex<Vec<(Store<HostState>, Proxy)>>,
    /// Spares being made now.
    making: AtomicUsize,
    /// Spares to keep ready (`spare_instances`).
    target: usize,
    /// Takes since the idle sweeper last looked.
    taken: AtomicU64,
    /// Whether an idle sweeper is running.
    sweeping: AtomicBool,
    /// When an instance was last wanted, in microseconds since `created`.
    last_wanted_us: AtomicU64,
    created: Instant,
    metrics: ComponentMetrics,
}

impl Spares {
    fn new(target: usize, metrics: ComponentMetrics) -> Self {
        Self {
            metrics,
            ready: std::sync::Mutex::new(Vec::new()),
            making: AtomicUsize::new(0),
            target,
            taken: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
            last_wanted_us: AtomicU64::new(u64::MAX),
            created: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Store<HostState>, Proxy)>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that an instance is wanted now; true if one was also wanted
    /// within the last [`SPARE_IDLE`] (the component is busy enough for
    /// spares to be worth their slot: a component called once, as when a
    /// thousand are each touched once, never makes one).
    fn wanted(&self) -> bool {
        if self.target == 0 {
            return false;
        }
        let now = self.created.elapsed().as_micros() as u64;
        let last = self.last_wanted_us.swap(now, Ordering::AcqRel);
        last != u64::MAX && now.saturating_sub(last) < SPARE_IDLE.as_micros() as u64
    }

    /// A ready spare, if there is one.
    fn take(&self) -> Option<(Store<HostState>, Proxy)> {
        if self.target == 0 {
            return None;
        }
        let spare = self.lock().pop()?;
        SPARES_HELD.fetch_sub(1, Ordering::AcqRel);
        self.metrics.spares_changed(-1.0);
        self.taken.fetch_add(1, Ordering::Relaxed);
        Some(spare)
    }

    /// Starts making a spare if fewer than the target are ready or being
    /// made and the budget allows one more.
    fn replenish(self: &Arc<Self>, maker: &Arc<InstanceMaker>) {
        if self.target == 0 {
            return;
        }
        let ready = self.lock().len();
        let claimed = self
            .making
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |making| {
                (ready + making < self.target).then_some(making + 1)
            });
        if claimed.is_err() {
            return;
        }
        let budget = SPARE_BUDGET.load(Ordering::Acquire);
        if SPARES_HELD
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < budget).then_some(held + 1)
            })
            .is_err()
        {
            self.making.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let spares = self.clone();
        let maker = maker.clone();
        tokio::spawn(async move {
            let made = maker.make().await;
            match made {
                Ok(spare) => {
                    spares.lock().push(spare);
                    spares.metrics.spares_changed(1.0);
                    spares.making.fetch_sub(1, Ordering::AcqRel);
                    spares.sweep_when_idle();
                }
                Err(e) => {
                    spares.making.fetch_sub(1, Ordering::AcqRel);
                    SPARES_HELD.fetch_sub(1, Ordering::AcqRel);
                    tracing::debug!(component = %maker.template.component, "spare instance not made: {e:#}");
                }
            }
        });
    }

    /// Drops the ready spares once a whole [`SPARE_IDLE`] passes with none
    /// taken (one sweeper per component at a time).
    fn sweep_when_idle(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let spares = self.clone();
        tokio::spawn(async move {
            loop {
                let before = spares.taken.load(Ordering::Relaxed);
                tokio::time::sleep(SPARE_IDLE).await;
                if spares.taken.load(Ordering::Relaxed) != before {
                    continue;
                }
                let idle = std::mem::take(&mut *spares.lock());
                SPARES_HELD.fetch_sub(idle.len(), Ordering::AcqRel);
                spares.metrics.spares_changed(-(idle.len() as f64));
                drop(idle);
                spares.sweeping.store(false, Ordering::Release);
                // A spare made while this sweeper was finishing still gets
                // swept.
                if spares.lock().is_empty() || spares.sweeping.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        });
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        let held = self.lock().len();
        SPARES_HELD.fetch_sub(held, Ordering::AcqRel);
        self.metrics.spares_changed(-(held as f64));
    }
}

/// Decides when a worker's instance is dropped.
pub struct Expiration {
    idle_timeout: Duration,
    request_timeout: Option<Duration>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// The requests the instance works for.
    requests: InstanceRequests,
}

impl WorkerExpiration for Expiration {
    /// Polled from outside the guest's event loop, so also while a guest
    /// busy-loops (at every epoch tick) or waits on the host.
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let limit = match status {
            WorkerStatus::Idle => {
                // Done with every request: their capacity goes back.
                self.requests.clear();
                Some(self.idle_timeout)
            }
            WorkerStatus::Requests | WorkerStatus::PostReturn => {
                if HALTED.load(Ordering::Acquire) || self.requests.all_abandoned(cx.waker()) {
                    return Poll::Ready(());
                }
                self.request_timeout
            }
        };
        let Some(deadline) = limit.and_then(|l| start.checked_add(l)) else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

/// Per-instance bookkeeping.
pub struct Worker {
    metrics: ComponentMetrics,
    policy: InstancePolicy,
    /// Where the next spare goes once this instance is done (for a busy
    /// component): made after the response, off every request's path.
    spares: Option<(Arc<Spares>, Arc<InstanceMaker>)>,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = Arc<RequestOutcome>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.policy.max_requests_per_instance {
            ShouldAccept::Never
        } else if concurrent >= self.policy.max_concurrent_per_instance {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, HostState>,
        outcome: Arc<RequestOutcome>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync + 'static>> {
        if let Some(trace) = outcome.trace() {
            let data = store.data_mut();
            data.trace.set(trace);
            if let Some((start, end)) = data.instantiated.take() {
                trace.phase_between("instantiate", start, end);
            }
        }
        store.data_mut().limits.outcomes.push(outcome);
        match self.policy.request_timeout {
            Some(limit) => Box::pin(tokio::time::sleep(limit)),
            None => Box::pin(std::future::pending()),
        }
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        self.metrics.instance_ended();
        let component = self.metrics.component();
        let abandoned = store.data().limits.outcomes.abandoned();
        if abandoned && result.is_err() {
            tracing::info!(component = %component, "client went away: stopped the instance working for it");
            crate::metrics::instance_abandoned(component);
        } else if let Err(error) = result
            && !store.data().limits.exceeded()
            && !error.is::<ExpirationError>()
            && error.to_string() != EXPIRED
        {
            // Memory-limit hits and timeouts are reported once, by the
            // request they failed.
            tracing::error!(component = %component, "guest instance failed: {error:#}");
        }
        drop(store);
        LIVE.fetch_sub(1, Ordering::AcqRel);
        if let Some((spares, maker)) = &self.spares {
            spares.replenish(maker);
        }
    }
}
