//! What the host tells an operator: Prometheus metrics on the admin listener.
//!
//! Recording goes through the `metrics` facade (no-ops until a recorder is
//! installed, so the library costs nothing when embedded without one); the
//! text format comes from `metrics-exporter-prometheus`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// TCP connections accepted on the app listener.
pub const CONNECTIONS: &str = "trib_connections_total";
/// Requests answered, by component and status code.
pub const REQUESTS: &str = "trib_requests_total";
/// Time from routing to the end of the response body, by component.
pub const REQUEST_SECONDS: &str = "trib_request_duration_seconds";
/// Time to instantiate a component, by component.
pub const INSTANTIATE_SECONDS: &str = "trib_instantiation_duration_seconds";
/// Instances alive now, by component.
pub const INSTANCES_ACTIVE: &str = "trib_instances_active";
/// Spare instances ready now (made ahead of demand), by component.
pub const SPARE_INSTANCES: &str = "trib_spare_instances";
/// Requests waiting for capacity now (all components).
pub const QUEUED: &str = "trib_queued_requests";
/// Pool slots held by requests now.
pub const POOL_IN_USE: &str = "trib_pool_slots_in_use";
/// Pool slots requests may hold.
pub const POOL_CAPACITY: &str = "trib_pool_slots_total";
/// Components loaded from the compile cache.
pub const CACHE_HITS: &str = "trib_compile_cache_hits_total";
/// Components compiled (cache miss or no cache).
pub const CACHE_MISSES: &str = "trib_compile_cache_misses_total";
/// Component loads (compile or cache load, then link), by component.
pub const LOADS: &str = "trib_component_loads_total";
/// Components unloaded after their idle time, by component.
pub const UNLOADS: &str = "trib_component_unloads_total";
/// 1 while a component is loaded, by component.
pub const LOADED: &str = "trib_component_loaded";
/// Requests that waited for their component to load first, by component.
pub const COLD_STARTS: &str = "trib_cold_starts_total";
/// Instances stopped because every client they worked for went away, by
/// component.
pub const ABANDONED: &str = "trib_abandoned_instances_total";
/// HTTP connections open now on the app listener.
pub const CONNECTIONS_OPEN: &str = "trib_connections_open";
/// Limits hit, by component and limit (timeout, memory, body_size, queue_full, queue_timeout).
pub const LIMIT_HITS: &str = "trib_limit_hits_total";

/// Time a guest's call into one of Spin's host APIs took, by component and
/// API (key_value, sqlite, postgres, mysql, redis, mqtt, variables,
/// outbound_http).
pub const HOST_CALL_SECONDS: &str = "trib_host_call_duration_seconds";

/// Cron ticks run, by component and outcome (ok, error, trap, timeout,
/// memory).
pub const CRON_RUNS: &str = "trib_cron_runs_total";
/// Time one cron tick's run took (instantiation included), by component.
pub const CRON_RUN_SECONDS: &str = "trib_cron_run_duration_seconds";

/// Redis messages handled, by component, channel and outcome (ok, error,
/// trap, timeout, memory).
pub const REDIS_MESSAGES: &str = "trib_redis_messages_total";
/// Time to handle one Redis message (instantiation included), by component.
pub const REDIS_MESSAGE_SECONDS: &str = "trib_redis_message_duration_seconds";
/// Redis trigger connections made again after being lost, by server.
pub const REDIS_RECONNECTS: &str = "trib_redis_reconnects_total";

/// How often recorded samples are folded into their histograms when nobody
/// scrapes: each sample waits in a queue until then, so without upkeep an
/// unscraped server grows by every request it serves.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder's configuration: our histogram buckets.
pub fn builder() -> anyhow::Result<PrometheusBuilder> {
    let seconds = [
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?)
}

/// Installs the process-wide Prometheus recorder, keeps it in shape, and
/// returns the handle that renders it.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = builder()?.install_recorder()?;
    keep_up(handle.clone(), UPKEEP_INTERVAL)?;
    Ok(handle)
}

