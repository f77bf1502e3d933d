//! The cron trigger: `[[trigger.cron]]` runs a component on a schedule, as
//! Spin's cron trigger plugin (`fermyon/spin-trigger-cron`) does, so an app
//! written for that plugin runs under `trib up` unchanged.
//!
//! - At startup ([`CronTriggers::prepare`]) each component is compiled,
//!   linked and checked to export `handle-cron-event` (the plugin's
//!   `fermyon:spin-cron` world): a wrong component stops `trib up`.
//! - [`run`] keeps one task per trigger that sleeps until the schedule's
//!   next time (UTC) and then calls the component on a fresh instance with
//!   what an HTTP request gets (see [`crate::invocation`]). Ticks do not
//!   wait for each other, as the plugin's scheduler does not; a tick missed
//!   while trib was stopped is not replayed (the schedule starts from now).
//! - A guest that traps or returns an error is logged and counted in
//!   `trib_cron_runs_total`; the next tick runs all the same.

use std::sync::Arc;
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use tokio::sync::{Semaphore, watch};
use wasmtime::Store;

use crate::admission::Admission;
use crate::app::LoadedApp;
use crate::engine::loader::LoadError;
use crate::host::HostState;
use crate::invocation::{Invoker, Live, Outcome, RunSpan};
use crate::loader::Loader;
use crate::manifest::App;
use crate::runtime_config::RuntimeConfig;

/// Export-side bindings of the plugin's guest world.
#[expect(missing_docs, reason = "generated from WIT; the WIT files document it")]
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/triggers",
        world: "tributary:triggers/cron-trigger",
        exports: { default: async | store },
    });
}

use bindings::CronTriggerPre;
use bindings::fermyon::spin_cron::cron_types::{Error as CronError, Metadata};

/// One trigger: a schedule and the component it runs.
struct Scheduled {
    expression: String,
    schedule: cron::Schedule,
    handler: Arc<Handler>,
}

/// One component ready to run at each tick.
struct Handler {
    invoker: Invoker,
    pre: CronTriggerPre<HostState>,
}

/// Every cron trigger of an app, loaded.
#[derive(Default)]
pub struct CronTriggers {
    triggers: Vec<Scheduled>,
}

impl CronTriggers {
    /// Loads each trigger's component. `concurrency` gives the semaphore
    /// of components that also serve HTTP, so both count against one
    /// `max_concurrency`.
    pub fn prepare(
        app: &App,
        loader: &Loader,
        runtime_config: &RuntimeConfig,
        concurrency: impl Fn(&str) -> Option<Arc<Semaphore>>,
    ) -> Result<Self, LoadError> {
        let mut handlers: std::collections::HashMap<&str, Arc<Handler>> =
            std::collections::HashMap::new();
        let mut triggers = Vec::new();
        for trigger in &app.cron_triggers {
            let handler = match handlers.get(trigger.component.as_str()) {
                Some(h) => h.clone(),
                None => {
                    let component =
                        app.component(&trigger.component)
                            .ok_or_else(|| LoadError::Component {
                                component: trigger.component.clone(),
                                message: "is named by a cron trigger but not defined".into(),
                            })?;
                    let semaphore = concurrency(&component.id).or_else(|| {
                        runtime_config
                            .scaling(component)
                            .max_concurrency
                            .map(|n| Arc::new(Semaphore::new(n)))
                    });
                    let h = Arc::new(load(loader, component, semaphore)?);
                    handlers.insert(&trigger.component, h.clone());
                    h
                }
            };
            triggers.push(Scheduled {
                expression: trigger.expression.clone(),
                schedule: trigger.schedule.clone(),
                handler,
            });
        }
        Ok(Self { triggers })
    }

    /// Whether the app has any cron trigger.
    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    /// Each trigger's component and schedule, for the startup banner.
    pub fn schedules(&self) -> Vec<(String, String)> {
        self.triggers
            .iter()
            .map(|t| {
                (
                    t.handler.invoker.component.to_string(),
                    t.expression.clone(),
                )
            })
            .collect()
    }
}

