//! `trib kube scaffold`: a SpinKube `SpinApp` manifest for an OCI image.
//!
//! The output is what Spin's kube plugin (`spin kube scaffold`) prints for
//! the same flags, in the same document order and with the same field names
//! and defaults, so a manifest written for one deploys like the other:
//!
//! 1. the `SpinApp` (`core.spinkube.dev/v1alpha1`);
//! 2. with a runtime config, a `Secret` `NAME-runtime-config` holding it
//!    base64-encoded under `runtime-config.toml`;
//! 3. with secret variables (our addition), a `Secret` `NAME-variables`
//!    holding their values, which the `SpinApp` reads through
//!    `valueFrom.secretKeyRef`;
//! 4. with an autoscaler, a `HorizontalPodAutoscaler` (`hpa`) or a KEDA
//!    `ScaledObject` (`keda`) named `NAME-autoscaler`.
//!
//! Where the plugin writes YAML that Kubernetes would read wrongly (a
//! variable value `true` becomes a boolean, `hello world` is fine but `a: b`
//! is a map), values are quoted; plain-looking values are written as the
//! plugin writes them. The YAML is written by hand: it is a handful of fixed
//! shapes, and every scalar from the user goes through [`scalar`].

use std::fmt;
use std::fmt::Write as _;

use base64::Engine as _;

/// Spin's kube plugin's defaults, kept in one place so `--help` and the
/// renderer agree (the plugin's `scaffold.go` flag definitions).
pub mod defaults {
    /// `--replicas`: the replica count, or the autoscaler's minimum.
    pub const REPLICAS: i32 = 2;
    /// `--max-replicas`: the autoscaler's maximum.
    pub const MAX_REPLICAS: i32 = 3;
    /// `--executor`: SpinKube's containerd shim.
    pub const EXECUTOR: &str = "containerd-shim-spin";
    /// `--autoscaler-target-cpu-utilization`, percent.
    pub const TARGET_CPU_UTILIZATION: i32 = 60;
    /// `--autoscaler-target-memory-utilization`, percent.
    pub const TARGET_MEMORY_UTILIZATION: i32 = 60;
}

/// The autoscaler `--autoscaler` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Autoscaler {
    /// A Kubernetes `HorizontalPodAutoscaler` (`autoscaling/v2`).
    Hpa,
    /// A KEDA `ScaledObject` (`keda.sh/v1alpha1`).
    Keda,
}

/// A secret's text: kept out of `Debug` output so that no log line or
/// panic message can show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps a secret value.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret itself, for the one place that writes it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

/// The runtime config file to ship as a `Secret`.
#[derive(Clone)]
pub struct RuntimeConfigFile {
    /// Where it was read from (for messages only).
    pub path: String,
    /// Its contents (may hold passwords, so never printed).
    pub contents: SecretText,
}

impl fmt::Debug for RuntimeConfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeConfigFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Everything `trib kube scaffold` takes, flag by flag.
#[derive(Debug, Clone)]
pub struct ScaffoldOptions {
    /// `--from`: the OCI image reference of the app.
    pub from: String,
    /// `--name`: the `SpinApp`'s name; default the image's last path
    /// component, as the plugin derives it.
    pub name: Option<String>,
    /// `--replicas`: replicas, or the autoscaler's minimum.
    pub replicas: i32,
    /// `--max-replicas`: the autoscaler's maximum.
    pub max_replicas: i32,
    /// `--executor`: the `SpinAppExecutor` that runs the app.
    pub executor: String,
    /// `--cpu-limit`.
    pub cpu_limit: Option<String>,
    /// `--memory-limit`.
    pub memory_limit: Option<String>,
    /// `--cpu-request`.
    pub cpu_request: Option<String>,
    /// `--memory-request`.
    pub memory_request: Option<String>,
    /// `--autoscaler`.
    pub autoscaler: Option<Autoscaler>,
    /// `--autoscaler-target-cpu-utilization`, percent.
    pub target_cpu_utilization: i32,
    /// `--autoscaler-target-memory-utilization`, percent.
    pub target_memory_utilization: i32,
    /// `--variable NAME=VALUE`: plain variables.
    pub variables: Vec<(String, String)>,
    /// `--secret-variable NAME=VALUE`: variables kept in a `Secret`.
    pub secret_variables: Vec<(String, SecretText)>,
    /// `--runtime-config-file`.
    pub runtime_config: Option<RuntimeConfigFile>,
    /// `--image-pull-secret`: `Secret`s for pulling the image.
    pub image_pull_secrets: Vec<String>,
    /// `--component`: run only these components (default all).
    pub components: Vec<String>,
    /// `--service-account-name`.
    pub service_account_name: Option<String>,
    /// `--azure-identity`: label the pods for Azure Workload Identity.
    pub azure_identity: bool,
}

