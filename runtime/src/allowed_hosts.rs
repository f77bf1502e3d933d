//! `allowed_outbound_hosts`: which destinations a component may call.
//!
//! Spin's syntax: each entry is `scheme://host[:port]`, where
//! - `scheme` is a scheme name or `*`;
//! - `host` is a name, an IP address, `*` (any host), `*.example.com` (any
//!   subdomain, not the domain itself), or `self` (the app itself, reached
//!   with a relative URL);
//! - `port` is a number, a range `8000..8010`, or `*`; without a port, the
//!   scheme's default port (80 for `http`, 443 for `https`) is the only one
//!   allowed, and a scheme without a known default requires a port.
//!
//! `{{ variable }}` templates are expanded before parsing. A component with
//! no entries may make no outbound requests at all.

use std::fmt;
use std::ops::RangeInclusive;

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    scheme: Option<String>,
    host: HostPattern,
    ports: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Suffix(String),
    SelfApp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(RangeInclusive<u16>),
}

/// A component's parsed allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    rules: Vec<Rule>,
}

/// An entry that cannot be parsed, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed_outbound_hosts entry {entry:?}: {reason}")]
pub struct AllowedHostError {
    entry: String,
    reason: String,
}

/// Where a request is going, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination<'a> {
    /// `http`, `https`, ...
    pub scheme: &'a str,
    /// Host name or IP, lowercase, without brackets.
    pub host: &'a str,
    /// The explicit port or the scheme's default.
    pub port: u16,
}

/// The default port of a scheme Spin knows.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "rediss" => Some(6380),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "mqtt" => Some(1883),
        "mqtts" => Some(8883),
        _ => None,
    }
}

impl AllowedHosts {
    /// Parses already template-expanded entries.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, AllowedHostError> {
        let rules = entries
            .iter()
            .map(|e| parse_rule(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// Whether nothing at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a request to `dest` is allowed.
    pub fn allows(&self, dest: &Destination<'_>) -> bool {
        self.rules.iter().any(|rule| {
            rule.scheme.as_deref().is_none_or(|s| s == dest.scheme)
                && match &rule.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(h) => h == dest.host,
                    HostPattern::Suffix(suffix) => dest.host.ends_with(suffix.as_str()),
                    HostPattern::SelfApp => false,
                }
                && match &rule.ports {
                    PortPattern::Any => true,
                    PortPattern::Range(r) => r.contains(&dest.port),
                }
        })
    }

    /// Whether relative URLs (requests to the app itself) are allowed.
    pub fn allows_self(&self) -> bool {
        self.rules.iter().any(|r| r.host == HostPattern::SelfApp)
    }
}

fn parse_rule(entry: &str) -> Result<Rule, AllowedHostError> {
    let err = |reason: &str| AllowedHostError {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = entry.split_once("://").ok_or_else(|| {
        err("missing scheme: write e.g. \"https://example.com\" or \"*://example.com\"")
    })?;
    if scheme.is_empty() {
        return Err(err("empty scheme"));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(err("paths are not allowed: give only scheme://host[:port]"));
    }
    let (host, port) = split_host_port(rest).map_err(|r| err(&r))?;
    let host = host.to_ascii_lowercase();
    let host = match host.as_str() {
        "" => return Err(err("empty host")),
        "*" => HostPattern::Any,
        "self" | "self.alt" => HostPattern::SelfApp,
        h if h.starts_with("*.") => HostPattern::Suffix(h[1..].to_owned()),
        h if h.contains('*') => {
            return Err(err(
                "a wildcard must be the whole host or its first label (*.example.com)",
            ));
        }
        h => HostPattern::Exact(h.to_owned()),
    };
    let scheme = (scheme != "*").then(|| scheme.to_ascii_lowercase());
    let ports = match port {
        Some("*") => PortPattern::Any,
        Some(p) => match p.split_once("..") {
            Some((a, b)) => {
                let a: u16 = a.parse().map_err(|_| err("bad port range start"))?;
                let b: u16 = b.parse().map_err(|_| err("bad port range end"))?;
                if a > b {
                    return Err(err("port range is backwards"));
                }
                PortPattern::Range(a..=b)
            }
            None => {
                let p: u16 = p
                    .parse()
                    .map_err(|_| err("port must be a number, a range a..b, or *"))?;
                PortPattern::Range(p..=p)
            }
        },
        None => match scheme.as_deref() {
            Some(s) => match default_port(s) {
                Some(p) => PortPattern::Range(p..=p),
                None if host == HostPattern::SelfApp => PortPattern::Any,
                None => {
                    return Err(err(
                        "this scheme has no default port: add one (e.g. :8080) or :*",
                    ));
                }
            },
            None if host == HostPattern::SelfApp => PortPattern::Any,
            None => {
                return Err(err(
                    "a wildcard scheme needs an explicit port (e.g. *://example.com:443 or :*)",
                ));
            }
        },
    };
    Ok(Rule {
        scheme,
        host,
        ports,
    })
}

/// Splits `host[:port]`, with IPv6 hosts in brackets.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed [ in IPv6 host")?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err("unexpected text after ]".to_owned()),
        };
    }
    Ok(match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    })
}

