//! One run of a non-HTTP trigger's component (a Redis message, a cron
//! tick) on a fresh instance, with what an HTTP request gets: a slot of the
//! shared instance pool and the component's `max_concurrency`, the memory
//! limit, the request timeout, the epoch yield, metrics and logs. A guest
//! that traps or returns an error is logged; the trigger goes on.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::{Engine, Store};

use crate::admission::Admission;
use crate::host::{HostState, InstanceTemplate};

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler returned `ok`.
    Ok,
    /// The handler returned its `error` variant.
    GuestError,
    /// The instance trapped or could not be created.
    Trap,
    /// The handler ran past the request timeout.
    Timeout,
    /// The guest tried to grow memory past its limit.
    Memory,
}

impl Outcome {
    /// The `outcome` label of the trigger's metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::GuestError => "error",
            Self::Trap => "trap",
            Self::Timeout => "timeout",
            Self::Memory => "memory",
        }
    }
}

/// What a trigger needs to run its component.
pub struct Invoker {
    /// The component ID.
    pub component: Arc<str>,
    /// The engine the component was compiled for.
    pub engine: Engine,
    /// Fresh host state for each run.
    pub template: InstanceTemplate,
    /// The component's `max_concurrency`, shared with its other triggers.
    pub concurrency: Option<Arc<Semaphore>>,
    /// Wall-clock limit of one run.
    pub timeout: Option<Duration>,
}

/// A run in progress: its capacity and its fresh store.
pub struct Run {
    _admitted: crate::admission::Admitted,
    /// The store the run instantiates the component in.
    pub store: Store<HostState>,
    started: Instant,
}

/// What the guest's call returned (`None`: it ran out of time); the inner
/// error is the guest's own `error` variant.
pub type CallResult = Option<wasmtime::Result<Result<(), String>>>;

impl Invoker {
    /// Waits for capacity, then makes a fresh store. `what` (e.g. "Redis
    /// message on x") names the run in logs. A run is not dropped for want
    /// of capacity: it waits.
    pub async fn begin(&self, admission: &Admission, what: &str) -> Run {
        let component = &*self.component;
        let admitted = loop {
            match admission.admit(self.concurrency.as_ref()).await {
                Ok(admitted) => break admitted,
                Err(rejected) => {
                    tracing::warn!(component, what, "no capacity ({rejected}); still waiting");
                    crate::metrics::limit_hit(component, rejected.limit());
                }
            }
        };
        let started = Instant::now();
        let mut store = Store::new(&self.engine, self.template.state());
        store.limiter(|state| &mut state.limits);
        // As for HTTP: a busy guest yields at every epoch tick, so the
        // timeout can stop it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        Run {
            _admitted: admitted,
            store,
            started,
        }
    }

    /// Runs the guest's call within the time limit.
    pub async fn limit<F>(&self, call: F) -> CallResult
    where
        F: Future<Output = wasmtime::Result<Result<(), String>>>,
    {
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, call).await.ok(),
            None => Some(call.await),
        }
    }

    /// Ends `run`: logs how it went and returns that and how long it took.
    pub fn finish(&self, run: Run, what: &str, result: CallResult) -> (Outcome, Duration) {
        let component = &*self.component;
        let memory = run.store.data().limits.exceeded();
        let elapsed = run.started.elapsed();
        drop(run);
        let outcome = match result {
            None => {
                tracing::warn!(component, what, "timed out");
                crate::metrics::limit_hit(component, "timeout");
                Outcome::Timeout
            }
            Some(_) if memory => {
                tracing::warn!(component, what, "hit the memory limit");
                crate::metrics::limit_hit(component, "memory");
                Outcome::Memory
            }
            Some(Ok(Ok(()))) => {
                tracing::debug!(component, what, "handled");
                Outcome::Ok
            }
            Some(Ok(Err(message))) => {
                tracing::warn!(component, what, "the handler returned an error: {message}");
                Outcome::GuestError
            }
            Some(Err(trap)) => {
                tracing::error!(component, what, "the handler failed: {trap:#}");
                Outcome::Trap
            }
        };
        (outcome, elapsed)
    }
}

/// Counts a live instance in the metrics for as long as it is held.
pub struct Live<'a>(&'a str);

impl<'a> Live<'a> {
    /// Counts `component`'s new instance, made in `started.elapsed()`.
    pub fn new(component: &'a str, started: Instant) -> Self {
        crate::metrics::instance_started(component, started.elapsed());
        Self(component)
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        crate::metrics::instance_ended(self.0);
    }
}