impl ScaffoldOptions {
    /// Options with the plugin's defaults for the image `from`.
    pub fn new(from: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            name: None,
            replicas: defaults::REPLICAS,
            max_replicas: defaults::MAX_REPLICAS,
            executor: defaults::EXECUTOR.to_owned(),
            cpu_limit: None,
            memory_limit: None,
            cpu_request: None,
            memory_request: None,
            autoscaler: None,
            target_cpu_utilization: defaults::TARGET_CPU_UTILIZATION,
            target_memory_utilization: defaults::TARGET_MEMORY_UTILIZATION,
            variables: Vec::new(),
            secret_variables: Vec::new(),
            runtime_config: None,
            image_pull_secrets: Vec::new(),
            components: Vec::new(),
            service_account_name: None,
            azure_identity: false,
        }
    }
}

/// Why no manifest was written; each message names the flag to change.
/// No variant carries a secret's value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScaffoldError {
    /// `--from` is not an image reference.
    #[error(
        "--from {reference:?} is not an OCI image reference ({reason}); give one like ghcr.io/OWNER/APP:TAG"
    )]
    InvalidReference {
        /// What was given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The app name (derived or `--name`) is no Kubernetes name.
    #[error(
        "the app name {name:?} ({origin}) is not a valid Kubernetes name: use lower-case letters, digits and '-', start with a letter, end with a letter or digit, at most 63 characters; set one with --name"
    )]
    InvalidName {
        /// The name.
        name: String,
        /// `taken from --from` or `from --name`.
        origin: &'static str,
    },
    /// A count flag is out of range.
    #[error("{flag} is {value}: it must be 0 or more")]
    NegativeCount {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: i32,
    },
    /// `--replicas` above `--max-replicas`.
    #[error(
        "--replicas ({min}) is more than --max-replicas ({max}): with --autoscaler, --replicas is the minimum replica count; raise --max-replicas or lower --replicas"
    )]
    MinAboveMax {
        /// `--replicas`.
        min: i32,
        /// `--max-replicas`.
        max: i32,
    },
    /// `--autoscaler hpa --replicas 0`.
    #[error(
        "--autoscaler hpa with --replicas 0: a HorizontalPodAutoscaler keeps at least one replica; set --replicas 1 or more, or use --autoscaler keda to scale to zero"
    )]
    HpaScaleToZero,
    /// An autoscaler without the limits it measures against.
    #[error(
        "--autoscaler {autoscaler} needs {flag}: autoscaling scales on the CPU and memory each replica is given; add {flag} (e.g. {example})"
    )]
    AutoscalerNeedsLimit {
        /// `hpa` or `keda`.
        autoscaler: &'static str,
        /// The missing flag.
        flag: &'static str,
        /// An example value.
        example: &'static str,
    },
    /// A target utilization outside 1..=100.
    #[error("{flag} is {value}: it must be a percentage from 1 to 100")]
    Utilization {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: i32,
    },
    /// A resource flag that Kubernetes would not read as a quantity.
    #[error(
        "{flag} {value:?} is not a Kubernetes quantity: give e.g. 100m or 0.5 for CPU, 128Mi or 1Gi for memory"
    )]
    InvalidQuantity {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
    },
    /// A request above its limit, which Kubernetes refuses.
    #[error(
        "{request_flag} ({request}) is more than {limit_flag} ({limit}): Kubernetes refuses a request above its limit; lower {request_flag} or raise {limit_flag}"
    )]
    RequestAboveLimit {
        /// The request flag.
        request_flag: &'static str,
        /// Its value.
        request: String,
        /// The limit flag.
        limit_flag: &'static str,
        /// Its value.
        limit: String,
    },
    /// A variable name Spin would refuse.
    #[error("{flag} {name:?}: {reason}")]
    InvalidVariableName {
        /// `--variable` or `--secret-variable`.
        flag: &'static str,
        /// The name.
        name: String,
        /// Spin's rule that it breaks.
        reason: String,
    },
    /// The same variable given twice.
    #[error(
        "variable {name:?} is given more than once (by --variable or --secret-variable): give each variable once"
    )]
    DuplicateVariable {
        /// The name.
        name: String,
    },
    /// A Kubernetes object name flag that is no valid name.
    #[error(
        "{flag} {value:?} is not a valid Kubernetes name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
    )]
    InvalidObjectName {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
    },
    /// An empty `--executor` or `--component`.
    #[error("{flag} must not be empty")]
    Empty {
        /// The flag.
        flag: &'static str,
    },
    /// The runtime config is not TOML (its text is not quoted: it may hold
    /// passwords).
    #[error(
        "--runtime-config-file {path}: not valid TOML at line {line}: {message}; fix the file (SpinKube's shim reads it as Spin's runtime config)"
    )]
    RuntimeConfigNotToml {
        /// The file.
        path: String,
        /// 1-based line of the error.
        line: usize,
        /// The parser's message (without the source line).
        message: String,
    },
}

