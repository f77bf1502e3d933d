//! `bench`: measures `trib` beside its peers in one run on one machine and
//! prints absolute figures with ratios.
//!
//! Peers: `wasmtime serve` (each `--wasmtime` given, the newest first:
//! fresh instance per request, and its default reuse) and a native hyper
//! server. Scenarios: HTTP throughput and
//! latency under `wrk`, cold start, density of a 1,000-component app, and
//! the per-request instantiation cost from `trib`'s own metrics. The data
//! app (`spin.toml`): ingest throughput and query latency, each beside the
//! same SQLite work done natively. Results go to `bench/results/` as JSON
//! and Markdown.
//!
//! `--smoke` runs every scenario for about a second (tiny counts and
//! durations), prints the tables, asserts no figure and writes no results
//! file: it only proves that every scenario still runs.

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
    /// Every scenario for about a second with tiny counts (the defaults
    /// below become the smoke ones); prints the tables, writes no results
    /// file. Fails only if a scenario cannot run.
    #[arg(long)]
    smoke: bool,
    /// Seconds per load run (and per ingest run, trib and native)
    /// [default: 5; smoke: 1].
    #[arg(long)]
    seconds: Option<u64>,
    /// Concurrent HTTP clients posting ingest batches.
    #[arg(long, default_value_t = 4)]
    ingest_clients: usize,
    /// Upper bound on events per ingest run (trib and native each)
    /// [default: 5000000; smoke: 20000].
    #[arg(long)]
    ingest_max_events: Option<u64>,
    /// Events seeded for the query benchmark [default: 1000000, then
    /// 10000000; smoke: 20000].
    #[arg(long)]
    query_events: Option<u64>,
    /// Timed requests per query window, after 2 warm-ups [default: 50;
    /// smoke: 5].
    #[arg(long)]
    query_requests: Option<usize>,
    /// Components in the density app [default: 1000; smoke: 10].
    #[arg(long)]
    components: Option<usize>,
    /// A `wasmtime` CLI to run as a `wasmtime serve` peer; repeat for
    /// several versions, the newest first (its rows are the main peer's).
    /// scripts/bench passes the ones it installs.
    #[arg(long)]
    wasmtime: Vec<PathBuf>,
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
    let smoke = cli.smoke;
    // A default, or its smoke-run counterpart.
    let pick = |given: Option<u64>, full: u64, small: u64| {
        given.unwrap_or(if smoke { small } else { full })
    };
    let settings = scenarios::Settings {
        duration: Duration::from_secs(pick(cli.seconds, 5, 1)),
        concurrency: if smoke {
            &scenarios::SMOKE_CONCURRENCY
        } else {
            &scenarios::CONCURRENCY
        },
        warm_up: !smoke,
        cold_runs: if smoke { 1 } else { 5 },
        idle: Duration::from_secs(if smoke { 1 } else { 3 }),
    };
    let tools = prepare(&root, &cli.wasmtime, cli.what, smoke)?;
    let mut results = report::Results::new();
    if matches!(cli.what, What::All | What::Throughput) {
        results.throughput = scenarios::throughput(&tools, &settings)?;
    }
    if matches!(cli.what, What::All | What::ColdStart) {
        results.cold_start = Some(scenarios::cold_start(&tools, &settings)?);
    }
    if matches!(cli.what, What::All | What::Density) {
        let components = usize::try_from(pick(cli.components.map(|n| n as u64), 1000, 10))?;
        results.density = Some(scenarios::density(&tools, components, &settings)?);
    }
    if matches!(cli.what, What::All | What::Ingest) {
        let options = data::IngestOptions {
            clients: cli.ingest_clients,
            batch: INGEST_BATCH,
            duration: settings.duration,
            max_events: pick(cli.ingest_max_events, 5_000_000, 20_000),
        };
        results.ingest = Some(data::ingest(&tools, options).context("ingest benchmark")?);
    }
    if matches!(cli.what, What::All | What::Query) {
        // The full run adds 10,000,000 events: rollups make the cost grow
        // with buckets, not events.
        let sizes = match cli.query_events {
            Some(events) => vec![events],
            None if smoke => vec![20_000],
            None => vec![1_000_000, 10_000_000],
        };
        let requests = usize::try_from(pick(cli.query_requests.map(|n| n as u64), 50, 5))?;
        results.query = Some(data::queries(&tools, &sizes, requests).context("query benchmark")?);
    }
    if smoke {
        // Smoke figures are not measurements: print them, keep the file.
        println!("\n{}", report::markdown(&results));
        eprintln!("smoke run: every scenario ran (no figures checked, no results written)");
        return Ok(());
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

/// Builds what the runner needs for `what`: release `trib` and the native
/// peer; the WASI-only hello guests (`bench-p3`, `bench-p2`), with every
/// `wasmtime` and `wrk` found, for the peer scenarios; every component the
/// data app's `spin.toml` names for ingest and query.
///
/// A smoke run (no figures kept) uses the debug `trib` and native peer the
/// tests already built, so CI pays for no release build of the host.
fn prepare(
    root: &Path,
    wasmtime: &[PathBuf],
    what: What,
    smoke: bool,
) -> anyhow::Result<peers::Tools> {
    let (profile, profile_dir) = if smoke {
        ("dev", "debug")
    } else {
        ("release", "release")
    };
    let peer_scenarios = !matches!(what, What::Ingest | What::Query);
    let throughput = matches!(what, What::All | What::Throughput);
    let data_scenarios = matches!(what, What::All | What::Ingest | What::Query);
    let mut peers_found = Vec::new();
    if throughput {
        if wasmtime.is_empty() {
            bail!(
                "no `wasmtime` peer: run scripts/bench (it installs them) or pass --wasmtime PATH"
            );
        }
        for path in wasmtime {
            peers_found.push(peers::Wasmtime::new(path)?);
        }
    }
    if peer_scenarios && Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is missing: run scripts/bench (it installs wrk)");
    }
    // One build for both, so cargo resolves their features once (what
    // scripts/bench builds before it starts the runner).
    run(Command::new("cargo")
        .args([
            "build",
            "--profile",
            profile,
            "--locked",
            "-p",
            "tributary-runtime",
            "--bin",
            "trib",
            "-p",
            "bench",
            "--bin",
            "native-hello",
            "--bin",
            "native-ingest",
        ])
        .current_dir(root))?;
    let guests = root.join("tests/guests");
    if peer_scenarios {
        build_components(&guests, &["bench-p3", "bench-p2"])?;
    }
    if data_scenarios {
        // Every component `spin.toml` names: the routes' and the ingest
        // chain's transforms.
        build_components(
            &root.join("functions"),
            &[
                "home",
                "ingest",
                "query",
                "transform-redact",
                "transform-enrich",
                "transform-filter",
                "transform-validate",
            ],
        )?;
    }
    let out = guests.join("target/wasm32-wasip2/release");
    let release = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir))
        .join(profile_dir);
    let tools = peers::Tools {
        root: root.to_owned(),
        trib: release.join("trib"),
        native: release.join("native-hello"),
        wasmtime: peers_found,
        hello_p3: out.join("bench_p3.wasm"),
        hello_p2: out.join("bench_p2.wasm"),
    };
    let mut needed = vec![&tools.trib];
    if peer_scenarios {
        needed.extend([&tools.native, &tools.hello_p3, &tools.hello_p2]);
    }
    for path in needed {
        if !path.exists() {
            bail!("the build did not make {}", path.display());
        }
    }
    Ok(tools)
}

/// Release builds of the components `packages` of the cargo workspace at
/// `dir`, for `wasm32-wasip2`, into its own `target/` (where the manifests
/// look for them, whatever `CARGO_TARGET_DIR` says).
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
        .env_remove("CARGO_TARGET_DIR")
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
