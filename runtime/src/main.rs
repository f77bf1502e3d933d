//! `trib`: the command-line front end of the Tributary host.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use trib::admission::QueueSettings;
use trib::app::{DEFAULT_MAX_REQUEST_BODY, RuntimeSettings};
use trib::engine::EngineSettings;
use trib::engine::compile_cache::CompileCache;
use trib::runtime_config::{RuntimeConfig, parse_duration};
use trib::server::ConnectionSettings;
use trib::spin_apis::sqlite::StartupSql;

/// Every request allocates a store, a resource table and HTTP plumbing and
/// frees them moments later on another thread; mimalloc's per-thread free
/// lists handle that churn better than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs Spin applications (manifest version 2) as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "trib", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the application's HTTP triggers.
    Up(Box<UpArgs>),
    /// Run each component's `[component.X.build]` command.
    Build(BuildArgs),
    /// Work with transform components (`tributary:pipeline/transformer`).
    #[command(subcommand)]
    Transform(TransformCommand),
}

#[derive(Debug, Subcommand)]
enum TransformCommand {
    /// Run one transform over a file of events and print what comes out.
    Run(TransformRunArgs),
}

#[derive(Debug, Args)]
struct TransformRunArgs {
    /// The transform component (`.wasm`).
    component: PathBuf,
    /// Events: JSON lines or a JSON array, as WIT records or Segment messages.
    #[arg(long)]
    events: PathBuf,
    /// The stage's settings as a JSON object, e.g. '{"paths": "email"}'.
    #[arg(long, default_value = "{}")]
    settings: String,
}

#[derive(Debug, Args)]
struct ManifestArg {
    /// The manifest, or a directory holding `spin.toml`.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    from: PathBuf,
}

impl ManifestArg {
    fn path(&self) -> PathBuf {
        if self.from.is_dir() {
            self.from.join("spin.toml")
        } else {
            self.from.clone()
        }
    }
}

#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Address to listen on; port 0 picks a free port (the real address is
    /// printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Directory for compiled components (default: ~/.cache/tributary).
    #[arg(long, env = "TRIB_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component at startup instead of using the cache.
    #[arg(long)]
    no_cache: bool,
    /// Allocate instances on demand instead of from a pre-reserved pool.
    #[arg(long)]
    no_pooling: bool,
    /// Requests in flight at once across all components, each holding one
    /// instance from the pool; more wait in the queue.
    #[arg(long, default_value_t = 1000)]
    max_instances: u32,
    /// Requests that may wait for capacity at once; past this, 503.
    #[arg(long, default_value_t = 1024)]
    max_queued: usize,
    /// How long a request may wait for capacity before a 503 with
    /// Retry-After, e.g. `5s`.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    queue_timeout: Duration,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_BODY)]
    max_request_body: u64,
    /// Host settings that do not belong in spin.toml (per-component scaling).
    #[arg(long)]
    runtime_config_file: Option<PathBuf>,
    /// SQL to run before serving, as Spin's `--sqlite`: a statement for the
    /// `default` database, or `@file.sql` / `@file.sql:label` (repeatable).
    #[arg(long = "sqlite", value_parser = parse_sqlite_arg)]
    sqlite: Vec<StartupSql>,
    /// A `.env`-style file of variable values (`NAME=value` lines); they win
    /// over `SPIN_VARIABLE_NAME` environment variables.
    #[arg(long)]
    variables_file: Option<PathBuf>,
    /// Serve Prometheus metrics on this address at /metrics (off unless
    /// given; keep it off the app's public port).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Linear-memory limit per instance, in MiB.
    #[arg(long, default_value_t = 256)]
    max_instance_memory_mib: usize,
    /// Wall-clock limit for a component to produce its response (and for
    /// an instance's work after it), e.g. `30s` or `500ms`; `0` for none.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    request_timeout: Duration,
    /// How long to wait for in-flight requests on shutdown; then running
    /// instances are stopped.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    shutdown_grace: Duration,
    /// Time a client has to send a request's head once the connection is
    /// ready for one (also how long an HTTP/1 keep-alive connection waits
    /// for its next request).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    header_read_timeout: Duration,
    /// A connection that starts no request for this long is closed.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    idle_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Build the app (`trib build`) before serving it.
    #[arg(long)]
    build: bool,
}

