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
use trib::guest_output::{Follow, OutputSettings};
use trib::runtime_config::{RuntimeConfig, StateDir, parse_duration};
use trib::server::ConnectionSettings;
use trib::spin_apis::sqlite::StartupSql;

mod kube_cli;

/// Every request allocates a store, a resource table and HTTP plumbing and
/// frees them moments later on another thread; mimalloc's per-thread free
/// lists handle that churn better than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs Spin applications (manifest version 2) as WebAssembly components.
#[derive(Debug, Parser)]
// A flag given twice takes the last value, so wrappers can add to a
// command line.
#[command(name = "trib", version, about, args_override_self = true)]
struct Cli {
    /// How trib writes its own log lines: `text`, or `json` (one object per
    /// line, with an access line per request).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "TRIB_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormatArg,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the application: serve its HTTP triggers, subscribe its Redis
    /// triggers.
    Up(Box<UpArgs>),
    /// Run the application and rebuild and reload it as its files change,
    /// without dropping the listener or a request in flight (Spin's
    /// `spin watch`). Flags after `--` are `trib up`'s.
    Watch(Box<WatchArgs>),
    /// Run each component's `[component.X.build]` command.
    Build(BuildArgs),
    /// Work with transform components (`tributary:pipeline/transformer`).
    #[command(subcommand)]
    Transform(TransformCommand),
    /// Push and pull apps as OCI artifacts in Spin's format.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Deploy to Kubernetes with SpinKube.
    #[command(subcommand)]
    Kube(kube_cli::KubeCommand),
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Package the app as `spin registry push` does and push it.
    Push(RegistryPushArgs),
    /// Pull an app (trib's or Spin's) into the cache, checking every digest.
    Pull(RegistryPullArgs),
    /// Save credentials for a registry.
    Login(RegistryLoginArgs),
}

#[derive(Debug, Args)]
struct RegistryOptions {
    /// Use plain HTTP, not HTTPS (a registry on loopback, say).
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Where pulled packages are kept (default: ~/.cache/tributary/registry).
    #[arg(long, env = "TRIB_REGISTRY_CACHE")]
    registry_cache_dir: Option<PathBuf>,
}

impl RegistryOptions {
    fn connection(&self) -> trib::oci::registry::Connection {
        trib::oci::registry::Connection {
            insecure: self.insecure,
        }
    }

    fn store(&self) -> anyhow::Result<trib::oci::store::Store> {
        let dir = match &self.registry_cache_dir {
            Some(dir) => dir.clone(),
            None => CompileCache::tributary_dir()
                .map(|d| d.join("registry"))
                .context("no cache directory: set HOME, XDG_CACHE_HOME or --registry-cache-dir")?,
        };
        Ok(trib::oci::store::Store::new(dir))
    }

    /// Pulls `reference` and returns the unpacked manifest.
    fn pull(&self, reference: &str) -> anyhow::Result<PathBuf> {
        let store = self.store()?;
        let pulled = block_on(trib::oci::registry::pull(
            reference,
            &store,
            &self.connection(),
        ))??;
        eprintln!("Pulled {reference}@{}", pulled.digest);
        Ok(pulled.manifest)
    }
}

#[derive(Debug, Args)]
struct RegistryPushArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Where to push: REGISTRY/REPOSITORY[:TAG].
    reference: String,
    /// A manifest annotation KEY=VALUE (repeatable; wins over the ones
    /// made from `[application]`).
    #[arg(long = "annotation", value_parser = parse_key_value)]
    annotations: Vec<(String, String)>,
    #[command(flatten)]
    registry: RegistryOptions,
}

#[derive(Debug, Args)]
struct RegistryPullArgs {
    /// What to pull: REGISTRY/REPOSITORY[:TAG][@DIGEST].
    reference: String,
    #[command(flatten)]
    registry: RegistryOptions,
}

