//! The CGI half of Wagi: what a request becomes for a program (arguments
//! and environment variables, as Spin's Wagi executor sets them) and what
//! the program's standard output becomes for the client.
//!
//! The request reaching here has already been through
//! [`crate::spin_headers::prepare`], so its `spin-*` headers carry what the
//! host asserts (full URL, path info, matched route...); Wagi hands the same
//! facts over under its own names (`X_FULL_URL`, `PATH_INFO`, ...).

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, StatusCode};

/// What Spin calls the CGI version it follows.
const GATEWAY_INTERFACE: &str = "CGI/1.1";
/// What Spin reports as the server software.
const SERVER_SOFTWARE: &str = "WAGI/1";

/// Why a program's output is not an HTTP response.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CgiError {
    /// Nothing was written to standard output.
    #[error(
        "the component has executor = {{ type = \"wagi\" }} but wrote nothing to stdout (check the trigger's `executor`)"
    )]
    NoOutput,
    /// The header block names neither a content type, a status nor a
    /// location (CGI requires one).
    #[error(
        "the CGI output has no Content-Type, Status or Location header before its first blank line"
    )]
    NoResponseHeader,
    /// The header block is not UTF-8.
    #[error("the CGI output's headers are not UTF-8")]
    NotUtf8,
    /// A header value cannot be sent in HTTP.
    #[error("the CGI output's {name} header has a value that cannot be sent in HTTP")]
    BadHeaderValue {
        /// The header's name.
        name: String,
    },
}