#[derive(Debug, Args)]
struct BuildArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Build only these components (repeatable).
    #[arg(short = 'c', long = "component")]
    components: Vec<String>,
}

fn transform_run(args: &TransformRunArgs) -> anyhow::Result<()> {
    let out = trib::transform_cmd::run(&args.component, &args.events, &args.settings)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&out).context("printing the result")?
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Up(args) => up(*args),
        Command::Build(args) => build(&args.manifest.path(), &args.components).map(|_| ()),
        Command::Transform(TransformCommand::Run(args)) => transform_run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRIB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn build(manifest: &Path, components: &[String]) -> anyhow::Result<usize> {
    let app = trib::manifest::load(manifest)?;
    let built = trib::build_cmd::build(&app, components)?;
    eprintln!("Finished building {built} component(s).");
    Ok(built)
}

fn up(args: UpArgs) -> anyhow::Result<()> {
    let manifest = args.manifest.path();
    if args.build {
        build(&manifest, &[])?;
    }
    let app = trib::manifest::load(&manifest)?;
    let runtime_config = match &args.runtime_config_file {
        Some(path) => trib::runtime_config::load(path, &app)?,
        None => RuntimeConfig::default(),
    };
    let settings = RuntimeSettings {
        engine: EngineSettings {
            pooling: !args.no_pooling,
            max_instances: args.max_instances,
            max_instance_memory: args.max_instance_memory_mib << 20,
        },
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.or_else(CompileCache::default_dir)
        },
        request_timeout: (!args.request_timeout.is_zero()).then_some(args.request_timeout),
        queue: QueueSettings {
            max_queued: args.max_queued,
            timeout: args.queue_timeout,
        },
        max_request_body: args.max_request_body,
        runtime_config,
        providers: trib::variables::Providers::from_env(args.variables_file.as_deref())?,
        sqlite_statements: args.sqlite.clone(),
    };
    let metrics = match args.admin_listen {
        Some(_) => Some(trib::metrics::install()?),
        None => None,
    };
    let connections = ConnectionSettings {
        shutdown_grace: args.shutdown_grace,
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async move {
        if let (Some(addr), Some(handle)) = (args.admin_listen, metrics) {
            let bound = trib::metrics::serve_admin(addr, handle)
                .await
                .with_context(|| format!("cannot listen on admin address {addr}"))?;
            println!("Metrics at http://{bound}/metrics");
        }
        let loaded = trib::app::load(app, &settings)?.into_shared();
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        print_routes(&loaded, addr);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: no new connections; finishing in-flight requests");
            let _ = stop_tx.send(true);
        });
        trib::server::serve(loaded, listener, stop_rx, connections)
            .await
            .context("server failed")
    });
    // Whatever is still running (a blocking SQLite call, say) gets a moment,
    // not a veto over the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    served
}

/// Reads one `--sqlite` argument: `@file.sql[:label]` is a file of
/// statements for `label` (default `default`), anything else one statement
/// for `default`.
fn parse_sqlite_arg(spec: &str) -> Result<StartupSql, String> {
    let (sql, label) = match spec.strip_prefix('@') {
        Some(file) => {
            let (file, label) = match file.rsplit_once(':') {
                Some((f, l)) if !l.is_empty() && !l.contains('/') => (f, l),
                _ => (file, "default"),
            };
            let sql = std::fs::read_to_string(file.trim())
                .map_err(|e| format!("cannot read {}: {e}", file.trim()))?;
            (sql, label.trim())
        }
        None => (spec.to_owned(), "default"),
    };
    Ok(StartupSql {
        label: label.to_owned(),
        sql,
        origin: spec.to_owned(),
    })
}

/// Prints what `spin up` prints, so scripts and people see the same thing.
fn print_routes(app: &trib::app::LoadedApp, addr: SocketAddr) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Serving http://{addr}");
    let _ = writeln!(out, "Available Routes:");
    for route in app.router().routes() {
        let _ = writeln!(out, "  {}: http://{addr}{route}", route.component());
    }
    let _ = out.flush();
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
