//! Starting and stopping the servers under test, and a minimal HTTP probe.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Paths of everything the runner builds or installs.
pub struct Tools {
    /// The repository root: the data app's `spin.toml` and `functions/`.
    pub root: PathBuf,
    /// `target/release/trib`.
    pub trib: PathBuf,
    /// `target/release/native-hello`.
    pub native: PathBuf,
    /// The `wasmtime serve` peers, the newest first (scripts/bench installs
    /// the newest release and the one `trib` links).
    pub wasmtime: Vec<Wasmtime>,
    /// The spin-sdk 7 (WASIp3) hello component (WASI imports only, so
    /// every peer runs it).
    pub hello_p3: PathBuf,
    /// The spin-sdk 5 (WASIp2) hello component (WASI imports only).
    pub hello_p2: PathBuf,
}

/// One `wasmtime` CLI.
pub struct Wasmtime {
    /// The executable.
    pub path: PathBuf,
    /// `wasmtime serve` and its version, e.g. `wasmtime serve 49.0.3`: the
    /// peer's name in the tables.
    pub label: String,
}

impl Wasmtime {
    /// Checks that `path` runs and reads its version.
    pub fn new(path: &Path) -> anyhow::Result<Self> {
        let out = Command::new(path)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {} --version", path.display()))?;
        if !out.status.success() {
            bail!("{} --version failed with {}", path.display(), out.status);
        }
        // `wasmtime 49.0.3 (f96eabaa1 2026-10-14)`
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .split_whitespace()
            .nth(1)
            .with_context(|| format!("{} --version printed {text:?}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            label: format!("wasmtime serve {version}"),
        })
    }
}

/// A server process; killed on drop.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its admin (metrics) address, for `trib`.
    pub admin: Option<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `command`, which must listen on `addr`, and waits until `path`
/// answers 200.
pub fn start(mut command: Command, addr: SocketAddr, path: &str) -> anyhow::Result<Server> {
    let program = format!("{:?}", command.get_program());
    let stderr = tempfile::NamedTempFile::new()?;
    let child = command
        // Backtrace capture would tax whichever peer creates errors.
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.reopen()?)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut server = Server {
        child,
        addr,
        admin: None,
    };
    wait_for_200(&mut server, path, Duration::from_secs(120)).with_context(|| {
        let log = std::fs::read_to_string(stderr.path()).unwrap_or_default();
        format!(
            "{program}: {}",
            log.lines().take(5).collect::<Vec<_>>().join(" / ")
        )
    })?;
    Ok(server)
}

fn wait_for_200(server: &mut Server, path: &str, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = get(server.addr, path) {
            return Ok(started.elapsed());
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            bail!("server exited with {status} before answering");
        }
        if started.elapsed() > limit {
            bail!("server did not answer {path} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Spawns `command` and returns the time until `path` first answers 200,
/// with the still-running server.
pub fn time_to_first_200(
    mut command: Command,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<(Duration, Server)> {
    let started = Instant::now();
    let child = command
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut server = Server {
        child,
        addr,
        admin: None,
    };
    wait_for_200(&mut server, path, Duration::from_secs(120))?;
    Ok((started.elapsed(), server))
}

/// One HTTP/1.1 GET with `Connection: close`: status and body.
pub fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("bad status line")?;
    let mut rest = String::new();
    reader.read_to_string(&mut rest)?;
    let body = rest
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A Spin app in a temporary directory with the given manifest and
/// runtime config.
pub struct TempApp {
    dir: tempfile::TempDir,
}

impl TempApp {
    /// Writes `spin.toml` and `runtime-config.toml`.
    pub fn new(manifest: &str, runtime_config: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("spin.toml"), manifest)?;
        std::fs::write(dir.path().join("runtime-config.toml"), runtime_config)?;
        Ok(Self { dir })
    }

    /// The manifest path.
    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("spin.toml")
    }

    /// The runtime-config path.
    pub fn runtime_config(&self) -> PathBuf {
        self.dir.path().join("runtime-config.toml")
    }
}

/// A one-component app serving `wasm` on `/...`, with `tool` (trib's
/// `[component.hello.tool.trib]` table) in its manifest.
pub fn hello_app(wasm: &Path, tool: &str) -> anyhow::Result<TempApp> {
    TempApp::new(
        &format!(
            "spin_manifest_version = 2\n[application]\nname = \"bench\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = {:?}\n{tool}",
            wasm.display().to_string()
        ),
        "",
    )
}

/// The `trib up` command for `app` on `addr`.
pub fn trib_command(tools: &Tools, app: &TempApp, addr: SocketAddr, cache: &Path) -> Command {
    let mut c = Command::new(&tools.trib);
    c.arg("up")
        .arg("-f")
        .arg(app.manifest())
        .arg("--runtime-config-file")
        .arg(app.runtime_config())
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--cache-dir")
        .arg(cache)
        .env("TRIB_LOG", "warn");
    c
}

/// Starts `trib` with an admin listener.
pub fn start_trib(tools: &Tools, app: &TempApp, cache: &Path) -> anyhow::Result<Server> {
    start_trib_with_env(tools, app, cache, &[])
}

/// Starts `trib` with an admin listener and extra environment variables
/// (the OTLP settings of the traced run).
pub fn start_trib_with_env(
    tools: &Tools,
    app: &TempApp,
    cache: &Path,
    env: &[(&str, String)],
) -> anyhow::Result<Server> {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut c = trib_command(tools, app, addr, cache);
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    c.arg("--admin-listen").arg(admin.to_string());
    let mut server = start(c, addr, "/.well-known/spin/health")?;
    server.admin = Some(admin);
    Ok(server)
}

/// `wasmtime serve` for `wasm`, fresh instance per request when `fresh`.
pub fn start_wasmtime(wasmtime: &Wasmtime, wasm: &Path, fresh: bool) -> anyhow::Result<Server> {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut c = Command::new(&wasmtime.path);
    c.arg("serve").arg("--addr").arg(addr.to_string()).args([
        "-Scli",
        "-Sp3",
        "-Wcomponent-model-async",
    ]);
    if fresh {
        c.args(["--max-instance-reuse-count", "1"]);
    }
    c.arg(wasm);
    start(c, addr, "/")
}

/// The native hyper server.
pub fn start_native(tools: &Tools) -> anyhow::Result<Server> {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut c = Command::new(&tools.native);
    c.arg(addr.to_string());
    start(c, addr, "/")
}

/// A sample of the Prometheus text at `admin`: the sum and count of a
/// histogram for `component`.
pub fn histogram_sum_count(
    admin: SocketAddr,
    name: &str,
    component: &str,
) -> anyhow::Result<(f64, f64)> {
    let (_, text) = get(admin, "/metrics")?;
    let find = |suffix: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!("{name}{suffix}{{"))
                    && l.contains(&format!("component=\"{component}\""))
            })
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((find("_sum"), find("_count")))
}
