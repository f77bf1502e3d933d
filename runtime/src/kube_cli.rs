//! `trib kube ...`: flags for SpinKube, turned into calls of
//! [`trib::kube_scaffold`]. Kept out of `main.rs` so that file only names
//! the subcommand.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use trib::kube_scaffold::{Autoscaler, RuntimeConfigFile, ScaffoldOptions, SecretText, defaults};

/// `trib kube`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum KubeCommand {
    /// Print (or write with -o) a SpinKube `SpinApp` manifest for an OCI
    /// image, as `spin kube scaffold` does.
    Scaffold(Box<ScaffoldArgs>),
}

/// `trib kube scaffold`'s flags: those of Spin's kube plugin, with its
/// short names and defaults, plus `--secret-variable` and `--name`.
#[derive(Debug, Args)]
pub struct ScaffoldArgs {
    /// The app's OCI image reference, e.g. ghcr.io/OWNER/APP:TAG.
    #[arg(short = 'f', long)]
    from: String,
    /// The SpinApp's name (default: the image's last path component).
    #[arg(long)]
    name: Option<String>,
    /// Replicas; with --autoscaler, the minimum replica count.
    #[arg(short = 'r', long, default_value_t = defaults::REPLICAS, allow_negative_numbers = true)]
    replicas: i32,
    /// The maximum replica count (needs --autoscaler).
    #[arg(long, default_value_t = defaults::MAX_REPLICAS, allow_negative_numbers = true,
        requires = "autoscaler")]
    max_replicas: i32,
    /// Scale with a Kubernetes HorizontalPodAutoscaler or a KEDA
    /// ScaledObject (needs --cpu-limit and --memory-limit).
    #[arg(long, value_enum)]
    autoscaler: Option<Autoscaler>,
    /// The CPU utilization percentage the autoscaler keeps across pods.
    #[arg(long, default_value_t = defaults::TARGET_CPU_UTILIZATION,
        allow_negative_numbers = true, requires = "autoscaler")]
    autoscaler_target_cpu_utilization: i32,
    /// The memory utilization percentage the autoscaler keeps across pods.
    #[arg(long, default_value_t = defaults::TARGET_MEMORY_UTILIZATION,
        allow_negative_numbers = true, requires = "autoscaler")]
    autoscaler_target_memory_utilization: i32,
    /// The SpinAppExecutor that runs the app.
    #[arg(long, default_value = defaults::EXECUTOR)]
    executor: String,
    /// The most CPU a replica may use, e.g. 100m.
    #[arg(long)]
    cpu_limit: Option<String>,
    /// The most memory a replica may use, e.g. 128Mi.
    #[arg(long)]
    memory_limit: Option<String>,
    /// The CPU a replica asks for (used to place it on a node).
    #[arg(long)]
    cpu_request: Option<String>,
    /// The memory a replica asks for (used to place it on a node).
    #[arg(long)]
    memory_request: Option<String>,
    /// An application variable NAME=VALUE, written into the SpinApp
    /// (repeatable).
    #[arg(short = 'v', long = "variable", value_name = "NAME=VALUE",
        value_parser = trib::cli_values::parse_pair)]
    variables: Vec<(String, String)>,
    /// An application variable NAME=VALUE kept in a Kubernetes Secret
    /// (APP-variables) that the SpinApp reads (repeatable).
    #[arg(long = "secret-variable", value_name = "NAME=VALUE", value_parser = secret_arg)]
    secret_variables: Vec<SecretText>,
    /// Spin's runtime config, shipped as a Secret (APP-runtime-config).
    #[arg(short = 'c', long)]
    runtime_config_file: Option<PathBuf>,
    /// A Secret in the app's namespace for pulling the image (repeatable
    /// or comma-separated).
    #[arg(short = 's', long = "image-pull-secret", value_delimiter = ',')]
    image_pull_secrets: Vec<String>,
    /// Run only this component (repeatable or comma-separated; default
    /// all).
    #[arg(long = "component", value_delimiter = ',')]
    components: Vec<String>,
    /// The service account the pods run as.
    #[arg(long)]
    service_account_name: Option<String>,
    /// Label the pods for Azure Workload Identity.
    #[arg(long)]
    azure_identity: bool,
    /// Write the manifest to this file (mode 0600: it may hold secrets)
    /// instead of printing it.
    #[arg(short = 'o', long = "out")]
    out: Option<PathBuf>,
}

/// Takes a `--secret-variable` as it is: split later, so a malformed one is
/// never echoed back by clap (it may be the secret itself).
fn secret_arg(text: &str) -> Result<SecretText, std::convert::Infallible> {
    Ok(SecretText::new(text))
}

/// Runs one `trib kube` subcommand.
pub fn run(command: KubeCommand) -> anyhow::Result<()> {
    match command {
        KubeCommand::Scaffold(args) => scaffold(*args),
    }
}

fn scaffold(args: ScaffoldArgs) -> anyhow::Result<()> {
    let mut secret_variables = Vec::with_capacity(args.secret_variables.len());
    for (i, arg) in args.secret_variables.iter().enumerate() {
        match arg.expose().split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                secret_variables.push((name.to_owned(), SecretText::new(value)));
            }
            _ => anyhow::bail!(
                "--secret-variable number {} is not NAME=VALUE (its text is not shown: it may be a secret); give it as --secret-variable NAME=VALUE",
                i + 1
            ),
        }
    }
    let runtime_config = match &args.runtime_config_file {
        Some(path) => Some(RuntimeConfigFile {
            path: path.display().to_string(),
            contents: SecretText::new(std::fs::read_to_string(path).with_context(|| {
                format!("--runtime-config-file: cannot read {}", path.display())
            })?),
        }),
        None => None,
    };
    let opts = ScaffoldOptions {
        from: args.from,
        name: args.name,
        replicas: args.replicas,
        max_replicas: args.max_replicas,
        executor: args.executor,
        cpu_limit: args.cpu_limit,
        memory_limit: args.memory_limit,
        cpu_request: args.cpu_request,
        memory_request: args.memory_request,
        autoscaler: args.autoscaler,
        target_cpu_utilization: args.autoscaler_target_cpu_utilization,
        target_memory_utilization: args.autoscaler_target_memory_utilization,
        variables: args.variables,
        secret_variables,
        runtime_config,
        image_pull_secrets: args.image_pull_secrets,
        components: args.components,
        service_account_name: args.service_account_name,
        azure_identity: args.azure_identity,
    };
    let manifest = trib::kube_scaffold::render(&opts)?;
    match &args.out {
        Some(path) => {
            write_private(path, &manifest)?;
            eprintln!("Application manifest saved to {}", path.display());
        }
        None => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(manifest.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot print the manifest")?;
        }
    }
    Ok(())
}

/// Writes `text` to `path` readable by its owner only (the plugin's 0600,
/// since the manifest may hold secrets), replacing the file whole.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // A temporary file is created 0600 and renamed over the target.
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("--out: cannot create a file in {}", dir.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("--out: cannot write {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("--out: cannot write {}", path.display()))?;
    Ok(())
}
