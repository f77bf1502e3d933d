//! `trib up` with `spin up`'s flags and environment: guest output in
//! `.spin/logs` and on the terminal (`--follow`, `-q`, `--log-dir`),
//! `-e`, `--variable`, `--key-value`, `--state-dir`, `--from FILE.wasm`,
//! the manifest found in a parent directory, `--find-free-port`,
//! `SPIN_HTTP_LISTEN_ADDR`, `RUNTIME_CONFIG_FILE`, instance reuse and HTTPS.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{AppDir, Trib, guests, shared_cache, trib};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "cli"
[variables]
literal = { default = "unset" }
from_file = { default = "unset" }
from_json = { default = "unset" }
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = "/other/..."
component = "other"
[component.api]
source = "{p3}"
key_value_stores = ["default"]
[component.api.variables]
literal = "{{ literal }}"
from_file = "{{ from_file }}"
from_json = "{{ from_json }}"
[component.other]
source = "{p3}"
"#;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Waits until trib's log holds `needle` (the terminal copy of guest
/// output is written as the guest writes, before the response).
fn wait_for_log(trib: &Trib, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = trib.log();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn guest_output_goes_to_spins_log_files_and_to_the_terminal_prefixed_with_the_id() {
    let app = AppDir::new(APP);
    let trib = Trib::start(&app);
    assert_eq!(
        trib.get("/api/print?out=to-stdout-1&err=to-stderr-1"),
        (200, "printed".into())
    );
    let logs = app.path().join(".spin/logs");
    assert_eq!(read(&logs.join("api_stdout.txt")), "to-stdout-1\n");
    assert_eq!(read(&logs.join("api_stderr.txt")), "to-stderr-1\n");
    let log = wait_for_log(&trib, "[api] to-stderr-1");
    assert!(log.contains("[api] to-stdout-1\n"), "{log}");
    assert!(log.contains("[api] to-stderr-1\n"), "{log}");
    // A second run appends, as Spin's files do.
    drop(trib);
    let trib = Trib::start_with(&app, &shared_cache(), &["--follow", "other"]);
    trib.get("/api/print?out=quiet-api&err=quiet-api-err");
    trib.get("/other/print?out=loud-other&err=loud-other-err");
    assert_eq!(
        read(&logs.join("api_stdout.txt")),
        "to-stdout-1\nquiet-api\n"
    );
    assert_eq!(read(&logs.join("other_stdout.txt")), "loud-other\n");
    let log = wait_for_log(&trib, "[other] loud-other-err");
    assert!(log.contains("[other] loud-other\n"), "{log}");
    assert!(
        !log.contains("quiet-api"),
        "--follow other shows api's output:\n{log}"
    );
}

#[test]
fn quiet_and_an_empty_log_dir_silence_the_terminal_and_the_files() {
    let app = AppDir::new(APP);
    let trib = Trib::start_with(&app, &shared_cache(), &["-q", "--log-dir", ""]);
    // Guest output is written before the response is sent.
    assert_eq!(trib.get("/api/print?out=hidden-out&err=hidden-err").0, 200);
    let log = trib.log();
    assert!(
        !log.contains("hidden-out") && !log.contains("hidden-err"),
        "{log}"
    );
    assert!(!app.path().join(".spin/logs").exists());
}

#[test]
fn follow_naming_an_unknown_component_stops_trib_up() {
    let app = AppDir::new(APP);
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "--follow", "apii", "-f"])
        .arg(app.manifest())
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apii") && err.contains("api, other"), "{err}");
}

#[test]
fn env_variables_key_values_and_the_state_dir_come_from_spins_flags() {
    let app = AppDir::new(APP);
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "from-a-file").expect("write");
    let json = dir.path().join("vars.json");
    std::fs::write(
        &json,
        r#"{"from_json": "from-json", "literal": "overridden"}"#,
    )
    .expect("write");
    let state = dir.path().join("state");
    let trib = Trib::start_with(
        &app,
        &shared_cache(),
        &[
            "-e",
            "GREETING=hello=world",
            "--variable",
            &format!("@{}", json.display()),
            "--variable",
            "literal=from-the-flag",
            "--variable",
            &format!("from_file=@{}", secret.display()),
            "--key-value",
            "seeded=by-flag",
            "--state-dir",
            &state.display().to_string(),
        ],
    );
    trib.assert_gets(&[
        ("/api/env?name=GREETING", 200, "hello=world"),
        ("/other/env?name=GREETING", 200, "hello=world"),
        ("/api/var?name=literal", 200, "from-the-flag"),
        ("/api/var?name=from_file", 200, "from-a-file"),
        ("/api/var?name=from_json", 200, "from-json"),
        ("/api/kv-get?key=seeded", 200, "by-flag"),
    ]);
    // The default store and the logs live in the state directory.
    assert!(state.join("sqlite_key_value.db").is_file());
    assert!(state.join("logs").is_dir());
    assert!(!app.path().join(".spin/sqlite_key_value.db").exists());
}

