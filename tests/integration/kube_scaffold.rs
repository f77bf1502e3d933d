//! `trib kube scaffold`: the real binary's output for several flag sets,
//! compared byte for byte with `tests/kube/golden/*.yaml`, and parsed as
//! YAML to check it reads back as meant (strings stay strings, Secrets
//! decode to what was given, names line up between documents).
//!
//! `TRIB_BLESS=1 cargo test --test integration kube` rewrites the golden
//! files after a deliberate change (never in CI: there a difference fails).

use std::path::PathBuf;
use std::process::Output;

use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::Value;

use crate::support::{repo_root, trib};

/// `tests/kube`: the runtime config fixture and the golden files.
fn kube_dir() -> PathBuf {
    repo_root().join("tests").join("kube")
}

/// Runs `trib kube scaffold ARGS` in `tests/kube`.
fn scaffold(args: &[&str]) -> Output {
    trib()
        .args(["kube", "scaffold"])
        .args(args)
        .current_dir(kube_dir())
        .output()
        .expect("trib runs")
}

/// Runs a flag set that must succeed and checks its output against
/// `golden/NAME.yaml`; returns the output.
fn golden(name: &str, args: &[&str]) -> String {
    let out = scaffold(args);
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: trib failed: {stderr}");
    assert!(stderr.is_empty(), "{name}: unexpected stderr: {stderr}");
    compare(name, &stdout);
    stdout
}

fn golden_path(name: &str) -> PathBuf {
    kube_dir().join("golden").join(format!("{name}.yaml"))
}

/// Fails unless `actual` is the golden file's text; with `TRIB_BLESS=1`
/// (outside CI) writes it instead.
fn compare(name: &str, actual: &str) {
    let path = golden_path(name);
    let bless = std::env::var_os("TRIB_BLESS").is_some_and(|v| v == "1");
    if bless {
        assert!(
            std::env::var_os("CI").is_none(),
            "TRIB_BLESS is for local runs; CI compares against the committed files"
        );
        std::fs::write(&path, actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with TRIB_BLESS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name}: output differs from {} from line {} on (TRIB_BLESS=1 rewrites it if the change is meant)\n--- expected\n{expected}--- actual\n{actual}",
            path.display(),
            first + 1
        );
    }
}

/// Every document of a multi-document YAML text.
fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("each document is valid YAML"))
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<&str> {
    docs.iter()
        .map(|d| d["kind"].as_str().expect("a kind"))
        .collect()
}

fn decode(data: &Value) -> String {
    let text = data.as_str().expect("Secret data is a string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("Secret data is base64");
    String::from_utf8(bytes).expect("UTF-8 secret")
}

const IMAGE: &str = "ghcr.io/foo/example-app:v0.1.0";

#[test]
fn kube_scaffold_plain_is_the_plugins_default_manifest() {
    let out = golden("plain", &["--from", IMAGE]);
    let docs = documents(&out);
    assert_eq!(kinds(&docs), ["SpinApp"]);
    let app = &docs[0];
    assert_eq!(app["apiVersion"], "core.spinkube.dev/v1alpha1");
    assert_eq!(app["metadata"]["name"], "example-app");
    assert_eq!(app["spec"]["image"], IMAGE);
    assert_eq!(app["spec"]["executor"], "containerd-shim-spin");
    assert_eq!(app["spec"]["replicas"], 2);
}

/// The flags of the config-and-variables case (also used by the `-o` test).
const CONFIG_ARGS: &[&str] = &[
    "--from",
    "localhost:5000/acme/data-app:1.2.0",
    "--replicas",
    "3",
    "-v",
    "foo=yoo",
    "--variable",
    "bar=yee",
    "--variable",
    "enabled=true",
    "--variable",
    "greeting=hello: world",
    "--variable",
    "limit=42",
    "--secret-variable",
    "db_password=s3cr3t-Pa55",
    "--secret-variable",
    "api_token=tok=with=equals",
    "--runtime-config-file",
    "runtime-config.toml",
    "--image-pull-secret",
    "registry-creds",
    "--cpu-limit",
    "500m",
    "--memory-limit",
    "256Mi",
    "--memory-request",
    "128Mi",
];

#[test]
fn kube_scaffold_variables_secrets_and_runtime_config() {
    let out = golden("config_and_variables", CONFIG_ARGS);
    let docs = documents(&out);
    assert_eq!(kinds(&docs), ["SpinApp", "Secret", "Secret"]);
    let (app, config, secrets) = (&docs[0], &docs[1], &docs[2]);
    assert_eq!(app["metadata"]["name"], "data-app");
    assert_eq!(app["spec"]["replicas"], 3);

    // Plain values read back as the strings given, even `true` and `42`.
    let variables = app["spec"]["variables"].as_array().expect("variables");
    let plain = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["value"].as_str())
            .unwrap_or_else(|| panic!("variable {name} as a string"))
            .to_owned()
    };
    assert_eq!(plain("enabled"), "true");
    assert_eq!(plain("limit"), "42");
    assert_eq!(plain("greeting"), "hello: world");
    assert_eq!(plain("foo"), "yoo");

    // Secret variables point into the variables Secret, which holds them.
    assert_eq!(secrets["metadata"]["name"], "data-app-variables");
    assert_eq!(secrets["type"], "Opaque");
    for (name, value) in [
        ("db_password", "s3cr3t-Pa55"),
        ("api_token", "tok=with=equals"),
    ] {
        let entry = variables
            .iter()
            .find(|v| v["name"] == name)
            .expect("the secret variable is listed");
        assert!(entry.get("value").is_none(), "{name} has no plain value");
        let reference = &entry["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], secrets["metadata"]["name"]);
        assert_eq!(reference["key"], name);
        assert_eq!(decode(&secrets["data"][name]), value);
    }
    assert!(
        !out.contains("s3cr3t-Pa55"),
        "secret values are only base64"
    );

    // The runtime config Secret holds the file, and the SpinApp loads it.
    assert_eq!(
        app["spec"]["runtimeConfig"]["loadFromSecret"],
        config["metadata"]["name"]
    );
    let file =
        std::fs::read_to_string(kube_dir().join("runtime-config.toml")).expect("the fixture");
    assert_eq!(decode(&config["data"]["runtime-config.toml"]), file);

    let resources = &app["spec"]["resources"];
    assert_eq!(resources["limits"]["cpu"], "500m");
    assert_eq!(resources["limits"]["memory"], "256Mi");
    assert_eq!(resources["requests"]["memory"], "128Mi");
    assert_eq!(app["spec"]["imagePullSecrets"][0]["name"], "registry-creds");
}

