//! Extra response headers (`[headers]` for every response, `headers = { ... }` per route,
//! `--header` on the command line), checked at load and serialised once.

use std::sync::Arc;

/// Headers tws writes itself for framing, or computes for the representation it sends: a
/// headers table cannot set them.
const RESERVED: &[(&str, &str)] = &[
    ("content-length", "framing is tws's own"),
    ("transfer-encoding", "framing is tws's own"),
    ("connection", "framing is tws's own"),
    ("date", "tws writes the date itself"),
    (
        "content-type",
        "use `content_type` on the route, or [types]",
    ),
    ("content-encoding", "tws negotiates the coding itself"),
    ("content-range", "tws answers ranges itself"),
    ("etag", "tws computes validators itself"),
    ("last-modified", "tws computes validators itself"),
    ("vary", "tws computes Vary itself"),
    ("cache-control", "use the route key `cache_control`"),
    ("keep-alive", "framing is tws's own"),
    ("upgrade", "framing is tws's own"),
];

/// Extra header lines, serialised once, and whether they replace tws's `Server`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderSet {
    /// (name, value) as declared, in order (later merges replace by name).
    pairs: Vec<(String, String)>,
    lines: Arc<[u8]>,
    replaces_server: bool,
}

impl HeaderSet {
    /// Checks and serialises `(name, value)` pairs: names must be tokens, values must hold
    /// no CR, LF or NUL, and reserved names are refused. The error names the header.
    pub fn new(pairs: Vec<(String, String)>) -> Result<HeaderSet, String> {
        for (name, value) in &pairs {
            check(name, value)?;
        }
        Ok(HeaderSet::build(pairs))
    }

    fn build(pairs: Vec<(String, String)>) -> HeaderSet {
        let mut lines = Vec::new();
        for (name, value) in &pairs {
            lines.extend_from_slice(name.as_bytes());
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value.as_bytes());
            lines.extend_from_slice(b"\r\n");
        }
        let replaces_server = pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case("server"));
        HeaderSet {
            pairs,
            lines: Arc::from(lines),
            replaces_server,
        }
    }

    /// This set with `over`'s headers replacing those of the same name.
    pub fn merged(&self, over: &HeaderSet) -> HeaderSet {
        let mut pairs: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(n, _)| !over.pairs.iter().any(|(o, _)| o.eq_ignore_ascii_case(n)))
            .cloned()
            .collect();
        pairs.extend(over.pairs.iter().cloned());
        HeaderSet::build(pairs)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn lines(&self) -> &Arc<[u8]> {
        &self.lines
    }

    /// True when a `Server` header here replaces tws's own.
    pub fn replaces_server(&self) -> bool {
        self.replaces_server
    }
}

/// A header name is a token (RFC 9110 section 5.6.2); a value holds no CR, LF or NUL.
fn check(name: &str, value: &str) -> Result<(), String> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(format!("header name {name:?} is not a token"));
    }
    if let Some((_, why)) = RESERVED
        .iter()
        .find(|(reserved, _)| name.eq_ignore_ascii_case(reserved))
    {
        return Err(format!("header {name} cannot be set here: {why}"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(format!("header {name}: the value holds CR, LF or NUL"));
    }
    if value.trim() != value || value.is_empty() {
        return Err(format!(
            "header {name}: the value is empty or has leading or trailing spaces"
        ));
    }
    Ok(())
}

/// Parses `Name: value` (the `--header` flag).
pub fn parse_flag(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("--header {text:?}: expected \"Name: value\""))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_and_reserved_headers_are_checked() {
        let ok = |n: &str, v: &str| HeaderSet::new(vec![(n.into(), v.into())]);
        assert!(ok("X-Frame-Options", "DENY").is_ok());
        assert!(ok("Strict-Transport-Security", "max-age=63072000").is_ok());
        let cases = [
            ("X Bad", "v", "not a token"),
            ("X-A", "a\r\nInjected: yes", "CR, LF or NUL"),
            ("X-A", "a\0b", "CR, LF or NUL"),
            ("Content-Length", "5", "framing"),
            ("transfer-encoding", "chunked", "framing"),
            ("Connection", "close", "framing"),
            ("Date", "x", "date"),
            ("Cache-Control", "no-store", "cache_control"),
            ("X-A", "", "empty"),
        ];
        for (name, value, want) in cases {
            let err = ok(name, value).unwrap_err();
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn a_route_value_replaces_the_server_wide_one() {
        let server = HeaderSet::new(vec![
            ("X-Frame-Options".into(), "DENY".into()),
            ("X-A".into(), "1".into()),
        ])
        .unwrap();
        let route = HeaderSet::new(vec![("x-frame-options".into(), "SAMEORIGIN".into())]).unwrap();
        let merged = server.merged(&route);
        assert_eq!(
            String::from_utf8(merged.lines().to_vec()).unwrap(),
            "X-A: 1\r\nx-frame-options: SAMEORIGIN\r\n"
        );
        assert!(!merged.replaces_server());
        let server_name = HeaderSet::new(vec![("Server".into(), "web".into())]).unwrap();
        assert!(server_name.replaces_server());
        assert_eq!(
            parse_flag("X-A: b: c"),
            Ok(("X-A".to_owned(), "b: c".to_owned()))
        );
    }
}
