//! Shared test machinery: builds the guest components once per test process
//! and runs a real `trib` on a free loopback port.

pub mod rng;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Paths of the built guest components.
pub struct Guests {
    /// spin-sdk 7, exports `wasi:http/handler@0.3.0`.
    pub p3: PathBuf,
    /// spin-sdk 5, exports `wasi:http/incoming-handler@0.2.x`.
    pub p2: PathBuf,
    /// The p2 guest as a core module with an embedded component type.
    pub p2_core: PathBuf,
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ has a parent")
        .to_owned()
}

/// Runs `cargo ARGS` in `dir` (a workspace of components), without the
/// settings of the build that runs the tests; a failure fails the test.
fn cargo_in(dir: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo {args:?} in {} failed",
        dir.display()
    );
}

/// Builds `packages` of the workspace at `dir` for `wasm32-wasip2`
/// (release) and returns the directory of their `.wasm` files.
fn build_packages(dir: &Path, packages: &[&str]) -> PathBuf {
    let mut args = vec!["build", "--release", "--target", "wasm32-wasip2"];
    for package in packages {
        args.extend(["-p", package]);
    }
    cargo_in(dir, &args);
    dir.join("target/wasm32-wasip2/release")
}

/// Builds the package `package` of the workspace at `dir` for
/// `wasm32-wasip2` (release) and returns the path of its `.wasm` file.
pub fn build_wasm(dir: &Path, package: &str) -> PathBuf {
    build_packages(dir, &[package]).join(format!("{}.wasm", package.replace('-', "_")))
}

/// Builds the guests (once per process; cargo makes concurrent processes
/// wait for each other) and returns their paths.
pub fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let dir = repo_root().join("tests/guests");
        let out = build_packages(&dir, &["hello-p3", "hello-p2"]);
        // Linked without `wasm-component-ld`'s componentization: a core module,
        // as `wasm32-wasip1` toolchains produce.
        cargo_in(
            &dir,
            &[
                "rustc",
                "--release",
                "--target",
                "wasm32-wasip2",
                "-p",
                "p2-core",
                "--",
                "-C",
                "link-arg=--skip-wit-component",
            ],
        );
        Guests {
            p3: out.join("hello_p3.wasm"),
            p2: out.join("hello_p2.wasm"),
            p2_core: out.join("p2_core.wasm"),
        }
    })
}

/// The data app's functions (the `functions/` workspace), built once per
/// test process; returns the directory of their `.wasm` files.
pub fn functions() -> &'static Path {
    static FUNCTIONS: OnceLock<PathBuf> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        build_packages(
            &repo_root().join("functions"),
            &[
                "ingest",
                "query",
                "transform-redact",
                "transform-enrich",
                "transform-filter",
                "transform-validate",
                "transform-trap",
                "reports",
            ],
        )
    })
}

/// A directory holding a `spin.toml` and whatever files a test puts there.
pub struct AppDir {
    dir: AppRoot,
}

enum AppRoot {
    Temp(tempfile::TempDir),
    Existing(PathBuf),
}

impl AppDir {
    /// A new app whose manifest is `manifest`; `{p3}`, `{p2}` and `{p2_core}`
    /// in it are replaced by the guests' paths.
    pub fn new(manifest: &str) -> Self {
        let g = guests();
        let manifest = manifest
            .replace("{p3}", &g.p3.display().to_string())
            .replace("{p2_core}", &g.p2_core.display().to_string())
            .replace("{p2}", &g.p2.display().to_string());
        let manifest = if manifest.contains("{functions}") {
            manifest.replace("{functions}", &functions().display().to_string())
        } else {
            manifest
        };
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("spin.toml"), manifest).expect("write manifest");
        Self {
            dir: AppRoot::Temp(dir),
        }
    }

    /// An app that already exists on disk (not deleted afterwards).
    pub fn existing(dir: &Path) -> Self {
        Self {
            dir: AppRoot::Existing(dir.to_owned()),
        }
    }

    /// The app directory.
    pub fn path(&self) -> &Path {
        match &self.dir {
            AppRoot::Temp(t) => t.path(),
            AppRoot::Existing(p) => p,
        }
    }

    /// The manifest path.
    pub fn manifest(&self) -> PathBuf {
        self.path().join("spin.toml")
    }
}

/// The `trib` binary under test.
pub fn trib() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trib"))
}

