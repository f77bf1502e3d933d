//! Runs requests for one component on fresh (or, by policy, reused) instances.
//!
//! Scheduling is `wasmtime-wasi-http`'s [`ProxyHandler`]: it keeps a queue of
//! requests and a set of workers, each owning one store and instance. This
//! module supplies the policy: how an instance is made, how many requests it
//! may take (one by default, so every request is isolated as in Spin), and
//! what happens when it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept,
    WorkerExpiration, WorkerState, WorkerStatus,
};

use crate::body::RequestOutcome;

/// How `ProxyHandler` words the error of a worker it stopped at the deadline.
const EXPIRED: &str = "guest timed out";
use crate::host::{HostState, InstanceTemplate};

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
}

impl Default for InstancePolicy {
    fn default() -> Self {
        Self {
            max_requests_per_instance: 1,
            max_concurrent_per_instance: 1,
            idle_timeout: Duration::from_secs(1),
            request_timeout: None,
        }
    }
}

/// The request handler of one component.
pub type ComponentHandler = ProxyHandler<ComponentInstances>;

/// Everything needed to make instances of one component.
pub struct ComponentInstances {
    engine: Engine,
    pre: ProxyPre<HostState>,
    template: InstanceTemplate,
    policy: InstancePolicy,
    instances_created: AtomicU64,
}

impl ComponentInstances {
    /// A scheduler for `pre`, whose instances start from `template`.
    pub fn handler(
        engine: Engine,
        pre: ProxyPre<HostState>,
        template: InstanceTemplate,
        policy: InstancePolicy,
    ) -> ComponentHandler {
        ProxyHandler::new(Self {
            engine,
            pre,
            template,
            policy,
            instances_created: AtomicU64::new(0),
        })
    }

    /// The component ID.
    pub fn component(&self) -> &str {
        &self.template.component
    }

    /// Instances created so far.
    pub fn instances_created(&self) -> u64 {
        self.instances_created.load(Ordering::Relaxed)
    }
}

impl HandlerState for ComponentInstances {
    type StoreData = HostState;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiration, Worker>> {
        let started = Instant::now();
        let mut store = Store::new(&self.engine, self.template.state());
        store.limiter(|state| &mut state.limits);
        // Yield to the async runtime on every epoch tick so a busy guest
        // cannot starve other requests on its worker thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.instances_created.fetch_add(1, Ordering::Relaxed);
        crate::metrics::instance_started(&self.template.component, started.elapsed());
        Ok(Instance {
            store,
            proxy,
            view: WasiHttpView::http,
            expiration: Expiration {
                idle_timeout: self.policy.idle_timeout,
                request_timeout: self.policy.request_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
            },
            state: Worker {
                component: self.template.component.clone(),
                policy: self.policy.clone(),
            },
        })
    }
}

/// Decides when a worker's instance is dropped.
pub struct Expiration {
    idle_timeout: Duration,
    request_timeout: Option<Duration>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiration {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let limit = match status {
            WorkerStatus::Idle => Some(self.idle_timeout),
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.request_timeout,
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
    component: Arc<str>,
    policy: InstancePolicy,
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
        let outcomes = &mut store.data_mut().limits.outcomes;
        // Forget requests that have finished (only the store still holds them).
        outcomes.retain(|o| Arc::strong_count(o) > 1);
        outcomes.push(outcome);
        match self.policy.request_timeout {
            Some(limit) => Box::pin(tokio::time::sleep(limit)),
            None => Box::pin(std::future::pending()),
        }
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        crate::metrics::instance_ended(&self.component);
        // Memory-limit hits and timeouts are reported once, by the request
        // they failed.
        if let Err(error) = result
            && !store.data().limits.exceeded()
            && !error.is::<ExpirationError>()
            && error.to_string() != EXPIRED
        {
            tracing::error!(component = %self.component, "guest instance failed: {error:#}");
        }
        drop(store);
    }
}
