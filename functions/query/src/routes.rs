//! The read API's routes: one list, which both the router and the test
//! that holds the OpenAPI description to it read, so the two cannot drift
//! apart. The API is versioned under `/api/v1/`; the unversioned `/api/`
//! paths (the API before versioning) stay as aliases of the same routes.

/// The OpenAPI 3 description of the read API, served at
/// `/api/v1/openapi.json` so clients and tools can read the API's shapes.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The versioned prefix: every route is served under it.
pub const V1: &str = "/api/v1/";
/// The unversioned prefix, kept so clients of the API before versioning
/// keep working.
pub const ALIAS: &str = "/api/";

/// An endpoint of the read API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Events and unique users per time bucket.
    Counts,
    /// Statistics of a numeric property.
    Aggregate,
    /// The event names seen.
    EventNames,
    /// The top-level property keys seen.
    PropertyKeys,
    /// Raw events, paged.
    Events,
    /// Rejected messages, paged.
    DeadLetters,
    /// Ordered-step conversion.
    Funnel,
    /// Returning users per cohort and period.
    Retention,
    /// Page views by path.
    TopPages,
    /// Page views by referrer.
    TopReferrers,
    /// Events and users by any property's value.
    Breakdown,
    /// This API's OpenAPI description (no token needed).
    OpenApi,
}

impl Route {
    /// Every route, in the order the description lists them.
    pub const ALL: [Route; 12] = [
        Route::Counts,
        Route::Aggregate,
        Route::EventNames,
        Route::PropertyKeys,
        Route::Events,
        Route::DeadLetters,
        Route::Funnel,
        Route::Retention,
        Route::TopPages,
        Route::TopReferrers,
        Route::Breakdown,
        Route::OpenApi,
    ];

    /// The route's path after the prefix.
    pub fn path(self) -> &'static str {
        match self {
            Route::Counts => "counts",
            Route::Aggregate => "aggregate",
            Route::EventNames => "event-names",
            Route::PropertyKeys => "property-keys",
            Route::Events => "events",
            Route::DeadLetters => "dead-letters",
            Route::Funnel => "funnel",
            Route::Retention => "retention",
            Route::TopPages => "top/pages",
            Route::TopReferrers => "top/referrers",
            Route::Breakdown => "breakdown",
            Route::OpenApi => "openapi.json",
        }
    }

    /// The route a request path names, under `/api/v1/` or the `/api/`
    /// alias; `None` for no route.
    pub fn from_path(path: &str) -> Option<Route> {
        let rest = path.strip_prefix(V1).or_else(|| path.strip_prefix(ALIAS))?;
        Route::ALL.into_iter().find(|r| r.path() == rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use serde_json::Value as Json;

    #[test]
    fn routes_answer_under_both_prefixes() {
        for route in Route::ALL {
            assert_eq!(
                Route::from_path(&format!("/api/v1/{}", route.path())),
                Some(route)
            );
            assert_eq!(
                Route::from_path(&format!("/api/{}", route.path())),
                Some(route)
            );
        }
        for missing in [
            "/api/v1/",
            "/api/",
            "/api/v2/counts",
            "/api/v1/top",
            "/api/x/counts",
            "/v1/counts",
            "/api/v1/counts/",
        ] {
            assert_eq!(Route::from_path(missing), None, "{missing}");
        }
    }

    /// Paths of the read API that other components serve: the scheduled
    /// reports (`functions/reports`, which checks its report against the
    /// schema).
    const SERVED_ELSEWHERE: [&str; 1] = ["/api/v1/reports"];

    /// The OpenAPI description lists exactly the routes the router serves
    /// (under `/api/v1/`), each with a `get` operation and a `200`.
    #[test]
    fn the_openapi_description_matches_the_router() {
        let doc: Json = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "not OpenAPI 3"
        );
        let paths = doc["paths"].as_object().expect("paths");
        let described: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
        let routed: BTreeSet<String> = Route::ALL
            .iter()
            .map(|r| format!("/api/v1/{}", r.path()))
            .collect();
        let routed: BTreeSet<&str> = routed
            .iter()
            .map(String::as_str)
            .chain(SERVED_ELSEWHERE)
            .collect();
        assert_eq!(
            described, routed,
            "openapi.json's paths and Route::ALL (with SERVED_ELSEWHERE) differ"
        );
        for (path, item) in paths {
            let get = &item["get"];
            assert!(get.is_object(), "{path}: no get operation");
            assert!(get["responses"]["200"].is_object(), "{path}: no 200 answer");
            // Every `$ref` resolves within the document.
            check_refs(&doc, item, path);
        }
    }

    fn check_refs(doc: &Json, value: &Json, at: &str) {
        match value {
            Json::Object(map) => {
                if let Some(Json::String(target)) = map.get("$ref") {
                    let pointer = target.strip_prefix('#').expect("local $ref");
                    assert!(doc.pointer(pointer).is_some(), "{at}: {target} is missing");
                }
                for v in map.values() {
                    check_refs(doc, v, at);
                }
            }
            Json::Array(items) => items.iter().for_each(|v| check_refs(doc, v, at)),
            _ => {}
        }
    }
}