/// Renders the manifest: multi-document YAML, ending in a newline.
pub fn render(opts: &ScaffoldOptions) -> Result<String, ScaffoldError> {
    validate(opts)?;
    let reference =
        parse_reference(&opts.from).map_err(|reason| ScaffoldError::InvalidReference {
            reference: opts.from.clone(),
            reason,
        })?;
    let (name, origin) = match &opts.name {
        Some(name) => (name.clone(), "from --name"),
        None => (reference.app_name().to_owned(), "taken from --from"),
    };
    if !is_dns1035_label(&name) {
        return Err(ScaffoldError::InvalidName { name, origin });
    }
    let variables = merged_variables(opts)?;

    let mut out = String::new();
    spin_app(&mut out, opts, &name, &variables);
    if let Some(config) = &opts.runtime_config {
        out.push_str("---\n");
        secret(
            &mut out,
            &format!("{name}-runtime-config"),
            [("runtime-config.toml", config.contents.expose())],
        );
    }
    if !opts.secret_variables.is_empty() {
        out.push_str("---\n");
        let mut entries: Vec<_> = opts
            .secret_variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        secret(&mut out, &format!("{name}-variables"), entries);
    }
    if let Some(autoscaler) = opts.autoscaler {
        out.push_str("---\n");
        match autoscaler {
            Autoscaler::Hpa => hpa(&mut out, opts, &name),
            Autoscaler::Keda => keda(&mut out, opts, &name),
        }
    }
    Ok(out)
}