/// The program's arguments: `argv` split on whitespace, with the token
/// `${SCRIPT_NAME}` replaced by the request path and `${ARGS}` by the
/// query's decoded keys and non-empty values in order (Spin's default,
/// `${SCRIPT_NAME} ${ARGS}`, gives what Spin passes).
pub fn args(argv: &str, path: &str, query: Option<&str>) -> Vec<String> {
    let query_args = || {
        form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .flat_map(|(k, v)| {
                let value = (!v.is_empty()).then(|| v.into_owned());
                std::iter::once(k.into_owned()).chain(value)
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for token in argv.split_whitespace() {
        match token {
            "${SCRIPT_NAME}" => out.push(path.to_owned()),
            "${ARGS}" => out.extend(query_args()),
            other => out.push(
                other
                    .replace("${SCRIPT_NAME}", path)
                    .replace("${ARGS}", &query_args().join(" ")),
            ),
        }
    }
    out
}

/// The environment variables of one request (RFC 3875's meta-variables,
/// Wagi's `X_*` ones and every request header as `HTTP_*`).
pub fn environment(parts: &Parts, body_len: usize) -> Vec<(String, String)> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let (server_name, server_port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && !port.contains(']') => (name, port),
        _ => (host, "80"),
    };
    let client_ip = header("spin-client-addr")
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let path_info = header("spin-path-info");
    let decoded_path_info = percent_encoding::percent_decode_str(path_info)
        .decode_utf8_lossy()
        .into_owned();
    let matched_route = header("spin-matched-route");
    let script_name = matched_route.strip_suffix("/...").unwrap_or(matched_route);
    let mut env: Vec<(String, String)> = [
        ("AUTH_TYPE", ""),
        ("CONTENT_LENGTH", &body_len.to_string()),
        ("CONTENT_TYPE", header("content-type")),
        ("GATEWAY_INTERFACE", GATEWAY_INTERFACE),
        ("PATH_INFO", path_info),
        ("PATH_TRANSLATED", &decoded_path_info),
        ("QUERY_STRING", parts.uri.query().unwrap_or("")),
        ("REMOTE_ADDR", &client_ip),
        ("REMOTE_HOST", &client_ip),
        ("REMOTE_USER", ""),
        ("REQUEST_METHOD", parts.method.as_str()),
        ("SCRIPT_NAME", script_name),
        ("SERVER_NAME", server_name),
        ("SERVER_PORT", server_port),
        ("SERVER_PROTOCOL", &format!("{:?}", parts.version)),
        ("SERVER_SOFTWARE", SERVER_SOFTWARE),
        ("X_BASE_PATH", header("spin-base-path")),
        ("X_CLIENT_ADDR", header("spin-client-addr")),
        ("X_COMPONENT_ROUTE", header("spin-component-route")),
        ("X_FULL_URL", header("spin-full-url")),
        ("X_MATCHED_ROUTE", matched_route),
        ("X_RAW_COMPONENT_ROUTE", header("spin-raw-component-route")),
        ("X_RAW_PATH_INFO", path_info),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in &parts.headers {
        let name = name.as_str();
        let value = value.to_str().unwrap_or("CORRUPT VALUE").to_owned();
        if let Some(param) = name.strip_prefix("spin-path-match-") {
            env.push((format!("X_PATH_MATCH_{}", meta_name(param)), value));
        } else if name.starts_with("spin-") {
            // Already given above under Wagi's names.
        } else if !matches!(name, "authorization" | "connection") {
            // RFC 3875 4.1.18: credentials and hop-by-hop fields stay out.
            env.push((format!("HTTP_{}", meta_name(name)), value));
        }
    }
    env
}

/// A header name as a meta-variable: upper case, `-` as `_`.
fn meta_name(header: &str) -> String {
    header.to_ascii_uppercase().replace('-', "_")
}

/// The response a CGI program's standard output describes: header lines
/// (`Status`, `Content-Type`, `Location` and any others), a blank line,
/// then the body. `Location` without `Status` is a 302, as in Spin.
pub fn response(stdout: Bytes) -> Result<Response<Bytes>, CgiError> {
    if stdout.is_empty() {
        return Err(CgiError::NoOutput);
    }
    let (head, body) = split_head(&stdout).ok_or(CgiError::NoResponseHeader)?;
    let head = std::str::from_utf8(head).map_err(|_| CgiError::NotUtf8)?;
    let mut resp = Response::new(stdout.slice(body..));
    let mut status = None;
    let mut location = false;
    let mut content_type = false;
    for line in head.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            tracing::warn!(line, "CGI output: a header line without ':' is ignored");
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        let bad_value = || CgiError::BadHeaderValue {
            name: name.to_owned(),
        };
        match name.to_ascii_lowercase().as_str() {
            "status" => {
                // `Status: CODE [REASON]`; an unreadable code is the
                // gateway's fault to report.
                let code = value.split_whitespace().next().unwrap_or("");
                status = Some(code.parse::<StatusCode>().unwrap_or_else(|_| {
                    tracing::warn!(status = value, "CGI output: unreadable Status; 502");
                    StatusCode::BAD_GATEWAY
                }));
            }
            lower => {
                location |= lower == "location";
                content_type |= lower == "content-type";
                let Ok(name) = HeaderName::from_bytes(lower.as_bytes()) else {
                    tracing::warn!(
                        header = name,
                        "CGI output: a header with an invalid name is ignored"
                    );
                    continue;
                };
                let value = HeaderValue::from_str(value).map_err(|_| bad_value())?;
                resp.headers_mut().append(name, value);
            }
        }
    }
    *resp.status_mut() = match (status, location, content_type) {
        (Some(status), _, _) => status,
        (None, true, _) => StatusCode::FOUND,
        (None, false, true) => StatusCode::OK,
        (None, false, false) => return Err(CgiError::NoResponseHeader),
    };
    Ok(resp)
}

/// The header block and the offset of the body: everything before the
/// first blank line (a `\r` before a `\n` is ignored), and what follows it.
fn split_head(out: &[u8]) -> Option<(&[u8], usize)> {
    let mut line_start = 0;
    for (i, &b) in out.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = &out[line_start..i];
        if line.is_empty() || line == b"\r" {
            return Some((&out[..line_start], i + 1));
        }
        line_start = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).expect("request").into_parts().0
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> &'a str {
        let found: Vec<&str> = env
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{key} set once in {env:?}");
        found[0]
    }

    #[test]
    fn args_follow_spins_default_argv() {
        let argv = "${SCRIPT_NAME} ${ARGS}";
        assert_eq!(
            args(argv, "/cgi/run", Some("a=1&flag&b=two%20words&c=x+y")),
            ["/cgi/run", "a", "1", "flag", "b", "two words", "c", "x y"]
        );
        assert_eq!(args(argv, "/", None), ["/"]);
        assert_eq!(
            args("prog --name=${SCRIPT_NAME} ${ARGS}", "/p", Some("k=v")),
            ["prog", "--name=/p", "k", "v"]
        );
    }

    #[test]
    fn environment_names_the_request_as_cgi_does() {
        let p = parts(
            "http://example.test:3000/cgi/a%20b?x=1",
            &[
                ("host", "example.test:3000"),
                ("content-type", "text/csv"),
                ("x-trace-id", "t-1"),
                ("authorization", "Bearer secret"),
                ("spin-full-url", "http://example.test:3000/cgi/a%20b?x=1"),
                ("spin-path-info", "/a%20b"),
                ("spin-matched-route", "/cgi/..."),
                ("spin-component-route", "/cgi"),
                ("spin-raw-component-route", "/cgi/..."),
                ("spin-base-path", "/"),
                ("spin-client-addr", "127.0.0.1:5555"),
                ("spin-path-match-user-id", "42"),
            ],
        );
        let env = environment(&p, 12);
        assert_eq!(get(&env, "REQUEST_METHOD"), "POST");
        assert_eq!(get(&env, "CONTENT_LENGTH"), "12");
        assert_eq!(get(&env, "CONTENT_TYPE"), "text/csv");
        assert_eq!(get(&env, "QUERY_STRING"), "x=1");
        assert_eq!(get(&env, "SCRIPT_NAME"), "/cgi");
        assert_eq!(get(&env, "PATH_INFO"), "/a%20b");
        assert_eq!(get(&env, "X_RAW_PATH_INFO"), "/a%20b");
        assert_eq!(get(&env, "PATH_TRANSLATED"), "/a b");
        assert_eq!(get(&env, "SERVER_NAME"), "example.test");
        assert_eq!(get(&env, "SERVER_PORT"), "3000");
        assert_eq!(get(&env, "SERVER_PROTOCOL"), "HTTP/1.1");
        assert_eq!(get(&env, "REMOTE_ADDR"), "127.0.0.1");
        assert_eq!(get(&env, "X_CLIENT_ADDR"), "127.0.0.1:5555");
        assert_eq!(get(&env, "X_MATCHED_ROUTE"), "/cgi/...");
        assert_eq!(
            get(&env, "X_FULL_URL"),
            "http://example.test:3000/cgi/a%20b?x=1"
        );
        assert_eq!(get(&env, "X_PATH_MATCH_USER_ID"), "42");
        assert_eq!(get(&env, "HTTP_X_TRACE_ID"), "t-1");
        assert_eq!(get(&env, "HTTP_HOST"), "example.test:3000");
        assert_eq!(get(&env, "GATEWAY_INTERFACE"), "CGI/1.1");
        assert!(
            !env.iter()
                .any(|(k, v)| k == "HTTP_AUTHORIZATION" || v.contains("secret")),
            "credentials stay out: {env:?}"
        );
        assert!(!env.iter().any(|(k, _)| k.starts_with("HTTP_SPIN_")));
    }

    #[test]
    fn a_host_without_a_port_is_port_80() {
        let env = environment(&parts("/", &[("host", "example.test")]), 0);
        assert_eq!(get(&env, "SERVER_NAME"), "example.test");
        assert_eq!(get(&env, "SERVER_PORT"), "80");
    }

    #[test]
    fn output_becomes_a_response() {
        let resp = response(Bytes::from_static(
            b"Content-Type: text/plain\r\nX-One: 1\r\nX-One: 2\r\n\r\nhello\n\nworld",
        ))
        .expect("response");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/plain");
        assert_eq!(resp.headers().get_all("x-one").iter().count(), 2);
        assert_eq!(resp.body().as_ref(), b"hello\n\nworld");
    }

    #[test]
    fn status_and_location_set_the_code() {
        let teapot = response(Bytes::from_static(b"Status: 418 I'm a teapot\n\n"))
            .expect("status alone is enough");
        assert_eq!(teapot.status(), StatusCode::IM_A_TEAPOT);
        let moved = response(Bytes::from_static(b"Location: /elsewhere\n\n")).expect("location");
        assert_eq!(moved.status(), StatusCode::FOUND);
        assert_eq!(moved.headers()["location"], "/elsewhere");
        let created = response(Bytes::from_static(b"Location: /new\nStatus: 201\n\n"))
            .expect("location with status");
        assert_eq!(created.status(), StatusCode::CREATED);
        let bad = response(Bytes::from_static(b"Status: banana\n\n")).expect("bad status");
        assert_eq!(bad.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn output_that_is_not_a_response_is_an_error() {
        let err =
            |out: &'static [u8]| response(Bytes::from_static(out)).expect_err("not a response");
        assert_eq!(err(b""), CgiError::NoOutput);
        assert_eq!(err(b"just text, no headers"), CgiError::NoResponseHeader);
        assert_eq!(err(b"X-Only: 1\n\nbody"), CgiError::NoResponseHeader);
        assert_eq!(
            err(b"Content-Type: a\x01b\n\n"),
            CgiError::BadHeaderValue {
                name: "Content-Type".into()
            }
        );
    }
}
