//! The results file and the Markdown table with ratios.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::data::{Ingest, Query};
use crate::scenarios::{CONCURRENCY, ColdStart, Density, PeerRuns};

/// Ingest aim: events per second through trib.
pub const INGEST_TARGET_EVENTS_PER_SEC: f64 = 100_000.0;
/// Ingest aim: trib's throughput over native SQLite's.
pub const INGEST_TARGET_RATIO: f64 = 0.5;
/// Query aim: median `GET /api/counts` latency, milliseconds.
pub const QUERY_TARGET_P50_MS: f64 = 50.0;

/// Everything one run measured, with the machine it ran on.
#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    /// Where and when.
    pub machine: Machine,
    /// Throughput and latency per peer.
    #[serde(default)]
    pub throughput: Vec<PeerRuns>,
    /// Cold-start times.
    pub cold_start: Option<ColdStart>,
    /// Memory of a many-component app.
    pub density: Option<Density>,
    /// The data app's ingest throughput, beside native SQLite.
    pub ingest: Option<Ingest>,
    /// The data app's query latency, beside native SQLite.
    pub query: Option<Query>,
    /// The machine of the earlier run whose figures were kept for the
    /// scenarios this run did not measure, when it is not this one.
    #[serde(default)]
    pub kept_from: Option<Machine>,
}

/// The machine the figures came from.
#[derive(Debug, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Total memory in GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// UTC time of the run (seconds since the epoch).
    pub unix_time: u64,
}

impl Results {
    /// Empty results for this machine.
    pub fn new() -> Self {
        Self {
            machine: Machine::detect(),
            throughput: Vec::new(),
            cold_start: None,
            density: None,
            ingest: None,
            query: None,
            kept_from: None,
        }
    }
}

impl Results {
    /// Keeps `earlier`'s figures for every scenario this run did not
    /// measure, so running one scenario updates only its part of the file.
    pub fn fill_from(&mut self, earlier: Results) {
        let kept = (self.throughput.is_empty() && !earlier.throughput.is_empty())
            || (self.cold_start.is_none() && earlier.cold_start.is_some())
            || (self.density.is_none() && earlier.density.is_some())
            || (self.ingest.is_none() && earlier.ingest.is_some())
            || (self.query.is_none() && earlier.query.is_some());
        let earlier_machine = earlier.kept_from.unwrap_or(earlier.machine);
        if kept && earlier_machine.describe() != self.machine.describe() {
            self.kept_from = Some(earlier_machine);
        }
        if self.throughput.is_empty() {
            self.throughput = earlier.throughput;
        }
        self.cold_start = self.cold_start.take().or(earlier.cold_start);
        self.density = self.density.take().or(earlier.density);
        self.ingest = self.ingest.take().or(earlier.ingest);
        self.query = self.query.take().or(earlier.query);
    }
}

impl Machine {
    /// CPU, CPUs, memory and kernel, as the report prints them.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} CPUs, {} GiB, Linux {})",
            self.cpu, self.cpus, self.memory_gib, self.kernel
        )
    }

    fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

fn rps(results: &Results, peer: &str, c: u32) -> Option<f64> {
    results
        .throughput
        .iter()
        .find(|p| p.peer == peer)?
        .runs
        .iter()
        .find(|r| r.concurrency == c)
        .map(|r| r.rps)
}

