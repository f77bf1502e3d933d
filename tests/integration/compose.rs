//! Component dependencies (`[component.X.dependencies]`): a component whose
//! import is satisfied by another component, composed at load time.
//!
//! The dependent is `tests/guests/compose-p2` (imports
//! `tributary:stage1/transform@0.1.0`); the dependency is the data app's
//! real `filter` transform (`functions/transforms/filter`), which exports
//! `tributary:pipeline/transform@0.1.0` and so fills the slot through
//! `export`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::support::{AppDir, Trib, assert_mentions, build_wasm, guests, repo_root, trib};

/// The dependent guest.
fn main_guest() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build_wasm(&repo_root().join("tests/guests"), "compose-p2"))
}

/// The `filter` transform.
fn filter() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build_wasm(&repo_root().join("functions"), "transform-filter"))
}

/// An app directory holding `manifest`, with the dependent guest as
/// component `main` (`{main}` in the manifest).
fn app_with(manifest_tail: &str) -> (tempfile::TempDir, AppDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "compose"

[[trigger.http]]
route = "/..."
component = "main"

[component.main]
source = "{}"

{manifest_tail}"#,
        main_guest().display()
    );
    std::fs::write(dir.path().join("spin.toml"), manifest).expect("write manifest");
    let app = AppDir::existing(dir.path());
    (dir, app)
}

#[test]
fn a_dependency_fills_an_import_and_the_composition_is_cached() {
    let (dir, app) = app_with(&dependency(
        "tributary:stage1/transform@0.1.0",
        Path::new("deps/filter.wasm"),
        "tributary:pipeline/transform@0.1.0",
    ));
    // `path` is relative to the manifest's directory.
    std::fs::create_dir(dir.path().join("deps")).expect("deps dir");
    std::fs::copy(filter(), dir.path().join("deps/filter.wasm")).expect("copy filter");
    let cache = tempfile::tempdir().expect("cache dir");

    let first = Trib::start_with(&app, cache.path(), &[]);
    assert!(
        first
            .log()
            .contains("composed the component with its dependencies"),
        "composed at startup:\n{}",
        first.log()
    );
    assert_eq!(
        first.get("/?names=a,b,c&drop_events=b"),
        (200, "a,c".to_owned())
    );
    assert_eq!(first.get("/?names=x,y"), (200, "x,y".to_owned()));
    // The filter refuses settings it does not know: the stage's error.
    let (status, body) = first.get("/?names=x&no_such_setting=1");
    assert_eq!(status, 500, "{body}");
    drop(first);

    // Same inputs: neither composed nor compiled again.
    let second = Trib::start_with(&app, cache.path(), &[]);
    assert_eq!(
        second.get("/?names=a,b,c&drop_events=a"),
        (200, "b,c".to_owned())
    );
    let log = second.log();
    assert!(
        !log.contains("composed the component"),
        "composed again:\n{log}"
    );
    assert!(log.contains("cached=true"), "compiled again:\n{log}");
}

/// `[component.main.dependencies]` with one entry: `key` filled by `export`
/// of the component at `path`.
fn dependency(key: &str, path: &Path, export: &str) -> String {
    format!(
        "[component.main.dependencies]\n\"{key}\" = {{ path = \"{}\", export = \"{export}\" }}\n",
        path.display()
    )
}

/// Runs `trib up` on the app [`app_with`] `manifest_tail`, which must fail
/// before serving; returns its stderr.
fn fails_to_start(manifest_tail: &str) -> String {
    let (_dir, app) = app_with(manifest_tail);
    let cache = tempfile::tempdir().expect("cache dir");
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(app.manifest())
        .arg("--cache-dir")
        .arg(cache.path())
        .env("TRIB_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("trib runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "trib up started:\n{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing is served: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[test]
fn a_missing_export_names_the_import_and_the_dependency() {
    let stderr = fails_to_start(&dependency(
        "tributary:stage1/transform@0.1.0",
        filter(),
        "tributary:pipeline/transform@0.2.0",
    ));
    assert_mentions(
        &stderr,
        &[
            "component \"main\"",
            "import \"tributary:stage1/transform@0.1.0\"",
            "transform_filter.wasm",
            "no export \"tributary:pipeline/transform@0.2.0\"",
            // What it has instead: the version is the difference.
            "\"tributary:pipeline/transform@0.1.0\", a different version",
        ],
    );
}

#[test]
fn an_incompatible_export_names_both_sides_and_the_reason() {
    // The dependent's own HTTP handler is an export of the wrong shape.
    let stderr = fails_to_start(&dependency(
        "tributary:stage1/transform",
        main_guest(),
        "wasi:http/incoming-handler@0.2.0",
    ));
    assert_mentions(
        &stderr,
        &[
            "component \"main\"",
            "import \"tributary:stage1/transform@0.1.0\"",
            "compose_p2.wasm",
            "export \"wasi:http/incoming-handler@0.2.0\" is not compatible with the import",
            // wac's reason: the first item of the import that is missing.
            "missing expected record export `event`",
        ],
    );
}

#[test]
fn a_key_matching_no_import_is_an_error() {
    // The component imports stage1 at 0.1.0, not 0.2.0.
    let stderr = fails_to_start(&dependency(
        "tributary:stage1/transform@0.2.0",
        filter(),
        "tributary:pipeline/transform@0.1.0",
    ));
    assert_mentions(
        &stderr,
        &[
            "component \"main\"",
            "dependency \"tributary:stage1/transform@0.2.0\"",
            "transform_filter.wasm",
            "matches no import",
            "tributary:stage1/transform@0.1.0",
        ],
    );
}

#[test]
fn a_dependency_that_needs_host_capabilities_must_inherit_them() {
    // The spin-sdk 5 test guest imports Spin's variables, key-value and
    // SQLite interfaces.
    let dependencies = dependency(
        "tributary:stage1/transform@0.1.0",
        &guests().p2,
        "tributary:pipeline/transform@0.1.0",
    );
    let stderr = fails_to_start(&dependencies);
    assert_mentions(
        &stderr,
        &[
            "component \"main\"",
            "dependency \"tributary:stage1/transform@0.1.0\"",
            "hello_p2.wasm",
            "a host capability",
            "dependencies_inherit_configuration = true",
        ],
    );

    // Inheriting, it passes that check and fails on what it lacks.
    let stderr = fails_to_start(&format!(
        "dependencies_inherit_configuration = true\n\n{dependencies}"
    ));
    assert_mentions(
        &stderr,
        &[
            "hello_p2.wasm",
            "no export \"tributary:pipeline/transform@0.1.0\"",
        ],
    );
}
