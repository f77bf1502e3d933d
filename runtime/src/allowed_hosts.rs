//! `allowed_outbound_hosts`: which destinations a component may call.
//!
//! Spin's syntax: each entry is `scheme://host[:port]`, where
//! - `scheme` is a scheme name or `*`;
//! - `host` is a name, an IP address, a CIDR network (`10.0.0.0/8`,
//!   `ff00::/8` as Spin writes IPv6 ones, or `[ff00::]/8`), `*` (any host),
//!   `*.example.com` (any subdomain, not the domain itself), or `self` (the
//!   app itself, reached with a relative URL);
//! - `port` is a number, a range `8000..8010` (which, as in Spin, excludes
//!   its end: 8000 to 8009), or `*`; without a port, the scheme's default
//!   port (80 for `http`, 443 for `https`) is the only one allowed, and a
//!   scheme without a known default requires a port.
//!
//! A CIDR network matches only destinations given as an IP address inside
//! it (host bits in the entry are dropped, as Spin does: `127.0.0.1/24` is
//! `127.0.0.0/24`); a destination given by name never matches one, since
//! no name is looked up to decide. A plain IP address matches that address
//! only (`::1` and `0:0::1` are the same address).
//!
//! `{{ variable }}` templates are expanded before parsing (so
//! `"tcp://{{ net }}/{{ len }}:{{ port }}"` is a CIDR entry once expanded).
//! A component with no entries may make no outbound requests at all.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;

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
    /// `10.0.0.0/8`: IP destinations inside the network.
    Cidr(IpNet),
    SelfApp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    One(u16),
    /// `a..b`: from `a` up to but not including `b`, as in Spin.
    Range(Range<u16>),
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

/// A destination the allow-list does not admit; its text is what guests
/// and the log are told (the destination holds no credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {0} is not permitted: add it to the component's allowed_outbound_hosts")]
pub struct NotPermitted(String);

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
                    HostPattern::Exact(h) => h == dest.host || same_ip(h, dest.host),
                    HostPattern::Suffix(suffix) => dest.host.ends_with(suffix.as_str()),
                    HostPattern::Cidr(net) => dest
                        .host
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| net.contains(&ip)),
                    HostPattern::SelfApp => false,
                }
                && match &rule.ports {
                    PortPattern::Any => true,
                    PortPattern::One(p) => *p == dest.port,
                    PortPattern::Range(r) => r.contains(&dest.port),
                }
        })
    }

    /// [`AllowedHosts::allows`] as a result, for the APIs that tell the
    /// guest why.
    pub fn permit(&self, dest: &Destination<'_>) -> Result<(), NotPermitted> {
        if self.allows(dest) {
            Ok(())
        } else {
            Err(NotPermitted(dest.to_string()))
        }
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
    let (host, port) = match split_cidr(rest) {
        Some(cidr) => {
            let (net, port) = cidr.map_err(|r| err(&r))?;
            (HostPattern::Cidr(net), port)
        }
        None if rest.contains('/') => {
            return Err(err("paths are not allowed: give only scheme://host[:port]"));
        }
        None => {
            let (host, port) = split_host_port(rest).map_err(|r| err(&r))?;
            (host_pattern(host).map_err(err)?, port)
        }
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
                // `a..a` is empty, as in Spin: accepted, matching nothing.
                PortPattern::Range(a..b)
            }
            None => {
                let p: u16 = p
                    .parse()
                    .map_err(|_| err("port must be a number, a range a..b, or *"))?;
                PortPattern::One(p)
            }
        },
        None => match scheme.as_deref() {
            Some(s) => match default_port(s) {
                Some(p) => PortPattern::One(p),
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

/// Whether two host texts are the same IP address written differently.
fn same_ip(a: &str, b: &str) -> bool {
    matches!((a.parse::<IpAddr>(), b.parse::<IpAddr>()), (Ok(a), Ok(b)) if a == b)
}

/// A name, IP, wildcard or `self` host.
fn host_pattern(host: &str) -> Result<HostPattern, &'static str> {
    let host = host.to_ascii_lowercase();
    Ok(match host.as_str() {
        "" => return Err("empty host"),
        "*" => HostPattern::Any,
        "self" | "self.alt" => HostPattern::SelfApp,
        h if h.starts_with("*.") => HostPattern::Suffix(h[1..].to_owned()),
        h if h.contains('*') => {
            return Err("a wildcard must be the whole host or its first label (*.example.com)");
        }
        h => HostPattern::Exact(h.to_owned()),
    })
}

/// `net/len[:port]` (`ff00::/8:80` for IPv6, as Spin writes it, or
/// `[ff00::]/8:80`): `None` when `s` is no CIDR entry (the part before the
/// `/` is not an IP address).
fn split_cidr(s: &str) -> Option<Result<(IpNet, Option<&str>), String>> {
    let (addr, after) = match s.strip_prefix('[') {
        Some(rest) => {
            let (addr, after) = rest.split_once(']')?;
            (addr, after.strip_prefix('/')?)
        }
        None => s.split_once('/')?,
    };
    addr.parse::<IpAddr>().ok()?;
    let (len, port) = match after.split_once(':') {
        Some((len, port)) => (len, Some(port)),
        None => (after, None),
    };
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        format!("{addr}/{len}")
            .parse::<IpNet>()
            .map(|net| (net.trunc(), port))
            .map_err(|_| format!("bad network prefix length /{len} for {addr}")),
    )
}