/// A running `trib up`; killed on drop.
pub struct Trib {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it printed on stdout before serving (the route list).
    pub banner: String,
    /// `http://ADDR` of the admin listener, when `--admin-listen` was given.
    pub admin: Option<String>,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Trib {
    /// Starts `trib up` for `app` with `extra` flags, on a free port, with the
    /// given compile-cache directory, and waits until it serves.
    pub fn start_with(app: &AppDir, cache: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(app, cache, extra, &[])
    }

    /// Like [`Trib::start_with`], with extra environment variables.
    pub fn start_with_env(
        app: &AppDir,
        cache: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = trib();
        cmd.arg("up")
            .arg("-f")
            .arg(app.manifest())
            .args(["--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(cache)
            .args(extra)
            .current_dir(app.path())
            .envs(env.iter().copied());
        Self::launch(cmd)
    }

    /// Runs `cmd` (a `trib up` command line) with trib's log captured, and
    /// waits until it serves.
    pub fn launch(mut cmd: Command) -> Self {
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = log_dir.path().join("trib.log");
        if !cmd.get_envs().any(|(k, _)| k == "TRIB_LOG") {
            cmd.env("TRIB_LOG", "info");
        }
        let mut child = cmd
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("trib starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Keep draining after the test stops listening.
                let _ = tx.send(line);
            }
        });
        // The banner is "Serving URL", "Available Routes:" and one line per
        // route, printed at once; it is complete when no line follows soon.
        // An app with only Redis triggers prints "Active Channels:" and its
        // channels instead, and serves no URL (`base` is then empty).
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut base, mut banner) = (None, String::new());
        loop {
            match rx.recv_timeout(Duration::from_millis(300)) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("Serving ") {
                        base = Some(url.trim().to_owned());
                    }
                    if (line == "Active Channels:" || line == "Cron Schedules:") && base.is_none() {
                        base = Some(String::new());
                    }
                    banner.push_str(&line);
                    banner.push('\n');
                }
                Err(_) if base.is_some() => break,
                Err(_) => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("trib exited with {status} before serving:\n{log}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("trib did not start serving within 120 s");
            }
        }
        let base = base.expect("loop exits with a base URL");
        let admin = banner.lines().find_map(|l| {
            l.strip_prefix("Metrics at ")
                .and_then(|u| u.strip_suffix("/metrics"))
                .map(str::to_owned)
        });
        Self {
            child,
            base,
            banner,
            admin,
            log,
            _log_dir: log_dir,
        }
    }

    /// Starts `trib up` with the shared test compile cache.
    pub fn start(app: &AppDir) -> Self {
        Self::start_with(app, &shared_cache(), &[])
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path`: the status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        answer(client().get(self.url(path)))
    }

    /// `POST path` with `body`: the status and body.
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        answer(client().post(self.url(path)).body(body.to_owned()))
    }

    /// `GET`s each `(path, status, body)` in turn and checks the answer.
    pub fn assert_gets(&self, answers: &[(&str, u16, &str)]) {
        for &(path, status, body) in answers {
            assert_eq!(self.get(path), (status, body.to_owned()), "GET {path}");
        }
    }

    /// The Prometheus text from the admin listener.
    pub fn metrics(&self) -> String {
        let admin = self.admin.as_ref().expect("started with --admin-listen");
        client()
            .get(format!("{admin}/metrics"))
            .send()
            .and_then(|r| r.text())
            .expect("metrics")
    }

    /// One parsed scrape of the admin listener.
    pub fn scrape(&self) -> Metrics {
        Metrics::parse(&self.metrics())
    }

    /// Scrapes until `ready` holds, and returns that scrape; fails the test
    /// with the last scrape after `limit`. `what` says what is awaited.
    pub fn wait_metrics(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        let deadline = Instant::now() + limit;
        loop {
            let m = self.scrape();
            if ready(&m) {
                return m;
            }
            if Instant::now() > deadline {
                panic!("not within {limit:?}: {what}\n{m}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Scrapes until the series `name{labels}` exists and equals `value`;
    /// returns that scrape (see [`Trib::wait_metrics`]).
    pub fn wait_metric(&self, name: &str, labels: &str, value: f64, limit: Duration) -> Metrics {
        self.wait_metrics(&format!("{name}{{{labels}}} == {value}"), limit, |m| {
            m.find(name, labels) == Some(value)
        })
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit and returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Trib {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One compile cache for all tests of a run, so each guest compiles once.
pub fn shared_cache() -> PathBuf {
    repo_root().join("target/test-compile-cache")
}

/// One scrape of the admin listener's Prometheus text, parsed by
/// `prometheus-parse`.
pub struct Metrics {
    text: String,
    samples: Vec<prometheus_parse::Sample>,
}

impl Metrics {
    /// Parses Prometheus text; unparsable text fails the test.
    pub fn parse(text: &str) -> Self {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines)
            .unwrap_or_else(|e| panic!("unparsable Prometheus text ({e}):\n{text}"));
        Self {
            text: text.to_owned(),
            samples: scrape.samples,
        }
    }

    /// The value of the series `name` whose label set is exactly `labels`
    /// (written as in the exposition, e.g. `component="p3",status="200"`,
    /// or `""` for none), or `None` when there is no such series.
    pub fn find(&self, name: &str, labels: &str) -> Option<f64> {
        let wanted = label_set(labels);
        let mut found = self
            .samples
            .iter()
            .filter(|s| s.metric == name && s.labels == wanted);
        let sample = found.next()?;
        assert!(
            found.next().is_none(),
            "two series {name}{{{labels}}}:\n{}",
            self.text
        );
        Some(match &sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => {
                panic!("{name}{{{labels}}} is {other:?}, not one number (read its _count or _sum)")
            }
        })
    }

    /// The value of the series `name{labels}` (see [`Metrics::find`]); a
    /// missing series, a misspelled name or a label set that differs in any
    /// label fails the test.
    pub fn get(&self, name: &str, labels: &str) -> f64 {
        self.find(name, labels).unwrap_or_else(|| {
            panic!(
                "no series {name}{{{labels}}} (labels must match exactly):\n{}",
                self.text
            )
        })
    }

    /// Like [`Metrics::get`], but 0 when the series does not exist yet: only
    /// for a counter or gauge trib creates on its first event, where "never
    /// happened" is what the caller checks. `name` must still be one of
    /// trib's metrics, so a misspelling fails.
    pub fn get_or_zero(&self, name: &str, labels: &str) -> f64 {
        assert!(
            TRIB_METRICS.contains(&name),
            "{name} is not one of trib's metrics {TRIB_METRICS:?}"
        );
        self.find(name, labels).unwrap_or(0.0)
    }
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The metrics trib records (`trib::metrics`), by name; histograms as
/// their `_count` and `_sum` series.
const TRIB_METRICS: &[&str] = &[
    trib::metrics::CONNECTIONS,
    trib::metrics::REQUESTS,
    trib::metrics::INSTANCES_ACTIVE,
    trib::metrics::QUEUED,
    trib::metrics::POOL_IN_USE,
    trib::metrics::POOL_CAPACITY,
    trib::metrics::CACHE_HITS,
    trib::metrics::CACHE_MISSES,
    trib::metrics::LOADS,
    trib::metrics::UNLOADS,
    trib::metrics::LOADED,
    trib::metrics::COLD_STARTS,
    trib::metrics::LIMIT_HITS,
    trib::metrics::ABANDONED,
    trib::metrics::CONNECTIONS_OPEN,
    trib::metrics::REDIS_MESSAGES,
    trib::metrics::REDIS_RECONNECTS,
    "trib_request_duration_seconds_count",
    "trib_request_duration_seconds_sum",
    "trib_instantiation_duration_seconds_count",
    "trib_instantiation_duration_seconds_sum",
    "trib_host_call_duration_seconds_count",
    "trib_host_call_duration_seconds_sum",
];

/// A label set written as in the exposition (`a="x",b="y"`), parsed by the
/// same parser as the scrape so that the two compare exactly.
fn label_set(labels: &str) -> prometheus_parse::Labels {
    let line = if labels.is_empty() {
        "wanted 0".to_owned()
    } else {
        format!("wanted{{{labels}}} 0")
    };
    let scrape = prometheus_parse::Scrape::parse(std::iter::once(Ok(line)))
        .unwrap_or_else(|e| panic!("bad label set {labels:?}: {e}"));
    match scrape.samples.as_slice() {
        [sample] if sample.labels.len() == labels.matches('=').count() => sample.labels.clone(),
        _ => panic!("bad label set {labels:?}: write it as a=\"x\",b=\"y\""),
    }
}

/// The value of the Prometheus series `name{labels}` in `text` (labels
/// written as in the exposition, e.g. `component="p3"`, matched exactly);
/// a missing series fails the test (see [`Metrics::get`]).
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    Metrics::parse(text).get(name, labels)
}

/// Sends `request`: the status and body.
pub fn answer(request: reqwest::blocking::RequestBuilder) -> (u16, String) {
    let resp = request.send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().expect("body"))
}

/// Fails the test unless `text` (a log, an error output) contains every
/// one of `needles`.
pub fn assert_mentions(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

/// The label set of the `p3` component's series.
pub const P3: &str = "component=\"p3\"";
/// How long a test waits for a metric to show what it awaits.
pub const WAIT: Duration = Duration::from_secs(10);

/// A blocking HTTP client with a generous timeout.
pub fn client() -> reqwest::blocking::Client {
    client_builder().build().expect("client")
}

/// [`client`], except that redirects are returned, not followed.
pub fn client_without_redirects() -> reqwest::blocking::Client {
    client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn client_builder() -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60))
}

/// Whether the backend server at `addr` (a loopback `host:port`) answers.
/// Under `CI=true` a missing server fails the test instead: CI machines
/// have every backend, so a skip there would hide a broken setup.
pub fn backend_available(name: &str, addr: &str) -> bool {
    let reachable = addr
        .parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    if !reachable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not running on {addr}, and CI=true requires it"
        );
        eprintln!("skipping: {name} is not running on {addr}");
    }
    reachable
}

/// The data app, wired as the repository's `spin.toml` wires it: the
/// `ingest` function behind `/v1/...` with the write keys `write_keys`
/// (`key=source,...`), and the `query` function behind `/api/...` with the
/// read tokens `read_tokens` (none: no query API); both store where
/// `database_url` (default `sqlite`) says, and may reach the local
/// PostgreSQL. `chain` fills ingest's four transform slots in order: a
/// transform (a file name in [`functions`], without `.wasm`) and its
/// settings (a JSON object).
pub fn data_app(
    name: &str,
    write_keys: &str,
    read_tokens: Option<&str>,
    chain: [(&str, &str); 4],
) -> AppDir {
    let secret = |name: &str, value: &str| -> String {
        format!("{name} = {{ default = \"{value}\", secret = true }}\n")
    };
    let uses = |name: &str| -> String { format!("{name} = \"{{{{ {name} }}}}\"\n") };
    // One of the functions: its route, its component and its variables.
    let function = |component: &str, route: &str, variables: &str| -> String {
        format!(
            "[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"{component}\"\n\
             [component.{component}]\nsource = \"{{functions}}/{component}.wasm\"\n\
             sqlite_databases = [\"default\"]\n\
             allowed_outbound_hosts = [\"postgres://127.0.0.1:5432\"]\n\
             [component.{component}.variables]\n{variables}"
        )
    };
    let mut ingest = format!("{}{}", uses("write_keys"), uses("database_url"));
    let mut dependencies = String::from("[component.ingest.dependencies]\n");
    for (stage, (transform, settings)) in (1..).zip(chain) {
        assert!(
            !settings.contains('\''),
            "{settings}: settings are a TOML literal string"
        );
        ingest.push_str(&format!("stage{stage}_settings = '{settings}'\n"));
        dependencies.push_str(&format!(
            "\"tributary:stage{stage}/transform@0.1.0\" = {{ path = \"{{functions}}/{transform}.wasm\", \
             export = \"tributary:pipeline/transform@0.1.0\" }}\n"
        ));
    }
    let mut variables = format!(
        "{}{}",
        secret("write_keys", write_keys),
        secret("database_url", "sqlite")
    );
    let mut functions = function("ingest", "/v1/...", &ingest);
    functions.push_str(&dependencies);
    if let Some(tokens) = read_tokens {
        variables.push_str(&secret("read_tokens", tokens));
        let query = format!("{}{}", uses("read_tokens"), uses("database_url"));
        functions.push_str(&function("query", "/api/...", &query));
    }
    AppDir::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"{name}\"\n[variables]\n{variables}{functions}"
    ))
}

impl AppDir {
    /// The app's default SQLite database (`.spin/sqlite_db.db`), opened.
    /// The file must exist: a missing one fails the test, so that an empty
    /// answer only ever means "nothing stored", never "looked in the wrong
    /// place".
    pub fn sqlite(&self) -> rusqlite::Connection {
        let path = self.path().join(".spin/sqlite_db.db");
        assert!(
            path.is_file(),
            "{} does not exist: nothing was ever stored there",
            path.display()
        );
        rusqlite::Connection::open(&path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
    }
}

/// A loopback port nothing listens on (bound, then released): the
/// "server down" address of the backend tests.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// `PREFIX` + `sep` + this process's id + `sep` + the time in nanoseconds:
/// a name (table, key, channel, topic) no other test or run uses.
pub fn unique_name(prefix: &str, sep: char) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}{sep}{}{sep}{nanos}", std::process::id())
}