#[test]
fn kube_scaffold_hpa() {
    let out = golden(
        "hpa",
        &[
            "--from",
            IMAGE,
            "--autoscaler",
            "hpa",
            "--cpu-limit",
            "100m",
            "--memory-limit",
            "128Mi",
        ],
    );
    let docs = documents(&out);
    assert_eq!(kinds(&docs), ["SpinApp", "HorizontalPodAutoscaler"]);
    let (app, hpa) = (&docs[0], &docs[1]);
    assert_eq!(app["spec"]["enableAutoscaling"], true);
    assert!(app["spec"].get("replicas").is_none());
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["metadata"]["name"], "example-app-autoscaler");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        app["metadata"]["name"]
    );
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["maxReplicas"], 3);
    let metrics = hpa["spec"]["metrics"].as_array().expect("metrics");
    assert_eq!(metrics.len(), 2);
    for metric in metrics {
        assert_eq!(metric["resource"]["target"]["averageUtilization"], 60);
    }
}

#[test]
fn kube_scaffold_keda() {
    let out = golden(
        "keda",
        &[
            "--from",
            "ttl.sh/hello-spinkube@sha256:cc4b191d11728b4e9e024308f0c03aded893da2002403943adc9deb8c4ca1644",
            "--autoscaler",
            "keda",
            "--replicas",
            "1",
            "--max-replicas",
            "10",
            "--autoscaler-target-cpu-utilization",
            "75",
            "--autoscaler-target-memory-utilization",
            "80",
            "--cpu-limit",
            "1",
            "--memory-limit",
            "1Gi",
            "--cpu-request",
            "250m",
            "--executor",
            "trib-executor",
        ],
    );
    let docs = documents(&out);
    assert_eq!(kinds(&docs), ["SpinApp", "ScaledObject"]);
    let (app, keda) = (&docs[0], &docs[1]);
    assert_eq!(app["metadata"]["name"], "hello-spinkube");
    assert_eq!(app["spec"]["executor"], "trib-executor");
    // `1` is quoted so it stays the string Kubernetes' quantity reads.
    assert_eq!(app["spec"]["resources"]["limits"]["cpu"], "1");
    assert_eq!(keda["apiVersion"], "keda.sh/v1alpha1");
    assert_eq!(keda["spec"]["minReplicaCount"], 1);
    assert_eq!(keda["spec"]["maxReplicaCount"], 10);
    let triggers = keda["spec"]["triggers"].as_array().expect("triggers");
    assert_eq!(triggers[0]["type"], "cpu");
    assert_eq!(triggers[0]["metadata"]["value"], "75");
    assert_eq!(triggers[1]["type"], "memory");
    assert_eq!(triggers[1]["metadata"]["value"], "80");
}

