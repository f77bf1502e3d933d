//! The dashboard (issue 16, `functions/dashboard`): its HTTP caching on a
//! real `trib up` of the repository's `spin.toml`, then the page end to end
//! in headless Chromium (`tests/e2e/dashboard.mjs`, playwright-core driving
//! Debian's `chromium`) with events sent by Segment's Python client.
//! Screenshots are saved to `target/e2e/`.
//!
//! Chromium, Node.js and `tests/e2e/node_modules` come from
//! `scripts/test-deps`; without them the test is skipped, except under
//! `CI=true`, where it fails.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::support::{
    Trib, build_wasm, client, client_without_redirects, functions, repo_root, shared_cache, trib,
};

/// The browser the end-to-end run drives.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Whether Chromium, Node.js and playwright-core are installed; under
/// `CI=true` anything missing fails the test instead.
fn browser_available() -> bool {
    let root = repo_root();
    let missing: Vec<String> = [
        (Path::new(&chromium()).is_file(), chromium()),
        (
            Command::new("node").arg("--version").output().is_ok(),
            "node".to_owned(),
        ),
        (
            root.join("tests/e2e/node_modules/playwright-core").is_dir(),
            "tests/e2e/node_modules (npm ci)".to_owned(),
        ),
    ]
    .into_iter()
    .filter(|(found, _)| !found)
    .map(|(_, what)| what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "missing {missing:?} (scripts/test-deps installs them), and CI=true requires them"
    );
    eprintln!("skipping: missing {missing:?}; run scripts/test-deps");
    false
}

/// `trib up` on the repository's own `spin.toml` (every component built),
/// with a throwaway state directory (an empty event store).
fn start_app(state: &Path) -> Trib {
    let functions_dir = repo_root().join("functions");
    functions();
    build_wasm(&functions_dir, "home");
    build_wasm(&functions_dir, "dashboard");
    let mut cmd = trib();
    cmd.arg("up")
        .arg("-f")
        .arg(repo_root().join("spin.toml"))
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(state)
        .arg("--cache-dir")
        .arg(shared_cache())
        .current_dir(state);
    Trib::launch(cmd)
}

fn header(resp: &reqwest::blocking::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Content types, ETags with `304`s, `no-cache` for the page and a year
/// (`immutable`) for the fingerprinted assets, the redirect to the
/// trailing slash, and what is not served.
fn check_caching(trib: &Trib) {
    let http = client_without_redirects();
    let resp = http.get(trib.url("/dashboard")).send().expect("request");
    assert_eq!(resp.status().as_u16(), 308);
    assert_eq!(header(&resp, "location"), "/dashboard/");

    let resp = http.get(trib.url("/dashboard/")).send().expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&resp, "cache-control"), "no-cache");
    assert!(header(&resp, "content-security-policy").contains("default-src 'none'"));
    let etag = header(&resp, "etag");
    assert!(etag.len() > 2 && etag.starts_with('"'), "etag {etag:?}");
    let page = resp.text().expect("body");
    let again = http
        .get(trib.url("/dashboard/"))
        .header("if-none-match", &etag)
        .send()
        .expect("request");
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert_eq!(again.text().expect("body"), "");

    // The page links its CSS and JS by fingerprinted, relative names.
    let linked = |suffix: &str| -> String {
        let end = page
            .find(suffix)
            .unwrap_or_else(|| panic!("no {suffix} in {page}"));
        let start = page[..end].rfind('"').expect("a quoted name") + 1;
        page[start..end + suffix.len()].to_owned()
    };
    for (name, content_type) in [
        (linked(".js"), "text/javascript; charset=utf-8"),
        (linked(".css"), "text/css; charset=utf-8"),
    ] {
        assert!(name.starts_with("app.") && name.len() > 20, "{name}");
        let url = trib.url(&format!("/dashboard/{name}"));
        let resp = http.get(&url).send().expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{name}");
        assert_eq!(header(&resp, "content-type"), content_type);
        assert_eq!(
            header(&resp, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        let tag = header(&resp, "etag");
        assert_ne!(tag, etag);
        let revalidated = http
            .get(&url)
            .header("if-none-match", format!("W/{tag}"))
            .send()
            .expect("request");
        assert_eq!(revalidated.status().as_u16(), 304, "{name}");
    }
    for (method, path, status) in [
        ("GET", "/dashboard/app.0000000000000000.js", 404),
        ("GET", "/dashboard/nope", 404),
        ("POST", "/dashboard/", 405),
        ("HEAD", "/dashboard/", 200),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let resp = http
            .request(method.clone(), trib.url(path))
            .send()
            .expect("request");
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
    }
    // The landing page links the dashboard.
    let (status, home) = trib.get("/");
    assert_eq!(status, 200);
    assert!(home.contains("href=\"/dashboard/\""), "{home}");
}

#[test]
fn dashboard_end_to_end_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let trib = start_app(state.path());
    check_caching(&trib);
    // Warm the query and ingest components and the store's migrations (a
    // read, and a refused write, store nothing), so the browser's first
    // calls are not a compile.
    let warm = client();
    let names = warm
        .get(trib.url("/api/v1/event-names"))
        .bearer_auth("dev-read-token")
        .send()
        .expect("request");
    assert_eq!(names.status().as_u16(), 200);
    let refused = warm
        .post(trib.url("/v1/track"))
        .body("{}")
        .send()
        .expect("request");
    assert_eq!(refused.status().as_u16(), 401);

    let artifacts = repo_root().join("target/e2e");
    for shot in ["dashboard-desktop.png", "dashboard-phone.png"] {
        let _ = std::fs::remove_file(artifacts.join(shot));
    }
    let started = Instant::now();
    let status = Command::new("node")
        .arg(repo_root().join("tests/e2e/dashboard.mjs"))
        .arg(&trib.base)
        .arg(&artifacts)
        .env("CHROMIUM", chromium())
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "the dashboard's end-to-end run failed ({status}); trib's log:\n{}",
        trib.log()
    );
    // dashboard.mjs bounds its own run (150 s).
    eprintln!("dashboard e2e: {:?}", started.elapsed());
    for shot in ["dashboard-desktop.png", "dashboard-phone.png"] {
        let path = artifacts.join(shot);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{} is missing or empty", path.display());
    }
}
