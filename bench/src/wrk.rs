//! Running `wrk` and reading its report.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// What one load run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Load {
    /// Connections held open.
    pub concurrency: u32,
    /// Completed requests per second.
    pub rps: f64,
    /// Median latency, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
    /// Responses that were not 2xx/3xx, plus socket errors.
    pub errors: u64,
}

/// Loads `addr` at `concurrency` connections for `duration`.
pub fn run(
    addr: SocketAddr,
    path: &str,
    concurrency: u32,
    duration: Duration,
) -> anyhow::Result<Load> {
    let threads = concurrency.clamp(1, 2);
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{concurrency}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg(format!("http://{addr}{path}"))
        .output()
        .context("cannot run wrk (is it installed?)")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse(&String::from_utf8_lossy(&out.stdout), concurrency)
}

/// Parses `wrk --latency` output.
pub fn parse(text: &str, concurrency: u32) -> anyhow::Result<Load> {
    let mut load = Load {
        concurrency,
        rps: 0.0,
        p50_us: 0.0,
        p99_us: 0.0,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            load.rps = v.trim().parse().context("Requests/sec")?;
        } else if let Some(v) = line.strip_prefix("50%") {
            load.p50_us = micros(v.trim())?;
        } else if let Some(v) = line.strip_prefix("99%") {
            load.p99_us = micros(v.trim())?;
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            load.errors += v
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    if load.rps == 0.0 {
        bail!("no Requests/sec in wrk output:\n{text}");
    }
    Ok(load)
}

fn micros(v: &str) -> anyhow::Result<f64> {
    let split = v
        .find(|c: char| c.is_ascii_alphabetic())
        .context("latency without unit")?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.trim().parse()?;
    Ok(match unit {
        "us" => n,
        "ms" => n * 1_000.0,
        "s" => n * 1_000_000.0,
        other => bail!("unknown latency unit {other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_latency_report() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 16 connections\n  Latency Distribution\n     50%  512.00us\n     75%  700.00us\n     90%    1.00ms\n     99%    2.50ms\n  123 requests in 5.00s, 1.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  24691.20\nTransfer/sec:      2.00MB\n";
        let load = parse(text, 16).expect("parses");
        assert_eq!(load.rps, 24691.2);
        assert_eq!(load.p50_us, 512.0);
        assert_eq!(load.p99_us, 2500.0);
        assert_eq!(load.errors, 7);
    }
}
