//! `bench`: measures `trib` beside its peers in one run on one machine and
//! prints absolute figures with ratios.
//!
//! Peers: `wasmtime serve` 48.0.8 (fresh instance per request, and its
//! default reuse) and a native hyper server. Scenarios: HTTP throughput and
//! latency under `wrk`, cold start, density of a 1,000-component app, and
//! the per-request instantiation cost from `trib`'s own metrics. Results go
//! to `bench/results/` as JSON and Markdown.

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
    /// Seconds per load run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Components in the density app.
    #[arg(long, default_value_t = 1000)]
    components: usize,
    /// Where `wasmtime` is (default: installed under target/bench-tools).
    #[arg(long)]
    wasmtime: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum What {
    All,
    Throughput,
    ColdStart,
    Density,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ has a parent")?
        .to_owned();
    let tools = prepare(&root, cli.wasmtime.clone())?;
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
    let markdown = report::markdown(&results);
    println!("\n{markdown}");
    let dir = root.join("bench/results");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("latest.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    std::fs::write(dir.join("latest.md"), &markdown)?;
    eprintln!("wrote {}", dir.join("latest.{json,md}").display());
    Ok(())
}

/// Builds what the runner needs (release `trib`, the native peer, the hello
/// guests) and finds `wasmtime` and `wrk`.
fn prepare(root: &Path, wasmtime: Option<PathBuf>) -> anyhow::Result<peers::Tools> {
    let wasmtime = wasmtime.unwrap_or_else(|| root.join("target/bench-tools/bin/wasmtime"));
    if !wasmtime.exists() {
        bail!(
            "{} is missing: run scripts/bench (it installs wasmtime-cli 48.0.8) or pass --wasmtime",
            wasmtime.display()
        );
    }
    if Command::new("wrk").arg("--version").output().is_err() {
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
    run(Command::new("cargo")
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "-p",
            "hello-p3",
            "-p",
            "hello-p2",
        ])
        .current_dir(&guests))?;
    let out = guests.join("target/wasm32-wasip2/release");
    let exe_dir = std::env::current_exe()?
        .parent()
        .context("exe dir")?
        .to_owned();
    Ok(peers::Tools {
        trib: root.join("target/release/trib"),
        native: exe_dir.join("native-hello"),
        wasmtime,
        hello_p3: out.join("bench_p3.wasm"),
        hello_p2: out.join("bench_p2.wasm"),
    })
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