/// The flags' checks, in the plugin's order, then ours.
fn validate(opts: &ScaffoldOptions) -> Result<(), ScaffoldError> {
    if opts.replicas < 0 {
        return Err(ScaffoldError::NegativeCount {
            flag: "--replicas",
            value: opts.replicas,
        });
    }
    if let Some(autoscaler) = opts.autoscaler {
        let which = match autoscaler {
            Autoscaler::Hpa => "hpa",
            Autoscaler::Keda => "keda",
        };
        if opts.max_replicas < 0 {
            return Err(ScaffoldError::NegativeCount {
                flag: "--max-replicas",
                value: opts.max_replicas,
            });
        }
        if opts.replicas > opts.max_replicas {
            return Err(ScaffoldError::MinAboveMax {
                min: opts.replicas,
                max: opts.max_replicas,
            });
        }
        // Kubernetes refuses an HPA's `minReplicas: 0` (unless a feature
        // gate is on); KEDA scales to zero.
        if autoscaler == Autoscaler::Hpa && opts.replicas == 0 {
            return Err(ScaffoldError::HpaScaleToZero);
        }
        if opts.cpu_limit.is_none() {
            return Err(ScaffoldError::AutoscalerNeedsLimit {
                autoscaler: which,
                flag: "--cpu-limit",
                example: "--cpu-limit 100m",
            });
        }
        if opts.memory_limit.is_none() {
            return Err(ScaffoldError::AutoscalerNeedsLimit {
                autoscaler: which,
                flag: "--memory-limit",
                example: "--memory-limit 128Mi",
            });
        }
        for (flag, value) in [
            (
                "--autoscaler-target-cpu-utilization",
                opts.target_cpu_utilization,
            ),
            (
                "--autoscaler-target-memory-utilization",
                opts.target_memory_utilization,
            ),
        ] {
            if !(1..=100).contains(&value) {
                return Err(ScaffoldError::Utilization { flag, value });
            }
        }
    }
    let resources = [
        ("--cpu-limit", &opts.cpu_limit),
        ("--memory-limit", &opts.memory_limit),
        ("--cpu-request", &opts.cpu_request),
        ("--memory-request", &opts.memory_request),
    ];
    let mut amounts = [None; 4];
    for (slot, (flag, value)) in amounts.iter_mut().zip(resources) {
        if let Some(value) = value {
            *slot = Some(
                quantity(value).ok_or_else(|| ScaffoldError::InvalidQuantity {
                    flag,
                    value: value.clone(),
                })?,
            );
        }
    }
    for (limit, request) in [(0, 2), (1, 3)] {
        if let (Some(l), Some(r)) = (amounts[limit], amounts[request])
            && r > l
        {
            return Err(ScaffoldError::RequestAboveLimit {
                request_flag: resources[request].0,
                request: resources[request].1.clone().unwrap_or_default(),
                limit_flag: resources[limit].0,
                limit: resources[limit].1.clone().unwrap_or_default(),
            });
        }
    }
    if opts.executor.is_empty() {
        return Err(ScaffoldError::Empty { flag: "--executor" });
    }
    if opts.components.iter().any(String::is_empty) {
        return Err(ScaffoldError::Empty {
            flag: "--component",
        });
    }
    for secret in &opts.image_pull_secrets {
        if !is_dns1123_subdomain(secret) {
            return Err(ScaffoldError::InvalidObjectName {
                flag: "--image-pull-secret",
                value: secret.clone(),
            });
        }
    }
    if let Some(account) = &opts.service_account_name
        && !is_dns1123_subdomain(account)
    {
        return Err(ScaffoldError::InvalidObjectName {
            flag: "--service-account-name",
            value: account.clone(),
        });
    }
    if let Some(config) = &opts.runtime_config
        && let Err(e) = config.contents.expose().parse::<toml::Table>()
    {
        let text = config.contents.expose();
        let line = e.span().map_or(1, |span| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        });
        return Err(ScaffoldError::RuntimeConfigNotToml {
            path: config.path.clone(),
            line,
            message: e.message().to_owned(),
        });
    }
    Ok(())
}

/// One entry of `spec.variables`.
enum Variable<'a> {
    Plain(&'a str),
    Secret,
}

/// Plain and secret variables in one list sorted by name (the plugin's
/// order for its map of plain ones), each name checked once.
fn merged_variables(opts: &ScaffoldOptions) -> Result<Vec<(&str, Variable<'_>)>, ScaffoldError> {
    let mut all: Vec<(&str, Variable<'_>)> = Vec::new();
    let plain = opts
        .variables
        .iter()
        .map(|(k, v)| ("--variable", k, Variable::Plain(v)));
    let secret = opts
        .secret_variables
        .iter()
        .map(|(k, _)| ("--secret-variable", k, Variable::Secret));
    for (flag, name, variable) in plain.chain(secret) {
        crate::variables::check_name(name).map_err(|reason| {
            ScaffoldError::InvalidVariableName {
                flag,
                name: name.clone(),
                reason,
            }
        })?;
        all.push((name, variable));
    }
    all.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(pair) = all.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ScaffoldError::DuplicateVariable {
            name: pair[0].0.to_owned(),
        });
    }
    Ok(all)
}

