//! An unscraped metrics recorder must not grow with every request: recorded
//! histogram samples wait in a queue until upkeep folds them into buckets.
//! A test binary of its own, so that no other test's memory moves the RSS
//! it measures.

use std::time::Duration;

/// Samples recorded per phase: about 8 bytes each while they wait.
const SAMPLES: usize = 4_000_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// How much RSS grows while `recorder` takes `SAMPLES` histogram samples.
fn growth(recorder: &metrics_exporter_prometheus::PrometheusRecorder) -> u64 {
    let before = rss_bytes();
    metrics::with_local_recorder(recorder, || {
        let histogram = metrics::histogram!("trib_request_duration_seconds", "component" => "api");
        for i in 0..SAMPLES {
            histogram.record((i % 1000) as f64 / 1e6);
        }
    });
    rss_bytes().saturating_sub(before)
}

#[test]
fn an_unscraped_recorder_keeps_its_memory_flat() {
    // With upkeep first (what `trib` runs), then without: memory freed by
    // the first phase could otherwise hide the second's growth.
    let kept = trib::metrics::builder().expect("builder").build_recorder();
    trib::metrics::keep_up(kept.handle(), Duration::from_millis(10)).expect("upkeep");
    let with_upkeep = growth(&kept);
    let neglected = trib::metrics::builder().expect("builder").build_recorder();
    let without_upkeep = growth(&neglected);
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