#[test]
fn kube_scaffold_components_accounts_and_pull_secrets() {
    let out = golden(
        "extras",
        &[
            "--from",
            IMAGE,
            "--name",
            "shop",
            "--component",
            "api,ingest",
            "--component",
            "query",
            "-s",
            "pull-one,pull-two",
            "--service-account-name",
            "shop-runner",
            "--azure-identity",
            "--cpu-request",
            "50m",
        ],
    );
    let docs = documents(&out);
    assert_eq!(kinds(&docs), ["SpinApp"]);
    let spec = &docs[0]["spec"];
    assert_eq!(docs[0]["metadata"]["name"], "shop");
    assert_eq!(
        spec["components"],
        serde_json::json!(["api", "ingest", "query"])
    );
    assert_eq!(
        spec["imagePullSecrets"],
        serde_json::json!([{"name": "pull-one"}, {"name": "pull-two"}])
    );
    assert_eq!(spec["serviceAccountName"], "shop-runner");
    assert_eq!(spec["podLabels"]["azure.workload.identity/use"], "true");
    // A request without a limit is kept (the plugin drops it).
    assert_eq!(spec["resources"]["requests"]["cpu"], "50m");
    assert!(spec["resources"].get("limits").is_none());
}

#[test]
fn kube_scaffold_out_writes_a_private_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("app.yaml");
    let mut args = CONFIG_ARGS.to_vec();
    let file_arg = file.to_str().expect("UTF-8 path");
    args.extend(["-o", file_arg]);
    let out = scaffold(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing printed with -o");
    assert!(stderr.contains("Application manifest saved to"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
    let written = std::fs::read_to_string(&file).expect("the manifest file");
    compare("config_and_variables", &written);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the manifest holds secrets");
    }
}

/// Runs a flag set that must fail; returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = scaffold(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} was accepted");
    assert!(out.stdout.is_empty(), "{args:?} printed a manifest");
    stderr
}

#[test]
fn kube_scaffold_invalid_combinations_name_the_flag() {
    let autoscaled = ["--from", IMAGE, "--autoscaler", "hpa"];
    let cases: &[(&[&str], &str)] = &[
        (
            &[],
            "--autoscaler hpa needs --cpu-limit: autoscaling scales on the CPU and memory each replica is given; add --cpu-limit (e.g. --cpu-limit 100m)",
        ),
        (
            &["--cpu-limit", "100m"],
            "--autoscaler hpa needs --memory-limit",
        ),
        (
            &[
                "--cpu-limit",
                "100m",
                "--memory-limit",
                "128Mi",
                "--replicas",
                "5",
                "--max-replicas",
                "2",
            ],
            "--replicas (5) is more than --max-replicas (2): with --autoscaler, --replicas is the minimum replica count; raise --max-replicas or lower --replicas",
        ),
        (
            &[
                "--cpu-limit",
                "100m",
                "--memory-limit",
                "128Mi",
                "--autoscaler-target-cpu-utilization",
                "150",
            ],
            "--autoscaler-target-cpu-utilization is 150: it must be a percentage from 1 to 100",
        ),
        (
            &[
                "--cpu-limit",
                "1",
                "--memory-limit",
                "1Gi",
                "--replicas",
                "0",
            ],
            "--autoscaler hpa with --replicas 0",
        ),
        (
            &["--cpu-limit", "100mb", "--memory-limit", "128Mi"],
            "--cpu-limit \"100mb\" is not a Kubernetes quantity",
        ),
    ];
    for (extra, message) in cases {
        let mut args = autoscaled.to_vec();
        args.extend_from_slice(extra);
        let stderr = refused(&args);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    // The autoscaler's flags need --autoscaler (clap says so).
    let stderr = refused(&["--from", IMAGE, "--max-replicas", "5"]);
    assert!(stderr.contains("--autoscaler"), "{stderr}");
    let stderr = refused(&["--from", "Not An Image!"]);
    assert!(
        stderr.contains("--from \"Not An Image!\" is not an OCI image reference"),
        "{stderr}"
    );
    let stderr = refused(&["--from", IMAGE, "--autoscaler", "vpa"]);
    assert!(stderr.contains("possible values: hpa, keda"), "{stderr}");
    let stderr = refused(&["--variable", "x=1"]);
    assert!(stderr.contains("--from"), "{stderr}");
}

#[test]
fn kube_scaffold_errors_never_show_secret_values() {
    for args in [
        // A value given without a name.
        &["--from", IMAGE, "--secret-variable", "hunter2"][..],
        // A name clash between a plain and a secret variable.
        &[
            "--from",
            IMAGE,
            "--variable",
            "token=x",
            "--secret-variable",
            "token=hunter2",
        ],
        // A bad name.
        &["--from", IMAGE, "--secret-variable", "Token=hunter2"],
    ] {
        let stderr = refused(args);
        assert!(stderr.contains("--secret-variable"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

/// The golden files are what the tests compare against; a stray one would
/// be a case nobody checks.
#[test]
fn kube_scaffold_every_golden_file_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(kube_dir().join("golden"))
        .expect("the golden directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "config_and_variables.yaml",
            "extras.yaml",
            "hpa.yaml",
            "keda.yaml",
            "plain.yaml"
        ]
    );
}
