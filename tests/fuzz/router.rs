//! `trib::router`: building a router from routes, and routing paths.
//!
//! Input format, one item a line: the first line is the application base,
//! each line starting with `> ` is a request path, every other line is a
//! route (`private` for `{ private = true }`), served by component `cN`
//! for the route on line N. Routes the manifest would refuse
//! (`check_pattern` fails) are dropped, as `trib up` never sees them, and a
//! base gets the leading `/` the manifest requires.
//!
//! Promises checked (from the module docs of `trib::router`):
//! - no input panics, and routes that pass `check_pattern` under a plain
//!   base always build;
//! - a route without parameters or wildcard routes its own literal path
//!   (and with a trailing slash), to a route with that same path: nothing
//!   beats an exact route (for routes whose text is plain: see
//!   [`plain_text`]);
//! - a wildcard route `/p/...` routes `/p`, `/p/` and `/p/x`;
//! - for any path: the wildcard's path info is a suffix of the path,
//!   starting with `/` when not empty; `:name` values are within one
//!   segment; the component is one that was routed. Before the fix in
//!   `route_pattern::parse_spec`, `/*/a` and `/:𝄞/b` passed `check_pattern` and
//!   made `route` panic.

use arbitrary::Unstructured;
use trib::manifest::HttpRoute;
use trib::route_pattern::check_pattern;
use trib::router::Router;

use crate::driver::Target;

const DICTIONARY: &[&str] = &[
    "/",
    "/...",
    "/*",
    ":name",
    ":id",
    "..",
    ".",
    "//",
    "/a",
    "/api",
    "\n> /",
    "\n",
    "private\n",
    "%2F",
    "%",
    "?",
    "#",
    "é",
    "\u{0}",
    " ",
    "-",
    "_",
    "~",
    "*",
];

pub fn target() -> Target {
    Target {
        name: "router",
        seeds: vec![
            "/\n/\n/v1/...\n/api/...\n> /v1/batch\n> /api/counts\n> /\n> /x\n".to_owned(),
            "/base/\n/foo/\n/foo/...\n/users/:id\n/users/:id/posts/...\nprivate\n> /base/foo\n> /base/users/7/posts/\n".to_owned(),
            "/\n/one/...\n/one/two/...\n/:a/:b\n> /one/two/three\n> /x/y\n".to_owned(),
        ],
        dictionary: DICTIONARY,
        run,
        generate,
    }
}

/// Spin's `sanitize_with_base`, restated from the docs (rule 1) rather
/// than called, so that the router is checked against its specification.
fn join_base(base: &str, route: &str) -> String {
    let route = if route.starts_with('/') {
        route.to_owned()
    } else {
        format!("/{route}")
    };
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_owned();
    format!("{}{}", strip(base), strip(&route))
}

fn run(input: &str) -> String {
    let mut lines = input.split('\n');
    let base = lines.next().unwrap_or("/");
    let base = if base.starts_with('/') {
        base.to_owned()
    } else {
        format!("/{base}")
    };
    let mut routes: Vec<(String, HttpRoute)> = Vec::new();
    let mut paths = Vec::new();
    for (i, line) in lines.enumerate() {
        if let Some(path) = line.strip_prefix("> ") {
            paths.push(path.to_owned());
        } else if line == "private" {
            routes.push((format!("c{i}"), HttpRoute::Private));
        } else {
            let absolute = if line.starts_with('/') {
                line.to_owned()
            } else {
                format!("/{line}")
            };
            if check_pattern(&absolute).is_ok() {
                routes.push((format!("c{i}"), HttpRoute::Pattern(line.to_owned())));
            }
        }
    }
    let built = Router::build(&base, routes.iter().map(|(c, r)| (c.as_str(), r)));
    let (router, duplicates) = match built {
        Ok(built) => built,
        Err(e) => {
            let plain = base
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '/' || c == '-');
            assert!(!plain, "routes that pass check_pattern do not build: {e}");
            return "build-error".to_owned();
        }
    };
    for route in router.routes() {
        let _ = route.to_string();
    }
    let mut signature = format!("r{}d{}", routes.len().min(5), duplicates.len().min(2));
    let patterns = routes.iter().filter_map(|(c, r)| match r {
        HttpRoute::Pattern(p) => Some((c, p)),
        HttpRoute::Private => None,
    });
    // One odd route is enough to reorder the others: `routefinder`'s
    // segment order is not total (a `.` segment ranks above an exact one,
    // which ranks above a parameter, which ranks above a `.`), so with a
    // route `/.` present, `/:p` can beat `/x` for `/x`; Spin shares it.
    let all_plain = routes.iter().all(|(_, r)| match r {
        HttpRoute::Pattern(p) => plain_text(&join_base(&base, p)),
        HttpRoute::Private => true,
    });
    for (component, raw) in patterns {
        let based = join_base(&base, raw);
        if !all_plain {
            break;
        }
        let literal = !based.contains(':') && !based.contains('*') && !based.contains("/...");
        if literal {
            let path = if based.is_empty() {
                "/"
            } else {
                based.as_str()
            };
            for path in [path.to_owned(), format!("{}/", based)] {
                let found = router.route(&path).unwrap_or_else(|| {
                    panic!("literal route {raw:?} (component {component}) does not route {path:?}")
                });
                // Routes equal but for their outer slashes (`/` and ``,
                // `/a` and `/a/` under different bases) are one route to
                // `routefinder`; either may answer.
                assert_eq!(
                    found.based_route.trim_matches('/'),
                    based.trim_matches('/'),
                    "literal route {raw:?} lost {path:?} to another route"
                );
                check_match(&router, &path);
            }
            signature.push('L');
        }
        if let Some(prefix) = based.strip_suffix("/...")
            && !prefix.contains(':')
            && !prefix.contains('*')
            && !prefix.contains("/...")
        {
            let root = if prefix.is_empty() { "/" } else { prefix };
            for path in [root.to_owned(), format!("{prefix}/"), format!("{prefix}/x")] {
                assert!(
                    router.route(&path).is_some(),
                    "wildcard route {raw:?} does not route {path:?}"
                );
                check_match(&router, &path);
            }
            signature.push('W');
        }
    }
    for path in &paths {
        signature.push(if check_match(&router, path) { 'm' } else { 'n' });
    }
    signature
}

