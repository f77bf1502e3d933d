//! `trib::allowed_hosts`: the `allowed_outbound_hosts` parser and policy.
//!
//! Input: one entry a line. Rules carry no `Display` to round-trip, so the
//! round trip checked is entry text -> rule -> the destination the text
//! names: a parsed `scheme://host:port` must allow exactly that destination.
//!
//! Promises checked (from the module docs of `trib::allowed_hosts`):
//! - no input panics;
//! - a list parses if and only if each entry does, and an error quotes the
//!   entry at fault;
//! - scheme and host are case-insensitive: lower-casing the ASCII letters
//!   of every entry changes neither the outcome nor the policy;
//! - the list allows the union of what its entries allow;
//! - an entry with a plain host and a port allows that host and port (and,
//!   with a single port, not the next one); `*.suffix` allows a subdomain
//!   and not the bare domain; a missing port means the scheme's default.

use arbitrary::Unstructured;
use trib::allowed_hosts::{AllowedHosts, Destination, default_port};

use crate::driver::Target;

const DICTIONARY: &[&str] = &[
    "://",
    "*://",
    "http://",
    "https://",
    "postgres://",
    "redis://",
    "*",
    "*.",
    ":*",
    ":443",
    ":0",
    ":65535",
    ":65536",
    "..",
    ":8000..8010",
    "[::1]",
    "[",
    "]",
    "self",
    "self.alt",
    "{{ host }}",
    "/",
    "\n",
    "example.com",
    "127.0.0.1",
    "é",
    "İ",
];

pub fn target() -> Target {
    Target {
        name: "allowed_hosts",
        seeds: vec![
            "https://example.com\nhttp://localhost:3000\n*://*:*\n".to_owned(),
            "https://*.example.com\nhttp://127.0.0.1:8000..8010\nhttp://[::1]:8080\n".to_owned(),
            "http://self\npostgres://127.0.0.1:5432\nHTTPS://Example.COM/\n".to_owned(),
        ],
        dictionary: DICTIONARY,
        run,
        generate,
    }
}

fn run(input: &str) -> String {
    let entries: Vec<&str> = input.lines().collect();
    let whole = AllowedHosts::parse(&entries);
    let each: Vec<Result<AllowedHosts, _>> =
        entries.iter().map(|e| AllowedHosts::parse(&[e])).collect();
    assert_eq!(
        whole.is_ok(),
        each.iter().all(Result::is_ok),
        "the list and its entries disagree on validity: {entries:?}"
    );
    if let Err(e) = &whole {
        let message = e.to_string();
        assert!(
            entries
                .iter()
                .any(|entry| message.contains(&format!("{entry:?}"))),
            "error does not quote the entry: {message}"
        );
    }
    let lowered: Vec<String> = entries.iter().map(|e| e.to_ascii_lowercase()).collect();
    let lowered = AllowedHosts::parse(&lowered);
    assert_eq!(
        whole.as_ref().ok(),
        lowered.as_ref().ok(),
        "case changed the policy of {entries:?}"
    );
    assert_eq!(whole.is_ok(), lowered.is_ok(), "case changed validity");
    let mut signature = String::new();
    for (entry, parsed) in entries.iter().zip(&each) {
        match parsed {
            Err(e) => {
                let reason = e.to_string();
                let reason = reason.rsplit(": ").next().unwrap_or_default();
                signature += &format!("E{};", reason.split_whitespace().next().unwrap_or(""));
            }
            Ok(hosts) => {
                signature += &check_entry(entry, hosts);
                if let Ok(all) = &whole {
                    for dest in probes(entry) {
                        if hosts.allows(&dest.as_ref()) {
                            assert!(
                                all.allows(&dest.as_ref()),
                                "the list lost what {entry:?} allows"
                            );
                        }
                    }
                }
            }
        }
    }
    signature
}

/// An owned destination, so probes can be built from text.
struct Dest {
    scheme: String,
    host: String,
    port: u16,
}