#[test]
fn a_wasm_file_runs_as_a_one_component_app_serving_every_path() {
    let work = tempfile::tempdir().expect("temp dir");
    let mut cmd = trib();
    cmd.args(["up", "--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(shared_cache())
        .arg("--from")
        .arg(&guests().p3)
        .current_dir(work.path());
    let trib = Trib::launch(cmd);
    assert!(trib.banner.contains("hello-p3: "), "{}", trib.banner);
    assert_eq!(trib.get("/any/path").1, "hello from p3 at /any/path\n");
}

#[test]
fn the_manifest_is_found_in_a_parent_directory_and_the_listen_address_in_the_environment() {
    let app = AppDir::new(APP);
    let deep = app.path().join("src/deeper");
    std::fs::create_dir_all(&deep).expect("mkdir");
    // A port that is taken: --find-free-port moves past it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let mut cmd = trib();
    cmd.args(["up", "--find-free-port", "--cache-dir"])
        .arg(shared_cache())
        .env("SPIN_HTTP_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .current_dir(&deep);
    let trib = Trib::launch(cmd);
    let served: u16 = trib
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in the base URL");
    assert!(
        served > port,
        "served on {served}, the taken port is {port}"
    );
    assert_eq!(trib.get("/api/env?name=NONE"), (200, "<unset>".into()));
    let log = trib.log();
    assert_eq!(
        log.matches("from a parent directory").count(),
        1,
        "said once: {log}"
    );
    drop(taken);
}

#[test]
fn runtime_config_file_comes_from_the_environment() {
    let app = AppDir::new(&APP.replace(
        "key_value_stores = [\"default\"]",
        "key_value_stores = [\"other\"]",
    ));
    let config = app.path().join("rc.toml");
    std::fs::write(&config, "[key_value_store.other]\ntype = \"spin\"\n").expect("write");
    // Without the file the store is undefined and trib refuses to start.
    let out = trib()
        .args(["up", "--listen", "127.0.0.1:0", "-f"])
        .arg(app.manifest())
        .output()
        .expect("trib runs");
    assert!(!out.status.success());
    let mut cmd = trib();
    cmd.args(["up", "--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(shared_cache())
        .arg("-f")
        .arg(app.manifest())
        .env("RUNTIME_CONFIG_FILE", &config);
    let trib = Trib::launch(cmd);
    trib.assert_gets(&[
        ("/api/kv-set?store=other&key=k&value=v", 200, "ok"),
        ("/api/kv-get?store=other&key=k", 200, "v"),
    ]);
}

#[test]
fn max_instance_reuse_count_reuses_instances_and_the_default_is_fresh() {
    let app = AppDir::new(APP);
    let count = |trib: &Trib| -> Vec<String> { (0..4).map(|_| trib.get("/api/count").1).collect() };
    let fresh = Trib::start(&app);
    assert!(
        count(&fresh).iter().all(|c| c.starts_with("invocation 1 ")),
        "{:?}",
        count(&fresh)
    );
    drop(fresh);
    let reused = Trib::start_with(&app, &shared_cache(), &["--max-instance-reuse-count", "4"]);
    let seen = count(&reused);
    assert!(
        seen.iter().any(|c| !c.starts_with("invocation 1 ")),
        "{seen:?}"
    );
}

/// A self-signed certificate for 127.0.0.1, made with the openssl CLI.
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl failed");
    (cert, key)
}

#[test]
fn tls_cert_and_key_serve_https_and_spin_full_url_says_so() {
    let app = AppDir::new(APP);
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = certificate(dir.path());
    let trib = Trib::start_with(
        &app,
        &shared_cache(),
        &[
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ],
    );
    assert!(trib.base.starts_with("https://"), "{}", trib.base);
    let curl = |url: String| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&cert)
            .arg(url)
            .output()
            .expect("curl runs")
    };
    let out = curl(trib.url("/api/headers"));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        body.contains(&format!("spin-full-url: {}/api/headers", trib.base)),
        "{body}"
    );
    // Plain HTTP on the TLS port gets no answer from a component.
    let plain = curl(trib.url("/api/headers").replacen("https://", "http://", 1));
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("spin-full-url"));
}