/// Whether a route's own text is a fair test of its path. Not so for
/// non-ASCII routes (request paths are ASCII on the wire, and
/// `routefinder` mixes byte and char indices past a multi-byte character:
/// `/é/...` loses its slash; Spin has the same), nor for empty or dot-only
/// segments, which `routefinder` folds (`/a//b` is `/a/b`, `/a/.` is
/// `/a.`), as Spin does.
fn plain_text(route: &str) -> bool {
    // A `.` right after a parameter or wildcard (`/:name.json`) is a `.`
    // segment of its own, which `routefinder` orders inconsistently: with
    // `/` beside it, `/:n.*` can beat `/x.y` for `/x.y` (cycle: `/` before
    // `/x.y` before `/:n.*` before `/`); Spin shares it.
    let dotted_pattern = route
        .split('/')
        .any(|seg| (seg.starts_with(':') || seg.starts_with('*')) && seg.contains('.'));
    !dotted_pattern
        && route.is_ascii()
        && !route.contains("//")
        && !route.contains("/.")
        && !route.contains("./")
        && !route.contains("..")
        && !route.ends_with('.')
}

/// Routes `path` and checks what every match must satisfy; whether it
/// matched.
fn check_match(router: &Router, path: &str) -> bool {
    let Some(found) = router.route(path) else {
        return false;
    };
    let _ = found.component_route();
    assert!(
        found.component.starts_with('c'),
        "{path:?} routed to unknown {:?}",
        found.component
    );
    // Requests' paths are ASCII and start with `/` (hyper's origin form).
    if !path.is_ascii() || !path.starts_with('/') || !found.based_route.is_ascii() {
        return true;
    }
    // `routefinder` trims a path's trailing slashes, and path info keeps
    // at most one (Spin's rule 6).
    assert!(
        path.trim_end_matches('/')
            .ends_with(found.path_info.trim_end_matches('/')),
        "{path:?}: path info {:?} is not its suffix",
        found.path_info
    );
    assert!(
        found.path_info.is_empty() || found.path_info.starts_with('/'),
        "{path:?}: path info {:?} does not start with /",
        found.path_info
    );
    for (name, value) in &found.params {
        // Empty is possible: `/:name.json` matches `/.json`, as in Spin.
        assert!(
            !value.contains('/'),
            "{path:?}: parameter {name} = {value:?} spans segments"
        );
    }
    true
}

const SEGMENTS: &[&str] = &[
    "a", "api", "v1", "users", ":id", ":name", "...", "*", "", ".", "..", "é", "%2F", "a b", "x.y",
];

/// Bases, routes and paths built from a small alphabet of segments, so that
/// routes overlap and paths hit them.
fn generate(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let path = |u: &mut Unstructured<'_>| -> arbitrary::Result<String> {
        let mut p = String::new();
        for _ in 0..u.int_in_range(0..=4)? {
            p.push('/');
            p.push_str(u.choose(SEGMENTS)?);
        }
        if u.ratio(1, 4)? {
            p.push('/');
        }
        Ok(p)
    };
    let mut s = if u.ratio(1, 2)? {
        "/".to_owned()
    } else {
        path(u)?
    };
    s.push('\n');
    let mut made = Vec::new();
    for _ in 0..u.int_in_range(1..=6)? {
        let route = if u.ratio(1, 8)? {
            "private".to_owned()
        } else {
            path(u)?
        };
        s.push_str(&route);
        s.push('\n');
        made.push(route);
    }
    for _ in 0..u.int_in_range(0..=6)? {
        let p = if u.ratio(1, 2)? && !made.is_empty() {
            // A path near one of the routes: its text with the pattern
            // parts filled in or extended.
            let route = u.choose(&made)?;
            route
                .replace(":id", "7")
                .replace(":name", "n")
                .replace("...", u.choose(&["", "x", "x/y", "x/"])?)
        } else {
            path(u)?
        };
        s.push_str("> ");
        s.push_str(&p);
        s.push('\n');
    }
    Ok(s)
}
