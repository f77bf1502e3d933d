//! Scaling on demand: back-pressure, lazy loading, scale-to-zero, limits,
//! graceful shutdown and the metrics that show them.

use std::time::{Duration, Instant};

use crate::support::{AppDir, P3, Trib, WAIT, client, metric, shared_cache};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "scaling-test"
[[trigger.http]]
route = "/p3/..."
component = "p3"
[[trigger.http]]
route = "/other/..."
component = "other"
[component.p3]
source = "{p3}"
[component.other]
source = "{p2}"
"#;

/// Starts the app with `tool` (trib's `[component.ID.tool.trib]` tables)
/// added to its manifest.
fn start(tool: &str, flags: &[&str]) -> (AppDir, Trib) {
    let app = AppDir::new(&format!("{APP}{tool}"));
    let mut args = vec!["--admin-listen", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    let trib = Trib::start_with(&app, &shared_cache(), &args);
    (app, trib)
}

fn get(trib: &Trib, path: &str) -> reqwest::blocking::Response {
    client().get(trib.url(path)).send().expect("request")
}

#[test]
fn a_flood_queues_then_sheds_with_retry_after_and_loses_nothing() {
    // Two may run, three may wait (up to 3 s), the rest are turned away.
    let (_app, trib) = start(
        "[component.p3.tool.trib]\nmax_concurrency = 2\n",
        &["--max-queued", "3", "--queue-timeout", "3s"],
    );
    // Loaded first, so that the flood measures queueing, not a cold start.
    assert_eq!(get(&trib, "/p3/warm").status().as_u16(), 200);
    let url = trib.url("/p3/sleep?ms=600");
    let started = Instant::now();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let resp = client().get(url).send().expect("every request is answered");
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (resp.status().as_u16(), retry_after, Instant::now())
            })
        })
        .collect();
    // While the flood is in flight, requests are visibly queued: two run
    // (with their instances), three wait. The first two answer after 600 ms,
    // so this state must show by then; a wait that never sees it fails.
    trib.wait_metrics(
        "two requests running and three queued",
        Duration::from_secs(3),
        |m| {
            m.find("trib_queued_requests", "") == Some(3.0)
                && m.find("trib_pool_slots_in_use", "") == Some(2.0)
                && m.find("trib_instances_active", P3) == Some(2.0)
        },
    );
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let shed: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(ok + shed.len(), 10, "only 200 or 503: {results:?}");
    assert_eq!(
        ok, 5,
        "two running plus three queued are served: {results:?}"
    );
    assert!(
        shed.iter()
            .all(|r| r.1.as_deref().is_some_and(|v| v.parse::<u64>().is_ok())),
        "{results:?}"
    );
    // Shed requests are answered at once, not after the queue timeout.
    assert!(
        shed.iter()
            .all(|r| r.2 - started < Duration::from_millis(500)),
        "{results:?}"
    );
    // Queued ones ran after the first two: three waves of 600 ms at most.
    assert!(started.elapsed() < Duration::from_secs(4));
    // A request is counted when its response body is finished on the
    // server, which can be a moment after the client has read it.
    let after = trib.wait_metric(
        "trib_requests_total",
        "component=\"p3\",status=\"200\"",
        6.0,
        Duration::from_secs(5),
    );
    assert_eq!(
        after.get("trib_requests_total", "component=\"p3\",status=\"503\""),
        5.0,
        "{after}"
    );
    assert_eq!(
        after.get(
            "trib_limit_hits_total",
            "component=\"p3\",limit=\"queue_full\""
        ),
        5.0,
        "{after}"
    );
    assert_eq!(after.get("trib_queued_requests", ""), 0.0, "{after}");
}

#[test]
fn components_load_lazily_scale_to_zero_and_reload() {
    let (_app, trib) = start("[component.p3.tool.trib]\nidle_timeout = \"700ms\"\n", &[]);
    let m = trib.scrape();
    // Load counters are created by the first load: absent means none yet.
    assert_eq!(
        m.get_or_zero("trib_component_loads_total", P3),
        0.0,
        "nothing is loaded before its first request:\n{m}"
    );
    assert!(!trib.log().contains("component loaded"), "{}", trib.log());

    let before_use = Instant::now();
    assert_eq!(get(&trib, "/p3/one").status().as_u16(), 200);
    let m = trib.scrape();
    assert_eq!(m.get("trib_component_loads_total", P3), 1.0);
    assert_eq!(m.get("trib_component_loaded", P3), 1.0);
    assert_eq!(m.get("trib_cold_starts_total", P3), 1.0);
    // The other component is still not loaded.
    assert_eq!(
        m.get_or_zero("trib_component_loads_total", "component=\"other\""),
        0.0,
        "{m}"
    );

    // Idle for its idle time, it is unloaded: wait for that to show, and
    // check it did not happen sooner.
    let m = trib.wait_metric("trib_component_loaded", P3, 0.0, WAIT);
    assert!(
        before_use.elapsed() >= Duration::from_millis(700),
        "unloaded before its idle time: {:?}",
        before_use.elapsed()
    );
    assert_eq!(
        m.get("trib_component_unloads_total", P3),
        1.0,
        "idle component unloaded:\n{m}"
    );

    let resp = get(&trib, "/p3/two");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().expect("body"), "hello from p3 at /p3/two\n");
    let m = trib.scrape();
    assert_eq!(m.get("trib_component_loads_total", P3), 2.0, "reloaded");
    assert_eq!(m.get("trib_component_loaded", P3), 1.0, "reloaded");
    assert_eq!(m.get("trib_cold_starts_total", P3), 2.0);
    // Reloads come from the compile cache.
    assert!(m.get("trib_compile_cache_hits_total", "") >= 1.0, "{m}");
}

