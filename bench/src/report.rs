//! The results file and the Markdown table with ratios.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::data::{Ingest, Query};
use crate::scenarios::{ColdStart, Density, PeerRuns};

/// Ingest aim: events per second through trib.
pub const INGEST_TARGET_EVENTS_PER_SEC: f64 = 100_000.0;
/// Ingest aim: trib's throughput over native SQLite's.
pub const INGEST_TARGET_RATIO: f64 = 0.5;
/// Query aim: median `GET /api/counts` latency, milliseconds.
pub const QUERY_TARGET_P50_MS: f64 = 50.0;
/// Reports aim (issue 16): a funnel, retention, top list or breakdown over
/// 1,000,000 events in under 200 ms (median), milliseconds.
pub const REPORT_TARGET_P50_MS: f64 = 200.0;

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
        throughput_markdown(&mut out, results);
    }
    if let Some(c) = &results.cold_start {
        heading(&mut out, "Cold start (trib, p3 hello; medians)");
        table(
            &mut out,
            &["case", "ms"],
            [
                (
                    "process start → first 200, empty compile cache",
                    format!("{:.1}", c.empty_cache_ms),
                ),
                (
                    "process start → first 200, warm compile cache",
                    format!("{:.1}", c.warm_cache_ms),
                ),
                (
                    "first request to a lazily loaded component",
                    format!("{:.2}", c.lazy_first_request_ms),
                ),
                (
                    "next request to the loaded component",
                    format!("{:.2}", c.loaded_request_ms),
                ),
            ]
            .map(|(case, ms)| vec![case.to_owned(), ms]),
        );
    }
    if let Some(d) = &results.density {
        let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
        heading(
            &mut out,
            &format!("Density ({} components, one p3 hello each)", d.components),
        );
        table(
            &mut out,
            &["state", "RSS MiB"],
            [
                ("after start (nothing loaded)", d.rss_start_kib),
                (
                    "after touching each once (all loaded, idle)",
                    d.rss_touched_kib,
                ),
                ("after scale-to-zero", d.rss_scaled_to_zero_kib),
            ]
            .map(|(state, kib)| vec![state.to_owned(), mib(kib)]),
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

/// A section's heading, after a blank line.
fn heading(out: &mut String, heading: &str) {
    let _ = writeln!(out, "\n### {heading}\n");
}

/// A Markdown table of `columns` (the first left-aligned, the others
/// right-aligned, as they hold figures) and `rows`; an empty cell stays
/// empty.
fn table(out: &mut String, columns: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", columns.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(columns.len() - 1));
    for row in rows {
        let cells: String = row
            .iter()
            .map(|cell| {
                if cell.is_empty() {
                    " |".to_owned()
                } else {
                    format!(" {cell} |")
                }
            })
            .collect();
        let _ = writeln!(out, "|{cells}");
    }
}

/// Throughput and latency of every peer, then trib's over its peers'.
fn throughput_markdown(out: &mut String, results: &Results) {
    // The first section: the machine's line ends in a blank line already.
    let _ = writeln!(out, "### Throughput and latency (hello component)\n");
    table(
        out,
        &[
            "peer",
            "conc",
            "req/s",
            "p50 µs",
            "p99 µs",
            "errors",
            "instantiation µs",
        ],
        results.throughput.iter().flat_map(|peer| {
            let inst = peer
                .instantiation_us
                .map_or_else(String::new, |v| format!("{v:.0}"));
            peer.runs.iter().map(move |run| {
                vec![
                    peer.peer.clone(),
                    run.concurrency.to_string(),
                    format!("{:.0}", run.rps),
                    format!("{:.0}", run.p50_us),
                    format!("{:.0}", run.p99_us),
                    run.errors.to_string(),
                    inst.clone(),
                ]
            })
        }),
    );
    // Every `wasmtime serve` peer (the newest first, as run), by the name
    // its p3 fresh row starts with.
    let wasmtime: Vec<&str> = results
        .throughput
        .iter()
        .filter_map(|p| p.peer.strip_suffix(" p3 fresh"))
        .filter(|name| name.starts_with("wasmtime serve"))
        .collect();
    let mut pairs = Vec::new();
    for w in wasmtime {
        pairs.extend([
            ("trib p3 fresh".to_owned(), format!("{w} p3 fresh")),
            ("trib p3 fresh".to_owned(), format!("{w} p3 reuse")),
            ("trib p3 reuse".to_owned(), format!("{w} p3 reuse")),
            ("trib p2 fresh".to_owned(), format!("{w} p2 fresh")),
        ]);
    }
    for trib in ["trib p3 fresh", "trib p3 reuse"] {
        pairs.push((trib.to_owned(), "native hyper".to_owned()));
    }
    // What exporting every request's spans costs (when it was run).
    let traced = crate::scenarios::TRACED;
    if results.throughput.iter().any(|p| p.peer == traced) {
        pairs.push((traced.to_owned(), "trib p3 fresh".to_owned()));
    }
    // The concurrency levels run (all three, or the smoke run's one).
    let mut levels: Vec<u32> = results
        .throughput
        .iter()
        .flat_map(|p| p.runs.iter().map(|r| r.concurrency))
        .collect();
    levels.sort_unstable();
    levels.dedup();
    let columns: Vec<String> = levels.iter().map(|c| format!("c={c}")).collect();
    let mut header = vec!["ratio"];
    header.extend(columns.iter().map(String::as_str));
    heading(out, "Ratios (same run)");
    table(
        out,
        &header,
        pairs.iter().map(|(a, b)| {
            let mut row = vec![format!("{a} / {b}")];
            row.extend(
                levels
                    .iter()
                    .map(|&c| match (rps(results, a, c), rps(results, b, c)) {
                        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}×", x / y),
                        _ => "–".into(),
                    }),
            );
            row
        }),
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

fn ingest_markdown(out: &mut String, i: &Ingest) {
    let plain = |run: &str, events: String, per_sec: f64| {
        let mut row = vec![run.to_owned(), events, format!("{per_sec:.0}")];
        row.resize(6, String::new());
        row
    };
    heading(
        out,
        &format!(
            "Data app: ingest (`POST /v1/batch`, {} events a batch, {} clients)",
            i.batch_size, i.clients
        ),
    );
    let server = i.server.as_ref().map(|s| {
        vec![
            "native ingest server (hyper + rusqlite: same parsing, validation and statements, WAL, synchronous=FULL, group commit)"
                .to_owned(),
            s.events.to_string(),
            format!("{:.0}", s.events_per_sec),
            format!("{:.1}", s.batch_p50_ms),
            format!("{:.1}", s.batch_p99_ms),
            s.errors.to_string(),
        ]
    });
    table(
        out,
        &[
            "run",
            "events",
            "events/s",
            "batch p50 ms",
            "batch p99 ms",
            "errors",
        ],
        [
            vec![
                "trib (ingest function, SQLite, chain redact → enrich → filter → validate)"
                    .to_owned(),
                i.events.to_string(),
                format!("{:.0}", i.events_per_sec),
                format!("{:.1}", i.batch_p50_ms),
                format!("{:.1}", i.batch_p99_ms),
                i.errors.to_string(),
            ],
            plain(
                "trib, every slot a pass-through filter (no transforms)",
                String::new(),
                i.plain_events_per_sec,
            ),
        ]
        .into_iter()
        .chain(server)
        .chain([
            plain(
                "native rusqlite (same inserts, SQLite time)",
                i.native_events.to_string(),
                i.native_events_per_sec,
            ),
            plain(
                "native rusqlite, synchronous=NORMAL (not trib's durability)",
                String::new(),
                i.native_relaxed_events_per_sec,
            ),
        ]),
    );
    if let Some(s) = &i.server {
        let _ = writeln!(
            out,
            "\ntrib / native ingest server: {:.2}× through the chain, {:.2}× without transforms (the server runs none).",
            s.chain_over_server, s.plain_over_server,
        );
    }
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

/// Whether a query case is one of the reports (issue 16) rather than a
/// counts window.
fn is_report(c: &crate::data::QueryCase) -> bool {
    c.path.starts_with("/api/v1/")
}

fn query_markdown(out: &mut String, q: &Query) {
    let ms = |v: f64| format!("{v:.1}");
    heading(
        out,
        &format!(
            "Data app: query (`GET /api/counts?bucket=hour`, {} events seeded, {:.0} MiB)",
            q.events, q.database_mib
        ),
    );
    table(
        out,
        &[
            "window",
            "events",
            "buckets",
            "trib p50 ms",
            "trib p90 ms",
            "trib max ms",
            "native p50 ms",
            "native p90 ms",
            "native max ms",
        ],
        q.cases.iter().map(|c| {
            vec![
                c.window.clone(),
                c.events.to_string(),
                c.buckets.to_string(),
                ms(c.trib.p50_ms),
                ms(c.trib.p90_ms),
                ms(c.trib.max_ms),
                ms(c.native.p50_ms),
                ms(c.native.p90_ms),
                ms(c.native.max_ms),
            ]
        }),
    );
    let requests = q.cases.first().map_or(0, |c| c.requests);
    let _ = writeln!(
        out,
        "\n{requests} sequential requests per window after 2 warm-ups. Aim: p50 under {QUERY_TARGET_P50_MS:.0} ms ({}).",
        q.cases
            .iter()
            .filter(|c| !is_report(c))
            .map(|c| format!(
                "{}: {}",
                c.window,
                verdict(c.trib.p50_ms < QUERY_TARGET_P50_MS)
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let reports: Vec<String> = q
        .cases
        .iter()
        .filter(|c| is_report(c))
        .map(|c| {
            format!(
                "{}: {}",
                c.window,
                verdict(c.trib.p50_ms < REPORT_TARGET_P50_MS)
            )
        })
        .collect();
    if !reports.is_empty() {
        let _ = writeln!(
            out,
            "\nReports (`/api/v1/...`; the rows column counts the answer's steps, cohorts or rows). Aim: p50 under {REPORT_TARGET_P50_MS:.0} ms ({}).",
            reports.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Figures for every section, with a peer whose instantiation time is
    /// unknown and a peer pair with no run at one concurrency.
    fn sample() -> Results {
        let load = |concurrency: u32, rps: f64| {
            serde_json::json!({"concurrency": concurrency, "rps": rps, "p50_us": 210.4,
                "p99_us": 980.6, "errors": 0})
        };
        let latency =
            |p50: f64| serde_json::json!({"p50_ms": p50, "p90_ms": 61.25, "max_ms": 70.0});
        serde_json::from_value(serde_json::json!({
            "machine": {"cpu": "Test CPU", "cpus": 2, "memory_gib": 3.5, "kernel": "6.1",
                "unix_time": 1},
            "kept_from": {"cpu": "Old CPU", "cpus": 4, "memory_gib": 8.0, "kernel": "5.15",
                "unix_time": 0},
            "throughput": [
                {"peer": "trib p3 fresh", "instantiation_us": 31.6,
                 "runs": [load(1, 9000.0), load(16, 30000.0), load(64, 31000.0)]},
                {"peer": "trib p3 reuse", "instantiation_us": 4.2,
                 "runs": [load(1, 12000.0), load(16, 40000.0)]},
                {"peer": "trib p2 fresh", "instantiation_us": 40.0,
                 "runs": [load(1, 8000.0), load(16, 25000.0), load(64, 26000.0)]},
                {"peer": "wasmtime serve p3 fresh", "instantiation_us": null,
                 "runs": [load(1, 6000.0), load(16, 20000.0), load(64, 21000.0)]},
                {"peer": "wasmtime serve p3 reuse", "instantiation_us": null,
                 "runs": [load(1, 10000.0), load(16, 0.0), load(64, 35000.0)]},
                {"peer": "wasmtime serve p2 fresh", "instantiation_us": null,
                 "runs": [load(1, 5000.0), load(16, 19000.0), load(64, 20000.0)]},
                {"peer": "native hyper", "instantiation_us": null,
                 "runs": [load(1, 20000.0), load(16, 90000.0), load(64, 95000.0)]}
            ],
            "cold_start": {"empty_cache_ms": 812.34, "warm_cache_ms": 40.06,
                "lazy_first_request_ms": 3.456, "loaded_request_ms": 0.3},
            "density": {"components": 100, "rss_start_kib": 40960, "rss_touched_kib": 102400,
                "rss_scaled_to_zero_kib": 51200, "per_loaded_component_kib": 614.4,
                "touch_all_ms": 950.2},
            "ingest": {"clients": 4, "batch_size": 100, "seconds": 5.0, "events": 107300,
                "events_per_sec": 21377.2, "batch_p50_ms": 18.31, "batch_p99_ms": 26.64,
                "errors": 1, "native_events": 379700, "native_events_per_sec": 87480.4,
                "wasm_over_native": 0.26, "native_relaxed_events_per_sec": 112585.0,
                "plain_events_per_sec": 122783.0, "chain_over_plain": 0.94,
                "server": {"events": 300000, "events_per_sec": 60000.4, "batch_p50_ms": 6.01,
                    "batch_p99_ms": 9.96, "errors": 0, "chain_over_server": 0.36,
                    "plain_over_server": 2.05}},
            "query": {"events": 1000000, "seed_seconds": 12.0, "database_mib": 369.4,
                "cases": [
                    {"window": "30 days", "path": "/api/counts", "events": 1000000,
                     "buckets": 720, "requests": 50, "trib": latency(468.44),
                     "native": latency(456.1)},
                    {"window": "last 24 hours", "path": "/api/counts", "events": 33343,
                     "buckets": 24, "requests": 50, "trib": latency(13.7),
                     "native": latency(12.5)}
                ]}
        }))
        .expect("sample results")
    }

    /// The report of [`sample`].
    const EXPECTED: &str = r#"Machine: Test CPU (2 CPUs, 3.5 GiB, Linux 6.1); load generator `wrk` (the data app: the runner's own HTTP client) on the same machine, loopback.

Scenarios not run this time keep an earlier run's figures, from: Old CPU (4 CPUs, 8 GiB, Linux 5.15).

### Throughput and latency (hello component)

| peer | conc | req/s | p50 µs | p99 µs | errors | instantiation µs |
|---|---:|---:|---:|---:|---:|---:|
| trib p3 fresh | 1 | 9000 | 210 | 981 | 0 | 32 |
| trib p3 fresh | 16 | 30000 | 210 | 981 | 0 | 32 |
| trib p3 fresh | 64 | 31000 | 210 | 981 | 0 | 32 |
| trib p3 reuse | 1 | 12000 | 210 | 981 | 0 | 4 |
| trib p3 reuse | 16 | 40000 | 210 | 981 | 0 | 4 |
| trib p2 fresh | 1 | 8000 | 210 | 981 | 0 | 40 |
| trib p2 fresh | 16 | 25000 | 210 | 981 | 0 | 40 |
| trib p2 fresh | 64 | 26000 | 210 | 981 | 0 | 40 |
| wasmtime serve p3 fresh | 1 | 6000 | 210 | 981 | 0 | |
| wasmtime serve p3 fresh | 16 | 20000 | 210 | 981 | 0 | |
| wasmtime serve p3 fresh | 64 | 21000 | 210 | 981 | 0 | |
| wasmtime serve p3 reuse | 1 | 10000 | 210 | 981 | 0 | |
| wasmtime serve p3 reuse | 16 | 0 | 210 | 981 | 0 | |
| wasmtime serve p3 reuse | 64 | 35000 | 210 | 981 | 0 | |
| wasmtime serve p2 fresh | 1 | 5000 | 210 | 981 | 0 | |
| wasmtime serve p2 fresh | 16 | 19000 | 210 | 981 | 0 | |
| wasmtime serve p2 fresh | 64 | 20000 | 210 | 981 | 0 | |
| native hyper | 1 | 20000 | 210 | 981 | 0 | |
| native hyper | 16 | 90000 | 210 | 981 | 0 | |
| native hyper | 64 | 95000 | 210 | 981 | 0 | |

### Ratios (same run)

| ratio | c=1 | c=16 | c=64 |
|---|---:|---:|---:|
| trib p3 fresh / wasmtime serve p3 fresh | 1.50× | 1.50× | 1.48× |
| trib p3 fresh / wasmtime serve p3 reuse | 0.90× | – | 0.89× |
| trib p3 reuse / wasmtime serve p3 reuse | 1.20× | – | – |
| trib p2 fresh / wasmtime serve p2 fresh | 1.60× | 1.32× | 1.30× |
| trib p3 fresh / native hyper | 0.45× | 0.33× | 0.33× |
| trib p3 reuse / native hyper | 0.60× | 0.44× | – |

### Cold start (trib, p3 hello; medians)

| case | ms |
|---|---:|
| process start → first 200, empty compile cache | 812.3 |
| process start → first 200, warm compile cache | 40.1 |
| first request to a lazily loaded component | 3.46 |
| next request to the loaded component | 0.30 |

### Density (100 components, one p3 hello each)

| state | RSS MiB |
|---|---:|
| after start (nothing loaded) | 40.0 |
| after touching each once (all loaded, idle) | 100.0 |
| after scale-to-zero | 50.0 |

Per loaded idle component: 614 KiB. Touching all 100 cold: 950 ms.

### Data app: ingest (`POST /v1/batch`, 100 events a batch, 4 clients)

| run | events | events/s | batch p50 ms | batch p99 ms | errors |
|---|---:|---:|---:|---:|---:|
| trib (ingest function, SQLite, chain redact → enrich → filter → validate) | 107300 | 21377 | 18.3 | 26.6 | 1 |
| trib, every slot a pass-through filter (no transforms) | | 122783 | | | |
| native ingest server (hyper + rusqlite: same parsing, validation and statements, WAL, synchronous=FULL, group commit) | 300000 | 60000 | 6.0 | 10.0 | 0 |
| native rusqlite (same inserts, SQLite time) | 379700 | 87480 | | | |
| native rusqlite, synchronous=NORMAL (not trib's durability) | | 112585 | | | |

trib / native ingest server: 0.36× through the chain, 2.05× without transforms (the server runs none).

Chain / no transforms: 0.94×. trib (no transforms, the same inserts) / native: 0.26×. Aims: ≥ 100000 events/s (met), ≥ 0.5× native (not met).

### Data app: query (`GET /api/counts?bucket=hour`, 1000000 events seeded, 369 MiB)

| window | events | buckets | trib p50 ms | trib p90 ms | trib max ms | native p50 ms | native p90 ms | native max ms |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| 30 days | 1000000 | 720 | 468.4 | 61.2 | 70.0 | 456.1 | 61.2 | 70.0 |
| last 24 hours | 33343 | 24 | 13.7 | 61.2 | 70.0 | 12.5 | 61.2 | 70.0 |

50 sequential requests per window after 2 warm-ups. Aim: p50 under 50 ms (30 days: not met; last 24 hours: met).
"#;

    #[test]
    fn the_report_has_every_section_with_its_figures() {
        assert_eq!(markdown(&sample()), EXPECTED);
    }

    /// Two `wasmtime serve` versions, one concurrency level (a smoke run):
    /// ratios against each, in the order run, in one column.
    #[test]
    fn ratios_cover_every_wasmtime_peer_at_the_levels_run() {
        let peer = |name: &str, rps: f64| {
            serde_json::json!({"peer": name, "instantiation_us": null, "runs": [
                {"concurrency": 16, "rps": rps, "p50_us": 1.0, "p99_us": 2.0, "errors": 0}]})
        };
        let results: Results = serde_json::from_value(serde_json::json!({
            "machine": {"cpu": "Test CPU", "cpus": 2, "memory_gib": 3.5, "kernel": "6.1",
                "unix_time": 1},
            "throughput": [
                peer("trib p3 fresh", 300.0),
                peer("trib p3 reuse", 400.0),
                peer("trib p2 fresh", 200.0),
                peer("wasmtime serve 49.0.3 p3 fresh", 100.0),
                peer("wasmtime serve 49.0.3 p3 reuse", 400.0),
                peer("wasmtime serve 49.0.3 p2 fresh", 100.0),
                peer("wasmtime serve 48.0.2 p3 fresh", 150.0),
                peer("wasmtime serve 48.0.2 p3 reuse", 200.0),
                peer("wasmtime serve 48.0.2 p2 fresh", 50.0),
                peer("native hyper", 1000.0)
            ],
            "cold_start": null, "density": null, "ingest": null, "query": null
        }))
        .expect("smoke results");
        let text = markdown(&results);
        let ratios = text
            .split_once("### Ratios (same run)\n\n")
            .expect("a ratios table")
            .1;
        assert_eq!(
            ratios,
            "| ratio | c=16 |
|---|---:|
| trib p3 fresh / wasmtime serve 49.0.3 p3 fresh | 3.00× |
| trib p3 fresh / wasmtime serve 49.0.3 p3 reuse | 0.75× |
| trib p3 reuse / wasmtime serve 49.0.3 p3 reuse | 1.00× |
| trib p2 fresh / wasmtime serve 49.0.3 p2 fresh | 2.00× |
| trib p3 fresh / wasmtime serve 48.0.2 p3 fresh | 2.00× |
| trib p3 fresh / wasmtime serve 48.0.2 p3 reuse | 1.50× |
| trib p3 reuse / wasmtime serve 48.0.2 p3 reuse | 2.00× |
| trib p2 fresh / wasmtime serve 48.0.2 p2 fresh | 4.00× |
| trib p3 fresh / native hyper | 0.30× |
| trib p3 reuse / native hyper | 0.40× |
"
        );
    }
}