fn spin_app(out: &mut String, opts: &ScaffoldOptions, name: &str, variables: &[(&str, Variable)]) {
    let _ = writeln!(out, "apiVersion: core.spinkube.dev/v1alpha1");
    let _ = writeln!(out, "kind: SpinApp");
    let _ = writeln!(out, "metadata:\n  name: {name}");
    let _ = writeln!(out, "spec:");
    // The plugin always quotes the image.
    let _ = writeln!(out, "  image: {}", double_quoted(&opts.from));
    let _ = writeln!(out, "  executor: {}", scalar(&opts.executor));
    if opts.autoscaler.is_some() {
        let _ = writeln!(out, "  enableAutoscaling: true");
    } else {
        let _ = writeln!(out, "  replicas: {}", opts.replicas);
    }
    if opts.azure_identity {
        let _ = writeln!(
            out,
            "  podLabels:\n    azure.workload.identity/use: \"true\""
        );
    }
    if let Some(account) = &opts.service_account_name {
        let _ = writeln!(out, "  serviceAccountName: {}", scalar(account));
    }
    if !variables.is_empty() {
        let _ = writeln!(out, "  variables:");
        for (var, value) in variables {
            let _ = writeln!(out, "  - name: {}", scalar(var));
            match value {
                Variable::Plain(value) => {
                    let _ = writeln!(out, "    value: {}", scalar(value));
                }
                Variable::Secret => {
                    let _ = writeln!(out, "    valueFrom:\n      secretKeyRef:");
                    let _ = writeln!(out, "        name: {name}-variables");
                    let _ = writeln!(out, "        key: {}", scalar(var));
                }
            }
        }
    }
    if !opts.components.is_empty() {
        let _ = writeln!(out, "  components:");
        for component in &opts.components {
            let _ = writeln!(out, "  - {}", scalar(component));
        }
    }
    // The plugin drops requests given without a limit; here each part is
    // written when it is given.
    let limits = [("cpu", &opts.cpu_limit), ("memory", &opts.memory_limit)];
    let requests = [("cpu", &opts.cpu_request), ("memory", &opts.memory_request)];
    let any = |list: &[(&str, &Option<String>)]| list.iter().any(|(_, v)| v.is_some());
    if any(&limits) || any(&requests) {
        let _ = writeln!(out, "  resources:");
        for (section, list) in [("limits", &limits), ("requests", &requests)] {
            if any(list) {
                let _ = writeln!(out, "    {section}:");
                for (key, value) in list.iter() {
                    if let Some(value) = value {
                        let _ = writeln!(out, "      {key}: {}", scalar(value));
                    }
                }
            }
        }
    }
    if !opts.image_pull_secrets.is_empty() {
        let _ = writeln!(out, "  imagePullSecrets:");
        for secret in &opts.image_pull_secrets {
            let _ = writeln!(out, "    - name: {}", scalar(secret));
        }
    }
    if opts.runtime_config.is_some() {
        let _ = writeln!(
            out,
            "  runtimeConfig:\n    loadFromSecret: {name}-runtime-config"
        );
    }
}

/// An `Opaque` `Secret` with base64 `data`, as the plugin writes its
/// runtime config one.
fn secret<'a>(out: &mut String, name: &str, entries: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let _ = writeln!(out, "apiVersion: v1\nkind: Secret");
    let _ = writeln!(out, "metadata:\n  name: {name}");
    let _ = writeln!(out, "type: Opaque\ndata:");
    for (key, value) in entries {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        let _ = writeln!(out, "  {}: {encoded}", scalar(key));
    }
}

fn scale_target(out: &mut String, name: &str) {
    let _ = writeln!(out, "metadata:\n  name: {name}-autoscaler");
    let _ = writeln!(out, "spec:\n  scaleTargetRef:");
    let _ = writeln!(out, "    apiVersion: apps/v1\n    kind: Deployment");
    let _ = writeln!(out, "    name: {name}");
}

fn hpa(out: &mut String, opts: &ScaffoldOptions, name: &str) {
    let _ = writeln!(
        out,
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler"
    );
    scale_target(out, name);
    let _ = writeln!(out, "  minReplicas: {}", opts.replicas);
    let _ = writeln!(out, "  maxReplicas: {}", opts.max_replicas);
    let _ = writeln!(out, "  metrics:");
    for (resource, target) in [
        ("cpu", opts.target_cpu_utilization),
        ("memory", opts.target_memory_utilization),
    ] {
        let _ = writeln!(out, "  - type: Resource\n    resource:");
        let _ = writeln!(out, "      name: {resource}\n      target:");
        let _ = writeln!(out, "        type: Utilization");
        let _ = writeln!(out, "        averageUtilization: {target}");
    }
}