#[test]
fn min_warm_loads_at_startup_and_never_unloads() {
    // `other` has the same short idle time and no `min_warm`: its unload
    // shows when the reaper has looked at p3 past its idle time too.
    let (_app, trib) = start(
        "[component.p3.tool.trib]\nmin_warm = 1\nidle_timeout = \"100ms\"\n\
         [component.other.tool.trib]\nidle_timeout = \"100ms\"\n",
        &[],
    );
    let m = trib.scrape();
    assert_eq!(m.get("trib_component_loaded", P3), 1.0);
    // Used after p3 was loaded, so idle for less time than p3 at any check.
    assert_eq!(get(&trib, "/other/x").status().as_u16(), 200);
    let m = trib.wait_metric("trib_component_loaded", "component=\"other\"", 0.0, WAIT);
    assert_eq!(m.get("trib_component_loaded", P3), 1.0, "still loaded");
    // Unload counters are created by the first unload: absent means none.
    assert_eq!(m.get_or_zero("trib_component_unloads_total", P3), 0.0);
    assert_eq!(get(&trib, "/p3/x").status().as_u16(), 200);
    let m = trib.scrape();
    assert_eq!(m.get_or_zero("trib_cold_starts_total", P3), 0.0);
    assert_eq!(
        m.get("trib_requests_total", "component=\"p3\",status=\"200\""),
        1.0
    );
}

#[test]
fn an_infinite_loop_times_out_while_others_are_served() {
    let (_app, trib) = start("", &["--request-timeout", "1s"]);
    // Loaded first, so that "promptly" below measures serving, not loading.
    assert_eq!(get(&trib, "/other/warm").status().as_u16(), 200);
    let url = trib.url("/p3/spin");
    let started = Instant::now();
    let looping = std::thread::spawn(move || {
        let resp = client().get(url).send().expect("answered");
        (resp.status().as_u16(), Instant::now())
    });
    // Other requests keep being served while the guest spins (once its
    // instance is running).
    trib.wait_metric("trib_instances_active", P3, 1.0, WAIT);
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(get(&trib, "/other/ok").status().as_u16(), 200);
        assert!(t.elapsed() < Duration::from_millis(800), "served promptly");
    }
    let (status, finished) = looping.join().expect("thread");
    assert_eq!(status, 504, "{}", trib.log());
    let took = finished - started;
    assert!(
        took < Duration::from_secs(2),
        "within 2x the limit: {took:?}"
    );
    assert_one_limit_hit(&trib, "request timed out", "timeout");
}

/// p3 hit `limit` once: logged once (as `log_line`, with the component),
/// counted once, and the component still serves.
fn assert_one_limit_hit(trib: &Trib, log_line: &str, limit: &str) {
    let log = trib.log();
    assert_eq!(log.matches(log_line).count(), 1, "{log}");
    assert!(log.contains("component=p3"), "{log}");
    assert_eq!(get(trib, "/p3/after").status().as_u16(), 200);
    assert_eq!(
        metric(
            &trib.metrics(),
            "trib_limit_hits_total",
            &format!("component=\"p3\",limit=\"{limit}\"")
        ),
        1.0
    );
}

#[test]
fn a_memory_bomb_is_stopped_at_the_limit() {
    let (_app, trib) = start("", &["--max-instance-memory-mib", "32"]);
    let resp = get(&trib, "/p3/hog");
    assert_eq!(resp.status().as_u16(), 500);
    assert!(resp.text().expect("body").contains("memory limit"));
    assert_one_limit_hit(&trib, "memory limit exceeded", "memory");
}

#[test]
fn a_huge_body_is_413_with_or_without_content_length() {
    let (_app, trib) = start("", &["--max-request-body", "1000000"]);
    // Declared too large: refused before the guest runs.
    let resp = client()
        .post(trib.url("/p3/consume"))
        .body(vec![7u8; 2_000_000])
        .send()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 413);
    // Streamed without a length: refused when the limit is crossed.
    let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(vec![7u8; 50_000]));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(trib.url("/p3/consume"))
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.expect("answered"), 413);
    // Within the limit is fine.
    let resp = client()
        .post(trib.url("/p3/consume"))
        .body(vec![7u8; 900_000])
        .send()
        .expect("request");
    assert_eq!(resp.text().expect("body"), "900000 bytes\n");
    let log = trib.log();
    assert_eq!(log.matches("request body too large").count(), 2, "{log}");
    assert_eq!(
        metric(
            &trib.metrics(),
            "trib_limit_hits_total",
            "component=\"p3\",limit=\"body_size\""
        ),
        2.0
    );
}

