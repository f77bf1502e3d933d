//! `trib watch`: a guest's source edited while it serves is rebuilt and
//! swapped in without a failed request; a broken build leaves the old
//! version serving; a manifest change is picked up in place.
//!
//! The guest is a dependency-free Wagi program (a `wasm32-wasip2` binary),
//! copied into a temporary directory with its own manifest, so its build
//! takes a second or two and the tests edit a copy, never the repository.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{client, shared_cache, trib};

/// How long a test waits for a build and reload (a first build of the
/// guest compiles std's prelude for the target: seconds).
const RELOAD_WAIT: Duration = Duration::from_secs(180);

const CARGO_TOML: &str = r#"[package]
name = "watched"
version = "0.1.0"
edition = "2024"
publish = false

[workspace]

[profile.release]
opt-level = "s"
debug = false
strip = true
"#;

/// The guest's source: answers `BODY GREETING`, after sleeping for the
/// milliseconds in the query string (`?150`), so that requests overlap a
/// swap.
fn source(body: &str) -> String {
    format!(
        r#"fn main() {{
    let query = std::env::var("QUERY_STRING").unwrap_or_default();
    if let Ok(ms) = query.parse::<u64>() {{
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }}
    let greeting = std::env::var("GREETING").unwrap_or_default();
    print!("Content-Type: text/plain\n\n{body} {{greeting}}");
}}
"#
    )
}

fn manifest(greeting: &str, extra: &str) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "watch-test"
[[trigger.http]]
route = "/..."
component = "watched"
executor = {{ type = "wagi" }}
{extra}
[component.watched]
source = "target/wasm32-wasip2/release/watched.wasm"
environment = {{ GREETING = "{greeting}" }}
[component.watched.build]
command = "cargo build --target wasm32-wasip2 --release"
watch = ["src/**/*.rs"]
"#
    )
}

/// A guest crate and its manifest in a temporary directory.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(body: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("src")).expect("src");
        std::fs::write(dir.path().join("Cargo.toml"), CARGO_TOML).expect("Cargo.toml");
        std::fs::write(dir.path().join("spin.toml"), manifest("hello", "")).expect("spin.toml");
        let project = Self { dir };
        project.write_source(&source(body));
        project
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces `src/main.rs` (as an editor's save does) and returns when.
    fn write_source(&self, text: &str) -> Instant {
        let at = Instant::now();
        std::fs::write(self.path().join("src/main.rs"), text).expect("write source");
        at
    }

    fn write_manifest(&self, text: &str) -> Instant {
        let at = Instant::now();
        std::fs::write(self.path().join("spin.toml"), text).expect("write manifest");
        at
    }
}

/// A running `trib watch`, its stdout as lines; killed on drop.
struct Watching {
    child: Child,
    lines: Receiver<String>,
    base: String,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Watching {
    fn start(project: &Project, flags: &[&str]) -> Self {
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = log_dir.path().join("trib.log");
        let mut child = trib()
            .args(["watch", "-f"])
            .arg(project.path().join("spin.toml"))
            .args(flags)
            .args(["--", "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(shared_cache())
            .current_dir(project.path())
            // The guest's build is a build of its own.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env("TRIB_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("trib starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut watching = Self {
            child,
            lines,
            base: String::new(),
            log,
            _log_dir: log_dir,
        };
        let serving = watching.wait_line("the Serving line", |l| l.starts_with("Serving "));
        watching.base = serving.trim_start_matches("Serving ").trim().to_owned();
        watching
    }

    /// The next stdout line for which `wanted` holds; fails the test after
    /// [`RELOAD_WAIT`] or if trib exits.
    fn wait_line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + RELOAD_WAIT;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("trib's stdout closed waiting for {what}:\n{}", self.log())
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "trib exited with {status} waiting for {what}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {RELOAD_WAIT:?}:\n{}",
                self.log()
            );
        }
    }

    /// Waits for the next reload and returns its save-to-serving time as
    /// printed.
    fn wait_reload(&mut self) -> (String, u64) {
        let line = self.wait_line("a Reloaded line", |l| l.starts_with("Reloaded "));
        let ms = line
            .split(" in ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no time in {line:?}"));
        (line, ms)
    }

    /// Polls the log (stderr) until it contains `needle`.
    fn wait_log(&mut self, needle: &str) {
        let deadline = Instant::now() + RELOAD_WAIT;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged within {RELOAD_WAIT:?}:\n{}",
                self.log()
            );
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("trib exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> (u16, String) {
        let resp = client()
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()));
        let status = resp.status().as_u16();
        (status, resp.text().expect("body"))
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request of the background stream: when it started and how it ended.
struct Answer {
    started: Instant,
    result: Result<(u16, String), String>,
}

