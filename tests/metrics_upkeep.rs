//! An unscraped metrics recorder must not grow with every request: recorded
//! histogram samples wait in a queue until upkeep folds them into buckets.
//! A test binary of its own, so that no other test's memory moves the RSS
//! it measures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Samples recorded in all: about 13 bytes each while they wait.
const SAMPLES: usize = 4_000_000;
/// Samples recorded between two looks at the upkeep.
const CHUNK: usize = 100_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// Waits until the upkeep thread has completed a run that started after
/// this call (two more runs), however loaded the machine is.
fn upkeep_caught_up(runs: &AtomicU64) {
    let target = runs.load(Ordering::Acquire) + 2;
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs.load(Ordering::Acquire) < target {
        assert!(
            Instant::now() < deadline,
            "the upkeep thread stopped running"
        );
        std::thread::yield_now();
    }
}

/// How much RSS grows while `recorder` takes `SAMPLES` histogram samples,
/// in chunks; after each, `between` runs (waiting for upkeep, or nothing).
fn growth(recorder: &metrics_exporter_prometheus::PrometheusRecorder, between: &dyn Fn()) -> u64 {
    let before = rss_bytes();
    metrics::with_local_recorder(recorder, || {
        let histogram = metrics::histogram!("trib_request_duration_seconds", "component" => "api");
        for chunk in 0..SAMPLES / CHUNK {
            for i in 0..CHUNK {
                histogram.record(((chunk * CHUNK + i) % 1000) as f64 / 1e6);
            }
            between();
        }
    });
    rss_bytes().saturating_sub(before)
}

#[test]
fn an_unscraped_recorder_keeps_its_memory_flat() {
    // With upkeep first (what `trib` runs), then without: memory freed by
    // the first phase could otherwise hide the second's growth.
    let kept = trib::metrics::builder().expect("builder").build_recorder();
    let runs = trib::metrics::keep_up(kept.handle(), Duration::from_millis(5)).expect("upkeep");
    let with_upkeep = growth(&kept, &|| upkeep_caught_up(&runs));
    let neglected = trib::metrics::builder().expect("builder").build_recorder();
    let without_upkeep = growth(&neglected, &|| {});
    eprintln!(
        "RSS growth for {SAMPLES} samples: {with_upkeep} B with upkeep, {without_upkeep} B without"
    );
    // The premise: without upkeep the samples pile up.
    assert!(
        without_upkeep > 16 << 20,
        "{SAMPLES} unscraped samples grew RSS by only {without_upkeep} bytes"
    );
    assert!(
        with_upkeep < without_upkeep / 4,
        "with upkeep RSS grew by {with_upkeep} bytes, without by {without_upkeep}"
    );
}
