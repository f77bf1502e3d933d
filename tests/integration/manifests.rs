//! Bad manifests: each gives a one-line error naming the file, line, field
//! and fix. The cases are golden files: `tests/manifests/bad/NAME.toml`
//! beside the exact error text in `NAME.err`.

use std::path::PathBuf;

use crate::support::{AppDir, repo_root, trib};

fn bad_dir() -> PathBuf {
    repo_root().join("tests/manifests/bad")
}

#[test]
fn every_bad_manifest_gives_its_golden_one_line_error() {
    let dir = bad_dir();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("bad manifests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let expected = std::fs::read_to_string(case.with_extension("err"))
            .unwrap_or_else(|_| panic!("{} has no .err file", case.display()));
        let expected = expected.trim_end();
        let err = match trib::manifest::load(case) {
            Ok(_) => {
                failures.push(format!("{}: loaded without error", case.display()));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let err = err.replace(&format!("{}/", dir.display()), "");
        assert!(
            !err.contains('\n'),
            "{}: error spans lines:\n{err}",
            case.display()
        );
        if err != expected {
            failures.push(format!(
                "{}:\n   got: {err}\n  want: {expected}",
                case.display()
            ));
        }
        // Every error names a line and a field.
        let located = trib::manifest::load(case)
            .err()
            .and_then(|e| e.located().cloned());
        let located = located.expect("a located error");
        assert!(located.line >= 1 && !located.field.is_empty());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn trib_up_prints_one_line_and_fails_on_a_bad_manifest() {
    let case = bad_dir().join("unknown-component-field.toml");
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(&case)
        .env("TRIB_LOG", "warn")
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("Error: "), "{stderr}");
    assert!(
        lines[0].contains("unknown-component-field.toml:11:1: component.api.sorce"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing starts: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_missing_component_file_names_the_component_and_suggests_building() {
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "missing-file"
[[trigger.http]]
route = "/..."
component = "api"
[component.api]
source = "target/nothing-here.wasm"
"#,
    );
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(app.manifest())
        .env("TRIB_LOG", "warn")
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("component \"api\""), "{stderr}");
    assert!(stderr.contains("nothing-here.wasm"), "{stderr}");
    assert!(stderr.contains("trib build"), "{stderr}");
}

#[test]
fn a_good_manifest_resolves_paths_and_keeps_every_section() {
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "good"
version = "1.0.0"
authors = ["Data Team <data@example.com>"]
[application.trigger.http]
base = "/"
[variables]
api_token = { required = true, secret = true }
region = { default = "eu" }
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = { private = true }
component = "internal"
[component.api]
source = "api.wasm"
files = ["static/**/*", { source = "assets", destination = "/assets" }]
exclude_files = ["static/secret.txt"]
environment = { MODE = "prod" }
allowed_outbound_hosts = ["https://{{ region }}.example.com", "http://self"]
key_value_stores = ["default"]
sqlite_databases = ["default", "analytics"]
[component.api.variables]
token = "{{ api_token }}"
[component.api.build]
command = "cargo build --target wasm32-wasip2 --release"
workdir = "api"
watch = ["src/**/*.rs"]
[component.internal]
source = "internal.wasm"
"#,
    );
    let loaded = trib::manifest::load(&app.manifest()).expect("valid manifest");
    assert_eq!(loaded.name, "good");
    assert!(loaded.variables["api_token"].required);
    assert_eq!(loaded.variables["region"].default.as_deref(), Some("eu"));
    let api = &loaded.components["api"];
    assert_eq!(api.source, app.path().join("api.wasm"));
    assert_eq!(api.files.len(), 2);
    assert_eq!(api.environment["MODE"], "prod");
    assert_eq!(api.sqlite_databases, vec!["default", "analytics"]);
    assert_eq!(api.variables["token"], "{{ api_token }}");
    let build = api.build.as_ref().expect("build section");
    assert_eq!(build.workdir, app.path().join("api"));
    assert_eq!(loaded.http_triggers.len(), 2);
    assert_eq!(
        loaded.http_triggers[1].route,
        trib::manifest::HttpRoute::Private
    );
}

/// An app importing an interface trib lacks is refused at startup with one
/// line naming the component, the import and what trib has instead (golden
/// file `tests/manifests/imports/needs-llm.err`), as Spin refuses it; it
/// never starts and then answers 500s.
#[test]
fn an_app_importing_what_trib_lacks_fails_trib_up_with_one_line() {
    let golden = repo_root().join("tests/manifests/imports");
    let app = tempfile::tempdir().expect("temp dir");
    std::fs::copy(golden.join("spin.toml"), app.path().join("spin.toml")).expect("manifest");
    let wasm = wat::parse_file(golden.join("needs-llm.wat")).expect("valid WAT");
    std::fs::write(app.path().join("needs-llm.wasm"), wasm).expect("component");
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "--no-cache", "-f"])
        .arg(app.path())
        .env("TRIB_LOG", "warn")
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = std::fs::read_to_string(golden.join("needs-llm.err")).expect("golden");
    assert_eq!(stderr.trim_end(), expected.trim_end());
    assert!(
        out.stdout.is_empty(),
        "nothing starts: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
