//! `trib up` serving real p2 and p3 components over HTTP.

use std::collections::BTreeMap;
use std::io::Read;

use crate::support::{AppDir, Trib, assert_mentions, client};

/// One app with every guest on its own routes.
const APP: &str = r#"
spin_manifest_version = 2

[application]
name = "serving-test"

[[trigger.http]]
route = "/p3/..."
component = "p3"

[[trigger.http]]
route = "/p2/..."
component = "p2"

[[trigger.http]]
route = "/core/..."
component = "core"

[[trigger.http]]
route = "/users/:id/..."
component = "p3"

[[trigger.http]]
route = "/exact"
component = { source = "{p2}" }

[component.p3]
source = "{p3}"

[component.p2]
source = "{p2}"

[component.core]
source = "{p2_core}"
"#;

fn app() -> (AppDir, Trib) {
    let app = AppDir::new(APP);
    let trib = Trib::start(&app);
    (app, trib)
}

#[test]
fn p2_p3_and_core_module_components_answer_on_their_routes() {
    let (_app, trib) = app();
    trib.assert_gets(&[
        ("/p3/hello", 200, "hello from p3 at /p3/hello\n"),
        ("/p2/hello", 200, "hello from p2 at /p2/hello\n"),
        ("/core/hello", 200, "hello from p2 at /core/hello\n"),
        ("/exact", 200, "hello from p2 at /exact\n"),
    ]);
    // The banner lists the routes the way `spin up` does.
    assert!(trib.banner.contains("Available Routes:"), "{}", trib.banner);
    assert!(
        trib.banner
            .contains(&format!("  p3: {}/p3 (wildcard)", trib.base)),
        "{}",
        trib.banner
    );
    assert!(
        trib.banner
            .contains(&format!("  inline-component-5: {}/exact\n", trib.base)),
        "{}",
        trib.banner
    );
}

#[test]
fn unknown_paths_are_404_and_health_is_ok() {
    let (_app, trib) = app();
    assert_eq!(trib.get("/nowhere").0, 404);
    assert_eq!(trib.get("/exact/below").0, 404);
    assert_eq!(trib.get("/p3x").0, 404);
    trib.assert_gets(&[("/.well-known/spin/health", 200, "OK")]);
}

/// Parses the `name: value` lines the guests print for `spin-*` headers.
fn spin_headers(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn requests_carry_spin_headers() {
    let (_app, trib) = app();
    let port = trib.base.rsplit(':').next().expect("port").to_owned();
    for (prefix, component) in [("/p3", "p3"), ("/p2", "p2")] {
        let resp = client()
            .get(trib.url(&format!("{prefix}/a/b/headers?q=1")))
            // A client must not be able to forge host-asserted headers.
            .header("spin-path-info", "/forged")
            .send()
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200, "{component}");
        let h = spin_headers(&resp.text().expect("body"));
        let want = |k: &str| h.get(k).map(String::as_str);
        assert_eq!(
            want("spin-full-url"),
            Some(format!("http://127.0.0.1:{port}{prefix}/a/b/headers?q=1").as_str()),
            "{component}: {h:?}"
        );
        assert_eq!(want("spin-path-info"), Some("/a/b/headers"), "{component}");
        assert_eq!(
            want("spin-matched-route"),
            Some(format!("{prefix}/...").as_str())
        );
        assert_eq!(
            want("spin-raw-component-route"),
            Some(format!("{prefix}/...").as_str())
        );
        assert_eq!(want("spin-component-route"), Some(prefix));
        assert_eq!(want("spin-base-path"), Some("/"));
        let client_addr = want("spin-client-addr").expect("spin-client-addr");
        assert!(client_addr.starts_with("127.0.0.1:"), "{client_addr}");
    }
    // Path parameters become `spin-path-match-NAME`.
    let (status, body) = trib.get("/users/42/more/headers");
    assert_eq!(status, 200);
    let h = spin_headers(&body);
    assert_eq!(h.get("spin-path-match-id").map(String::as_str), Some("42"));
    assert_eq!(
        h.get("spin-matched-route").map(String::as_str),
        Some("/users/:id/...")
    );
    assert_eq!(
        h.get("spin-component-route").map(String::as_str),
        Some("/users/:id")
    );
    assert_eq!(
        h.get("spin-path-info").map(String::as_str),
        Some("/more/headers")
    );
}

/// A reader that produces `len` bytes of a fixed pseudo-random pattern
/// without holding them in memory, so the upload streams.
struct Pattern {
    left: usize,
    state: u64,
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left).min(64 * 1024);
        for b in &mut buf[..n] {
            self.state = self
                .state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.state >> 56) as u8;
        }
        self.left -= n;
        Ok(n)
    }
}

fn pattern_bytes(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    Pattern {
        left: len,
        state: 7,
    }
    .read_to_end(&mut out)
    .expect("pattern");
    out
}

