//! Spin's Wagi executor: a WASI command run per request as a CGI program,
//! built as a component (`wasm32-wasip2` binary), as a core module (the same
//! program linked without componentization) and as a WASI preview1 module
//! exporting `_start` (which trib gives the WASI command adapter), under the
//! limits every request has.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{
    AppDir, Trib, build_wasm, client, client_without_redirects, repo_root, shared_cache, trib,
};

/// The Wagi guest as a component, and as a core module.
fn wagi_guests() -> &'static (PathBuf, PathBuf) {
    static GUESTS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let dir = repo_root().join("tests/guests");
        let component = build_wasm(&dir, "wagi");
        let copy = component.with_file_name("wagi-component.wasm");
        std::fs::copy(&component, &copy).expect("keep the component build");
        let status = std::process::Command::new(env!("CARGO"))
            .current_dir(&dir)
            .args([
                "rustc",
                "--release",
                "--target",
                "wasm32-wasip2",
                "-p",
                "wagi",
                "--bin",
                "wagi",
                "--",
                "-C",
                "link-arg=--skip-wit-component",
            ])
            .status()
            .expect("cargo rustc");
        assert!(status.success(), "building the core-module Wagi guest");
        let module = component.with_file_name("wagi-module.wasm");
        std::fs::copy(&component, &module).expect("keep the module build");
        let bytes = std::fs::read(&module).expect("module");
        assert!(
            wasmparser::Parser::is_core_wasm(&bytes),
            "--skip-wit-component gives a core module"
        );
        (copy, module)
    })
}

fn app(source: &std::path::Path) -> AppDir {
    AppDir::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "wagi"

[variables]
greeting = {{ default = "hello from a variable" }}

[[trigger.http]]
route = "/cgi/..."
component = "cgi"
executor = {{ type = "wagi" }}

[[trigger.http]]
route = "/named/:name"
component = "named"
executor = {{ type = "wagi", argv = "prog --script=${{SCRIPT_NAME}} ${{ARGS}}" }}

[component.cgi]
source = "{source}"
environment = {{ FROM_MANIFEST = "manifest value", QUERY_STRING = "the request wins" }}
[component.cgi.variables]
greeting = "{{{{ greeting }}}}"

[component.named]
source = "{source}"
"#,
        source = source.display()
    ))
}

fn lines(body: &str) -> Vec<&str> {
    body.lines().collect()
}

fn serves_cgi(source: &std::path::Path) {
    let app = app(source);
    let trib = Trib::start_with(
        &app,
        &shared_cache(),
        &[
            "--request-timeout",
            "2s",
            "--max-request-body",
            "4096",
            "--max-instance-memory-mib",
            "64",
        ],
    );
    let resp = client()
        .post(trib.url("/cgi/a%20b?mode=echo&x=1&flag"))
        .header("content-type", "text/csv")
        .header("x-test", "seen")
        .header("authorization", "Bearer not-for-the-guest")
        .body("col1,col2\n1,2\n")
        .send()
        .expect("echo");
    assert_eq!(resp.status().as_u16(), 200, "log: {}", trib.log());
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; charset=utf-8")
    );
    let body = resp.text().expect("body");
    let port = trib.base.rsplit(':').next().expect("port");
    let expected = [
        "args=/cgi/a%20b|mode|echo|x|1|flag".to_owned(),
        "REQUEST_METHOD=POST".to_owned(),
        "SCRIPT_NAME=/cgi".to_owned(),
        "PATH_INFO=/a%20b".to_owned(),
        "QUERY_STRING=mode=echo&x=1&flag".to_owned(),
        format!("X_FULL_URL=http://127.0.0.1:{port}/cgi/a%20b?mode=echo&x=1&flag"),
        "X_MATCHED_ROUTE=/cgi/...".to_owned(),
        "CONTENT_LENGTH=14".to_owned(),
        "CONTENT_TYPE=text/csv".to_owned(),
        "HTTP_X_TEST=seen".to_owned(),
        "SERVER_NAME=127.0.0.1".to_owned(),
        "SERVER_SOFTWARE=WAGI/1".to_owned(),
        "FROM_MANIFEST=manifest value".to_owned(),
        "stdin=col1,col2".to_owned(),
        "1,2".to_owned(),
    ];
    assert_eq!(lines(&body), expected, "the whole CGI view: {body}");

    // A trigger's own argv, and route parameters as X_PATH_MATCH_*.
    let (status, body) = trib.get("/named/ada?k=v");
    assert_eq!(status, 200, "{body}");
    assert!(
        lines(&body).contains(&"args=prog|--script=/named/ada|k|v"),
        "{body}"
    );
    assert!(lines(&body).contains(&"X_PATH_MATCH_NAME=ada"), "{body}");

    let resp = client_without_redirects()
        .get(trib.url("/cgi/?mode=redirect"))
        .send()
        .expect("redirect");
    assert_eq!(resp.status().as_u16(), 302);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/elsewhere")
    );
    let resp = client()
        .get(trib.url("/cgi/?mode=teapot"))
        .send()
        .expect("teapot");
    assert_eq!(resp.status().as_u16(), 418);
    assert_eq!(
        resp.headers().get("x-wagi").and_then(|v| v.to_str().ok()),
        Some("yes")
    );
    assert_eq!(resp.text().expect("body"), "short and stout");

    // Spin's APIs are there for Wagi programs too.
    trib.assert_gets(&[("/cgi/?mode=variable", 200, "greeting=hello from a variable")]);

    // Output that is no response, and a failing exit, are that request's
    // 500; the server goes on.
    for mode in ["plain", "silent", "fail"] {
        let (status, _) = trib.get(&format!("/cgi/?mode={mode}"));
        assert_eq!(status, 500, "mode={mode}");
    }
    let log = trib.log();
    assert!(
        log.contains("wrote nothing to stdout"),
        "the silent program is named as such: {log}"
    );
    assert!(
        log.contains("no Content-Type, Status or Location header"),
        "{log}"
    );

    // A program that never ends is stopped at the request timeout.
    let started = Instant::now();
    let (status, _) = trib.get("/cgi/?mode=spin");
    assert_eq!(status, 504);
    assert!(started.elapsed() < Duration::from_secs(10));

    // The body and memory limits hold for CGI programs too.
    let (status, _) = trib.post("/cgi/?mode=echo", &"x".repeat(5000));
    assert_eq!(status, 413);
    let (status, body) = trib.get("/cgi/?mode=hog");
    assert_eq!(
        (status, body.as_str()),
        (500, "Internal Server Error: memory limit exceeded")
    );

    // Each request ran on its own instance and the server still serves.
    trib.assert_gets(&[("/cgi/?mode=variable", 200, "greeting=hello from a variable")]);
}

