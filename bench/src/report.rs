//! The results file and the Markdown table with ratios.

use std::fmt::Write as _;

use serde::Serialize;

use crate::scenarios::{CONCURRENCY, ColdStart, Density, PeerRuns};

/// Everything one run measured, with the machine it ran on.
#[derive(Debug, Serialize)]
pub struct Results {
    /// Where and when.
    pub machine: Machine,
    /// Throughput and latency per peer.
    pub throughput: Vec<PeerRuns>,
    /// Cold-start times.
    pub cold_start: Option<ColdStart>,
    /// Memory of a many-component app.
    pub density: Option<Density>,
}

/// The machine the figures came from.
#[derive(Debug, Serialize)]
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
        }
    }
}

impl Machine {
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
        "Machine: {} ({} CPUs, {} GiB, Linux {}); load generator `wrk` on the same machine, loopback.\n",
        m.cpu, m.cpus, m.memory_gib, m.kernel
    );
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
    out
}
