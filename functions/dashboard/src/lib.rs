//! The Tributary dashboard: one page (HTML, CSS and vanilla JS with
//! hand-drawn SVG charts) that reads the query API with a read token.
//!
//! The files are embedded at build time (`src/assets`, fingerprinted by
//! `build.rs`), so the component needs nothing at run time and the page
//! loads nothing from elsewhere (its Content-Security-Policy allows only
//! this origin). Caching:
//! - `/dashboard/` (the page) is `Cache-Control: no-cache` with a strong
//!   ETag: browsers revalidate it every time and get `304` while it is
//!   unchanged, so a new build shows at once;
//! - `/dashboard/app.HASH.css` and `app.HASH.js` carry a hash of their
//!   bytes in the name, so they are `immutable` for a year: a new build
//!   links new names;
//! - `/dashboard/icon.svg` is `no-cache` with an ETag (its name is fixed).
//!
//! `/dashboard` redirects to `/dashboard/` so the page's relative links
//! resolve under the route. Only `GET` and `HEAD` are served.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_service;

/// The fingerprinted names and ETags `build.rs` computed.
mod fingerprints {
    include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));
}

pub use fingerprints::{CSS_NAME, JS_NAME};

/// The page, with the versioned asset names written in by `build.rs`.
const INDEX: &str = include_str!(concat!(env!("OUT_DIR"), "/index.html"));
const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");
const ICON: &str = include_str!("assets/icon.svg");

/// Revalidate every time (the page and the unversioned icon).
const REVALIDATE: &str = "no-cache";
/// Versioned names never change content: cache for a year, never revalidate.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page may load scripts, styles and data only from this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file and how it is served.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// The bytes served.
    pub body: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its strong ETag (quoted).
    pub etag: &'static str,
    /// Its `Cache-Control`.
    pub cache_control: &'static str,
}

/// The asset at `path` below the dashboard's route (`/`, `/index.html`,
/// `/app.HASH.css`, ...), if there is one. Old fingerprints are not
/// found: a page of an older build gets a `404` rather than new code.
pub fn asset(path: &str) -> Option<Asset> {
    let file = path.strip_prefix('/')?;
    Some(match file {
        "" | "index.html" => Asset {
            body: INDEX,
            content_type: "text/html; charset=utf-8",
            etag: fingerprints::INDEX_ETAG,
            cache_control: REVALIDATE,
        },
        f if f == CSS_NAME => Asset {
            body: CSS,
            content_type: "text/css; charset=utf-8",
            etag: fingerprints::CSS_ETAG,
            cache_control: IMMUTABLE,
        },
        f if f == JS_NAME => Asset {
            body: JS,
            content_type: "text/javascript; charset=utf-8",
            etag: fingerprints::JS_ETAG,
            cache_control: IMMUTABLE,
        },
        "icon.svg" => Asset {
            body: ICON,
            content_type: "image/svg+xml",
            etag: fingerprints::ICON_ETAG,
            cache_control: REVALIDATE,
        },
        _ => return None,
    })
}

/// Whether an `If-None-Match` header value matches `etag`: `*`, or any
/// listed tag by the weak comparison RFC 9110 prescribes for this header
/// (`W/"x"` matches `"x"`).
pub fn none_match(header: &str, etag: &str) -> bool {
    let header = header.trim();
    if header == "*" {
        return true;
    }
    header
        .split(',')
        .map(|tag| tag.trim())
        .map(|tag| tag.strip_prefix("W/").unwrap_or(tag))
        .any(|tag| tag == etag)
}

/// An answer, before it becomes a response (so it can be tested off the
/// wasm target).
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The body (empty for `HEAD`, `304` and redirects).
    pub body: &'static str,
}

/// The answer to `method` on `path` (the full request path, for the
/// redirect) where `path_info` is what the route's wildcard matched
/// (Spin's `spin-path-info`: `""` for `/dashboard`, `"/"` for
/// `/dashboard/`), given the request's `If-None-Match`.
pub fn answer(method: &str, path: &str, path_info: &str, if_none_match: Option<&str>) -> Answer {
    let plain = |status: u16, text: &'static str| Answer {
        status,
        headers: vec![
            ("content-type", "text/plain; charset=utf-8".to_owned()),
            ("x-content-type-options", "nosniff".to_owned()),
        ],
        body: text,
    };
    if method != "GET" && method != "HEAD" {
        let mut a = plain(405, "method not allowed: the dashboard is read-only\n");
        a.headers.push(("allow", "GET, HEAD".to_owned()));
        return a;
    }
    if path_info.is_empty() {
        return Answer {
            status: 308,
            headers: vec![("location", format!("{path}/"))],
            body: "",
        };
    }
    let Some(asset) = asset(path_info) else {
        return plain(404, "not found\n");
    };
    let mut headers = vec![
        ("etag", asset.etag.to_owned()),
        ("cache-control", asset.cache_control.to_owned()),
    ];
    if if_none_match.is_some_and(|h| none_match(h, asset.etag)) {
        return Answer {
            status: 304,
            headers,
            body: "",
        };
    }
    headers.push(("content-type", asset.content_type.to_owned()));
    headers.push(("x-content-type-options", "nosniff".to_owned()));
    if asset.content_type.starts_with("text/html") {
        headers.push(("content-security-policy", CSP.to_owned()));
        headers.push(("referrer-policy", "no-referrer".to_owned()));
    }
    Answer {
        status: 200,
        headers,
        body: if method == "HEAD" { "" } else { asset.body },
    }
}