/// Runs `handle`'s upkeep every `interval` on a thread of its own, for the
/// life of the process (a thread, not a task: it must go on whatever the
/// async runtime is doing). Returns the count of upkeep runs so far.
pub fn keep_up(handle: PrometheusHandle, interval: Duration) -> anyhow::Result<Arc<AtomicU64>> {
    let runs = Arc::new(AtomicU64::new(0));
    let counted = runs.clone();
    std::thread::Builder::new()
        .name("trib-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                handle.run_upkeep();
                counted.fetch_add(1, Ordering::Release);
            }
        })?;
    Ok(runs)
}

/// Serves `GET /metrics` on `addr` until the process ends.
pub async fn serve_admin(addr: SocketAddr, handle: PrometheusHandle) -> anyhow::Result<SocketAddr> {
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let handle = handle.clone();
                        async move {
                            let resp = if req.uri().path() == "/metrics" {
                                handle.run_upkeep();
                                http::Response::builder()
                                    .header("content-type", "text/plain; version=0.0.4")
                                    .body(Full::new(bytes::Bytes::from(handle.render())))
                            } else {
                                http::Response::builder()
                                    .status(404)
                                    .body(Full::new(bytes::Bytes::from_static(b"Not Found")))
                            };
                            resp.map_err(|e| std::io::Error::other(e.to_string()))
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

/// Statuses whose request counters a [`ComponentMetrics`] keeps a handle
/// for; others are looked up in the registry each time.
const COMMON_STATUSES: [u16; 13] = [
    200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 500, 503, 504,
];

/// One component's handles for what every request and instance records.
/// Each is registered on first use and kept, so the request path records
/// with an atomic operation instead of building a labelled key (two
/// `String`s), hashing it and locking the registry every time.
#[derive(Clone)]
pub struct ComponentMetrics(Arc<ComponentHandles>);

struct ComponentHandles {
    component: Arc<str>,
    request_seconds: OnceLock<Histogram>,
    instantiate_seconds: OnceLock<Histogram>,
    instances_active: OnceLock<Gauge>,
    spares: OnceLock<Gauge>,
    requests: [OnceLock<Counter>; COMMON_STATUSES.len()],
}

impl ComponentMetrics {
    /// Handles for `component`'s series (nothing is registered yet, so a
    /// component that never serves shows no series).
    pub fn new(component: Arc<str>) -> Self {
        Self(Arc::new(ComponentHandles {
            component,
            request_seconds: OnceLock::new(),
            instantiate_seconds: OnceLock::new(),
            instances_active: OnceLock::new(),
            spares: OnceLock::new(),
            requests: Default::default(),
        }))
    }

    /// The component ID the series are labelled with.
    pub fn component(&self) -> &Arc<str> {
        &self.0.component
    }

    fn label(&self) -> String {
        self.0.component.to_string()
    }

    /// Records a finished request.
    pub fn request_done(&self, status: u16, elapsed: Duration) {
        let h = &self.0;
        match COMMON_STATUSES.iter().position(|&s| s == status) {
            Some(i) => h.requests[i]
                .get_or_init(|| counter!(REQUESTS, "component" => self.label(), "status" => status.to_string()))
                .increment(1),
            None => counter!(REQUESTS, "component" => self.label(), "status" => status.to_string())
                .increment(1),
        }
        h.request_seconds
            .get_or_init(|| histogram!(REQUEST_SECONDS, "component" => self.label()))
            .record(elapsed.as_secs_f64());
    }

    /// Records how long one instantiation took.
    pub fn instantiated(&self, elapsed: Duration) {
        self.0
            .instantiate_seconds
            .get_or_init(|| histogram!(INSTANTIATE_SECONDS, "component" => self.label()))
            .record(elapsed.as_secs_f64());
    }

    /// Records one more live instance (a spare counts once it serves).
    pub fn instance_active(&self) {
        self.active().increment(1.0);
    }

    /// Records a change in the number of ready spare instances.
    pub fn spares_changed(&self, by: f64) {
        self.0
            .spares
            .get_or_init(|| gauge!(SPARE_INSTANCES, "component" => self.label()))
            .increment(by);
    }

    /// Records one live instance fewer.
    pub fn instance_ended(&self) {
        self.active().decrement(1.0);
    }

    fn active(&self) -> &Gauge {
        self.0
            .instances_active
            .get_or_init(|| gauge!(INSTANCES_ACTIVE, "component" => self.label()))
    }
}

/// Records a finished request (for paths without a component's
/// [`ComponentMetrics`] at hand).
pub fn request_done(component: &str, status: u16, elapsed: Duration) {
    counter!(REQUESTS, "component" => component.to_owned(), "status" => status.to_string())
        .increment(1);
    histogram!(REQUEST_SECONDS, "component" => component.to_owned()).record(elapsed.as_secs_f64());
}

/// Records one cron run (see [`CRON_RUNS`]).
pub fn cron_run_done(component: &str, outcome: &'static str, elapsed: Duration) {
    counter!(CRON_RUNS, "component" => component.to_owned(), "outcome" => outcome).increment(1);
    histogram!(CRON_RUN_SECONDS, "component" => component.to_owned()).record(elapsed.as_secs_f64());
}

/// Records one host call (see [`HOST_CALL_SECONDS`]).
pub fn host_call_done(component: &Arc<str>, api: &'static str, elapsed: Duration) {
    histogram!(HOST_CALL_SECONDS, "component" => component.to_string(), "api" => api)
        .record(elapsed.as_secs_f64());
}

/// Records a limit hit.
pub fn limit_hit(component: &str, limit: &'static str) {
    counter!(LIMIT_HITS, "component" => component.to_owned(), "limit" => limit).increment(1);
}

/// Records an instantiation and one more live instance.
pub fn instance_started(component: &str, elapsed: Duration) {
    histogram!(INSTANTIATE_SECONDS, "component" => component.to_owned())
        .record(elapsed.as_secs_f64());
    gauge!(INSTANCES_ACTIVE, "component" => component.to_owned()).increment(1.0);
}

/// Records an instance stopped because its clients went away.
pub fn instance_abandoned(component: &str) {
    counter!(ABANDONED, "component" => component.to_owned()).increment(1);
}

/// Records one live instance fewer.
pub fn instance_ended(component: &str) {
    gauge!(INSTANCES_ACTIVE, "component" => component.to_owned()).decrement(1.0);
}

/// Records a component load (and whether the compile cache served it).
pub fn component_loaded(component: &str, from_cache: bool) {
    counter!(LOADS, "component" => component.to_owned()).increment(1);
    gauge!(LOADED, "component" => component.to_owned()).set(1.0);
    counter!(if from_cache { CACHE_HITS } else { CACHE_MISSES }).increment(1);
}

/// Records a component unload.
pub fn component_unloaded(component: &str) {
    counter!(UNLOADS, "component" => component.to_owned()).increment(1);
    gauge!(LOADED, "component" => component.to_owned()).set(0.0);
}

/// Records a request that waited for its component to load.
pub fn cold_start(component: &str) {
    counter!(COLD_STARTS, "component" => component.to_owned()).increment(1);
}

/// Records a handled Redis message.
pub fn redis_message_done(
    component: &str,
    channel: &str,
    outcome: &'static str,
    elapsed: Duration,
) {
    counter!(REDIS_MESSAGES, "component" => component.to_owned(), "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(1);
    histogram!(REDIS_MESSAGE_SECONDS, "component" => component.to_owned())
        .record(elapsed.as_secs_f64());
}

/// Records a Redis trigger connection made again (`server` is `host:port`).
pub fn redis_reconnected(server: &str) {
    counter!(REDIS_RECONNECTS, "server" => server.to_owned()).increment(1);
}