fn keda(out: &mut String, opts: &ScaffoldOptions, name: &str) {
    let _ = writeln!(out, "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject");
    scale_target(out, name);
    let _ = writeln!(out, "  minReplicaCount: {}", opts.replicas);
    let _ = writeln!(out, "  maxReplicaCount: {}", opts.max_replicas);
    let _ = writeln!(out, "  triggers:");
    for (resource, target) in [
        ("cpu", opts.target_cpu_utilization),
        ("memory", opts.target_memory_utilization),
    ] {
        let _ = writeln!(out, "  - type: {resource}\n    metricType: Utilization");
        let _ = writeln!(out, "    metadata:\n      value: \"{target}\"");
    }
}

/// A YAML scalar that reads back as the string `text`: plain when that is
/// unambiguous (so `100m` and `128Mi` look as the plugin writes them),
/// double-quoted otherwise (`true`, `42`, `a: b`, `""`, ...).
pub fn scalar(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_owned()
    } else {
        double_quoted(text)
    }
}

/// Whether `text` may stand unquoted and still read as that string under
/// YAML 1.1 and 1.2 (Kubernetes' parser is YAML 1.1-ish): a conservative
/// set of characters, no indicator first, and nothing a resolver would
/// turn into a boolean, null or number.
fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if !first.is_ascii_alphanumeric() && first != '/' && first != '_' {
        return false;
    }
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._/+@=".contains(c))
    {
        return false;
    }
    const WORDS: &[&str] = &[
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "nan", "inf",
    ];
    if WORDS.iter().any(|w| text.eq_ignore_ascii_case(w)) {
        return false;
    }
    // Anything made only of digits and the letters and signs of number
    // syntax (1e3, 0x1F, 0o17, 1_000, 2024-01-01) and starting with a digit
    // is quoted; `100m` and `128Mi` have letters outside that set.
    let numberish = text
        .chars()
        .all(|c| c.is_ascii_hexdigit() || "xXoObB_.+-:".contains(c));
    !(numberish && first.is_ascii_digit())
}

/// `text` as a YAML double-quoted scalar.
fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if ('\u{80}'..='\u{9f}').contains(&c) || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A parsed image reference (the Docker distribution grammar).
#[derive(Debug, PartialEq, Eq)]
pub struct ImageReference<'a> {
    /// `ghcr.io`, `localhost:5000`; none for Docker Hub's short form.
    pub domain: Option<&'a str>,
    /// `owner/app`.
    pub path: &'a str,
    /// `v1`.
    pub tag: Option<&'a str>,
    /// `sha256:...`.
    pub digest: Option<&'a str>,
}

impl ImageReference<'_> {
    /// The last path component: the plugin's `SpinApp` name.
    pub fn app_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// Parses `[DOMAIN/]PATH[:TAG][@DIGEST]`; the error says what is wrong.
pub fn parse_reference(text: &str) -> Result<ImageReference<'_>, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => {
            check_digest(digest)?;
            (rest, Some(digest))
        }
        None => (text, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &rest[last_slash + i + 1..];
            let ok = tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(format!(
                    "the tag {tag:?} must be letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 128 characters"
                ));
            }
            (&rest[..last_slash + i], Some(tag))
        }
        None => (rest, None),
    };
    if name.len() > 255 {
        return Err("the name is longer than 255 characters".into());
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            check_domain(first)?;
            (Some(first), path)
        }
        _ => (None, name),
    };
    for component in path.split('/') {
        check_path_component(component)?;
    }
    Ok(ImageReference {
        domain,
        path,
        tag,
        digest,
    })
}

fn check_digest(digest: &str) -> Result<(), String> {
    let bad =
        || format!("the digest {digest:?} must be ALGORITHM:HEX, e.g. sha256:<64 hex digits>");
    let (algorithm, encoded) = digest.split_once(':').ok_or_else(bad)?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    let encoded_ok = encoded.len() >= 32
        && encoded
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=_-".contains(c));
    let sha256_ok = algorithm != "sha256"
        || (encoded.len() == 64
            && encoded
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    if algorithm_ok && encoded_ok && sha256_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "the registry {domain:?} is not a host name with an optional :PORT"
        ))
    }
}