/// Client threads sending requests (some slow, so that they span a swap)
/// until stopped; every answer is kept.
struct Stream {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Stream {
    fn start(base: &str, threads: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|i| {
                let (stop, answers, base) = (stop.clone(), answers.clone(), base.to_owned());
                std::thread::spawn(move || {
                    let client = client();
                    let mut n = 0u64;
                    // Bounded: a stream never outlives a hung test.
                    let deadline = Instant::now() + RELOAD_WAIT * 2;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        // Every other request takes a while.
                        let sleep = if (n + i as u64).is_multiple_of(2) {
                            0
                        } else {
                            150
                        };
                        n += 1;
                        let started = Instant::now();
                        let result = client
                            .get(format!("{base}/?{sleep}"))
                            .send()
                            .and_then(|r| {
                                let status = r.status().as_u16();
                                r.text().map(|body| (status, body))
                            })
                            .map_err(|e| e.to_string());
                        answers
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(Answer { started, result });
                    }
                })
            })
            .collect();
        Self {
            stop,
            answers,
            threads,
        }
    }

    fn count(&self) -> usize {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Waits until `more` answers have come past `from`.
    fn wait_for(&self, from: usize, more: usize) {
        let deadline = Instant::now() + RELOAD_WAIT;
        while self.count() < from + more {
            assert!(Instant::now() < deadline, "the request stream stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("client thread");
        }
        std::mem::take(&mut *self.answers.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[test]
fn an_edited_guest_is_rebuilt_and_swapped_with_no_failed_request_and_a_broken_build_keeps_serving()
{
    let project = Project::new("version-1");
    let mut trib = Watching::start(&project, &[]);
    assert_eq!(trib.get("/"), (200, "version-1 hello".to_owned()));

    // Edit the source while four clients keep requests in flight.
    let stream = Stream::start(&trib.base, 4);
    stream.wait_for(0, 20);
    let saved = project.write_source(&source("version-2"));
    let (line, printed_ms) = trib.wait_reload();
    let swapped = Instant::now();
    let measured = saved.elapsed();
    assert!(line.contains("watched"), "{line}");
    // Requests keep coming after the swap.
    let after = stream.count();
    stream.wait_for(after, 20);
    let answers = stream.finish();
    let mut bodies = std::collections::BTreeMap::<String, usize>::new();
    for answer in &answers {
        match &answer.result {
            Ok((200, body)) if body == "version-1 hello" || body == "version-2 hello" => {
                *bodies.entry(body.clone()).or_default() += 1;
            }
            other => panic!(
                "a request during the swap failed or got something else: {other:?}\n{}",
                trib.log()
            ),
        }
        if answer.started > swapped {
            assert_eq!(
                answer.result.as_ref().ok().map(|(_, b)| b.as_str()),
                Some("version-2 hello"),
                "a request started after the swap was printed got the old version"
            );
        }
    }
    assert!(
        bodies.contains_key("version-1 hello") && bodies.contains_key("version-2 hello"),
        "both versions answered during the stream: {bodies:?}"
    );
    eprintln!(
        "save to serving: {printed_ms} ms printed ({line}); {} ms from the write to the line read; {} requests {bodies:?}",
        measured.as_millis(),
        answers.len()
    );

    // A syntax error: the build fails, says so, and version 2 keeps serving.
    project.write_source("fn main() { this is not rust }\n");
    trib.wait_log("Build failed for watched; still serving the previous version");
    assert!(
        trib.log().contains("error"),
        "the compiler's error is shown:\n{}",
        trib.log()
    );
    for _ in 0..5 {
        assert_eq!(trib.get("/"), (200, "version-2 hello".to_owned()));
    }

    // Fixed: the next version serves.
    project.write_source(&source("version-3"));
    trib.wait_reload();
    assert_eq!(trib.get("/"), (200, "version-3 hello".to_owned()));
}

#[test]
fn a_manifest_change_is_served_in_place() {
    let project = Project::new("manifest");
    let mut trib = Watching::start(&project, &["--debounce", "50"]);
    let base = trib.base.clone();
    assert_eq!(trib.get("/"), (200, "manifest hello".to_owned()));
    assert_eq!(trib.get("/static").0, 200, "the catch-all serves /static");

    // A new variable value (the component's environment) and a new route.
    project.write_manifest(&manifest(
        "bonjour",
        "[[trigger.http]]\nroute = \"/static\"\nstatic_response = { status_code = 201, body = \"static\" }\n",
    ));
    let (line, _) = trib.wait_reload();
    assert!(line.contains("spin.toml"), "{line}");
    assert_eq!(trib.base, base, "same listener");
    assert_eq!(trib.get("/"), (200, "manifest bonjour".to_owned()));
    assert_eq!(trib.get("/static"), (201, "static".to_owned()));

    // A manifest that does not parse: the previous one keeps serving.
    project.write_manifest("spin_manifest_version = 2\n[application\n");
    trib.wait_log("The manifest did not load; still serving the previous version");
    assert_eq!(trib.get("/"), (200, "manifest bonjour".to_owned()));
    assert_eq!(trib.get("/static"), (201, "static".to_owned()));
}

#[test]
fn skip_build_reloads_when_the_wasm_file_changes() {
    let project = Project::new("prebuilt-1");
    // Built once beforehand, as `trib watch --skip-build` expects.
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--target", "wasm32-wasip2", "--release"])
            .current_dir(project.path())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("cargo runs");
    assert!(status.success());
    let mut trib = Watching::start(&project, &["--skip-build"]);
    assert_eq!(trib.get("/"), (200, "prebuilt-1 hello".to_owned()));
    // A source change alone does nothing; the build's new Wasm file does.
    project.write_source(&source("prebuilt-2"));
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--target", "wasm32-wasip2", "--release"])
            .current_dir(project.path())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("cargo runs");
    assert!(status.success());
    let (line, _) = trib.wait_reload();
    assert!(line.contains("watched"), "{line}");
    assert_eq!(trib.get("/"), (200, "prebuilt-2 hello".to_owned()));
    assert!(
        !trib.log().contains("Building component"),
        "--skip-build never builds:\n{}",
        trib.log()
    );
}