#[test]
fn a_wagi_component_serves_requests_as_a_cgi_program() {
    serves_cgi(&wagi_guests().0);
}

#[test]
fn a_wagi_core_module_is_componentized_at_load() {
    serves_cgi(&wagi_guests().1);
}

/// A WASI preview1 program, as `wasm32-wasip1` toolchains build them: it
/// reads its stdin and writes a CGI response with `fd_write`.
const PREVIEW1_COMMAND: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Content-Type: text/plain\n\npreview1 read: ")
  (func (export "_start")
    ;; iovec at 1024: the header, 41 bytes
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 41))
    (drop (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1040)))
    ;; read up to 256 bytes of stdin to 2048, then write them back
    (i32.store (i32.const 1024) (i32.const 2048))
    (i32.store (i32.const 1028) (i32.const 256))
    (drop (call $fd_read (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 1040)))
    (i32.store (i32.const 1028) (i32.load (i32.const 1040)))
    (drop (call $fd_write (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 1040)))))
"#;

/// An app whose one component `cgi`, from `source`, serves every path
/// through the Wagi executor.
fn one_wagi_component(source: &str) -> AppDir {
    AppDir::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"one-wagi\"\n\
         [[trigger.http]]\nroute = \"/...\"\ncomponent = \"cgi\"\nexecutor = {{ type = \"wagi\" }}\n\
         [component.cgi]\nsource = \"{source}\"\n"
    ))
}

#[test]
fn a_wasip1_command_module_gets_the_command_adapter() {
    let app = one_wagi_component("old.wasm");
    let module = wat::parse_str(PREVIEW1_COMMAND).expect("wat");
    std::fs::write(app.path().join("old.wasm"), module).expect("write module");
    let trib = Trib::start(&app);
    let (status, body) = trib.post("/", "posted body");
    assert_eq!((status, body.as_str()), (200, "preview1 read: posted body"));
}

#[test]
fn a_wagi_component_that_is_not_a_command_fails_startup() {
    let app = one_wagi_component("{p2}");
    let out = trib()
        .arg("up")
        .arg("-f")
        .arg(app.manifest())
        .args(["--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(shared_cache())
        .output()
        .expect("trib up");
    assert!(!out.status.success(), "trib up must refuse it");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("component \"cgi\": has executor = { type = \"wagi\" } but does not export wasi:cli/run@0.2"),
        "the error names the component and says why: {stderr}"
    );
}
