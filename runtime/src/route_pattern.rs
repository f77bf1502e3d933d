//! Route patterns as Spin writes them (`/api/...`, `/users/:id`) and as
//! `routefinder` reads them: joining the base, the wildcard spelling, and
//! the shapes `routefinder` accepts but then panics on. A leaf, so that the
//! manifest can check patterns without depending on the router.

/// Checks a single route pattern (already absolute) the way [`Router::build`]
/// would, for manifest validation.
pub fn check_pattern(route: &str) -> Result<(), String> {
    parse_spec(&finder_spec(&join_base("/", route))).map(|_| ())
}

/// Parses a `routefinder` spec, refusing the shapes it accepts but then
/// panics on while matching a request: a wildcard that is not the last
/// segment (`/*/a`, or a base of `/*`), and a parameter followed by text
/// (which `routefinder`'s byte/char index mix-up makes of routes with
/// non-ASCII characters, e.g. `/:𝄞/b`). Found by tests/fuzz; a route of
/// either shape made every request that reached it a panic.
pub(crate) fn parse_spec(spec: &str) -> Result<routefinder::RouteSpec, String> {
    use routefinder::Segment;
    let parsed = routefinder::RouteSpec::try_from(spec)?;
    let segments = parsed.segments();
    for (i, segment) in segments.iter().enumerate() {
        let next = segments.get(i + 1);
        match segment {
            Segment::Wildcard if next.is_some() => {
                return Err("a wildcard (`/...` or `/*`) must end the route".to_owned());
            }
            Segment::Param(_) if !matches!(next, None | Some(Segment::Slash | Segment::Dot)) => {
                return Err(
                    "a `:name` parameter must be followed by `/`, `.` or the end of the route"
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    Ok(parsed)
}

/// `routefinder` spells the trailing wildcard `/*`.
pub(crate) fn finder_spec(based_route: &str) -> String {
    match based_route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/*"),
        None => based_route.to_owned(),
    }
}

/// Spin's `sanitize_with_base`: base and route each lose one trailing slash,
/// and the route is made absolute.
pub(crate) fn join_base(base: &str, route: &str) -> String {
    let route = if route.starts_with('/') {
        route.to_owned()
    } else {
        format!("/{route}")
    };
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_owned();
    format!("{}{}", strip(base), strip(&route))
}
