//! The measurements themselves.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::peers::{self, Server, Tools};
use crate::wrk::{self, Load};

/// Concurrency levels every peer is loaded at.
pub const CONCURRENCY: [u32; 3] = [1, 16, 64];
/// The smoke run's one level.
pub const SMOKE_CONCURRENCY: [u32; 1] = [16];

/// How long and how often the scenarios measure.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Length of each load run.
    pub duration: Duration,
    /// Concurrency levels of the load runs.
    pub concurrency: &'static [u32],
    /// A 1 s load before each peer's timed runs.
    pub warm_up: bool,
    /// Cold starts per case (the median is reported).
    pub cold_runs: usize,
    /// The density app's idle timeout, before scale-to-zero.
    pub idle: Duration,
}

/// One peer's load runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerRuns {
    /// Which server, e.g. `trib p3 fresh`.
    pub peer: String,
    /// One run per concurrency level.
    pub runs: Vec<Load>,
    /// Mean instantiation time, microseconds (trib only, from its metrics).
    pub instantiation_us: Option<f64>,
}

/// Wasmtime serve's default reuse settings, mirrored for `trib` reuse runs.
const REUSE_CONFIG: &str = "[component.hello.tool.trib]\nmin_warm = 1\nmax_requests_per_instance = 128\nmax_concurrent_requests_per_instance = 16\n";
/// Fresh instance per request, loaded at startup.
const FRESH_CONFIG: &str = "[component.hello.tool.trib]\nmin_warm = 1\n";

/// The traced run's name in the tables.
pub const TRACED: &str = "trib p3 fresh traced";

/// Throughput and latency of every peer at every concurrency level.
pub fn throughput(tools: &Tools, settings: &Settings) -> anyhow::Result<Vec<PeerRuns>> {
    let cache = tempfile::tempdir()?;
    let mut all = Vec::new();
    let trib_runs = [
        ("trib p3 fresh", &tools.hello_p3, FRESH_CONFIG),
        ("trib p3 reuse", &tools.hello_p3, REUSE_CONFIG),
        ("trib p2 fresh", &tools.hello_p2, FRESH_CONFIG),
    ];
    for (name, wasm, config) in trib_runs {
        let app = peers::hello_app(wasm, config)?;
        let server = peers::start_trib(tools, &app, cache.path())?;
        let mut runs = load_all(name, &server, settings)?;
        let admin = server.admin.context("trib has an admin listener")?;
        let (sum, count) =
            peers::histogram_sum_count(admin, "trib_instantiation_duration_seconds", "hello")?;
        runs.instantiation_us = (count > 0.0).then(|| sum / count * 1e6);
        all.push(runs);
    }
    // What tracing costs: the fresh run again, every request's spans
    // exported over OTLP/HTTP to a sink (the native peer) that drops them.
    let sink = peers::start_native(tools)?;
    let app = peers::hello_app(&tools.hello_p3, FRESH_CONFIG)?;
    let otlp = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", sink.addr),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
    ];
    let server = peers::start_trib_with_env(tools, &app, cache.path(), &otlp)?;
    all.push(load_all(TRACED, &server, settings)?);
    drop(server);
    drop(sink);
    for wasmtime in &tools.wasmtime {
        let wasmtime_runs = [
            ("p3 fresh", &tools.hello_p3, true),
            ("p3 reuse", &tools.hello_p3, false),
            ("p2 fresh", &tools.hello_p2, true),
        ];
        for (mode, wasm, fresh) in wasmtime_runs {
            let name = format!("{} {mode}", wasmtime.label);
            let server = peers::start_wasmtime(wasmtime, wasm, fresh)
                .with_context(|| format!("cannot start {name}"))?;
            all.push(load_all(&name, &server, settings)?);
        }
    }
    let native = peers::start_native(tools)?;
    all.push(load_all("native hyper", &native, settings)?);
    Ok(all)
}

fn load_all(name: &str, server: &Server, settings: &Settings) -> anyhow::Result<PeerRuns> {
    if settings.warm_up {
        // Warm up: caches, connection pools, lazily loaded code.
        wrk::run(server.addr, "/bench", 16, Duration::from_secs(1))?;
    }
    let mut runs = Vec::new();
    for &c in settings.concurrency {
        let load = wrk::run(server.addr, "/bench", c, settings.duration)
            .with_context(|| format!("{name} at c={c}"))?;
        eprintln!(
            "{name:>26} c={c:<3} {:>9.0} req/s  p50 {:>7.0} us  p99 {:>7.0} us  errors {}",
            load.rps, load.p50_us, load.p99_us, load.errors
        );
        runs.push(load);
    }
    Ok(PeerRuns {
        peer: name.to_owned(),
        runs,
        instantiation_us: None,
    })
}

