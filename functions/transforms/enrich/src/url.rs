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
    /// Parses `scheme://[userinfo@]host[:port][/path][?query][#fragment]`
    /// with the `url` crate (WHATWG URL parsing); `None` for anything else
    /// (relative URLs, no host). The `scheme://` with a host right after it
    /// is required of the text itself, since the URL standard would also
    /// read `https:example.com` or `https:///x` as having a host.
    pub fn parse(text: &str) -> Option<Self> {
        let (_, after_scheme) = text.trim().split_once("://")?;
        if after_scheme.starts_with(['/', '\\']) {
            return None;
        }
        let url = ::url::Url::parse(text).ok()?;
        let host = url.host_str().filter(|h| !h.is_empty())?;
        let path = match url.path() {
            "" => "/",
            path => path,
        };
        Some(Self {
            // Special schemes' hosts come lowercased already; other
            // schemes keep theirs as written.
            host: host.to_ascii_lowercase(),
            path: path.to_owned(),
            query: url.query().map(str::to_owned),
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
