//! `trib build`: runs each component's build command in its workdir.

use crate::support::{AppDir, trib};

#[test]
fn trib_build_runs_commands_in_their_workdir_and_streams_output() {
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "build-test"
[[trigger.http]]
route = "/..."
component = "first"
[component.first]
source = "first.wasm"
[component.first.build]
command = ["echo building-first", "pwd > built-in.txt"]
workdir = "sub"
[component.second]
source = "second.wasm"
[component.second.build]
command = "echo $GREETING > second.txt"
environment = { GREETING = "hello" }
"#,
    );
    std::fs::create_dir(app.path().join("sub")).expect("workdir");
    let out = trib()
        .args(["build", "-f"])
        .arg(app.manifest())
        .output()
        .expect("trib runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("building-first"),
        "build output is passed through: {stdout}"
    );
    let pwd = std::fs::read_to_string(app.path().join("sub/built-in.txt")).expect("ran in workdir");
    assert_eq!(
        std::fs::canonicalize(pwd.trim()).expect("path"),
        std::fs::canonicalize(app.path().join("sub")).expect("path")
    );
    let second = std::fs::read_to_string(app.path().join("second.txt")).expect("second built");
    assert_eq!(second.trim(), "hello");
    assert!(
        stderr.contains("Finished building 2 component(s)"),
        "{stderr}"
    );
}

#[test]
fn a_failing_build_is_named_and_stops_the_build() {
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "build-fails"
[[trigger.http]]
route = "/..."
component = "broken"
[component.broken]
source = "broken.wasm"
[component.broken.build]
command = "echo compiling; exit 3"
[component.after]
source = "after.wasm"
[component.after.build]
command = "touch after-ran"
"#,
    );
    let out = trib()
        .args(["build", "-f"])
        .arg(app.manifest())
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("component \"broken\": build command `echo compiling; exit 3` failed with exit status: 3"),
        "{stderr}"
    );
    assert!(
        !app.path().join("after-ran").exists(),
        "later builds do not run"
    );
}