/// Compiles and links `component` and checks that it exports
/// `handle-cron-event`.
fn load(
    loader: &Loader,
    component: &crate::manifest::Component,
    concurrency: Option<Arc<Semaphore>>,
) -> Result<Handler, LoadError> {
    let linked = crate::invocation::link(loader, component)?;
    let pre = CronTriggerPre::new(linked.pre.clone()).map_err(|_| {
        crate::invocation::load_error(
            component,
            "is run by a cron trigger but does not export handle-cron-event (the fermyon:spin-cron world of Spin's cron trigger plugin; spin-cron-sdk's #[cron_component])".into(),
        )
    })?;
    Ok(Handler {
        invoker: linked.invoker(loader, component, concurrency, "cron handler")?,
        pre,
    })
}

impl Handler {
    /// Runs one tick on a fresh instance, once capacity allows.
    async fn tick(&self, admission: &Admission, timestamp: u64) -> Outcome {
        let what = "cron tick";
        let mut run = self
            .invoker
            .begin(admission, what, || RunSpan {
                kind: SpanKind::Internal,
                attributes: vec![KeyValue::new("spin.cron.timestamp", timestamp as i64)],
            })
            .await;
        let result = self
            .invoker
            .limit(self.call(&mut run.store, timestamp))
            .await;
        let (outcome, elapsed) = self.invoker.finish(run, what, result);
        crate::metrics::cron_run_done(&self.invoker.component, outcome.label(), elapsed);
        outcome
    }

    /// Instantiates and calls `handle-cron-event` (inside the store's
    /// event loop, so guests built on async APIs may block on them).
    async fn call(
        &self,
        store: &mut Store<HostState>,
        timestamp: u64,
    ) -> wasmtime::Result<Result<(), String>> {
        let started = Instant::now();
        let guest = self.pre.instantiate_async(&mut *store).await?;
        let _live = Live::new(&self.invoker.component, started);
        let result = store
            .run_concurrent(async |accessor| {
                guest
                    .call_handle_cron_event(accessor, Metadata { timestamp })
                    .await
            })
            .await??;
        Ok(result.map_err(|CronError::Other(message)| message))
    }
}

/// Runs every trigger on its schedule until `stop` turns `true`; the runs
/// in progress then finish first (the caller bounds how long).
pub async fn run(app: Arc<LoadedApp>, stop: watch::Receiver<bool>) {
    // The HTTP server ticks the epoch when there is one; otherwise we do,
    // so busy handlers still yield and time out.
    let _epoch = (!app.has_http_triggers())
        .then(|| crate::engine::epoch::EpochTicker::start(app.engine().clone()));
    let tasks: Vec<_> = (0..app.cron_triggers().triggers.len())
        .map(|index| tokio::spawn(schedule(app.clone(), index, stop.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// One trigger's loop: sleep until the next time, start the run, repeat.
async fn schedule(app: Arc<LoadedApp>, index: usize, mut stop: watch::Receiver<bool>) {
    let trigger = &app.cron_triggers().triggers[index];
    let component = trigger.handler.invoker.component.clone();
    let mut runs = tokio::task::JoinSet::new();
    for next in trigger.schedule.upcoming(chrono::Utc) {
        let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        // Reap finished runs so the set does not grow.
        while runs.try_join_next().is_some() {}
        let timestamp = u64::try_from(next.timestamp()).unwrap_or_default();
        let (app, handler) = (app.clone(), trigger.handler.clone());
        tracing::debug!(component = %component, timestamp, "cron tick");
        runs.spawn(async move { handler.tick(app.admission(), timestamp).await });
    }
    // Runs in progress finish (the caller's grace period bounds them).
    while runs.join_next().await.is_some() {}
}