impl fmt::Display for Destination<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(scheme: &'static str, host: &'static str, port: u16) -> Destination<'static> {
        Destination { scheme, host, port }
    }

    #[test]
    fn spin_allow_list_table() {
        // (entries, destination, allowed)
        let cases: &[(&[&str], Destination<'_>, bool)] = &[
            (&[], dest("https", "example.com", 443), false),
            (
                &["https://example.com"],
                dest("https", "example.com", 443),
                true,
            ),
            (
                &["https://example.com"],
                dest("http", "example.com", 80),
                false,
            ),
            (
                &["https://example.com"],
                dest("https", "example.com", 8443),
                false,
            ),
            (
                &["https://example.com"],
                dest("https", "api.example.com", 443),
                false,
            ),
            (
                &["https://*.example.com"],
                dest("https", "api.example.com", 443),
                true,
            ),
            (
                &["https://*.example.com"],
                dest("https", "example.com", 443),
                false,
            ),
            (
                &["http://localhost:3000"],
                dest("http", "localhost", 3000),
                true,
            ),
            (
                &["http://localhost:3000"],
                dest("http", "localhost", 3001),
                false,
            ),
            (
                &["http://127.0.0.1:*"],
                dest("http", "127.0.0.1", 12345),
                true,
            ),
            (
                &["http://127.0.0.1:8000..8010"],
                dest("http", "127.0.0.1", 8005),
                true,
            ),
            (
                &["http://127.0.0.1:8000..8010"],
                dest("http", "127.0.0.1", 8011),
                false,
            ),
            (&["*://*:*"], dest("https", "anything.test", 1), true),
            (
                &["*://example.com:443"],
                dest("https", "example.com", 443),
                true,
            ),
            (&["http://[::1]:8080"], dest("http", "::1", 8080), true),
            (
                &["HTTPS://Example.COM"],
                dest("https", "example.com", 443),
                true,
            ),
            (
                &["http://*.spin.internal"],
                dest("http", "api.spin.internal", 80),
                true,
            ),
            (&["http://self"], dest("http", "self", 80), false),
        ];
        for (entries, d, want) in cases {
            let hosts = AllowedHosts::parse(entries).expect("valid entries");
            assert_eq!(hosts.allows(d), *want, "{entries:?} → {d}");
        }
    }

    #[test]
    fn self_allows_relative_requests() {
        assert!(
            AllowedHosts::parse(&["http://self"])
                .expect("valid")
                .allows_self()
        );
        assert!(
            !AllowedHosts::parse(&["http://example.com"])
                .expect("valid")
                .allows_self()
        );
    }

    #[test]
    fn bad_entries_are_explained() {
        for (entry, reason) in [
            ("example.com", "missing scheme"),
            ("https://example.com/path", "paths are not allowed"),
            ("https://ex*ample.com", "wildcard"),
            ("*://example.com", "explicit port"),
            ("ftp://example.com", "no default port"),
            ("http://example.com:99999", "port must be"),
            ("http://example.com:9..1", "backwards"),
        ] {
            let e = AllowedHosts::parse(&[entry]).expect_err(entry).to_string();
            assert!(e.contains(reason), "{entry}: {e}");
        }
    }
}