/// The Markdown report: absolute figures, then ratios.
pub fn markdown(results: &Results) -> String {
    let m = &results.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}; load generator `wrk` (the data app: the runner's own HTTP client) on the same machine, loopback.\n",
        m.describe()
    );
    if let Some(k) = &results.kept_from {
        let _ = writeln!(
            out,
            "Scenarios not run this time keep an earlier run's figures, from: {}.\n",
            k.describe()
        );
    }
    if !results.throughput.is_empty() {
        let _ = writeln!(out, "### Throughput and latency (hello component)\n");
        let _ = writeln!(
            out,
            "| peer | conc | req/s | p50 µs | p99 µs | errors | instantiation µs |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        for peer in &results.throughput {
            for run in &peer.runs {
                let inst = peer
                    .instantiation_us
                    .map_or_else(|| "".to_owned(), |v| format!("{v:.0}"));
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} |",
                    peer.peer, run.concurrency, run.rps, run.p50_us, run.p99_us, run.errors, inst
                );
            }
        }
        let _ = writeln!(out, "\n### Ratios (same run)\n");
        let _ = writeln!(out, "| ratio | c=1 | c=16 | c=64 |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        let pairs = [
            (
                "trib p3 fresh / wasmtime serve p3 fresh",
                "trib p3 fresh",
                "wasmtime serve p3 fresh",
            ),
            (
                "trib p3 fresh / wasmtime serve p3 reuse",
                "trib p3 fresh",
                "wasmtime serve p3 reuse",
            ),
            (
                "trib p3 reuse / wasmtime serve p3 reuse",
                "trib p3 reuse",
                "wasmtime serve p3 reuse",
            ),
            (
                "trib p2 fresh / wasmtime serve p2 fresh",
                "trib p2 fresh",
                "wasmtime serve p2 fresh",
            ),
            (
                "trib p3 fresh / native hyper",
                "trib p3 fresh",
                "native hyper",
            ),
            (
                "trib p3 reuse / native hyper",
                "trib p3 reuse",
                "native hyper",
            ),
        ];
        for (label, a, b) in pairs {
            let cells: Vec<String> = CONCURRENCY
                .iter()
                .map(|&c| match (rps(results, a, c), rps(results, b, c)) {
                    (Some(x), Some(y)) if y > 0.0 => format!("{:.2}×", x / y),
                    _ => "–".into(),
                })
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
    }
    if let Some(c) = &results.cold_start {
        let _ = writeln!(out, "\n### Cold start (trib, p3 hello; medians)\n");
        let _ = writeln!(out, "| case | ms |\n|---|---:|");
        let _ = writeln!(
            out,
            "| process start → first 200, empty compile cache | {:.1} |",
            c.empty_cache_ms
        );
        let _ = writeln!(
            out,
            "| process start → first 200, warm compile cache | {:.1} |",
            c.warm_cache_ms
        );
        let _ = writeln!(
            out,
            "| first request to a lazily loaded component | {:.2} |",
            c.lazy_first_request_ms
        );
        let _ = writeln!(
            out,
            "| next request to the loaded component | {:.2} |",
            c.loaded_request_ms
        );
    }
    if let Some(d) = &results.density {
        let _ = writeln!(
            out,
            "\n### Density ({} components, one p3 hello each)\n",
            d.components
        );
        let _ = writeln!(out, "| state | RSS MiB |\n|---|---:|");
        let mib = |k: u64| k as f64 / 1024.0;
        let _ = writeln!(
            out,
            "| after start (nothing loaded) | {:.1} |",
            mib(d.rss_start_kib)
        );
        let _ = writeln!(
            out,
            "| after touching each once (all loaded, idle) | {:.1} |",
            mib(d.rss_touched_kib)
        );
        let _ = writeln!(
            out,
            "| after scale-to-zero | {:.1} |",
            mib(d.rss_scaled_to_zero_kib)
        );
        let _ = writeln!(
            out,
            "\nPer loaded idle component: {:.0} KiB. Touching all {} cold: {:.0} ms.",
            d.per_loaded_component_kib, d.components, d.touch_all_ms
        );
    }
    if let Some(i) = &results.ingest {
        ingest_markdown(&mut out, i);
    }
    if let Some(q) = &results.query {
        query_markdown(&mut out, q);
    }
    out
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

fn ingest_markdown(out: &mut String, i: &Ingest) {
    let _ = writeln!(
        out,
        "\n### Data app: ingest (`POST /v1/batch`, {} events a batch, {} clients)\n",
        i.batch_size, i.clients
    );
    let _ = writeln!(
        out,
        "| run | events | events/s | batch p50 ms | batch p99 ms | errors |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| trib (ingest function, SQLite, chain redact → enrich → filter → validate) | {} | {:.0} | {:.1} | {:.1} | {} |",
        i.events, i.events_per_sec, i.batch_p50_ms, i.batch_p99_ms, i.errors
    );
    let _ = writeln!(
        out,
        "| trib, every slot a pass-through filter (no transforms) | | {:.0} | | | |",
        i.plain_events_per_sec
    );
    let _ = writeln!(
        out,
        "| native rusqlite (same inserts, SQLite time) | {} | {:.0} | | | |",
        i.native_events, i.native_events_per_sec
    );
    let _ = writeln!(
        out,
        "| native rusqlite, synchronous=NORMAL (not trib's durability) | | {:.0} | | | |",
        i.native_relaxed_events_per_sec
    );
    let _ = writeln!(
        out,
        "\nChain / no transforms: {:.2}×. trib (no transforms, the same inserts) / native: {:.2}×. Aims: ≥ {:.0} events/s ({}), ≥ {:.1}× native ({}).",
        i.chain_over_plain,
        i.wasm_over_native,
        INGEST_TARGET_EVENTS_PER_SEC,
        verdict(i.plain_events_per_sec >= INGEST_TARGET_EVENTS_PER_SEC),
        INGEST_TARGET_RATIO,
        verdict(i.wasm_over_native >= INGEST_TARGET_RATIO),
    );
}

fn query_markdown(out: &mut String, q: &Query) {
    let _ = writeln!(
        out,
        "\n### Data app: query (`GET /api/counts?bucket=hour`, {} events seeded, {:.0} MiB)\n",
        q.events, q.database_mib
    );
    let _ = writeln!(
        out,
        "| window | events | buckets | trib p50 ms | trib p90 ms | trib max ms | native p50 ms | native p90 ms | native max ms |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in &q.cases {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            c.window,
            c.events,
            c.buckets,
            c.trib.p50_ms,
            c.trib.p90_ms,
            c.trib.max_ms,
            c.native.p50_ms,
            c.native.p90_ms,
            c.native.max_ms
        );
    }
    let requests = q.cases.first().map_or(0, |c| c.requests);
    let _ = writeln!(
        out,
        "\n{requests} sequential requests per window after 2 warm-ups. Aim: p50 under {QUERY_TARGET_P50_MS:.0} ms ({}).",
        q.cases
            .iter()
            .map(|c| format!(
                "{}: {}",
                c.window,
                verdict(c.trib.p50_ms < QUERY_TARGET_P50_MS)
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
}
