//! Spin's request headers: what the host asserts about a routed request
//! (`spin-full-url`, `spin-path-info`, the matched route, the client's
//! address...), set on every request and never taken from the client.

use std::net::SocketAddr;

use http::{HeaderName, HeaderValue, Request, Uri};

use crate::router::RouteMatch;

// The headers Spin sets on every request it routes.
const FULL_URL: HeaderName = HeaderName::from_static("spin-full-url");
const PATH_INFO: HeaderName = HeaderName::from_static("spin-path-info");
const MATCHED_ROUTE: HeaderName = HeaderName::from_static("spin-matched-route");
const BASE_PATH: HeaderName = HeaderName::from_static("spin-base-path");
const RAW_COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-raw-component-route");
const COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-component-route");
const CLIENT_ADDR: HeaderName = HeaderName::from_static("spin-client-addr");

/// Gives the request an absolute URI and Spin's routing headers (replacing
/// any `spin-*` header the caller sent).
pub fn prepare<B>(
    req: Request<B>,
    route: &RouteMatch,
    client: SocketAddr,
    base: &str,
) -> Result<Request<B>, http::Error> {
    let (mut parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_owned();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    // A TLS listener marks its requests; a plain one leaves the scheme out.
    let scheme = parts
        .extensions
        .get::<http::uri::Scheme>()
        .map(|s| s.as_str())
        .or_else(|| parts.uri.scheme_str())
        .unwrap_or("http")
        .to_owned();
    parts.uri = Uri::builder()
        .scheme(scheme.as_str())
        .authority(host.as_str())
        .path_and_query(path_and_query.as_str())
        .build()?;
    let full_url = format!("{scheme}://{host}{path_and_query}");

    // Clients must not be able to forge what the host asserts.
    let forged: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in forged {
        parts.headers.remove(name);
    }
    let mut set = |name: HeaderName, value: &str| -> Result<(), http::Error> {
        let value = HeaderValue::from_str(value).map_err(http::Error::from)?;
        parts.headers.insert(name, value);
        Ok(())
    };
    set(FULL_URL, &full_url)?;
    set(PATH_INFO, &route.path_info)?;
    set(MATCHED_ROUTE, &route.based_route)?;
    set(BASE_PATH, base)?;
    set(RAW_COMPONENT_ROUTE, &route.raw_route)?;
    set(COMPONENT_ROUTE, route.component_route())?;
    set(CLIENT_ADDR, &client.to_string())?;
    for (name, value) in &route.params {
        // Spin upper-cases the name and turns `_` into `-`; header names
        // travel lower-case.
        let name = format!(
            "spin-path-match-{}",
            name.to_ascii_lowercase().replace('_', "-")
        );
        set(HeaderName::from_bytes(name.as_bytes())?, value)?;
    }
    Ok(Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
        req.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn headers_are_set_and_forged_ones_replaced() {
        let route = RouteMatch::synthetic("api", "/api/users/7");
        let req = Request::builder()
            .uri("/api/users/7?x=1")
            .header("host", "example.test:3000")
            .header("spin-full-url", "http://evil/")
            .header("spin-anything", "forged")
            .body(())
            .expect("request");
        let client: SocketAddr = "127.0.0.1:5555".parse().expect("addr");
        let req = prepare(req, &route, client, "/").expect("prepared");
        assert_eq!(
            req.uri().to_string(),
            "http://example.test:3000/api/users/7?x=1"
        );
        assert_eq!(
            header(&req, "spin-full-url"),
            Some("http://example.test:3000/api/users/7?x=1")
        );
        assert_eq!(header(&req, "spin-client-addr"), Some("127.0.0.1:5555"));
        assert_eq!(header(&req, "spin-base-path"), Some("/"));
        assert_eq!(header(&req, "spin-anything"), None);
        assert!(header(&req, "spin-path-info").is_some());
        assert!(header(&req, "spin-matched-route").is_some());
        assert!(header(&req, "spin-component-route").is_some());
        assert!(header(&req, "spin-raw-component-route").is_some());
    }

    #[test]
    fn parameter_headers_are_named_as_spin_names_them() {
        let mut route = RouteMatch::synthetic("api", "/base/a/b");
        route.params = vec![
            ("path_segment".into(), "a".into()),
            ("pathEnd".into(), "b".into()),
        ];
        let req = Request::builder()
            .uri("/base/a/b")
            .body(())
            .expect("request");
        let client: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let req = prepare(req, &route, client, "/").expect("prepared");
        assert_eq!(header(&req, "spin-path-match-path-segment"), Some("a"));
        assert_eq!(header(&req, "spin-path-match-pathend"), Some("b"));
        assert_eq!(header(&req, "spin-path-match-path_segment"), None);
    }

    #[test]
    fn a_host_that_is_not_a_header_value_is_a_bad_request() {
        let route = RouteMatch::synthetic("api", "/");
        let req = Request::builder()
            .uri("/")
            .header("host", "a b")
            .body(())
            .expect("request");
        let client: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert!(prepare(req, &route, client, "/").is_err());
    }
}
