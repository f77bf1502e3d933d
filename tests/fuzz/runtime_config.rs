//! `trib::runtime_config`: `runtime-config.toml` against an app, and the
//! same text as a component's `[component.api.tool.trib]` table (trib's
//! scaling settings) in the manifest.
//!
//! Promises checked (from the module docs of `trib::runtime_config` and
//! `trib::manifest::ScalingPolicy`):
//! - no input panics (durations included: every line of the input is also
//!   given to `parse_duration` alone);
//! - an error is one line naming the file;
//! - a runtime config never configures components (Spin's has no such
//!   table); in a manifest every `max_*` is at least 1, and `min_warm > 0`
//!   means never unloaded;
//! - an accepted duration is what its text says.

use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Unstructured;
use trib::manifest::App;
use trib::runtime_config::{parse, parse_duration};

use crate::driver::Target;

const PATH: &str = "/fuzz-app/runtime-config.toml";

const DICTIONARY: &[&str] = &[
    "[component.api]\n",
    "[component.ingest]\n",
    "[component.missing]\n",
    "[component.api.tool.trib]\n",
    "[key_value_store.default]\n",
    "[sqlite_database.default]\n",
    "type = \"spin\"\n",
    "type = \"redis\"\n",
    "path = \"data/kv.db\"\n",
    "max_concurrency = 8\n",
    "min_warm = 1\n",
    "idle_timeout = \"5m\"\n",
    "idle_timeout = \"never\"\n",
    "max_requests_per_instance = 1\n",
    "max_concurrent_requests_per_instance = 4\n",
    "\"30s\"",
    "\"500ms\"",
    "ms",
    "h",
    "m",
    "= ",
    "\"",
    "\n",
    "[",
    "]",
];

/// The app the config is checked against.
fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        trib::manifest::parse(
            Path::new("/fuzz-app/spin.toml"),
            "spin_manifest_version = 2\n[application]\nname = \"fuzz\"\n\
             [component.api]\nsource = \"api.wasm\"\n\
             [component.ingest]\nsource = \"ingest.wasm\"\n",
        )
        .expect("the fuzz app is valid")
    })
}

pub fn target() -> Target {
    Target {
        name: "runtime_config",
        seeds: vec![
            "max_concurrency = 8\nmin_warm = 1\nidle_timeout = \"5m\"\n\
             max_requests_per_instance = 1\nmax_concurrent_requests_per_instance = 1\n"
                .to_owned(),
            "idle_timeout = \"never\"\n[key_value_store.default]\n\
             type = \"spin\"\npath = \"kv.db\"\n[sqlite_database.default]\ntype = \"spin\"\n"
                .to_owned(),
            "idle_timeout = \"250ms\"\n[component.ingest]\nidle_timeout = \"2h\"\n".to_owned(),
        ],
        dictionary: DICTIONARY,
        run,
        generate,
    }
}

fn run(text: &str) -> String {
    for line in text.lines() {
        check_duration(line);
    }
    match parse(Path::new(PATH), text, app()) {
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n') && !message.contains('\r'),
                "runtime-config error is not one line: {message:?}"
            );
            assert!(
                message.starts_with(&format!("{PATH}:")),
                "runtime-config error does not name the file: {message:?}"
            );
            let located = e.located().expect("parse reads no file");
            let field: String = located
                .field
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            let words: Vec<&str> = located.message.split_whitespace().take(3).collect();
            format!("{field}:{}", words.join(" "))
        }
        Ok(config) => {
            let has_component_table = text
                .parse::<toml::Table>()
                .is_ok_and(|table| table.contains_key("component"));
            assert!(
                !has_component_table,
                "a runtime config with a [component] table was accepted"
            );
            format!(
                "ok:{}k{}s{}",
                config.key_value_stores.len(),
                config.sqlite_databases.len(),
                as_tool_table(text)
            )
        }
    }
}

/// The text as the `tool.trib` table of component `api`.
fn as_tool_table(text: &str) -> String {
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"fuzz\"\n\
         [component.api]\nsource = \"api.wasm\"\n[component.api.tool.trib]\n{text}"
    );
    match trib::manifest::parse(Path::new("/fuzz-app/spin.toml"), &manifest) {
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n'),
                "manifest error is not one line: {message:?}"
            );
            "m-err".to_owned()
        }
        Ok(app) => {
            for (id, component) in &app.components {
                let Some(policy) = &component.scaling else {
                    continue;
                };
                assert!(policy.max_concurrency.is_none_or(|n| n >= 1));
                assert!(policy.max_requests_per_instance >= 1);
                assert!(policy.max_concurrent_requests_per_instance >= 1);
                if policy.min_warm > 0 {
                    assert_eq!(policy.idle_timeout, None, "{id}: warm yet unloaded");
                }
            }
            "m-ok".to_owned()
        }
    }
}

/// `parse_duration` must not panic, and what it accepts must mean what it
/// says: digits then a unit (none meaning seconds).
fn check_duration(text: &str) {
    let Ok(duration) = parse_duration(text) else {
        return;
    };
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u128 = number
        .parse()
        .expect("an accepted duration starts with digits");
    let millis = match unit.trim() {
        "ms" => n,
        "" | "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        other => panic!("accepted unit {other:?} in {text:?}"),
    };
    assert_eq!(
        duration.as_millis(),
        millis,
        "{text:?} parsed as {duration:?}"
    );
}

fn generate(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(0..=3)? {
        s += &format!(
            "[component.{}]\n",
            u.choose(&["api", "ingest", "missing", "\"api\"", "API", "\"\""])?
        );
        for _ in 0..u.int_in_range(0..=4)? {
            let key = *u.choose(&[
                "max_concurrency",
                "min_warm",
                "max_requests_per_instance",
                "max_concurrent_requests_per_instance",
                "idle_timeout",
                "max_concurency",
            ])?;
            let value = if key == "idle_timeout" || u.ratio(1, 8)? {
                let number = u.choose(&[
                    "0",
                    "1",
                    "30",
                    "307445734561825861",
                    "18446744073709551615",
                    "99999999999999999999",
                    "",
                    " 5",
                ])?;
                let unit = u.choose(&["", "s", "ms", "m", "h", "d", " s", "never", "é"])?;
                format!("\"{number}{unit}\"")
            } else {
                u.choose(&["0", "1", "8", "-1", "18446744073709551615", "1.5", "\"1\""])?
                    .to_string()
            };
            s += &format!("{key} = {value}\n");
        }
    }
    if u.ratio(1, 2)? {
        s += &format!(
            "[{}.{}]\ntype = {:?}\n",
            u.choose(&["key_value_store", "sqlite_database", "key_value_stor"])?,
            u.choose(&["default", "other", "\"\""])?,
            u.choose(&["spin", "redis", ""])?
        );
        if u.ratio(1, 2)? {
            s += &format!(
                "path = {:?}\n",
                u.choose(&["kv.db", "", "../../x", "/abs"])?
            );
        }
    }
    Ok(s)
}
