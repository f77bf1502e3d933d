//! The cron trigger (`[[trigger.cron]]`, Spin's cron trigger plugin's
//! manifest and guest world): the `cron-p2` guest (spin-sdk 5, as the plugin's guests) appends a row per tick
//! to the app's SQLite database, which the test reads back; trib's
//! `trib_cron_runs_total` must agree. The apps have no HTTP trigger.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{AppDir, Trib, assert_mentions, build_wasm, repo_root, shared_cache};

/// The cron guest, built once per test process.
fn guest() -> &'static PathBuf {
    static GUEST: OnceLock<PathBuf> = OnceLock::new();
    GUEST.get_or_init(|| build_wasm(&repo_root().join("tests/guests"), "cron-p2"))
}

/// Every second; `{env}` is the component's environment table.
const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "cron"
[[trigger.cron]]
component = "ticker"
cron_expression = "*/1 * * * * *"
[component.ticker]
source = "{source}"
sqlite_databases = ["default"]
environment = {env}
"#;

/// The cron app, `env` its component's environment table (the traces
/// test runs it too).
pub(crate) fn app(env: &str) -> AppDir {
    AppDir::new(
        &APP.replace("{source}", &guest().display().to_string())
            .replace("{env}", env),
    )
}

fn start(app: &AppDir) -> Trib {
    Trib::start_with(app, &shared_cache(), &["--admin-listen", "127.0.0.1:0"])
}

/// The `(ts, n)` rows written so far (none if the table is not there yet).
fn ticks(app: &AppDir) -> Vec<(i64, i64)> {
    if !app.path().join(".spin/sqlite_db.db").is_file() {
        return Vec::new();
    }
    let db = app.sqlite();
    let Ok(mut stmt) = db.prepare("SELECT ts, n FROM ticks ORDER BY n") else {
        return Vec::new();
    };
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Waits until at least `count` ticks are recorded.
fn wait_for_ticks(app: &AppDir, trib: &Trib, count: usize) -> Vec<(i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = ticks(app);
        if rows.len() >= count {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{count} ticks not recorded within 30 s (got {rows:?}); log:\n{}",
            trib.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_schedule_of_every_second_runs_the_component_each_second() {
    let app = app("{}");
    let trib = start(&app);
    assert!(
        trib.banner
            .contains("Cron Schedules:\n  ticker: */1 * * * * *"),
        "{}",
        trib.banner
    );
    let rows = wait_for_ticks(&app, &trib, 3);
    let first: Vec<(i64, i64)> = rows.iter().take(3).copied().collect();
    assert_eq!(
        first.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{rows:?}"
    );
    // One tick per scheduled second, each with its own timestamp.
    for pair in first.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, 1, "{rows:?}");
    }
    let ok = trib.scrape().get(
        "trib_cron_runs_total",
        "component=\"ticker\",outcome=\"ok\"",
    );
    assert!(ok >= 3.0, "{ok}");
}

#[test]
fn a_trapping_tick_is_logged_and_the_next_tick_still_runs() {
    let app = app("{ CRON_TRAP_EVEN = \"1\" }");
    let trib = start(&app);
    // Tick 2 traps (after writing its row); ticks 3 and 4 still run.
    let rows = wait_for_ticks(&app, &trib, 4);
    assert_eq!(
        rows.iter().take(4).map(|r| r.1).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let metrics = trib.scrape();
    let trap = metrics.get(
        "trib_cron_runs_total",
        "component=\"ticker\",outcome=\"trap\"",
    );
    let ok = metrics.get(
        "trib_cron_runs_total",
        "component=\"ticker\",outcome=\"ok\"",
    );
    assert!(trap >= 1.0 && ok >= 2.0, "trap {trap}, ok {ok}");
    assert_mentions(
        &trib.log(),
        &["cron tick", "cron handler failed", "component=ticker"],
    );
}

#[test]
fn ticks_missed_while_stopped_are_not_replayed() {
    let app = app("{}");
    let mut trib = start(&app);
    wait_for_ticks(&app, &trib, 2);
    trib.terminate();
    trib.wait_exit(Duration::from_secs(15)).expect("trib exits");
    let before = ticks(&app);
    let stopped = before.last().expect("a tick").0;
    // Stay stopped across at least three scheduled seconds.
    std::thread::sleep(Duration::from_secs(3));
    let trib = start(&app);
    let after = wait_for_ticks(&app, &trib, before.len() + 1);
    let first_new = after[before.len()].0;
    assert!(
        first_new - stopped >= 3,
        "the first tick after the restart is a new one, not a missed one: {after:?}"
    );
    // The ticks in the gap were never run.
    assert!(
        after
            .iter()
            .all(|(ts, _)| *ts <= stopped || *ts >= first_new),
        "{after:?}"
    );
}