/// Splits `host[:port]`, with IPv6 hosts in brackets.
pub(crate) fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
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
                dest("http", "127.0.0.1", 8000),
                true,
            ),
            (
                &["http://127.0.0.1:8000..8010"],
                dest("http", "127.0.0.1", 8009),
                true,
            ),
            // A range excludes its end, as in Spin.
            (
                &["http://127.0.0.1:8000..8010"],
                dest("http", "127.0.0.1", 8010),
                false,
            ),
            (
                &["http://127.0.0.1:8000..8010"],
                dest("http", "127.0.0.1", 8011),
                false,
            ),
            (
                &["http://127.0.0.1:8000..8000"],
                dest("http", "127.0.0.1", 8000),
                false,
            ),
            (
                &["http://127.0.0.1:65535"],
                dest("http", "127.0.0.1", 65535),
                true,
            ),
            (&["http://[::1]:8080"], dest("http", "0:0::1", 8080), true),
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
            ("*://127.0.0.0/33:80", "prefix length /33"),
            ("*://[fd00::]/129:80", "prefix length /129"),
            ("*://127.0.0.0/24", "explicit port"),
            ("tcp://10.0.0.0/8", "no default port"),
            ("http://[::1]:80/x", "paths are not allowed"),
            ("http://[::1]x", "unexpected text after ]"),
            ("http://127.0.0.1/x", "paths are not allowed"),
            ("http://example.com/24:80", "paths are not allowed"),
        ] {
            let e = AllowedHosts::parse(&[entry]).expect_err(entry).to_string();
            assert!(e.contains(reason), "{entry}: {e}");
        }
    }

    #[test]
    fn cidr_hosts_match_ip_destinations_only() {
        // (entry, destination, allowed)
        let cases: &[(&str, Destination<'_>, bool)] = &[
            ("*://127.0.0.0/24:7", dest("tcp", "127.0.0.1", 7), true),
            ("*://127.0.0.0/24:7", dest("udp", "127.0.0.255", 7), true),
            ("*://127.0.0.0/24:7", dest("tcp", "127.0.1.1", 7), false),
            ("*://127.0.0.0/24:7", dest("tcp", "127.0.0.1", 8), false),
            // Host bits are dropped, as Spin does.
            ("*://127.0.0.1/24:7", dest("tcp", "127.0.0.9", 7), true),
            (
                "tcp://10.0.0.0/8:5432",
                dest("tcp", "10.200.3.4", 5432),
                true,
            ),
            (
                "tcp://10.0.0.0/8:5432",
                dest("udp", "10.200.3.4", 5432),
                false,
            ),
            (
                "tcp://10.0.0.0/8:5432",
                dest("tcp", "11.0.0.1", 5432),
                false,
            ),
            // A name never matches a network, even one that would resolve
            // inside it.
            ("*://127.0.0.0/8:*", dest("tcp", "localhost", 80), false),
            ("*://0.0.0.0/0:*", dest("https", "example.com", 443), false),
            ("*://0.0.0.0/0:*", dest("https", "192.0.2.1", 443), true),
            // IPv6: Spin's unbracketed form, and in brackets.
            ("*://ff00::/8:80", dest("http", "ff02::1", 80), true),
            ("*://ff00::/8:80", dest("http", "fe80::1", 80), false),
            (
                "*://[fd00::]/8:443",
                dest("https", "fd12:3456::1", 443),
                true,
            ),
            ("*://[fd00::]/8:443", dest("https", "fc00::1", 443), false),
            ("*://[fd00::]/8:443", dest("https", "10.0.0.1", 443), false),
            ("*://::1/128:*", dest("tcp", "::1", 1), true),
            ("*://127.0.0.0/8:*", dest("tcp", "::1", 1), false),
            // Default ports and trailing slashes work as for names.
            ("http://10.0.0.0/8", dest("http", "10.1.1.1", 80), true),
            ("http://10.0.0.0/8/", dest("http", "10.1.1.1", 80), true),
            ("http://10.0.0.0/8", dest("http", "10.1.1.1", 81), false),
            (
                "*://10.0.0.0/8:1000..1002",
                dest("tcp", "10.0.0.1", 1001),
                true,
            ),
            (
                "*://10.0.0.0/8:1000..1002",
                dest("tcp", "10.0.0.1", 1002),
                false,
            ),
            // A plain IP still matches exactly.
            ("*://127.0.0.1:7", dest("tcp", "127.0.0.2", 7), false),
        ];
        for (entry, d, want) in cases {
            let hosts = AllowedHosts::parse(&[entry]).expect(entry);
            assert_eq!(hosts.allows(d), *want, "{entry} → {d}");
        }
    }

    /// Entries built from variables pass manifest validation unexpanded and
    /// are parsed once expanded, CIDR ones included.
    #[test]
    fn entries_from_variables_are_parsed_after_expansion() {
        let manifest = r#"spin_manifest_version = 2
[application]
name = "net"
[variables]
prefix = { default = "10.0.0.0" }
len = { required = true }
port = { default = "5432" }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
allowed_outbound_hosts = ["tcp://{{ prefix }}/{{ len }}:{{ port }}", "*://{{ prefix }}:1..{{ port }}"]
"#;
        let app = crate::manifest::parse(std::path::Path::new("spin.toml"), manifest)
            .expect("an unexpanded CIDR entry passes validation");
        let providers = crate::variables::Providers::fixed([
            ("prefix".to_owned(), "127.0.0.0".to_owned()),
            ("len".to_owned(), "8".to_owned()),
        ]);
        let resolved = crate::variables::resolve(&app, &providers).expect("resolves");
        let hosts = crate::loader::allowed_hosts(&resolved, &app.components["c"]).expect("parses");
        assert!(hosts.allows(&dest("tcp", "127.1.2.3", 5432)));
        assert!(!hosts.allows(&dest("tcp", "127.1.2.3", 5433)));
        assert!(!hosts.allows(&dest("udp", "127.1.2.3", 5432)));
        assert!(!hosts.allows(&dest("tcp", "localhost", 5432)));
        assert!(hosts.allows(&dest("udp", "127.0.0.0", 5431)));
        assert!(!hosts.allows(&dest("udp", "127.0.0.0", 5432)));

        let bad = crate::variables::Providers::fixed([("len".to_owned(), "40".to_owned())]);
        let resolved = crate::variables::resolve(&app, &bad).expect("resolves");
        let e = crate::loader::allowed_hosts(&resolved, &app.components["c"])
            .expect_err("a /40 IPv4 network")
            .to_string();
        assert!(e.contains("prefix length /40"), "{e}");
    }
}