fn check_path_component(component: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "the path component {component:?} must be lower-case letters and digits, separated by '.', '_', '__' or dashes"
        )
    };
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// Kubernetes' DNS-1035 label (Service names, so `SpinApp` names).
fn is_dns1035_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Kubernetes' DNS-1123 subdomain (most object names, e.g. `Secret`s).
fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// A Kubernetes quantity's value (`100m` is 0.1, `128Mi` is 134217728),
/// or none if Kubernetes would not read it; negatives are refused, as no
/// limit or request may be negative.
fn quantity(text: &str) -> Option<f64> {
    let text = text.strip_prefix('+').unwrap_or(text);
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E'])?;
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            10f64.powi(digits.parse().ok()?)
        }
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_references_as_the_plugin_derives_them() {
        for (reference, name) in [
            ("bacongobbler/hello-rust", "hello-rust"),
            ("bacongobbler/hello-rust:v1.0.0", "hello-rust"),
            ("ghcr.io/bacongobbler/hello-rust", "hello-rust"),
            ("ghcr.io/bacongobbler/hello-rust:v1.0.0", "hello-rust"),
            (
                "ghcr.io/spinkube/spinkube/runtime-class-manager:v1",
                "runtime-class-manager",
            ),
            ("nginx:latest", "nginx"),
            ("nginx", "nginx"),
            ("localhost:5000/data-app:1", "data-app"),
            (
                "ttl.sh/hello-spinkube@sha256:cc4b191d11728b4e9e024308f0c03aded893da2002403943adc9deb8c4ca1644",
                "hello-spinkube",
            ),
        ] {
            let parsed = parse_reference(reference).expect("a valid reference");
            assert_eq!(parsed.app_name(), name, "{reference}");
        }
    }

    #[test]
    fn references_split_into_parts() {
        let r = parse_reference("localhost:5000/acme/app:v2@sha256:cc4b191d11728b4e9e024308f0c03aded893da2002403943adc9deb8c4ca1644")
            .expect("valid");
        assert_eq!(r.domain, Some("localhost:5000"));
        assert_eq!(r.path, "acme/app");
        assert_eq!(r.tag, Some("v2"));
        assert!(r.digest.is_some_and(|d| d.starts_with("sha256:cc4b")));
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in [
            "",
            "invalid image reference!",
            "Upper/app",
            "ghcr.io/app:-tag",
            "app@sha256:abc",
            "app//x",
            "ghcr.io/",
            "app-:v1",
        ] {
            assert!(parse_reference(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn scalars_quote_what_yaml_would_read_as_something_else() {
        for plain in [
            "100m",
            "128Mi",
            "yee",
            "containerd-shim-spin",
            "a.b_c",
            "v1",
        ] {
            assert_eq!(scalar(plain), plain);
        }
        for (text, quoted) in [
            ("true", "\"true\""),
            ("No", "\"No\""),
            ("42", "\"42\""),
            ("0.5", "\"0.5\""),
            ("1e3", "\"1e3\""),
            ("0x1F", "\"0x1F\""),
            ("2024-01-01", "\"2024-01-01\""),
            ("", "\"\""),
            ("a: b", "\"a: b\""),
            ("-x", "\"-x\""),
            ("say \"hi\"\n", "\"say \\\"hi\\\"\\n\""),
            ("~", "\"~\""),
        ] {
            assert_eq!(scalar(text), quoted, "{text:?}");
        }
    }

    #[test]
    fn quantities_read_as_kubernetes_reads_them() {
        assert_eq!(quantity("100m"), Some(0.1));
        assert_eq!(quantity("1"), Some(1.0));
        assert_eq!(quantity("0.5"), Some(0.5));
        assert_eq!(quantity("128Mi"), Some(134_217_728.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        for bad in ["", "m", "100mb", "1.2.3", "-1", "1e", "Mi128", "1 Gi"] {
            assert_eq!(quantity(bad), None, "{bad:?}");
        }
    }

    fn autoscaled(autoscaler: Autoscaler) -> ScaffoldOptions {
        let mut opts = ScaffoldOptions::new("ghcr.io/foo/example-app:v0.1.0");
        opts.autoscaler = Some(autoscaler);
        opts.cpu_limit = Some("100m".into());
        opts.memory_limit = Some("128Mi".into());
        opts
    }

    #[test]
    fn validation_names_the_flag() {
        let mut opts = autoscaled(Autoscaler::Hpa);
        opts.cpu_limit = None;
        let e = render(&opts).expect_err("no cpu limit");
        assert!(e.to_string().contains("--cpu-limit"), "{e}");

        let mut opts = autoscaled(Autoscaler::Keda);
        opts.memory_limit = None;
        let e = render(&opts).expect_err("no memory limit");
        assert!(e.to_string().contains("--memory-limit"), "{e}");

        let mut opts = autoscaled(Autoscaler::Hpa);
        opts.replicas = 5;
        opts.max_replicas = 2;
        assert_eq!(
            render(&opts),
            Err(ScaffoldError::MinAboveMax { min: 5, max: 2 })
        );

        let mut opts = autoscaled(Autoscaler::Hpa);
        opts.replicas = 0;
        assert_eq!(render(&opts), Err(ScaffoldError::HpaScaleToZero));
        let mut opts = autoscaled(Autoscaler::Keda);
        opts.replicas = 0;
        assert!(render(&opts).is_ok(), "KEDA scales to zero");

        let mut opts = autoscaled(Autoscaler::Hpa);
        opts.target_memory_utilization = 0;
        let e = render(&opts).expect_err("0 percent");
        assert!(
            e.to_string()
                .contains("--autoscaler-target-memory-utilization is 0"),
            "{e}"
        );

        let mut opts = ScaffoldOptions::new("ghcr.io/foo/example-app:v0.1.0");
        opts.replicas = -1;
        assert!(render(&opts).is_err());

        let mut opts = ScaffoldOptions::new("ghcr.io/foo/example-app:v0.1.0");
        opts.cpu_limit = Some("100m".into());
        opts.cpu_request = Some("500m".into());
        let e = render(&opts).expect_err("request above limit");
        assert!(e.to_string().contains("--cpu-request (500m)"), "{e}");

        let mut opts = ScaffoldOptions::new("ghcr.io/foo/example-app:v0.1.0");
        opts.variables.push(("Bad".into(), "x".into()));
        let e = render(&opts).expect_err("bad name");
        assert!(e.to_string().starts_with("--variable \"Bad\""), "{e}");

        let mut opts = ScaffoldOptions::new("ghcr.io/foo/example-app:v0.1.0");
        opts.variables.push(("token".into(), "x".into()));
        opts.secret_variables
            .push(("token".into(), SecretText::new("s3cr3t")));
        let e = render(&opts).expect_err("twice");
        assert!(!format!("{e} {e:?} {opts:?}").contains("s3cr3t"));

        let mut opts = ScaffoldOptions::new("ghcr.io/foo/my_app:v1");
        let e = render(&opts).expect_err("underscore in name");
        assert!(e.to_string().contains("--name"), "{e}");
        opts.name = Some("my-app".into());
        assert!(render(&opts).is_ok());
    }

    #[test]
    fn a_bad_runtime_config_is_refused_without_quoting_it() {
        let mut opts = ScaffoldOptions::new("ghcr.io/foo/example-app:v0.1.0");
        opts.runtime_config = Some(RuntimeConfigFile {
            path: "rc.toml".into(),
            contents: SecretText::new(
                "[key_value_store.default]\ntype = \"redis\"\nurl = redis://:hunter2@db\n",
            ),
        });
        let e = render(&opts).expect_err("not TOML");
        let text = e.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn requests_without_limits_are_kept() {
        let mut opts = ScaffoldOptions::new("ghcr.io/foo/example-app:v0.1.0");
        opts.memory_request = Some("64Mi".into());
        let out = render(&opts).expect("valid");
        assert!(
            out.ends_with("  resources:\n    requests:\n      memory: 64Mi\n"),
            "{out}"
        );
    }
}