/// The upload as a stream of 64 KiB chunks, generated as it is sent.
fn pattern_stream(len: usize) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> {
    let mut pattern = Pattern {
        left: len,
        state: 7,
    };
    futures::stream::iter(std::iter::from_fn(move || {
        let mut chunk = vec![0; 64 * 1024];
        match pattern.read(&mut chunk) {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some(Ok(chunk))
            }
            Err(e) => Some(Err(e)),
        }
    }))
}

#[test]
fn ten_megabyte_bodies_stream_through_p2_and_p3() {
    const LEN: usize = 10 * 1024 * 1024;
    let (_app, trib) = app();
    let expected = pattern_bytes(LEN);
    // An echo needs a full-duplex client: the guest answers while the
    // upload is still arriving, so the client must read as it writes.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for prefix in ["/p3", "/p2"] {
        let got = runtime.block_on(async {
            let resp = reqwest::Client::new()
                .post(trib.url(&format!("{prefix}/echo")))
                .body(reqwest::Body::wrap_stream(pattern_stream(LEN)))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{prefix}: {e:?}\n{}", trib.log()));
            assert_eq!(resp.status().as_u16(), 200, "{prefix}");
            // The echo is streamed back, so the host cannot know its length.
            assert!(
                resp.headers().get("content-length").is_none(),
                "{prefix}: response was buffered: {:?}",
                resp.headers()
            );
            resp.bytes().await.expect("body")
        });
        assert_eq!(got.len(), LEN, "{prefix}");
        assert!(got == expected, "{prefix}: echoed bytes differ");
    }
}

#[test]
fn traps_panics_and_errors_are_500_for_that_request_only() {
    let (_app, mut trib) = app();
    for path in [
        "/p3/trap",
        "/p3/panic",
        "/p3/error",
        "/p2/trap",
        "/p2/panic",
        "/core/panic",
    ] {
        let (status, _) = trib.get(path);
        assert_eq!(status, 500, "{path}");
        let prefix = &path[..path[1..].find('/').expect("prefix") + 1];
        let (status, body) = trib.get(&format!("{prefix}/after"));
        assert_eq!(status, 200, "request after {path} failed: {body}");
        assert!(trib.is_running());
    }
    // Failures are logged with the component's name.
    assert_mentions(&trib.log(), &["component=p3", "request failed"]);
}

#[test]
fn concurrent_requests_each_get_a_fresh_instance() {
    let (_app, trib) = app();
    // `count` answers how many requests its instance has handled (a global
    // in the guest): 1, every time, when each request has its own instance.
    let paths: Vec<String> = (0..16)
        .flat_map(|i| [format!("/p3/n{i}/count"), format!("/p2/n{i}/count")])
        .collect();
    let handles: Vec<_> = paths
        .iter()
        .map(|path| {
            let url = trib.url(path);
            std::thread::spawn(move || {
                let resp = client().get(url).send().expect("request");
                (resp.status().as_u16(), resp.text().expect("body"))
            })
        })
        .collect();
    for (path, h) in paths.iter().zip(handles) {
        let (status, body) = h.join().expect("thread");
        assert_eq!(
            (status, body),
            (200, format!("invocation 1 at {path}\n")),
            "{path}"
        );
    }
    // Sequential requests too.
    for path in ["/p3/again/count", "/p2/again/count", "/core/again/count"] {
        trib.assert_gets(&[(path, 200, &format!("invocation 1 at {path}\n"))]);
    }
}

/// Touches every component so that lazy loading compiles or loads it.
fn touch_all(trib: &Trib) {
    for path in ["/p3/x", "/p2/x", "/core/x", "/exact"] {
        assert_eq!(trib.get(path).0, 200, "{path}");
    }
}

#[test]
fn a_second_start_loads_components_from_the_compile_cache() {
    let app = AppDir::new(APP);
    let cache = tempfile::tempdir().expect("cache dir");
    let first = Trib::start_with(&app, cache.path(), &[]);
    touch_all(&first);
    let log = first.log();
    assert!(log.contains("cached=false"), "{log}");
    drop(first);
    let second = Trib::start_with(&app, cache.path(), &[]);
    touch_all(&second);
    let log = second.log();
    assert!(log.contains("cached=true"), "{log}");
    assert!(
        !log.contains("cached=false"),
        "nothing is recompiled:\n{log}"
    );
    // A corrupted entry is detected and replaced, never loaded.
    for entry in std::fs::read_dir(cache.path()).expect("cache entries") {
        let path = entry.expect("entry").path();
        let mut bytes = std::fs::read(&path).expect("read entry");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, bytes).expect("corrupt entry");
    }
    let third = Trib::start_with(&app, cache.path(), &[]);
    touch_all(&third);
    let log = third.log();
    assert!(log.contains("compile cache entry is corrupt"), "{log}");
}
