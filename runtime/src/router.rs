//! HTTP routing with Spin's semantics.
//!
//! Spin (3.x, `spin-http`'s `routes.rs`) routes through the `routefinder`
//! crate, and so do we, so that precedence is identical rather than merely
//! similar. The rules, as they apply to Spin manifests:
//!
//! 1. Each route is joined to the application base (`base` minus one trailing
//!    slash, then the route made absolute minus one trailing slash), so
//!    `base = "/"` with `route = "/foo/"` is `/foo`.
//! 2. A trailing `/...` (or `/*`) is a wildcard matching the prefix itself,
//!    the prefix with a slash, and anything below it. `:name` matches exactly
//!    one segment and is passed on as `spin-path-match-name`.
//! 3. Among matching routes the most specific wins, segment by segment from
//!    the left: an exact segment beats a `:name` segment, which beats a
//!    wildcard; a longer route beats a shorter one. Hence an exact route
//!    beats any wildcard, and `/one/two/...` beats `/one/...` for
//!    `/one/two/three` regardless of manifest order.
//! 4. Two triggers with the same route: the later one wins and the earlier
//!    one is reported as unreachable (Spin warns the same way).
//! 5. `{ private = true }` routes are not routable from outside; they can
//!    only be reached by service chaining.
//! 6. `spin-path-info` is what the wildcard matched, keeping Spin's trailing
//!    slash behaviour: `/foo/...` gives `""` for `/foo`, `"/"` for `/foo/`,
//!    `"/bar"` for `/foo/bar` and `"/bar/"` for `/foo/bar/`.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::manifest::HttpRoute;
use crate::route_pattern::{finder_spec, join_base, parse_spec};

/// Routes a request path to the component that serves it.
#[derive(Debug)]
pub struct Router {
    finder: routefinder::Router<Target>,
    base: String,
}

/// What a route leads to.
#[derive(Debug, Clone)]
struct Target {
    component: Arc<str>,
    based_route: Arc<str>,
    raw_route: Arc<str>,
    wildcard: bool,
}

/// A route that another trigger with the same pattern made unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute {
    /// The route, including the base.
    pub route: String,
    /// The component that no longer receives it.
    pub replaced: String,
    /// The component that does.
    pub effective: String,
}

/// A route that could not be built; names the component so the manifest can
/// be fixed.
#[derive(Debug, thiserror::Error)]
#[error("invalid route {route:?} for component {component:?}: {reason}")]
pub struct RouteError {
    route: String,
    component: String,
    reason: String,
}

/// The result of routing one request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The component ID (shared with the router: routing a request
    /// allocates only its parameters and path info).
    pub component: Arc<str>,
    /// The matched route with the base, as written (`/base/foo/...`).
    pub based_route: Arc<str>,
    /// The matched route as written in the trigger (`/foo/...`).
    pub raw_route: Arc<str>,
    /// What the trailing wildcard matched (see the module docs).
    pub path_info: String,
    /// `:name` parameters in route order.
    pub params: Vec<(String, String)>,
}

impl RouteMatch {
    /// The raw route without its trailing wildcard (`spin-component-route`).
    pub fn component_route(&self) -> &str {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
    }

    /// A match as if `path` had been routed to `component`'s `/...` route;
    /// service chaining uses this, as Spin does.
    pub fn synthetic(component: &str, path: &str) -> Self {
        Self {
            component: component.into(),
            based_route: "/...".into(),
            raw_route: "/...".into(),
            path_info: path.to_owned(),
            params: Vec::new(),
        }
    }
}

impl Router {
    /// Builds the router for `base` and the triggers' routes, returning the
    /// routes that duplicates made unreachable.
    pub fn build<'a>(
        base: &str,
        routes: impl IntoIterator<Item = (&'a str, &'a HttpRoute)>,
    ) -> Result<(Self, Vec<DuplicateRoute>), RouteError> {
        let mut by_route: IndexMap<&str, Target> = IndexMap::new();
        let mut duplicates = Vec::new();
        for (component, route) in routes {
            let HttpRoute::Pattern(raw) = route else {
                continue;
            };
            let based_route = join_base(base, raw);
            let target = Target {
                component: component.into(),
                wildcard: based_route.ends_with("/...") || based_route.ends_with("/*"),
                based_route: based_route.into(),
                raw_route: raw.as_str().into(),
            };
            if let Some(old) = by_route.get_mut(raw.as_str()) {
                duplicates.push(DuplicateRoute {
                    route: display_route(&old.based_route).to_owned(),
                    replaced: old.component.to_string(),
                    effective: component.to_owned(),
                });
                *old = target;
            } else {
                by_route.insert(raw, target);
            }
        }
        let mut finder = routefinder::Router::new();
        for target in by_route.into_values() {
            let spec =
                parse_spec(&finder_spec(&target.based_route)).map_err(|reason| RouteError {
                    route: target.raw_route.to_string(),
                    component: target.component.to_string(),
                    reason,
                })?;
            let Ok(()) = finder.add(spec, target);
        }
        let router = Self {
            finder,
            base: base.to_owned(),
        };
        Ok((router, duplicates))
    }

    /// The component and Spin route information for `path` (no query).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let found = self.finder.best_match(path)?;
        let target = found.handler();
        let captures = found.captures();
        let path_info = if target.wildcard {
            let wildcard = captures.wildcard().unwrap_or_default();
            match (wildcard.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{wildcard}"),
                (false, true) => format!("/{wildcard}/"),
            }
        } else {
            String::new()
        };
        let params = captures
            .params()
            .iter()
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect();
        Some(RouteMatch {
            component: target.component.clone(),
            based_route: target.based_route.clone(),
            raw_route: target.raw_route.clone(),
            path_info,
            params,
        })
    }

    /// The application base path.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Routes in precedence order, for printing at startup.
    pub fn routes(&self) -> impl Iterator<Item = RouteDisplay<'_>> {
        self.finder.iter().map(|(_, t)| RouteDisplay(t))
    }
}

