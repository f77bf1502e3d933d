//! The parts of an absolute URL that `enrich` derives.

/// Host, path and query of an absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    /// Lowercase host without port or user info (`[::1]` for IPv6).
    pub host: String,
    /// The path, `/` when empty; not decoded.
    pub path: String,
    /// The query without `?`, if there is a `?`; not decoded.
    pub query: Option<String>,
}

impl UrlParts {
    /// Parses `scheme://[userinfo@]host[:port][/path][?query][#fragment]`;
    /// `None` for anything else (relative URLs, no host).
    pub fn parse(url: &str) -> Option<Self> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://")?;
        let mut chars = scheme.chars();
        if !chars.next()?.is_ascii_alphabetic()
            || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return None;
        }
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if host_port.starts_with('[') {
            let end = host_port.find(']')?;
            &host_port[..=end]
        } else {
            host_port.split_once(':').map_or(host_port, |(h, _)| h)
        };
        if host.is_empty() {
            return None;
        }
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (tail, None),
        };
        Some(Self {
            host: host.to_ascii_lowercase(),
            path: if path.is_empty() { "/" } else { path }.to_owned(),
            query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> Option<(String, String, Option<String>)> {
        UrlParts::parse(url).map(|p| (p.host, p.path, p.query))
    }

    fn some(
        host: &str,
        path: &str,
        query: Option<&str>,
    ) -> Option<(String, String, Option<String>)> {
        Some((host.into(), path.into(), query.map(Into::into)))
    }

    #[test]
    fn absolute_urls() {
        assert_eq!(parts("https://example.com"), some("example.com", "/", None));
        assert_eq!(
            parts("https://example.com/"),
            some("example.com", "/", None)
        );
        assert_eq!(
            parts("https://user:pw@WWW.Example.com:8080/a/b?x=1&y=2#frag"),
            some("www.example.com", "/a/b", Some("x=1&y=2"))
        );
        assert_eq!(
            parts("http://example.com?q"),
            some("example.com", "/", Some("q"))
        );
        assert_eq!(
            parts("http://example.com/p?"),
            some("example.com", "/p", Some(""))
        );
        assert_eq!(
            parts("http://example.com/p#a?b"),
            some("example.com", "/p", None)
        );
        assert_eq!(parts("http://[::1]:3000/x"), some("[::1]", "/x", None));
        assert_eq!(parts("  HTTP://a.b/C  "), some("a.b", "/C", None));
    }

    #[test]
    fn not_absolute_urls() {
        assert_eq!(parts("/path?q=1"), None);
        assert_eq!(parts("example.com/path"), None);
        assert_eq!(parts("https:///path"), None);
        assert_eq!(parts("://example.com"), None);
        assert_eq!(parts("1http://example.com"), None);
        assert_eq!(parts(""), None);
    }
}