/// Cold-start times, medians of several runs, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColdStart {
    /// Process start to first 200, empty compile cache.
    pub empty_cache_ms: f64,
    /// Process start to first 200, warm compile cache.
    pub warm_cache_ms: f64,
    /// First request to a lazily loaded component of a running server
    /// (warm cache).
    pub lazy_first_request_ms: f64,
    /// Second request to the same component, for comparison.
    pub loaded_request_ms: f64,
}

/// Measures cold starts of `trib` serving the p3 hello component.
pub fn cold_start(tools: &Tools, settings: &Settings) -> anyhow::Result<ColdStart> {
    let app = peers::hello_app(&tools.hello_p3, "")?;
    let cache = tempfile::tempdir()?;
    let mut empty = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..settings.cold_runs.max(1) {
        let _ = std::fs::remove_dir_all(cache.path());
        empty.push(start_to_first_200(tools, &app, cache.path())?);
        warm.push(start_to_first_200(tools, &app, cache.path())?);
    }
    let mut lazy = Vec::new();
    let mut loaded = Vec::new();
    for _ in 0..settings.cold_runs.max(1) {
        let server = peers::start_trib(tools, &app, cache.path())?;
        let t = Instant::now();
        expect_200(server.addr, "/first")?;
        lazy.push(ms(t.elapsed()));
        let t = Instant::now();
        expect_200(server.addr, "/second")?;
        loaded.push(ms(t.elapsed()));
    }
    Ok(ColdStart {
        empty_cache_ms: median(empty),
        warm_cache_ms: median(warm),
        lazy_first_request_ms: median(lazy),
        loaded_request_ms: median(loaded),
    })
}

fn start_to_first_200(
    tools: &Tools,
    app: &peers::TempApp,
    cache: &std::path::Path,
) -> anyhow::Result<f64> {
    let addr = format!("127.0.0.1:{}", peers::free_port()?).parse()?;
    let command = peers::trib_command(tools, app, addr, cache);
    let (elapsed, _server) = peers::time_to_first_200(command, addr, "/cold")?;
    Ok(ms(elapsed))
}

/// Resident memory of a many-component app, in KiB.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Density {
    /// Components in the app.
    pub components: usize,
    /// After startup (nothing loaded: lazy).
    pub rss_start_kib: u64,
    /// After one request to each component (all loaded, idle).
    pub rss_touched_kib: u64,
    /// After every component scaled to zero.
    pub rss_scaled_to_zero_kib: u64,
    /// (touched - start) / components.
    pub per_loaded_component_kib: f64,
    /// Time to touch every component once, cold (loads from warm cache).
    pub touch_all_ms: f64,
}

/// Starts an app of `n` components, touches each, lets them scale to zero.
pub fn density(tools: &Tools, n: usize, settings: &Settings) -> anyhow::Result<Density> {
    let idle = settings.idle;
    let mut manifest =
        String::from("spin_manifest_version = 2\n[application]\nname = \"density\"\n");
    let mut config = String::new();
    let wasm = tools.hello_p3.display().to_string();
    for i in 0..n {
        manifest.push_str(&format!(
            "[[trigger.http]]\nroute = \"/c{i}/...\"\ncomponent = \"c{i}\"\n[component.c{i}]\nsource = {wasm:?}\n"
        ));
        config.push_str(&format!(
            "[component.c{i}.tool.trib]\nidle_timeout = \"{}s\"\n",
            idle.as_secs()
        ));
    }
    manifest.push_str(&config);
    let app = peers::TempApp::new(&manifest, "")?;
    let cache = tempfile::tempdir()?;
    // Populate the compile cache so touching measures loading, not compiling.
    {
        let server = peers::start_trib(tools, &app, cache.path())?;
        expect_200(server.addr, "/c0/warm")?;
    }
    let server = peers::start_trib(tools, &app, cache.path())?;
    let rss_start_kib = server.rss_kib()?;
    let t = Instant::now();
    for i in 0..n {
        expect_200(server.addr, &format!("/c{i}/touch"))?;
    }
    let touch_all_ms = ms(t.elapsed());
    let rss_touched_kib = server.rss_kib()?;
    let admin = server.admin.context("admin listener")?;
    let deadline = Instant::now() + idle * 4 + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let (_, text) = peers::get(admin, "/metrics")?;
        let loaded: f64 = text
            .lines()
            .filter(|l| l.starts_with("trib_component_loaded{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum();
        if loaded == 0.0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{loaded} components still loaded after their idle time");
        }
    }
    let rss_scaled_to_zero_kib = server.rss_kib()?;
    Ok(Density {
        components: n,
        rss_start_kib,
        rss_touched_kib,
        rss_scaled_to_zero_kib,
        per_loaded_component_kib: (rss_touched_kib.saturating_sub(rss_start_kib)) as f64 / n as f64,
        touch_all_ms,
    })
}

fn expect_200(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<()> {
    let (status, body) = peers::get(addr, path)?;
    if status != 200 {
        bail!("GET {path}: {status} {body}");
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