/// A route as `spin up` prints it: the path, and `(wildcard)` for wildcards.
pub struct RouteDisplay<'a>(&'a Target);

impl RouteDisplay<'_> {
    /// The component the route leads to.
    pub fn component(&self) -> &str {
        &self.0.component
    }
}

impl fmt::Display for RouteDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let route = &self.0.based_route;
        match route
            .strip_suffix("/...")
            .or_else(|| route.strip_suffix("/*"))
        {
            Some(prefix) => write!(f, "{prefix} (wildcard)"),
            None => f.write_str(display_route(route)),
        }
    }
}

fn display_route(route: &str) -> &str {
    if route.is_empty() { "/" } else { route }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(base: &str, routes: &[(&str, &str)]) -> Router {
        let routes: Vec<(String, HttpRoute)> = routes
            .iter()
            .map(|(c, r)| {
                let route = if *r == "private" {
                    HttpRoute::Private
                } else {
                    HttpRoute::Pattern((*r).to_owned())
                };
                ((*c).to_owned(), route)
            })
            .collect();
        Router::build(base, routes.iter().map(|(c, r)| (c.as_str(), r)))
            .expect("routes build")
            .0
    }

    /// Component, path info and parameters; `None` for a 404.
    type Expected = Option<(
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    )>;

    /// One row: the app's routes, a request path, and what must come out
    /// (`None` for 404): component, path info, params.
    struct Case {
        name: &'static str,
        base: &'static str,
        routes: &'static [(&'static str, &'static str)],
        path: &'static str,
        expect: Expected,
    }

    const CASES: &[Case] = &[
        Case {
            name: "exact",
            base: "/",
            routes: &[("foo", "/foo"), ("foobar", "/foo/bar")],
            path: "/foo",
            expect: Some(("foo", "", &[])),
        },
        Case {
            name: "exact nested",
            base: "/",
            routes: &[("foo", "/foo"), ("foobar", "/foo/bar")],
            path: "/foo/bar",
            expect: Some(("foobar", "", &[])),
        },
        Case {
            name: "exact does not match below",
            base: "/",
            routes: &[("foo", "/foo")],
            path: "/foo/bar",
            expect: None,
        },
        Case {
            name: "exact ignores trailing slash in route",
            base: "/",
            routes: &[("foo", "/foo/")],
            path: "/foo",
            expect: Some(("foo", "", &[])),
        },
        Case {
            name: "root exact",
            base: "/",
            routes: &[("root", "/")],
            path: "/",
            expect: Some(("root", "", &[])),
        },
        Case {
            name: "root exact is not a wildcard",
            base: "/",
            routes: &[("root", "/")],
            path: "/x",
            expect: None,
        },
        Case {
            name: "catch-all",
            base: "/",
            routes: &[("all", "/...")],
            path: "/a/b/c",
            expect: Some(("all", "/a/b/c", &[])),
        },
        Case {
            name: "catch-all root",
            base: "/",
            routes: &[("all", "/...")],
            path: "/",
            expect: Some(("all", "/", &[])),
        },
        Case {
            name: "wildcard prefix itself",
            base: "/",
            routes: &[("w", "/test/...")],
            path: "/test",
            expect: Some(("w", "", &[])),
        },
        Case {
            name: "wildcard prefix slash",
            base: "/",
            routes: &[("w", "/test/...")],
            path: "/test/",
            expect: Some(("w", "/", &[])),
        },
        Case {
            name: "wildcard below",
            base: "/",
            routes: &[("w", "/test/...")],
            path: "/test/hello",
            expect: Some(("w", "/hello", &[])),
        },
        Case {
            name: "wildcard keeps trailing slash",
            base: "/",
            routes: &[("w", "/test/...")],
            path: "/test/hello/",
            expect: Some(("w", "/hello/", &[])),
        },
        Case {
            name: "wildcard is segment-wise",
            base: "/",
            routes: &[("w", "/test/...")],
            path: "/testing",
            expect: None,
        },
        Case {
            name: "exact beats wildcard",
            base: "/",
            routes: &[("wild", "/..."), ("one", "/one")],
            path: "/one",
            expect: Some(("one", "", &[])),
        },
        Case {
            name: "longest wildcard wins",
            base: "/",
            routes: &[
                ("one", "/one/..."),
                ("two", "/one/two/..."),
                ("three", "/one/two/three/..."),
            ],
            path: "/one/two/three/four",
            expect: Some(("three", "/four", &[])),
        },
        Case {
            name: "longest wildcard wins in any order",
            base: "/",
            routes: &[
                ("three", "/one/two/three/..."),
                ("two", "/one/two/..."),
                ("one", "/one/..."),
            ],
            path: "/one/two/x",
            expect: Some(("two", "/x", &[])),
        },
        Case {
            name: "parameter",
            base: "/",
            routes: &[("user", "/users/:id")],
            path: "/users/42",
            expect: Some(("user", "", &[("id", "42")])),
        },
        Case {
            name: "parameter is one segment",
            base: "/",
            routes: &[("user", "/users/:id")],
            path: "/users/42/posts",
            expect: None,
        },
        Case {
            name: "parameters then wildcard",
            base: "/",
            routes: &[("p", "/1/:two/...")],
            path: "/1/2/3",
            expect: Some(("p", "/3", &[("two", "2")])),
        },
        Case {
            name: "two parameters",
            base: "/",
            routes: &[("p", "/:org/repos/:repo")],
            path: "/acme/repos/web",
            expect: Some(("p", "", &[("org", "acme"), ("repo", "web")])),
        },
        Case {
            name: "exact beats parameter",
            base: "/",
            routes: &[("param", "/users/:id"), ("me", "/users/me")],
            path: "/users/me",
            expect: Some(("me", "", &[])),
        },
        Case {
            name: "parameter beats wildcard",
            base: "/",
            routes: &[("wild", "/users/..."), ("param", "/users/:id")],
            path: "/users/7",
            expect: Some(("param", "", &[("id", "7")])),
        },
        Case {
            name: "base applies",
            base: "/base",
            routes: &[("foo", "/foo")],
            path: "/base/foo",
            expect: Some(("foo", "", &[])),
        },
        Case {
            name: "base hides unprefixed",
            base: "/base",
            routes: &[("foo", "/foo")],
            path: "/foo",
            expect: None,
        },
        Case {
            name: "base with trailing slash",
            base: "/base/",
            routes: &[("w", "/api/...")],
            path: "/base/api/x",
            expect: Some(("w", "/x", &[])),
        },
        Case {
            name: "relative route made absolute",
            base: "/",
            routes: &[("r", "rel")],
            path: "/rel",
            expect: Some(("r", "", &[])),
        },
        Case {
            name: "private is not routable",
            base: "/",
            routes: &[("p", "private")],
            path: "/",
            expect: None,
        },
        Case {
            name: "duplicate: last wins",
            base: "/",
            routes: &[("first", "/dup"), ("second", "/dup")],
            path: "/dup",
            expect: Some(("second", "", &[])),
        },
        Case {
            name: "no routes",
            base: "/",
            routes: &[],
            path: "/",
            expect: None,
        },
    ];

    #[test]
    fn spin_routing_table() {
        let mut failures = Vec::new();
        for case in CASES {
            let got = router(case.base, case.routes).route(case.path);
            let got = got.map(|m| {
                (
                    m.component.to_string(),
                    m.path_info,
                    m.params
                        .into_iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>(),
                )
            });
            let want = case.expect.map(|(c, info, params)| {
                (
                    c.to_owned(),
                    info.to_owned(),
                    params
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>(),
                )
            });
            if got != want {
                failures.push(format!(
                    "{}: {} → got {got:?}, want {want:?}",
                    case.name, case.path
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "routing cases failed:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn match_reports_spin_route_fields() {
        let r = router("/", &[("c", "/foo/:userid/...")]);
        let m = r.route("/foo/42/bar").expect("matches");
        assert_eq!(&*m.based_route, "/foo/:userid/...");
        assert_eq!(&*m.raw_route, "/foo/:userid/...");
        assert_eq!(m.component_route(), "/foo/:userid");
        assert_eq!(m.path_info, "/bar");
        assert_eq!(m.params, vec![("userid".to_owned(), "42".to_owned())]);
    }

    #[test]
    fn duplicates_are_reported() {
        let a = HttpRoute::Pattern("/foo".into());
        let b = HttpRoute::Pattern("/foo".into());
        let (_, dups) = Router::build("/", [("first", &a), ("second", &b)]).expect("builds");
        assert_eq!(
            dups,
            vec![DuplicateRoute {
                route: "/foo".into(),
                replaced: "first".into(),
                effective: "second".into()
            }]
        );
    }

    #[test]
    fn routes_display_like_spin_up() {
        let r = router("/", &[("a", "/..."), ("b", "/api/..."), ("c", "/exact")]);
        let mut shown: Vec<String> = r
            .routes()
            .map(|d| format!("{}: {d}", d.component()))
            .collect();
        shown.sort();
        assert_eq!(
            shown,
            vec!["a:  (wildcard)", "b: /api (wildcard)", "c: /exact"]
        );
    }
}
