//! Spin 1's `allowed_http_hosts`, which Spin still accepts in version 2
//! manifests: each entry becomes the `allowed_outbound_hosts` entries Spin
//! converts it to (`http://` and `https://` for a host, `http://self`,
//! everything for `insecure:allow-all`), with a warning.

/// Spin 1's "allow everything" entry.
const ALLOW_ALL: &str = "insecure:allow-all";

/// The `allowed_outbound_hosts` entries for Spin 1 `entries`, or why one of
/// them is not a host.
pub fn convert(entries: &[String]) -> Result<Vec<String>, String> {
    if entries.iter().any(|e| e == ALLOW_ALL) {
        return Ok(vec![
            "http://*:*".into(),
            "https://*:*".into(),
            "http://self".into(),
        ]);
    }
    let mut out = Vec::new();
    for entry in entries {
        let (host, port) = host_and_port(entry)?;
        if host == "self" {
            out.push("http://self".into());
            continue;
        }
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        out.push(format!("http://{host}{port}"));
        out.push(format!("https://{host}{port}"));
    }
    Ok(out)
}

/// `host[:port]` from `http(s)://host[:port][/]` or a bare `host[:port]`.
fn host_and_port(entry: &str) -> Result<(String, Option<u16>), String> {
    let rest = match entry.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        Some(_) => return Err(format!("{entry} isn't a valid host or host:port string")),
        None => entry,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(format!(
            "{entry} contains a path, should be host and optional port only"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port))
            if !host.ends_with(':') && (!host.contains(':') || host.ends_with(']')) =>
        {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{entry} isn't a valid host or host:port string"))?;
            (host, Some(port))
        }
        _ => (rest, None),
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    if !valid {
        return Err(format!("{entry} isn't a valid host or host:port string"));
    }
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(entries: &[&str]) -> Result<Vec<String>, String> {
        convert(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn entries_convert_as_spin_converts_them() {
        assert_eq!(
            conv(&["example.com"]).expect("valid"),
            ["http://example.com", "https://example.com"]
        );
        assert_eq!(
            conv(&["https://example.com:4444/"]).expect("valid"),
            ["http://example.com:4444", "https://example.com:4444"]
        );
        assert_eq!(
            conv(&["localhost:3001", "self"]).expect("valid"),
            [
                "http://localhost:3001",
                "https://localhost:3001",
                "http://self"
            ]
        );
        assert_eq!(
            conv(&["http://[::1]:8001"]).expect("valid"),
            ["http://[::1]:8001", "https://[::1]:8001"]
        );
        assert_eq!(
            conv(&["example.com", "insecure:allow-all"]).expect("valid"),
            ["http://*:*", "https://*:*", "http://self"]
        );
    }

    #[test]
    fn paths_and_other_schemes_are_refused() {
        assert!(conv(&["http://example.com/a"]).is_err());
        assert!(conv(&["ftp://example.com"]).is_err());
        assert!(conv(&["example.com:http"]).is_err());
    }
}