impl Dest {
    fn as_ref(&self) -> Destination<'_> {
        Destination {
            scheme: &self.scheme,
            host: &self.host,
            port: self.port,
        }
    }
}

/// What an entry's text names: scheme, host and optional port text, when
/// the entry has the plain shape `scheme://host[:port][/]`.
fn shape(entry: &str) -> Option<(String, String, Option<String>)> {
    let (scheme, rest) = entry.split_once("://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    Some((
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase(),
        port.map(str::to_owned),
    ))
}

/// Destinations near what the entry names.
fn probes(entry: &str) -> Vec<Dest> {
    let Some((scheme, host, port)) = shape(entry) else {
        return Vec::new();
    };
    let scheme = if scheme == "*" {
        "https".to_owned()
    } else {
        scheme
    };
    let host = host
        .strip_prefix("*.")
        .map_or(host.clone(), |h| format!("a.{h}"));
    let port = port
        .and_then(|p| p.split("..").next()?.parse().ok())
        .or_else(|| default_port(&scheme))
        .unwrap_or(80);
    vec![
        Dest {
            scheme: scheme.clone(),
            host: host.clone(),
            port,
        },
        Dest {
            scheme,
            host,
            port: port.wrapping_add(1),
        },
    ]
}

/// An accepted CIDR entry (`scheme://net/len[:port]`, IPv6 bare or in
/// brackets): its network and port text.
fn cidr_shape(entry: &str) -> Option<(String, ipnet::IpNet, Option<String>)> {
    let (scheme, rest) = entry.split_once("://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (addr, after) = match rest.strip_prefix('[') {
        Some(r) => {
            let (addr, after) = r.split_once(']')?;
            (addr, after.strip_prefix('/')?)
        }
        None => rest.split_once('/')?,
    };
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let (len, port) = match after.split_once(':') {
        Some((len, port)) => (len, Some(port.to_owned())),
        None => (after, None),
    };
    let net = ipnet::IpNet::new(addr, len.parse().ok()?).ok()?.trunc();
    Some((scheme.to_ascii_lowercase(), net, port))
}

/// The ports an accepted port text allows, as `first..=last`; `None` for
/// an empty range (`a..a`, which Spin accepts and which matches nothing).
fn port_span(scheme: &str, port: Option<&str>) -> Option<(u16, u16)> {
    Some(match port {
        Some("*") => (0, 65535),
        Some(p) => match p.split_once("..") {
            Some((a, b)) => {
                let a = a.parse::<u16>().expect("accepted range start is a port");
                let b = b.parse::<u16>().expect("accepted range end is a port");
                assert!(a <= b, "accepted a backwards range {p:?}");
                // Spin's ranges exclude their end.
                if a == b {
                    return None;
                }
                (a, b - 1)
            }
            None => {
                let p = p.parse::<u16>().expect("accepted port is a port");
                (p, p)
            }
        },
        None => {
            let p = default_port(scheme).expect("accepted portless entry has a default port");
            (p, p)
        }
    })
}

/// The round trip for an accepted CIDR entry: its network address is
/// allowed on its ports, a name never is.
fn check_cidr(
    entry: &str,
    hosts: &AllowedHosts,
    scheme: &str,
    net: ipnet::IpNet,
    port: Option<&str>,
) -> String {
    let dest_scheme = if scheme == "*" { "https" } else { scheme };
    let allows = |host: &str, port: u16| {
        hosts.allows(&Destination {
            scheme: dest_scheme,
            host,
            port,
        })
    };
    let ip = net.network().to_string();
    match port_span(scheme, port) {
        Some((first, last)) => {
            assert!(
                allows(&ip, first) && allows(&ip, last),
                "{entry:?} does not allow {ip}:{first}..={last}"
            );
            assert!(!allows("cidr.test", first), "{entry:?} allows a name");
            if last < 65535 {
                assert!(
                    !allows(&ip, last + 1),
                    "{entry:?} allows a port past its range"
                );
            }
            "cidr;".to_owned()
        }
        None => {
            assert!(
                !allows(&ip, 0) && !allows(&ip, 80),
                "{entry:?}: an empty range allows"
            );
            "cidr-empty;".to_owned()
        }
    }
}

