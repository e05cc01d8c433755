//! Virtual hosts: the names a route answers for (`host = "example.com"`, a list, or
//! `*.example.com` for any one-label subdomain), and the host a request asks for (its Host,
//! lower-cased, without port or trailing dot).

use crate::http::Request;

/// A host name a route answers for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    Exact(String),
    /// `*.suffix`: one label, then `.suffix`.
    Wildcard(String),
}

impl HostPattern {
    /// Parses `example.com` or `*.example.com` (lower-cased); the error says what is wrong.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let lower = text.trim_end_matches('.').to_ascii_lowercase();
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let ip = name.parse::<std::net::IpAddr>().is_ok();
        if name.is_empty() || (!ip && !name.split('.').all(label_ok)) || (wild && ip) {
            return Err(format!(
                "host {text:?} must be a host name such as \"example.com\" or \"*.example.com\""
            ));
        }
        Ok(if wild {
            HostPattern::Wildcard(name.to_owned())
        } else {
            HostPattern::Exact(name.to_owned())
        })
    }

    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => name == host,
            HostPattern::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// The host a request asks for: its Host header without port or trailing dot, lower-cased.
pub fn request_host(req: &Request) -> Option<String> {
    let value = req.host()?.trim();
    let host = if value.starts_with('[') {
        &value[..=value.find(']')?]
    } else {
        value.split(':').next().unwrap_or(value)
    };
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_and_one_label_wildcards() {
        let exact = HostPattern::parse("Example.COM.").unwrap();
        assert!(exact.matches("example.com") && !exact.matches("www.example.com"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("www.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("a.b.example.com"));
        assert!(!wild.matches("evilexample.com"));
        for bad in [
            "",
            "exa mple.com",
            "*.",
            "-a.com",
            "a..b",
            "*.127.0.0.1",
            "a/b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(HostPattern::parse("127.0.0.1").is_ok());
    }
}