/// What the route's wildcard matched: Spin's `spin-path-info` header, or
/// (without it) the path after `/dashboard`.
fn path_info(req: &Request) -> String {
    if let Some(info) = req
        .headers()
        .get("spin-path-info")
        .and_then(|v| v.to_str().ok())
    {
        return info.to_owned();
    }
    let path = req.uri().path();
    path.strip_prefix("/dashboard").unwrap_or(path).to_owned()
}

#[http_service]
async fn dashboard(req: Request) -> impl IntoResponse {
    let if_none_match = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok());
    let a = answer(
        req.method().as_str(),
        req.uri().path(),
        &path_info(&req),
        if_none_match,
    );
    let mut resp = Response::builder().status(a.status);
    for (name, value) in a.headers {
        resp = resp.header(name, value);
    }
    resp.body(a.body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
        a.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_page_links_the_fingerprinted_assets() {
        assert!(INDEX.contains(&format!("\"{CSS_NAME}\"")), "{INDEX}");
        assert!(INDEX.contains(&format!("\"{JS_NAME}\"")), "{INDEX}");
        assert!(!INDEX.contains("{{"));
        // Nothing from another origin.
        for page in [INDEX, JS, CSS] {
            assert!(!page.contains("https://"), "an absolute URL is embedded");
            assert!(!page.contains("//cdn"), "a CDN is referenced");
        }
        assert_ne!(CSS_NAME, JS_NAME);
        assert!(JS_NAME.starts_with("app.") && JS_NAME.ends_with(".js"));
    }

    #[test]
    fn assets_have_types_and_caching() {
        let page = answer("GET", "/dashboard/", "/", None);
        assert_eq!(page.status, 200);
        assert_eq!(page.body, INDEX);
        assert_eq!(
            header(&page, "content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(header(&page, "cache-control"), Some("no-cache"));
        assert!(header(&page, "content-security-policy").is_some());
        let js = answer("GET", "/x", &format!("/{JS_NAME}"), None);
        assert_eq!(js.body, JS);
        assert_eq!(
            header(&js, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert!(header(&js, "cache-control").is_some_and(|c| c.contains("immutable")));
        let css = answer("GET", "/x", &format!("/{CSS_NAME}"), None);
        assert_eq!(
            header(&css, "content-type"),
            Some("text/css; charset=utf-8")
        );
        let icon = answer("GET", "/x", "/icon.svg", None);
        assert_eq!(header(&icon, "content-type"), Some("image/svg+xml"));
        // A stale fingerprint, a directory and a traversal are not found.
        for missing in [
            "/app.0000000000000000.js",
            "/assets/",
            "/../lib.rs",
            "/app.js",
        ] {
            assert_eq!(answer("GET", "/x", missing, None).status, 404, "{missing}");
        }
    }

    #[test]
    fn etags_revalidate_with_304() {
        let first = answer("GET", "/dashboard/", "/", None);
        let etag = header(&first, "etag").expect("etag").to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18);
        let again = answer("GET", "/dashboard/", "/", Some(&etag));
        assert_eq!(again.status, 304);
        assert_eq!(again.body, "");
        assert_eq!(header(&again, "etag"), Some(etag.as_str()));
        assert_eq!(header(&again, "cache-control"), Some("no-cache"));
        let listed = format!("\"other\", W/{etag}");
        assert_eq!(answer("GET", "/d/", "/", Some(&listed)).status, 304);
        assert_eq!(answer("HEAD", "/d/", "/", Some("*")).status, 304);
        assert_eq!(answer("GET", "/d/", "/", Some("\"stale\"")).status, 200);
        // Each asset has its own tag.
        let js = answer("GET", "/x", &format!("/{JS_NAME}"), None);
        assert_ne!(header(&js, "etag"), Some(etag.as_str()));
    }

    #[test]
    fn redirects_head_and_methods() {
        let r = answer("GET", "/dashboard", "", None);
        assert_eq!(r.status, 308);
        assert_eq!(header(&r, "location"), Some("/dashboard/"));
        let head = answer("HEAD", "/dashboard/", "/", None);
        assert_eq!(head.status, 200);
        assert_eq!(head.body, "");
        assert!(header(&head, "etag").is_some());
        let post = answer("POST", "/dashboard/", "/", None);
        assert_eq!(post.status, 405);
        assert_eq!(header(&post, "allow"), Some("GET, HEAD"));
    }

    #[test]
    fn none_match_follows_weak_comparison() {
        assert!(none_match("\"a\"", "\"a\""));
        assert!(none_match(" W/\"a\" ", "\"a\""));
        assert!(none_match("\"b\",\"a\"", "\"a\""));
        assert!(none_match("*", "\"a\""));
        assert!(!none_match("\"b\"", "\"a\""));
        assert!(!none_match("a", "\"a\""));
        assert!(!none_match("", "\"a\""));
    }
}
