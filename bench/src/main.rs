//! `bench`: measures `trib` beside its peers in one run on one machine and
//! prints absolute figures with ratios.
//!
//! Peers: `wasmtime serve` 48.0.8 (fresh instance per request, and its
//! default reuse) and a native hyper server. Scenarios: HTTP throughput and
//! latency under `wrk`, cold start, density of a 1,000-component app, and
//! the per-request instantiation cost from `trib`'s own metrics. The data
//! app (`spin.toml`): ingest throughput and query latency, each beside the
//! same SQLite work done natively. Results go to `bench/results/` as JSON
//! and Markdown.

mod client;
mod data;
mod peers;
mod report;
mod scenarios;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};

/// Benchmarks trib against wasmtime serve and native hyper.
#[derive(Debug, Parser)]
struct Cli {
    /// What to run.
    #[arg(value_enum, default_value = "all")]
    what: What,
    /// Seconds per load run (and per ingest run, trib and native).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent HTTP clients posting ingest batches.
    #[arg(long, default_value_t = 4)]
    ingest_clients: usize,
    /// Upper bound on events per ingest run (trib and native each).
    #[arg(long, default_value_t = 5_000_000)]
    ingest_max_events: u64,
    /// Events seeded for the query benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    query_events: u64,
    /// Timed requests per query window (after 2 warm-ups).
    #[arg(long, default_value_t = 50)]
    query_requests: usize,
    /// Components in the density app.
    #[arg(long, default_value_t = 1000)]
    components: usize,
    /// Where `wasmtime` is (default: installed under target/bench-tools).
    #[arg(long)]
    wasmtime: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum What {
    /// Every scenario.
    All,
    /// Throughput and latency of every peer under `wrk`.
    Throughput,
    /// trib's cold starts.
    ColdStart,
    /// Memory of a many-component app.
    Density,
    /// The data app's `POST /v1/batch` throughput, and native SQLite.
    Ingest,
    /// The data app's `GET /api/counts` latency on 1M events, and native SQLite.
    Query,
}

/// Events per ingest batch (Segment clients send up to 100 by default).
const INGEST_BATCH: usize = 100;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ has a parent")?
        .to_owned();
    let tools = prepare(&root, cli.wasmtime.clone(), cli.what)?;
    let mut results = report::Results::new();
    let duration = Duration::from_secs(cli.seconds);
    if matches!(cli.what, What::All | What::Throughput) {
        results.throughput = scenarios::throughput(&tools, duration)?;
    }
    if matches!(cli.what, What::All | What::ColdStart) {
        results.cold_start = Some(scenarios::cold_start(&tools)?);
    }
    if matches!(cli.what, What::All | What::Density) {
        results.density = Some(scenarios::density(&tools, cli.components)?);
    }
    if matches!(cli.what, What::All | What::Ingest) {
        let options = data::IngestOptions {
            clients: cli.ingest_clients,
            batch: INGEST_BATCH,
            duration,
            max_events: cli.ingest_max_events,
        };
        results.ingest = Some(data::ingest(&tools, options).context("ingest benchmark")?);
    }
    if matches!(cli.what, What::All | What::Query) {
        results.query = Some(
            data::query(&tools, cli.query_events, cli.query_requests).context("query benchmark")?,
        );
    }
    let dir = root.join("bench/results");
    // Scenarios not run this time keep their figures from the last run.
    let earlier = std::fs::read_to_string(dir.join("latest.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<report::Results>(&text).ok());
    if let Some(earlier) = earlier {
        results.fill_from(earlier);
    }
    let markdown = report::markdown(&results);
    println!("\n{markdown}");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("latest.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    std::fs::write(dir.join("latest.md"), &markdown)?;
    eprintln!("wrote {}", dir.join("latest.{json,md}").display());
    Ok(())
}

/// Builds what the runner needs for `what` (release `trib`; the hello
/// guests, with `wasmtime` and `wrk` found, for the peer scenarios; the data
/// app's functions for ingest and query).
fn prepare(root: &Path, wasmtime: Option<PathBuf>, what: What) -> anyhow::Result<peers::Tools> {
    let peer_scenarios = !matches!(what, What::Ingest | What::Query);
    let data_scenarios = matches!(what, What::All | What::Ingest | What::Query);
    let wasmtime = wasmtime.unwrap_or_else(|| root.join("target/bench-tools/bin/wasmtime"));
    if peer_scenarios && !wasmtime.exists() {
        bail!(
            "{} is missing: run scripts/bench (it installs wasmtime-cli 48.0.8) or pass --wasmtime",
            wasmtime.display()
        );
    }
    if peer_scenarios && Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is missing: run scripts/bench (it installs wrk)");
    }
    run(Command::new("cargo")
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "tributary-runtime",
            "--bin",
            "trib",
        ])
        .current_dir(root))?;
    let guests = root.join("tests/guests");
    if peer_scenarios {
        build_components(&guests, &["hello-p3", "hello-p2"])?;
    }
    if data_scenarios {
        // The components `spin.toml` routes /v1/... and /api/... to.
        build_components(&root.join("functions"), &["ingest", "query"])?;
    }
    let out = guests.join("target/wasm32-wasip2/release");
    let exe_dir = std::env::current_exe()?
        .parent()
        .context("exe dir")?
        .to_owned();
    Ok(peers::Tools {
        root: root.to_owned(),
        trib: root.join("target/release/trib"),
        native: exe_dir.join("native-hello"),
        wasmtime,
        hello_p3: out.join("bench_p3.wasm"),
        hello_p2: out.join("bench_p2.wasm"),
    })
}

/// Release builds of the components `packages` of the cargo workspace at
/// `dir`, for `wasm32-wasip2`.
fn build_components(dir: &Path, packages: &[&str]) -> anyhow::Result<()> {
    let mut cargo = Command::new("cargo");
    cargo
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .current_dir(dir);
    for package in packages {
        cargo.args(["-p", package]);
    }
    run(&mut cargo)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}