#[derive(Debug, Args)]
struct RegistryLoginArgs {
    /// The registry, `host[:port]`.
    server: String,
    /// The user name.
    #[arg(short = 'u', long)]
    username: String,
    /// Read the password from standard input (keeps it out of the shell's
    /// history and the process list).
    #[arg(long)]
    password_stdin: bool,
    /// The password (prefer --password-stdin).
    #[arg(
        short = 'p',
        long,
        env = "TRIB_REGISTRY_PASSWORD",
        hide_env_values = true
    )]
    password: Option<Password>,
    /// Check the credentials over plain HTTP (a registry on loopback).
    #[arg(short = 'k', long)]
    insecure: bool,
}

/// A password from the command line; `Debug` never shows it.
#[derive(Clone)]
struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl std::str::FromStr for Password {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Runs one future on a small runtime of its own (registry commands, and
/// the pull before `trib up` starts its server).
fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

fn registry(command: RegistryCommand) -> anyhow::Result<()> {
    match command {
        RegistryCommand::Push(args) => {
            let app = args.manifest.load()?;
            let package =
                trib::oci::package::assemble(&app, CompileCache::default_dir().as_deref())?;
            let mut annotations = annotations_for(&package.lock);
            annotations.extend(args.annotations.iter().cloned());
            let pushed = block_on(trib::oci::registry::push(
                &package,
                &args.reference,
                annotations,
                &args.registry.connection(),
            ))??;
            eprintln!(
                "Pushed {}@{} ({} layers)",
                args.reference, pushed.digest, pushed.layers
            );
            println!("{}", pushed.digest);
            Ok(())
        }
        RegistryCommand::Pull(args) => {
            let manifest = args.registry.pull(&args.reference)?;
            println!("{}", manifest.display());
            Ok(())
        }
        RegistryCommand::Login(args) => {
            let password = match (args.password_stdin, args.password) {
                (true, _) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("cannot read the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
                (false, Some(Password(p))) => p,
                (false, None) => anyhow::bail!("give the password with --password-stdin (or -p)"),
            };
            block_on(trib::oci::registry::check_login(
                &args.server,
                &args.username,
                &password,
                &trib::oci::registry::Connection {
                    insecure: args.insecure,
                },
            ))??;
            let file = trib::oci::auth::trib_auth_file()
                .context("no configuration directory: set HOME or XDG_CONFIG_HOME")?;
            trib::oci::auth::save(&file, &args.server, &args.username, &password)?;
            eprintln!(
                "Saved credentials for {} in {}",
                args.server,
                file.display()
            );
            Ok(())
        }
    }
}

/// The annotations Spin puts on a package, from `[application]`.
fn annotations_for(
    lock: &trib::oci::locked::LockedApp,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let text = |key: &str| {
        lock.metadata
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    out.insert(
        "org.opencontainers.image.created".into(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    if let Some(name) = text("name") {
        out.insert("org.opencontainers.image.title".into(), name);
    }
    if let Some(version) = text("version") {
        out.insert("org.opencontainers.image.version".into(), version);
    }
    if let Some(description) = text("description") {
        out.insert("org.opencontainers.image.description".into(), description);
    }
    if let Some(authors) = lock.metadata.get("authors").and_then(|v| v.as_array()) {
        let authors: Vec<&str> = authors.iter().filter_map(|a| a.as_str()).collect();
        if !authors.is_empty() {
            out.insert(
                "org.opencontainers.image.authors".into(),
                authors.join(", "),
            );
        }
    }
    out
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
    /// The manifest, a directory holding `spin.toml`, or a `.wasm` file
    /// (run as one component serving every path). Default: `spin.toml`
    /// here or in the nearest parent directory.
    #[arg(short = 'f', long = "from")]
    from: Option<PathBuf>,
    /// An app in an OCI registry (REGISTRY/REPOSITORY[:TAG][@DIGEST]),
    /// as Spin's flag; `--from` takes one too when it is no path on disk.
    #[arg(long, conflicts_with = "from")]
    from_registry: Option<String>,
}

/// What `--from` names.
enum AppSource {
    Manifest(PathBuf),
    Wasm(PathBuf),
    /// An OCI reference (not a path on disk).
    Registry(String),
}

impl ManifestArg {
    fn source(&self) -> anyhow::Result<AppSource> {
        if let Some(reference) = &self.from_registry {
            return Ok(AppSource::Registry(reference.clone()));
        }
        let Some(from) = &self.from else {
            let here = std::env::current_dir().context("cannot read the working directory")?;
            let found = trib::cli_values::find_manifest(&here).with_context(
                || "no spin.toml here or in a parent directory: run `trib up --from <APPLICATION>`",
            )?;
            if found.parent() != Some(here.as_path()) {
                eprintln!("Using {} from a parent directory", found.display());
            }
            return Ok(AppSource::Manifest(found));
        };
        let text = from.to_string_lossy();
        Ok(
            if !from.exists() && trib::oci::looks_like_reference(&text) {
                AppSource::Registry(text.into_owned())
            } else if from.is_dir() {
                AppSource::Manifest(from.join("spin.toml"))
            } else if from.extension().is_some_and(|e| e == "wasm") {
                AppSource::Wasm(from.clone())
            } else {
                AppSource::Manifest(from.clone())
            },
        )
    }

    /// The manifest path (`trib build` needs one).
    fn path(&self) -> anyhow::Result<PathBuf> {
        self.source()?.path()
    }

    /// The app (a registry reference is refused: there is nothing local).
    fn load(&self) -> anyhow::Result<trib::manifest::App> {
        self.source()?.load(None)
    }
}

impl AppSource {
    /// The manifest path (`trib build` and `--build` need one).
    fn path(&self) -> anyhow::Result<PathBuf> {
        match self {
            AppSource::Manifest(path) => Ok(path.clone()),
            AppSource::Wasm(path) => anyhow::bail!(
                "{} is a Wasm file, not a manifest: there is nothing to build",
                path.display()
            ),
            AppSource::Registry(reference) => anyhow::bail!(
                "{reference} is a registry reference, not a manifest: there is nothing to build"
            ),
        }
    }

    /// The app; a registry reference is pulled first with `registry`'s
    /// settings (`None`: registry references are refused).
    fn load(&self, registry: Option<&RegistryOptions>) -> anyhow::Result<trib::manifest::App> {
        Ok(match self {
            AppSource::Manifest(path) => trib::manifest::load(path)?,
            AppSource::Registry(reference) => {
                let Some(registry) = registry else {
                    anyhow::bail!("{reference} is a registry reference: push a local app instead");
                };
                trib::manifest::load(&registry.pull(reference)?)?
            }
            AppSource::Wasm(wasm) => {
                if !wasm.is_file() {
                    anyhow::bail!("{}: no such Wasm file", wasm.display());
                }
                let here = std::env::current_dir().context("cannot read the working directory")?;
                let (text, path) = trib::cli_values::single_wasm_manifest(wasm, &here);
                trib::manifest::parse(&path, &text)?
            }
        })
    }
}

#[derive(Debug, Args)]
struct UpArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    #[command(flatten)]
    registry: RegistryOptions,
    /// Address to listen on; port 0 picks a free port (the real address is
    /// printed).
    #[arg(long, env = "SPIN_HTTP_LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// If the `--listen` port is taken, try the next ones (as Spin does).
    #[arg(long)]
    find_free_port: bool,
    /// Serve HTTPS with this certificate chain (PEM; needs `--tls-key`).
    #[arg(long, env = "SPIN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "SPIN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Pass an environment variable (KEY=VALUE) to every component.
    #[arg(short = 'e', long = "env", value_parser = trib::cli_values::parse_pair)]
    env: Vec<(String, String)>,
    /// Set KEY=VALUE in the default key-value store before serving
    /// (repeatable; existing values are overwritten).
    #[arg(long = "key-value", value_parser = trib::cli_values::parse_pair)]
    key_values: Vec<(String, String)>,
    /// Application variable values: `KEY=VALUE`, `KEY=@FILE` or
    /// `@FILE.json` / `@FILE.toml` (repeatable; the last one wins, and all
    /// win over other providers).
    #[arg(long = "variable", value_parser = trib::cli_values::VariableSource::parse,
        value_name = "KEY=VALUE | KEY=@FILE | @FILE.json | @FILE.toml")]
    variables: Vec<trib::cli_values::VariableSource>,
    /// Directory for the components' stdout and stderr (`ID_stdout.txt`,
    /// `ID_stderr.txt`); default `logs` in the state directory; `""` for
    /// no log files.
    #[arg(short = 'L', long = "log-dir", env = "SPIN_LOG_DIR")]
    log_dir: Option<String>,
    /// Empty the log files before starting.
    #[arg(long)]
    truncate_logs: bool,
    /// Show only these components' output on the terminal (`all` for
    /// every one, the default); repeatable.
    #[arg(long = "follow", value_name = "ID")]
    follow: Vec<String>,
    /// Show no component output on the terminal.
    #[arg(short = 'q', long = "quiet", conflicts_with = "follow")]
    quiet: bool,
    /// The application state directory (default key-value store and
    /// SQLite database, logs); default `.spin` beside the manifest; `""`
    /// for none (stores in memory, no log files).
    #[arg(long)]
    state_dir: Option<String>,
    /// Directory for compiled components (default: ~/.cache/tributary).
    #[arg(long, env = "TRIB_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component at startup instead of using the cache.
    #[arg(long, visible_alias = "disable-cache")]
    no_cache: bool,
    /// Allocate instances on demand instead of from a pre-reserved pool.
    #[arg(long, visible_alias = "disable-pooling")]
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
    /// Spin's runtime config (key-value stores, SQLite databases, ...).
    #[arg(long, env = "RUNTIME_CONFIG_FILE")]
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
    /// Linear-memory limit per instance in bytes (Spin's flag; wins over
    /// `--max-instance-memory-mib`).
    #[arg(long, env = "SPIN_MAX_INSTANCE_MEMORY")]
    max_instance_memory: Option<usize>,
    /// Requests one instance serves before it is dropped, for every
    /// component (1: a fresh instance per request).
    #[arg(long)]
    max_instance_reuse_count: Option<usize>,
    /// Requests one WASIp3 instance serves at the same time.
    #[arg(long)]
    max_instance_concurrent_reuse_count: Option<usize>,
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
struct WatchArgs {
    /// Milliseconds without a further change before rebuilding (Spin's
    /// `--debounce`).
    #[arg(short = 'd', long, default_value_t = 100)]
    debounce: u64,
    /// Clear the screen before each rebuild.
    #[arg(short = 'c', long)]
    clear: bool,
    /// Never build: reload when the components' Wasm files, their `files`
    /// or the manifest change.
    #[arg(long)]
    skip_build: bool,
    #[command(flatten)]
    up: UpArgs,
}

/// `trib watch`'s own settings, handed to [`up`].
struct WatchFlags {
    debounce: Duration,
    clear: bool,
    skip_build: bool,
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

/// `trib watch ... -- UP_FLAGS`: `up`'s flags are `watch`'s own (it has
/// no positional arguments), so the first `--` after `watch` is dropped.
fn without_watch_separator(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(watch) = args.iter().position(|a| a == "watch") else {
        return args;
    };
    if args[..watch]
        .iter()
        .skip(1)
        .any(|a| !a.to_string_lossy().starts_with('-'))
    {
        return args;
    }
    let mut args = args;
    if let Some(sep) = args.iter().skip(watch).position(|a| a == "--") {
        args.remove(watch + sep);
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(without_watch_separator(std::env::args_os().collect()));
    init_logging(&cli);
    let result = match cli.command {
        Command::Up(args) => up(*args, None),
        Command::Watch(args) => watch(*args),
        Command::Build(args) => args
            .manifest
            .path()
            .and_then(|path| build(&path, &args.components))
            .map(|_| ()),
        Command::Transform(TransformCommand::Run(args)) => transform_run(&args),
        Command::Registry(command) => registry(command),
        Command::Kube(command) => kube_cli::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs on stderr; host calls are timed when something reads the times
/// (the metrics listener, or trace export).
fn init_logging(cli: &Cli) {
    let format = match cli.log_format {
        LogFormatArg::Text => trib::telemetry::logs::LogFormat::Text,
        LogFormatArg::Json => trib::telemetry::logs::LogFormat::Json,
    };
    let metrics = match &cli.command {
        Command::Up(args) => args.admin_listen.is_some(),
        Command::Watch(args) => args.up.admin_listen.is_some(),
        _ => false,
    };
    let exporting = matches!(
        trib::telemetry::export::configured(|name| std::env::var(name).ok()),
        Ok(Some(_))
    );
    trib::telemetry::logs::init(format, metrics || exporting);
}

fn build(manifest: &Path, components: &[String]) -> anyhow::Result<usize> {
    let app = trib::manifest::load(manifest)?;
    let built = trib::build_cmd::build(&app, components)?;
    eprintln!("Finished building {built} component(s).");
    Ok(built)
}

/// `trib watch`: builds the app (unless `--skip-build`), then serves it as
/// `trib up` does while [`trib::watch::run`] rebuilds and reloads it.
fn watch(mut args: WatchArgs) -> anyhow::Result<()> {
    let manifest = args.up.manifest.source()?.path().context(
        "trib watch needs a manifest on disk (a spin.toml, or the directory holding one)",
    )?;
    // Absolute and without symlinks, as the watcher reports paths.
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    if !args.skip_build {
        // A failed first build is printed; what was built before serves.
        if let Err(e) = build(&manifest, &[]) {
            eprintln!("Error: {e:#}");
            eprintln!("Build failed; serving what was built before");
        }
    }
    args.up.manifest.from = Some(manifest);
    args.up.build = false;
    let flags = WatchFlags {
        debounce: Duration::from_millis(args.debounce),
        clear: args.clear,
        skip_build: args.skip_build,
    };
    up(args.up, Some(flags))
}

fn up(args: UpArgs, watch: Option<WatchFlags>) -> anyhow::Result<()> {
    // Resolved once: finding the manifest may print where it was found.
    let source = args.manifest.source()?;
    if args.build {
        build(&source.path()?, &[])?;
    }
    let mut app = source.load(Some(&args.registry))?;
    let env = args.env.clone();
    // Applied again to every manifest `trib watch` reads.
    let adjust: trib::watch::AdjustApp =
        std::sync::Arc::new(move |app: &mut trib::manifest::App| {
            for component in app.components.values_mut() {
                component.environment.extend(env.iter().cloned());
            }
        });
    adjust(&mut app);
    let mut runtime_config = match &args.runtime_config_file {
        Some(path) => trib::runtime_config::load(path, &app)?,
        None => RuntimeConfig::default(),
    };
    if let Some(dir) = &args.state_dir {
        runtime_config.state_dir = StateDir::from_flag(dir);
    } else if matches!(source, AppSource::Registry(_)) {
        // The unpacked app lives in the content cache, which stays as
        // pulled: state goes where `trib up` runs.
        let here = std::env::current_dir().context("cannot read the working directory")?;
        runtime_config.state_dir = StateDir::At(here.join(".spin"));
    }
    runtime_config.reuse = (
        args.max_instance_reuse_count,
        args.max_instance_concurrent_reuse_count,
    );
    let output = OutputSettings {
        // The flag, then the runtime config's `log_dir`, then the state
        // directory's `logs`.
        log_dir: match (&args.log_dir, &runtime_config.log_dir) {
            (Some(dir), _) if dir.is_empty() => None,
            (Some(dir), _) => Some(PathBuf::from(dir)),
            (None, Some(dir)) => dir.clone(),
            (None, None) => runtime_config.state_dir(&app).map(|dir| dir.join("logs")),
        },
        truncate: args.truncate_logs,
        follow: Follow::from_flags(&args.follow, args.quiet),
    };
    // Said once the app has loaded, so a refused app prints one line.
    let logging_to = output.log_dir.as_ref().map(|dir| dir.join(""));
    let cli_variables = trib::cli_values::variable_values(&args.variables)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(trib::tls::server_config(cert, key)?),
        _ => None,
    };
    let providers = trib::variables::Providers::from_env(args.variables_file.as_deref())?
        .with_cli_values(cli_variables)
        .with_runtime_config(&runtime_config.variables_providers, &app.root)?;
    let settings = RuntimeSettings {
        engine: EngineSettings {
            pooling: !args.no_pooling,
            max_instances: args.max_instances,
            max_instance_memory: args
                .max_instance_memory
                .unwrap_or(args.max_instance_memory_mib << 20),
        },
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(CompileCache::default_dir)
        },
        request_timeout: (!args.request_timeout.is_zero()).then_some(args.request_timeout),
        queue: QueueSettings {
            max_queued: args.max_queued,
            timeout: args.queue_timeout,
        },
        max_request_body: args.max_request_body,
        runtime_config,
        providers,
        sqlite_statements: args.sqlite.clone(),
        output,
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
        tls,
    };
    // What reloads need: the manifest as read, and settings that neither
    // run `--sqlite` statements nor truncate logs again.
    let watch = watch.map(|flags| {
        let mut settings = settings.clone();
        settings.sqlite_statements.clear();
        settings.output.truncate = false;
        trib::watch::WatchOptions {
            app: app.clone(),
            debounce: flags.debounce,
            clear: flags.clear,
            skip_build: flags.skip_build,
            settings,
            adjust,
            on_manifest: None,
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(async move {
        // Export (when the OTEL_* variables ask for it) runs on this
        // runtime, and sends what is buffered before the process ends.
        let exporting = trib::telemetry::export::init_from_env()?;
        let served = serve(args, app, settings, metrics, watch, connections, logging_to).await;
        if let Some(exporting) = exporting {
            exporting.shutdown().await;
        }
        served
    });
    // Whatever is still running (a blocking SQLite call, say) gets a moment,
    // not a veto over the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    served
}

/// Serves the app until a signal stops it (with `watch`, reloading it as
/// its sources change).
async fn serve(
    args: UpArgs,
    app: trib::manifest::App,
    settings: RuntimeSettings,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    watch: Option<trib::watch::WatchOptions>,
    connections: ConnectionSettings,
    logging_to: Option<PathBuf>,
) -> anyhow::Result<()> {
    let https = connections.tls.is_some();
    {
        if let (Some(addr), Some(handle)) = (args.admin_listen, metrics) {
            let bound = trib::metrics::serve_admin(addr, handle)
                .await
                .with_context(|| format!("cannot listen on admin address {addr}"))?;
            println!("Metrics at http://{bound}/metrics");
        }
        let loaded = trib::app::load(app, &settings)?.into_shared();
        if let Some(dir) = &logging_to {
            eprintln!("Logging component stdio to {}", dir.display());
        }
        loaded.set_default_key_values(&args.key_values).await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: no new connections; finishing in-flight requests");
            let _ = stop_tx.send(true);
        });
        // Redis triggers run beside the HTTP listener, which is only
        // opened when there are HTTP triggers.
        let redis = (!loaded.redis_triggers().is_empty()).then(|| {
            print_channels(&loaded);
            tokio::spawn(trib::redis_trigger::run(loaded.clone(), stop_rx.clone()))
        });
        // So do cron triggers.
        let cron = (!loaded.cron_triggers().is_empty()).then(|| {
            print_schedules(&loaded);
            tokio::spawn(trib::cron_trigger::run(loaded.clone(), stop_rx.clone()))
        });
        let served = if loaded.has_http_triggers() {
            let listener = bind(args.listen, args.find_free_port).await?;
            let addr = listener.local_addr()?;
            let scheme = if https { "https" } else { "http" };
            print_routes(&loaded, addr, scheme);
            let live = std::sync::Arc::new(trib::live::LiveApp::new(loaded));
            let watcher = watch.map(|mut options| {
                options.on_manifest =
                    Some(std::sync::Arc::new(move |app: &trib::app::LoadedApp| {
                        print_routes(app, addr, scheme);
                    }));
                let (live, stop) = (live.clone(), stop_rx.clone());
                tokio::spawn(async move {
                    if let Err(e) = trib::watch::run(live, options, stop).await {
                        eprintln!("Error: {e}; not watching for changes");
                    }
                })
            });
            let served = trib::server::serve_live(live, listener, stop_rx, connections)
                .await
                .context("server failed");
            if let Some(watcher) = watcher {
                watcher.abort();
            }
            served
        } else {
            if watch.is_some() {
                eprintln!("The app has no HTTP triggers: nothing to reload; not watching");
            }
            let mut stop = stop_rx;
            let _ = stop.wait_for(|stop| *stop).await;
            Ok(())
        };
        if let Some(redis) = redis
            && tokio::time::timeout(args.shutdown_grace, redis)
                .await
                .is_err()
        {
            tracing::warn!("Redis messages still running after the grace period: stopped");
        }
        if let Some(cron) = cron
            && tokio::time::timeout(args.shutdown_grace, cron)
                .await
                .is_err()
        {
            tracing::warn!("cron runs still going after the grace period: stopped");
        }
        served
    }
}

/// Ports `--find-free-port` tries after the one asked for.
const FREE_PORT_TRIES: u16 = 100;

/// Binds `addr`; with `find_free_port`, the next free port if it is taken.
async fn bind(addr: SocketAddr, find_free_port: bool) -> anyhow::Result<tokio::net::TcpListener> {
    let tries = if find_free_port && addr.port() != 0 {
        FREE_PORT_TRIES
    } else {
        1
    };
    let mut last = None;
    for offset in 0..tries {
        let Some(port) = addr.port().checked_add(offset) else {
            break;
        };
        let candidate = SocketAddr::new(addr.ip(), port);
        match tokio::net::TcpListener::bind(candidate).await {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && offset + 1 < tries => {
                last = Some(e);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot listen on {candidate}")),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no free port"), anyhow::Error::from))
        .with_context(|| format!("no free port from {addr} on"))
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

/// Prints the Redis channels subscribed to, as `spin up` lists them.
fn print_channels(app: &trib::app::LoadedApp) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Active Channels:");
    for (channel, components) in app.redis_triggers().channels() {
        let _ = writeln!(out, "  {channel}: [{}]", components.join(","));
    }
    let _ = out.flush();
}

/// Prints the cron schedules, one `component: expression` a line.
fn print_schedules(app: &trib::app::LoadedApp) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Cron Schedules:");
    for (component, expression) in app.cron_triggers().schedules() {
        let _ = writeln!(out, "  {component}: {expression}");
    }
    let _ = out.flush();
}

/// Prints what `spin up` prints, so scripts and people see the same thing.
fn print_routes(app: &trib::app::LoadedApp, addr: SocketAddr, scheme: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Serving {scheme}://{addr}");
    let _ = writeln!(out, "Available Routes:");
    for route in app.router().routes() {
        let _ = writeln!(out, "  {}: {scheme}://{addr}{route}", route.component());
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