#[test]
fn sigterm_finishes_the_slow_request_then_exits_zero() {
    let (_app, mut trib) = start("", &["--shutdown-grace", "10s"]);
    let url = trib.url("/p3/sleep?ms=1500");
    let slow = std::thread::spawn(move || {
        let resp = client().get(url).send().expect("answered");
        (resp.status().as_u16(), resp.text().expect("body"))
    });
    // Terminate while the request runs in its instance.
    trib.wait_metric("trib_instances_active", P3, 1.0, WAIT);
    trib.terminate();
    let (status, body) = slow.join().expect("thread");
    assert_eq!((status, body.as_str()), (200, "slept 1500 ms\n"));
    let exit = trib
        .wait_exit(Duration::from_secs(5))
        .expect("exits after the request");
    assert!(exit.success(), "{exit}\n{}", trib.log());
}

/// Instances created so far for `component`, from the instantiation histogram.
fn instantiations(trib: &Trib, component: &str) -> f64 {
    metric(
        &trib.metrics(),
        "trib_instantiation_duration_seconds_count",
        &format!("component=\"{component}\""),
    )
}

/// `GET path/count` on the test guest: how many requests the instance that
/// answered has handled, this one included.
fn invocation(trib: &Trib, path: &str) -> u64 {
    let (status, body) = trib.get(&format!("{path}/count"));
    assert_eq!(status, 200, "{path}: {body}");
    body.strip_prefix("invocation ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{path}: {body}"))
}

#[test]
fn p3_instances_are_fresh_by_default_and_reused_by_policy() {
    // No spares here: every instantiation counted serves (spares have their
    // own test below).
    let (_app, trib) = start(
        "[component.p3.tool.trib]\nmax_requests_per_instance = 50\nmax_concurrent_requests_per_instance = 4\nspare_instances = 0\n[component.other.tool.trib]\nspare_instances = 0\n",
        &[],
    );
    let mut p3 = Vec::new();
    for i in 0..10 {
        p3.push(invocation(&trib, &format!("/p3/r{i}")));
        // The default (`other`): one instance per request, as in Spin; its
        // instance has seen no request before this one.
        assert_eq!(invocation(&trib, &format!("/other/r{i}")), 1, "request {i}");
    }
    assert_eq!(instantiations(&trib, "other"), 10.0);
    // The opt-in policy: sequential requests share an instance, which
    // counts them (so the fresh-instance check above can fail).
    let reused = instantiations(&trib, "p3");
    assert!(
        (1.0..=2.0).contains(&reused),
        "{reused} instances for 10 requests"
    );
    assert!(
        p3.iter().max().is_some_and(|&n| n >= 5),
        "one of at most two instances served at least five: {p3:?}"
    );
    // Each instance's first request is its 1.
    assert_eq!(
        p3.iter().filter(|&&n| n == 1).count() as f64,
        reused,
        "{p3:?}"
    );
}

/// Polls `name{labels}` until it equals `want`, failing after `within`.
fn until_metric(trib: &Trib, name: &str, labels: &str, want: f64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = trib.scrape().find(name, labels);
        if now == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{{{labels}}} is {now:?}, not {want}, after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn spare_instances_are_fresh_serve_once_and_go_when_idle() {
    let (_app, trib) = start(
        "[component.p3.tool.trib]\nspare_instances = 1\n[component.other.tool.trib]\nspare_instances = 0\n",
        &[],
    );
    // Eight clients at once: every answer comes from an instance that has
    // served nothing before, whether it was a spare or made on demand.
    let counts: Vec<u64> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let trib = &trib;
                s.spawn(move || {
                    (0..25)
                        .map(|i| invocation(trib, &format!("/p3/c{c}r{i}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client thread"))
            .collect()
    });
    assert_eq!(counts.len(), 200);
    assert!(counts.iter().all(|&n| n == 1), "{counts:?}");
    // The next request's instance is ready (one spare, as configured)...
    let p3 = "component=\"p3\"";
    until_metric(
        &trib,
        "trib_spare_instances",
        p3,
        1.0,
        Duration::from_secs(1),
    );
    // ...each made once: 200 served and the one waiting.
    assert_eq!(instantiations(&trib, "p3"), 201.0);
    // ...and dropped once the component has been quiet for a second.
    until_metric(
        &trib,
        "trib_spare_instances",
        p3,
        0.0,
        Duration::from_secs(5),
    );
    assert_eq!(invocation(&trib, "/p3/after-idle"), 1);
    // `spare_instances = 0`: made on demand only, one per request.
    for i in 0..5 {
        assert_eq!(invocation(&trib, &format!("/other/r{i}")), 1);
    }
    assert_eq!(instantiations(&trib, "other"), 5.0);
    assert_eq!(
        trib.scrape()
            .find("trib_spare_instances", "component=\"other\""),
        None
    );
}
