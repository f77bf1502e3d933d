//! What probing found and what must not come back: paths that escape the
//! app, guests that outlive their clients or the server, and connections
//! that are held forever.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{AppDir, P3, Trib, WAIT, client, shared_cache, trib};

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "hardening"
[[trigger.http]]
route = "/p3/..."
component = "p3"
[component.p3]
source = "{p3}"
"#;

/// Runs `trib up` on `app`, which must refuse to start; returns what it
/// printed. A `trib` that serves instead is killed and fails the test.
fn refused(app: &AppDir) -> String {
    let mut child = trib()
        .arg("up")
        .arg("-f")
        .arg(app.manifest())
        .args(["--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(shared_cache())
        .current_dir(app.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("trib starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("stderr");
            assert!(!status.success(), "trib up exited 0: {err}");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("trib up served an app it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    std::fs::write(path, content).expect("write");
}

#[test]
fn a_trigger_id_cannot_reach_outside_the_app() {
    let outside = tempfile::tempdir().expect("dir");
    let victim = outside.path().join("victim");
    write(&victim.join("keep.txt"), "precious");
    let app = AppDir::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "escape"
[[trigger.http]]
id = "{}"
route = "/..."
component = {{ source = "{{p3}}", files = ["static/**/*"] }}
"#,
        victim.display()
    ));
    write(&app.path().join("static/a.txt"), "a");
    let err = refused(&app);
    assert!(
        err.contains("trigger.http[0].id") && err.contains("kebab-case"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(victim.join("keep.txt")).expect("untouched"),
        "precious"
    );
    assert_eq!(
        std::fs::read_dir(&victim).expect("still there").count(),
        1,
        "nothing was written into it"
    );
}

#[cfg(unix)]
#[test]
fn files_globs_refuse_links_that_leave_the_app() {
    let outside = tempfile::tempdir().expect("dir");
    write(&outside.path().join("secret.txt"), "outside secret");
    let manifest = |files: &str| {
        format!(
            r#"
spin_manifest_version = 2
[application]
name = "links"
[[trigger.http]]
route = "/..."
component = "reader"
[component.reader]
source = "{{p3}}"
files = {files}
"#
        )
    };
    // A linked directory under a `**` glob, and a file named through a
    // linked directory.
    for (files, link, target) in [
        (r#"["static/**/*"]"#, "static/dirlink", outside.path()),
        (r#"["static2/e/secret.txt"]"#, "static2/e", outside.path()),
        (
            r#"[{ source = "assets", destination = "/assets" }]"#,
            "assets",
            outside.path(),
        ),
    ] {
        let app = AppDir::new(&manifest(files));
        write(&app.path().join("static/ok.txt"), "inside");
        let link = app.path().join(link);
        std::fs::create_dir_all(link.parent().expect("parent")).expect("dirs");
        std::os::unix::fs::symlink(target, &link).expect("symlink");
        let err = refused(&app);
        assert!(
            err.contains("outside the app directory") && err.contains("reader"),
            "{files}: {err}"
        );
        let staged = app.path().join(".spin/files/reader");
        let leaked = walk(&staged)
            .into_iter()
            .any(|f| std::fs::read_to_string(f).is_ok_and(|c| c.contains("outside secret")));
        assert!(!leaked, "{files}: the outside file was staged");
    }
}

#[cfg(unix)]
#[test]
fn links_that_stay_inside_the_app_are_served_and_spin_state_never_is() {
    let app = AppDir::new(&format!(
        "{}\n{}",
        APP.replace(
            "source = \"{p3}\"",
            "source = \"{p3}\"\nfiles = [\"**/*.txt\"]"
        ),
        ""
    ));
    write(&app.path().join("real/a.txt"), "inside a");
    std::os::unix::fs::symlink(app.path().join("real"), app.path().join("alias")).expect("link");
    write(&app.path().join(".spin/leak.txt"), "host state");
    let trib = Trib::start_with(&app, &shared_cache(), &[]);
    assert_eq!(
        trib.get("/p3/file?path=/alias/a.txt"),
        (200, "inside a".into())
    );
    let (status, body) = trib.get("/p3/file?path=/.spin/leak.txt");
    assert_eq!((status, body.as_str()), (500, "NotFound"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn start(flags: &[&str]) -> (AppDir, Trib) {
    let app = AppDir::new(APP);
    let mut args = vec!["--admin-listen", "127.0.0.1:0"];
    args.extend_from_slice(flags);
    let trib = Trib::start_with(&app, &shared_cache(), &args);
    (app, trib)
}

#[test]
fn a_guest_whose_client_left_is_stopped_and_frees_its_slot() {
    // No request timeout: only the client's departure can stop the guest.
    let (_app, trib) = start(&["--request-timeout", "0", "--max-instances", "2"]);
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    for round in 1..=3 {
        let err = impatient
            .get(trib.url("/p3/spin"))
            .send()
            .expect_err("the guest never answers");
        assert!(err.is_timeout(), "{err}");
        // The instance is stopped and its pool slot is back.
        trib.wait_metric("trib_abandoned_instances_total", P3, f64::from(round), WAIT);
        trib.wait_metric("trib_instances_active", P3, 0.0, WAIT);
        trib.wait_metric("trib_pool_slots_in_use", "", 0.0, WAIT);
    }
    // Three runaway guests on a two-instance pool, and still capacity.
    let resp = client().get(trib.url("/p3/hello")).send().expect("request");
    assert_eq!(resp.status().as_u16(), 200, "{}", trib.log());
    assert!(
        trib.log().contains("client went away") && trib.log().contains("component=p3"),
        "{}",
        trib.log()
    );
}

#[test]
fn a_slow_guest_is_not_stopped_while_its_client_waits() {
    let (_app, trib) = start(&["--request-timeout", "0"]);
    let resp = client()
        .get(trib.url("/p3/sleep?ms=700"))
        .send()
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().expect("body"), "slept 700 ms\n");
    let m = trib.scrape();
    assert_eq!(m.find("trib_abandoned_instances_total", P3), None);
}

#[test]
fn the_default_request_timeout_is_documented_and_zero_turns_it_off() {
    let out = trib().args(["up", "--help"]).output().expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--request-timeout") && help.contains("[default: 60s]"),
        "{help}"
    );
}

#[test]
fn sigterm_stops_a_busy_guest_after_the_grace_period() {
    let (_app, mut trib) = start(&["--request-timeout", "0", "--shutdown-grace", "1s"]);
    let url = trib.url("/p3/spin");
    let spinning = std::thread::spawn(move || client().get(url).send().map(|r| r.status()));
    trib.wait_metric("trib_instances_active", P3, 1.0, WAIT);
    let signalled = Instant::now();
    trib.terminate();
    let status = trib
        .wait_exit(Duration::from_secs(8))
        .unwrap_or_else(|| panic!("still running 8 s after SIGTERM:\n{}", trib.log()));
    assert!(status.success(), "{status}: {}", trib.log());
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "the grace period was honoured: {took:?}"
    );
    assert!(
        trib.log().contains("stopped their instances"),
        "{}",
        trib.log()
    );
    // The client saw its connection end rather than hang.
    let _ = spinning.join().expect("thread");
}

/// A raw connection to `trib`, for what HTTP clients will not do.
fn raw(trib: &Trib) -> TcpStream {
    let addr = trib.base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
}

/// Reads until the server closes the connection; fails if it does not
/// within the read timeout. Returns what was read.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&got).into_owned();
            }
            Err(e) => panic!(
                "the connection stayed open ({e}); read so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

#[test]
fn a_slow_loris_is_cut_off_at_the_header_read_timeout() {
    let (_app, trib) = start(&["--header-read-timeout", "500ms", "--idle-timeout", "60s"]);
    let mut stream = raw(&trib);
    let started = Instant::now();
    stream
        .write_all(b"GET /p3/hello HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
        .expect("partial head");
    let _ = read_to_close(&mut stream);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let (_app, trib) = start(&["--header-read-timeout", "30s", "--idle-timeout", "500ms"]);
    let mut stream = raw(&trib);
    stream
        .write_all(b"GET /.well-known/spin/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let started = Instant::now();
    let answer = read_to_close(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn connections_past_the_cap_wait_to_be_accepted() {
    let (_app, trib) = start(&["--max-connections", "2"]);
    let first = raw(&trib);
    let _second = raw(&trib);
    trib.wait_metric("trib_connections_open", "", 2.0, WAIT);
    let mut third = raw(&trib);
    third
        .write_all(b"GET /.well-known/spin/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let early = third.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "served past the cap: {early:?}"
    );
    assert_eq!(trib.scrape().get("trib_connections_open", ""), 2.0);
    // One leaves: the third is accepted and answered.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let answer = read_to_close(&mut third);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
