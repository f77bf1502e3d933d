//! `files` mounts and `environment`, as the guest sees them.

use crate::support::{AppDir, Trib, shared_cache, trib};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "files"
[[trigger.http]]
route = "/..."
component = "reader"
[component.reader]
source = "{p3}"
files = ["static/**/*.txt", { source = "assets", destination = "/assets" }]
exclude_files = ["static/private/**"]
environment = { GREETING = "hi there", MODE = "test" }
"#;

fn write(app: &AppDir, rel: &str, content: &str) {
    let path = app.path().join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    std::fs::write(path, content).expect("write");
}

fn app() -> AppDir {
    let app = AppDir::new(APP);
    write(&app, "static/a.txt", "file a");
    write(&app, "static/nested/b.txt", "file b");
    write(&app, "static/c.md", "not matched");
    write(&app, "static/private/secret.txt", "excluded");
    write(&app, "assets/logo.svg", "<svg/>");
    write(&app, "outside.txt", "not mounted");
    app
}

#[test]
fn globs_and_directories_are_mounted_read_only() {
    let app = app();
    let trib = Trib::start_with(&app, &shared_cache(), &[]);
    assert_eq!(trib.get("/file?path=/static/a.txt"), (200, "file a".into()));
    assert_eq!(
        trib.get("/file?path=/static/nested/b.txt"),
        (200, "file b".into())
    );
    assert_eq!(
        trib.get("/file?path=/assets/logo.svg"),
        (200, "<svg/>".into())
    );
    // Not matched by the glob, excluded, or never mounted.
    for path in ["/static/c.md", "/static/private/secret.txt", "/outside.txt"] {
        assert_eq!(
            trib.get(&format!("/file?path={path}")),
            (500, "NotFound".into()),
            "{path}"
        );
    }
    // A path that escapes its mount is refused.
    let (status, body) = trib.get("/file?path=/assets/../../outside.txt");
    assert_eq!(status, 500, "{body}");
    let (status, _) = trib.get("/file?path=/etc/passwd");
    assert_eq!(status, 500);
    // Read-only.
    let (status, body) = trib.get("/write-file?path=/assets/new.txt");
    assert_eq!(status, 500, "{body}");
    assert!(!app.path().join("assets/new.txt").exists());
}

#[test]
fn environment_entries_reach_the_guest() {
    let app = app();
    let trib = Trib::start_with(&app, &shared_cache(), &[]);
    assert_eq!(trib.get("/env?name=GREETING"), (200, "hi there".into()));
    assert_eq!(trib.get("/env?name=MODE"), (200, "test".into()));
    assert_eq!(
        trib.get("/env?name=HOME"),
        (200, "<unset>".into()),
        "the host's own environment does not leak"
    );
}

#[test]
fn a_mount_outside_the_app_stops_startup() {
    let app = AppDir::new(&APP.replace("source = \"assets\"", "source = \"../\""));
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(app.manifest())
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("outside the app directory"), "{stderr}");
}
