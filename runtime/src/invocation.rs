//! One run of a non-HTTP trigger's component (a Redis message, a cron
//! tick) on a fresh instance, with what an HTTP request gets: a slot of the
//! shared instance pool and the component's `max_concurrency`, the memory
//! limit, the request timeout, the epoch yield, metrics and logs. A guest
//! that traps or returns an error is logged; the trigger goes on.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use tokio::sync::Semaphore;
use wasmtime::{Engine, Store};

use crate::admission::Admission;
use crate::engine::componentize::Entry;
use crate::engine::loader::{LoadError, component_bytes};
use crate::host::{HostState, InstanceTemplate};
use crate::loader::Loader;
use crate::manifest::Component;
use crate::telemetry::RequestTrace;

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
    /// What runs, for logs: "Redis handler", "cron handler".
    pub kind: &'static str,
    /// The engine the component was compiled for.
    pub engine: Engine,
    /// Fresh host state for each run.
    pub template: InstanceTemplate,
    /// The component's `max_concurrency`, shared with its other triggers.
    pub concurrency: Option<Arc<Semaphore>>,
    /// Wall-clock limit of one run.
    pub timeout: Option<Duration>,
}

/// A trigger's component compiled and linked, waiting for the trigger to
/// check its export.
pub struct Linked {
    /// The linked component.
    pub pre: wasmtime::component::InstancePre<HostState>,
    cached: bool,
    started: Instant,
}

/// Compiles (or loads from the cache) and links `component` for a
/// non-HTTP trigger: a missing source or an import the host lacks stops
/// startup.
pub fn link(loader: &Loader, component: &Component) -> Result<Linked, LoadError> {
    let started = Instant::now();
    crate::engine::loader::check_source(component)?;
    let bytes = component_bytes(component, loader.cache.dir(), Entry::Exports)?;
    crate::app::check_imports(component, &bytes)?;
    let (compiled, cached) = loader
        .cache
        .load(&loader.engine, &bytes)
        .map_err(|e| load_error(component, e.to_string()))?;
    let pre = loader.linker.instantiate_pre(&compiled).map_err(|e| {
        load_error(
            component,
            format!("imports something this host does not provide: {e:#}"),
        )
    })?;
    Ok(Linked {
        pre,
        cached,
        started,
    })
}

/// A load error naming `component`.
pub fn load_error(component: &Component, message: String) -> LoadError {
    LoadError::Component {
        component: component.id.clone(),
        message,
    }
}

impl Linked {
    /// The invoker of the linked component, once the trigger has accepted
    /// its export; logs and counts the load (`what`: "Redis handler").
    pub fn invoker(
        &self,
        loader: &Loader,
        component: &Component,
        concurrency: Option<Arc<Semaphore>>,
        kind: &'static str,
    ) -> Result<Invoker, LoadError> {
        let template = loader.template(component)?;
        tracing::info!(
            component = %component.id,
            cached = self.cached,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "{kind} loaded"
        );
        crate::metrics::component_loaded(&component.id, self.cached);
        Ok(Invoker {
            component: component.id.as_str().into(),
            kind,
            engine: loader.engine.clone(),
            template,
            concurrency,
            timeout: loader.request_timeout,
        })
    }
}

/// A run in progress: its capacity, its fresh store and its span.
pub struct Run {
    _admitted: crate::admission::Admitted,
    /// The store the run instantiates the component in.
    pub store: Store<HostState>,
    started: Instant,
    trace: RequestTrace,
}

/// What a run's span says: its kind and attributes besides the component
/// (built only when spans are exported).
pub struct RunSpan {
    /// `Consumer` for a message, `Internal` for a tick.
    pub kind: SpanKind,
    /// The trigger's own attributes (e.g. the channel).
    pub attributes: Vec<KeyValue>,
}

/// What the guest's call returned (`None`: it ran out of time); the inner
/// error is the guest's own `error` variant.
pub type CallResult = Option<wasmtime::Result<Result<(), String>>>;

impl Invoker {
    /// Waits for capacity, then makes a fresh store. `what` (e.g. "Redis
    /// message on x") names the run in logs and its span, which `span`
    /// describes. A run is not dropped for want of capacity: it waits.
    pub async fn begin(
        &self,
        admission: &Admission,
        what: &str,
        span: impl FnOnce() -> RunSpan,
    ) -> Run {
        let component = &*self.component;
        let trace = if crate::telemetry::export::on() {
            let RunSpan {
                kind,
                mut attributes,
            } = span();
            attributes.push(KeyValue::new("spin.component", self.component.to_string()));
            RequestTrace::start_run(what, kind, attributes)
        } else {
            RequestTrace::default()
        };
        let queued = trace.now();
        let admitted = loop {
            match admission.admit(self.concurrency.as_ref()).await {
                Ok(admitted) => break admitted,
                Err(rejected) => {
                    tracing::warn!(
                        component,
                        what,
                        "no capacity for a {} run ({rejected}); still waiting",
                        self.kind
                    );
                    crate::metrics::limit_hit(component, rejected.limit());
                }
            }
        };
        trace.phase("queue_wait", queued);
        let started = Instant::now();
        let state = self.template.state();
        state.trace.set(&trace);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        // As for HTTP: a busy guest yields at every epoch tick, so the
        // timeout can stop it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        Run {
            _admitted: admitted,
            store,
            started,
            trace,
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
        let trace = run.trace.clone();
        drop(run);
        let outcome = match result {
            None => {
                tracing::warn!(component, what, "{} timed out", self.kind);
                crate::metrics::limit_hit(component, "timeout");
                Outcome::Timeout
            }
            Some(_) if memory => {
                tracing::warn!(component, what, "{} hit the memory limit", self.kind);
                crate::metrics::limit_hit(component, "memory");
                Outcome::Memory
            }
            Some(Ok(Ok(()))) => {
                tracing::debug!(component, what, "{} ran", self.kind);
                Outcome::Ok
            }
            Some(Ok(Err(message))) => {
                tracing::warn!(
                    component,
                    what,
                    "{} returned an error: {message}",
                    self.kind
                );
                Outcome::GuestError
            }
            Some(Err(trap)) => {
                tracing::error!(component, what, "{} failed: {trap:#}", self.kind);
                Outcome::Trap
            }
        };
        trace.finish_run(outcome.label());
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