/// The round trip for one accepted entry; returns its signature.
fn check_entry(entry: &str, hosts: &AllowedHosts) -> String {
    if let Some((scheme, net, port)) = cidr_shape(entry) {
        return check_cidr(entry, hosts, &scheme, net, port.as_deref());
    }
    let Some((scheme, host, port)) = shape(entry) else {
        panic!("accepted {entry:?}, which is not scheme://host[:port]");
    };
    if host == "self" || host == "self.alt" {
        assert!(hosts.allows_self(), "{entry:?} does not allow self");
        return "self;".to_owned();
    }
    assert!(!hosts.allows_self(), "{entry:?} allows self");
    let any_host = host == "*";
    let dest_scheme = if scheme == "*" { "https" } else { &scheme };
    let allows = |host: &str, port: u16| {
        hosts.allows(&Destination {
            scheme: dest_scheme,
            host,
            port,
        })
    };
    let probe_host = match host.strip_prefix("*.") {
        Some(suffix) => format!("api.{suffix}"),
        None if any_host => "anything.test".to_owned(),
        None => host.clone(),
    };
    let Some((first, last)) = port_span(&scheme, port.as_deref()) else {
        let start = port
            .as_deref()
            .and_then(|p| p.split("..").next()?.parse::<u16>().ok())
            .unwrap_or(0);
        assert!(
            !allows(&probe_host, start),
            "{entry:?}: an empty range allows {probe_host}:{start}"
        );
        return "empty;".to_owned();
    };
    if let Some(suffix) = host.strip_prefix("*.") {
        assert!(
            !allows(suffix, first),
            "{entry:?} allows the bare domain {suffix:?}"
        );
    }
    assert!(
        allows(&probe_host, first) && allows(&probe_host, last),
        "{entry:?} does not allow {dest_scheme}://{probe_host}:{first}..{last}"
    );
    if last < 65535 {
        assert!(
            !allows(&probe_host, last + 1),
            "{entry:?} allows port {} past its range",
            last + 1
        );
    }
    if !any_host && !host.starts_with("*.") {
        assert!(
            !allows(&format!("x{probe_host}"), first),
            "{entry:?} allows another host"
        );
    }
    format!(
        "ok{}{}{};",
        if scheme == "*" { "*" } else { "s" },
        if any_host { "*" } else { "h" },
        match port.as_deref() {
            None => "d",
            Some("*") => "*",
            Some(p) if p.contains("..") => "r",
            Some(_) => "p",
        }
    )
}

fn generate(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(1..=4)? {
        let scheme = *u.choose(&[
            "http", "https", "*", "HTTP", "postgres", "redis", "mqtt", "ftp", "", "h t",
        ])?;
        let host = *u.choose(&[
            "example.com",
            "*.example.com",
            "*",
            "self",
            "Self",
            "self.alt",
            "[::1]",
            "::1",
            "127.0.0.1",
            "ex*ample.com",
            "*.",
            "",
            "é.test",
            "a..b",
            "[::1",
            "[::1]x",
            "10.0.0.0/8",
            "127.0.0.1/24",
            "::/1",
            "[fd00::]/8",
            "10.0.0.0/33",
            "example.com/8",
        ])?;
        let port = *u.choose(&[
            "",
            ":80",
            ":*",
            ":0",
            ":65535",
            ":65536",
            ":8000..8010",
            ":9..1",
            ":..",
            ":1..",
            ":-1",
            ":",
            ":+80",
            ":٣",
        ])?;
        let tail = *u.choose(&["", "", "/", "/path", "//"])?;
        s += &format!("{scheme}://{host}{port}{tail}\n");
    }
    Ok(s)
}
