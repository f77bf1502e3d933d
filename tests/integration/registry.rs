//! OCI packages in Spin's format against a real registry (Debian's
//! `docker-registry`, run on loopback with a throwaway data directory):
//! push the data app and run what is pulled; run packages laid out by hand
//! from Spin's format (current and older layouts); refuse a corrupted blob.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{AppDir, Trib, client, closed_port, guests, shared_cache, trib};

/// A `docker-registry` on loopback; stopped (and its data removed) on drop.
struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    host: String,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// A registry that wants Basic auth as `user`/`password` (htpasswd,
    /// bcrypt-hashed by Python's `bcrypt`, from tests/requirements.txt).
    fn with_login(user: &str, password: &str) -> Self {
        let out = Command::new("python3")
            .args([
                "-c",
                "import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(rounds=4)).decode())",
                password,
            ])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "bcrypt: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self::start_with(Some(format!("{user}:{hash}\n")))
    }

    fn start_with(htpasswd: Option<String>) -> Self {
        let binary = "/usr/bin/docker-registry";
        assert!(
            Path::new(binary).is_file(),
            "{binary} is missing: scripts/test-deps installs Debian's docker-registry"
        );
        let dir = tempfile::tempdir().expect("registry dir");
        let port = closed_port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let auth = match htpasswd {
            Some(lines) => {
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, lines).expect("htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: trib-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n{auth}http:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("registry config");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).expect("log"))
            .spawn()
            .expect("docker-registry starts");
        let registry = Self { child, host, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match client().get(registry.url("/v2/")).send() {
                // 401: up, and asking for credentials.
                Ok(resp) if resp.status().is_success() || resp.status().as_u16() == 401 => break,
                _ if Instant::now() > deadline => panic!(
                    "the registry did not answer: {}",
                    std::fs::read_to_string(registry.dir.path().join("registry.log"))
                        .unwrap_or_default()
                ),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        registry
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    /// Uploads `data` as a blob of `repo`, through the distribution API.
    fn upload(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        let resp = client()
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .expect("start upload");
        assert_eq!(resp.status().as_u16(), 202, "start upload");
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("upload location")
            .to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = client()
            .put(format!("{location}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .expect("finish upload");
        assert_eq!(resp.status().as_u16(), 201, "finish upload");
        digest
    }

    /// Puts `manifest` as `repo:tag`.
    fn put_manifest(&self, repo: &str, tag: &str, manifest: &Value) {
        let resp = client()
            .put(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(serde_json::to_vec(manifest).expect("json"))
            .send()
            .expect("put manifest");
        assert_eq!(resp.status().as_u16(), 201, "put manifest");
    }

    fn manifest(&self, repo: &str, tag: &str) -> Value {
        client()
            .get(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .expect("get manifest")
            .json()
            .expect("manifest json")
    }

    fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        client()
            .get(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .expect("get blob")
            .bytes()
            .expect("blob")
            .to_vec()
    }

    /// Where the registry keeps the bytes of `digest` on disk.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `trib up --from REF --insecure`, with the registry cache `cache`, in
/// the working directory `work` (where its state goes).
fn up_command(reference: &str, cache: &Path, work: &Path) -> Command {
    let mut cmd = trib();
    cmd.args([
        "up",
        "--from",
        reference,
        "--insecure",
        "--listen",
        "127.0.0.1:0",
    ])
    .arg("--registry-cache-dir")
    .arg(cache)
    .arg("--cache-dir")
    .arg(shared_cache())
    .current_dir(work);
    cmd
}

/// [`up_command`], serving.
fn up_from(reference: &str, cache: &Path, work: &Path) -> Trib {
    Trib::launch(up_command(reference, cache, work))
}

/// [`up_command`], which must fail within a minute; its stderr. A trib
/// that serves instead is killed and fails the test (rather than hanging
/// it).
fn up_from_fails(reference: &str, cache: &Path, work: &Path) -> String {
    let stderr_file = work.join("trib-up.stderr");
    let mut child = up_command(reference, cache, work)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).expect("stderr file"))
        .spawn()
        .expect("trib up");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "trib up kept running: it must refuse the package\n{}",
                std::fs::read_to_string(&stderr_file).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "trib up must refuse it");
    let stderr = std::fs::read_to_string(&stderr_file).expect("stderr");
    std::fs::remove_file(&stderr_file).expect("remove stderr file");
    stderr
}

fn data_app() -> AppDir {
    crate::support::data_app(
        "registry-test",
        "test-key=web",
        Some("web-token=web"),
        [("transform_filter", "{}"); 4],
    )
}

/// Sends the same 40 events and reads back what the query API says.
fn ingest_then_query(trib: &Trib) -> Value {
    let events: Vec<Value> = (0..40)
        .map(|i| {
            json!({
                "type": "track",
                "event": if i % 4 == 0 { "Signed Up" } else { "Page Viewed" },
                "userId": format!("user-{}", i % 7),
                "messageId": format!("registry-{i}"),
                "timestamp": "2026-12-01T10:00:00Z",
                "properties": {"amount": i}
            })
        })
        .collect();
    let resp = client()
        .post(trib.url("/v1/batch"))
        .basic_auth("test-key", Some(""))
        .json(&json!({ "batch": events }))
        .send()
        .expect("batch");
    assert_eq!(resp.status().as_u16(), 200, "{}", trib.log());
    let get = |path: &str| -> Value {
        let resp = client()
            .get(trib.url(path))
            .bearer_auth("web-token")
            .send()
            .expect("query");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        resp.json().expect("json")
    };
    json!({
        "counts": get("/api/counts?bucket=day&group_by=event"),
        "sum": get("/api/aggregate?property=amount&event=Signed%20Up"),
        "names": get("/api/event-names"),
    })
}

#[test]
fn the_data_app_pushed_then_pulled_answers_as_the_local_one() {
    let registry = Registry::start();
    let app = data_app();
    let reference = format!("{}/tributary/data-app:v1", registry.host);
    let out = trib()
        .args([
            "registry",
            "push",
            "--insecure",
            "--annotation",
            "com.example.team=data",
        ])
        .arg("-f")
        .arg(app.manifest())
        .arg(&reference)
        .output()
        .expect("push");
    assert!(
        out.status.success(),
        "push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed_digest = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(pushed_digest.starts_with("sha256:"), "{pushed_digest}");

    // The package is Spin's layout.
    let manifest = registry.manifest("tributary/data-app", "v1");
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.title"],
        "registry-test"
    );
    assert_eq!(annotations["com.example.team"], "data");
    assert!(annotations["org.opencontainers.image.created"].is_string());
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    let of_type =
        |t: &str| -> Vec<&Value> { layers.iter().filter(|l| l["mediaType"] == t).collect() };
    let wasm = of_type("application/vnd.wasm.content.layer.v1+wasm");
    assert_eq!(wasm.len(), 2, "ingest (composed) and query: {manifest}");
    let lock_layer = of_type("application/vnd.fermyon.spin.application.v1+config");
    assert_eq!(lock_layer.len(), 1);
    let lock_digest = lock_layer[0]["digest"].as_str().expect("digest");
    let config: Value = serde_json::from_slice(
        &registry.blob(
            "tributary/data-app",
            manifest["config"]["digest"]
                .as_str()
                .expect("config digest"),
        ),
    )
    .expect("config json");
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip1");
    assert_eq!(
        config["config"]["Labels"]["com.fermyon.spin.lockedAppDigest"],
        lock_digest
    );
    let lock: Value =
        serde_json::from_slice(&registry.blob("tributary/data-app", lock_digest)).expect("lock");
    let components = lock["components"].as_array().expect("components");
    let ingest = components
        .iter()
        .find(|c| c["id"] == "ingest")
        .expect("ingest in the lock");
    assert!(
        ingest.get("dependencies").is_none(),
        "composed before pushing: {ingest}"
    );
    let wasm_digests: Vec<&str> = wasm.iter().filter_map(|l| l["digest"].as_str()).collect();
    assert!(wasm_digests.contains(&ingest["source"]["digest"].as_str().expect("source digest")));
    assert_eq!(ingest["source"]["content_type"], "application/wasm");
    assert!(
        lock["triggers"]
            .as_array()
            .expect("triggers")
            .iter()
            .any(|t| t["trigger_type"] == "http" && t["trigger_config"]["route"] == "/v1/...")
    );

    // Pulled into an empty cache, it answers as the local app does.
    let cache = tempfile::tempdir().expect("cache");
    let work = tempfile::tempdir().expect("work dir");
    let pulled = up_from(&reference, cache.path(), work.path());
    assert!(
        pulled.log().contains(&format!("@{pushed_digest}")),
        "it ran what was pushed: {}",
        pulled.log()
    );
    let local = Trib::start_with(&app, &shared_cache(), &[]);
    let from_registry = ingest_then_query(&pulled);
    assert_eq!(from_registry, ingest_then_query(&local));
    assert_eq!(
        from_registry["sum"]["count"], 10,
        "the answers are real: {from_registry}"
    );
    assert!(
        work.path().join(".spin/sqlite_db.db").is_file(),
        "the pulled app's state is in the working directory"
    );

    // `trib registry pull` alone, then a run from the warm cache.
    let out = trib()
        .args([
            "registry",
            "pull",
            "--insecure",
            &reference,
            "--registry-cache-dir",
        ])
        .arg(cache.path())
        .output()
        .expect("pull");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unpacked = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(unpacked.is_file(), "pull prints the unpacked manifest");
}

/// The hello guest, a small and a large file, an environment variable and
/// an application variable, as a lock written from Spin's format.
fn spin_lock(wasm: &str, big: &str, small: &[u8], small_digest: &str) -> Value {
    use base64::Engine as _;
    json!({
        "spin_lock_version": 1,
        "metadata": {"name": "handmade", "version": "0.1.0", "trigger": {"type": "http"},
                     "triggers": {"http": {}}, "origin": "file:///elsewhere/spin.toml"},
        "variables": {"greeting": {"default": "hello from the lock"}},
        "triggers": [{"id": "trigger-hello", "trigger_type": "http",
                      "trigger_config": {"component": "hello", "route": "/..."}}],
        "components": [{
            "id": "hello",
            "metadata": {"allowed_outbound_hosts": [], "key_value_stores": ["default"]},
            "source": {"content_type": "application/wasm", "digest": wasm},
            "env": {"FROM_LOCK": "env from the lock"},
            "files": [
                {"digest": big, "path": "static/big.txt"},
                {"inline": base64::engine::general_purpose::STANDARD.encode(small),
                 "digest": small_digest, "path": "static/small.txt"}
            ],
            "config": {"greeting": "{{ greeting }}"}
        }]
    })
}

#[test]
fn packages_in_spins_layouts_run_and_a_corrupted_blob_is_refused() {
    let registry = Registry::start();
    let repo = "handmade/hello";
    let wasm = std::fs::read(&guests().p3).expect("p3 guest");
    let big = "a large file, pushed as a data layer. ".repeat(8);
    let small = b"small enough to be inline";
    let wasm_digest = registry.upload(repo, &wasm);
    let big_digest = registry.upload(repo, big.as_bytes());
    let lock = serde_json::to_vec(&spin_lock(&wasm_digest, &big_digest, small, &sha256(small)))
        .expect("lock");
    let lock_digest = registry.upload(repo, &lock);
    let image_config = serde_json::to_vec(&json!({
        "architecture": "wasm", "os": "wasip1",
        "config": {"Labels": {"com.fermyon.spin.lockedAppDigest": lock_digest}},
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .expect("config");
    let config_digest = registry.upload(repo, &image_config);
    let descriptor = |media: &str, digest: &str, size: usize| json!({"mediaType": media, "digest": digest, "size": size});
    // Today's layout: the lock is a layer.
    registry.put_manifest(
        repo,
        "current",
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config_digest, image_config.len()),
            "layers": [
                descriptor("application/vnd.wasm.content.layer.v1+wasm", &wasm_digest, wasm.len()),
                descriptor("application/vnd.wasm.content.layer.v1+data", &big_digest, big.len()),
                descriptor("application/vnd.fermyon.spin.application.v1+config", &lock_digest, lock.len()),
            ]
        }),
    );
    // Older Spin: the lock is the config blob, the Wasm `application/wasm`.
    registry.put_manifest(
        repo,
        "older",
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.fermyon.spin.application.v1+config", &lock_digest, lock.len()),
            "layers": [
                descriptor("application/wasm", &wasm_digest, wasm.len()),
                descriptor("application/vnd.wasm.content.layer.v1+data", &big_digest, big.len()),
            ]
        }),
    );
    for tag in ["current", "older"] {
        let cache = tempfile::tempdir().expect("cache");
        let work = tempfile::tempdir().expect("work");
        let trib = up_from(
            &format!("{}/{repo}:{tag}", registry.host),
            cache.path(),
            work.path(),
        );
        trib.assert_gets(&[
            ("/var?name=greeting", 200, "hello from the lock"),
            ("/env?name=FROM_LOCK", 200, "env from the lock"),
            ("/file?path=/static/big.txt", 200, big.as_str()),
            (
                "/file?path=/static/small.txt",
                200,
                "small enough to be inline",
            ),
        ]);
    }

    // The registry now serves other bytes for the Wasm: nothing runs.
    let file = registry.blob_file(&wasm_digest);
    let mut tampered = std::fs::read(&file).expect("stored blob");
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&file, &tampered).expect("tamper");
    let cache = tempfile::tempdir().expect("cache");
    let work = tempfile::tempdir().expect("work");
    let stderr = up_from_fails(
        &format!("{}/{repo}:current", registry.host),
        cache.path(),
        work.path(),
    );
    assert!(
        stderr.contains(&format!("blob {wasm_digest} has digest sha256:"))
            && stderr.contains("corrupted or was tampered with; nothing was run"),
        "{stderr}"
    );
    assert!(
        !work.path().join(".spin").exists(),
        "nothing ran: no state written"
    );
    assert!(
        !cache
            .path()
            .join("blobs/sha256")
            .join(&wasm_digest[7..])
            .exists(),
        "the bad blob was not cached"
    );
}

#[test]
fn a_lock_naming_a_path_outside_the_component_is_refused() {
    let registry = Registry::start();
    let repo = "handmade/escape";
    let wasm = std::fs::read(&guests().p3).expect("p3 guest");
    let wasm_digest = registry.upload(repo, &wasm);
    let small = b"x";
    let mut lock = spin_lock(&wasm_digest, &sha256(small), small, &sha256(small));
    lock["components"][0]["files"] =
        json!([{"inline": "eA==", "digest": sha256(small), "path": "../../outside.txt"}]);
    let lock = serde_json::to_vec(&lock).expect("lock");
    let lock_digest = registry.upload(repo, &lock);
    registry.put_manifest(
        repo,
        "v1",
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.fermyon.spin.application.v1+config", "digest": lock_digest, "size": lock.len()},
            "layers": [{"mediaType": "application/vnd.wasm.content.layer.v1+wasm", "digest": wasm_digest, "size": wasm.len()}]
        }),
    );
    let cache = tempfile::tempdir().expect("cache");
    let work = tempfile::tempdir().expect("work");
    let stderr = up_from_fails(
        &format!("{}/{repo}:v1", registry.host),
        cache.path(),
        work.path(),
    );
    assert!(
        stderr.contains("file path \"../../outside.txt\" is not a plain relative path"),
        "{stderr}"
    );
    assert!(!cache.path().join("outside.txt").exists());
    assert!(!cache.path().join("apps/outside.txt").exists());
}

#[test]
fn credentials_come_from_trib_login_or_dockers_file_and_never_show() {
    let password = "pw-not-for-logs-7f3a";
    let registry = Registry::with_login("ada", password);
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"private\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{p3}\"\n",
    );
    let reference = format!("{}/private/hello:v1", registry.host);
    let home = tempfile::tempdir().expect("home");
    let config_home = home.path().join("config");
    let docker_dir = home.path().join("docker");
    let run = |args: &[&str], stdin: Option<&str>| -> (bool, String) {
        use std::io::Write as _;
        let mut cmd = trib();
        cmd.args(args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", &config_home)
            .env("DOCKER_CONFIG", &docker_dir)
            .env_remove("TRIB_REGISTRY_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("trib");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("trib");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(password), "the password leaked: {text}");
        (out.status.success(), text)
    };
    let manifest = app.manifest();
    let manifest = manifest.to_str().expect("utf-8 path");
    let push = [
        "registry",
        "push",
        "--insecure",
        "-f",
        manifest,
        reference.as_str(),
    ];

    let login = [
        "registry",
        "login",
        "--insecure",
        registry.host.as_str(),
        "-u",
        "ada",
        "--password-stdin",
    ];

    let (ok, text) = run(&push, None);
    assert!(
        !ok && text.contains("401") && text.contains("trib registry login"),
        "anonymous push is refused, saying what to do: {text}"
    );
    let (ok, text) = run(&login, Some("wrong\n"));
    assert!(
        !ok && text.contains("did not accept the credentials of \"ada\""),
        "{text}"
    );
    assert!(
        !config_home.join("tributary/registry-auth.json").exists(),
        "bad credentials are not saved"
    );
    let (ok, text) = run(&login, Some(&format!("{password}\n")));
    assert!(ok, "{text}");
    let (ok, text) = run(&push, None);
    assert!(ok, "push with the saved login: {text}");

    // Docker's file alone (no trib login) is enough to pull.
    std::fs::remove_file(config_home.join("tributary/registry-auth.json")).expect("forget login");
    let cache = home.path().join("cache");
    let pull = [
        "registry",
        "pull",
        "--insecure",
        reference.as_str(),
        "--registry-cache-dir",
        cache.to_str().expect("utf-8 path"),
    ];
    let (ok, text) = run(&pull, None);
    assert!(
        !ok && text.contains("trib registry login"),
        "anonymous pull is refused, saying what to do: {text}"
    );
    use base64::Engine as _;
    std::fs::create_dir_all(&docker_dir).expect("docker dir");
    let token = base64::engine::general_purpose::STANDARD.encode(format!("ada:{password}"));
    std::fs::write(
        docker_dir.join("config.json"),
        json!({"auths": {registry.host.clone(): {"auth": token}}}).to_string(),
    )
    .expect("docker config");
    let (ok, text) = run(&pull, None);
    assert!(ok, "pull with Docker's credentials: {text}");
}

#[test]
fn files_travel_as_archive_layers_when_asked_as_spin_does() {
    let registry = Registry::start();
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"files\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n[component.hello]\nsource = \"{p3}\"\nfiles = [{ source = \"assets\", destination = \"/static\" }]\n",
    );
    let big = "archived, not a layer of its own. ".repeat(10);
    std::fs::create_dir_all(app.path().join("assets/nested")).expect("assets");
    std::fs::write(app.path().join("assets/big.txt"), &big).expect("big");
    std::fs::write(app.path().join("assets/nested/small.txt"), "tiny").expect("small");
    let reference = format!("{}/files/hello:v1", registry.host);
    let out = trib()
        .args(["registry", "push", "--insecure", "-f"])
        .arg(app.manifest())
        .arg(&reference)
        .env("SPIN_OCI_ARCHIVE_LAYERS", "1")
        .output()
        .expect("push");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = registry.manifest("files/hello", "v1");
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["mediaType"].as_str())
        .collect();
    assert!(
        types.contains(&"application/vnd.wasm.content.bundle.v1.tar+gzip"),
        "{types:?}"
    );
    assert!(
        !types.contains(&"application/vnd.wasm.content.layer.v1+data"),
        "{types:?}"
    );
    let cache = tempfile::tempdir().expect("cache");
    let work = tempfile::tempdir().expect("work");
    let trib = up_from(&reference, cache.path(), work.path());
    trib.assert_gets(&[
        ("/file?path=/static/big.txt", 200, big.as_str()),
        ("/file?path=/static/nested/small.txt", 200, "tiny"),
    ]);
}
