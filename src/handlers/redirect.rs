//! The HTTP-to-HTTPS redirect listener's one answer: `308 Permanent Redirect` to `https://`
//! followed by the request's host (with the TLS port, omitted when 443), path and query. The
//! host must be well-formed: a missing or malformed Host is a 400, never a redirect elsewhere.

use crate::http::HttpError;
use crate::http::Request;
use crate::http::response::{Body, ErrorFormat, Response, TEXT_PLAIN};

/// The answer to any request on the redirect listener, sending it to `https_port`.
pub fn to_https(req: &Request, https_port: u16) -> Response {
    let Some(host) = req.host().and_then(host_name) else {
        return Response::error(
            HttpError::BadRequest("missing or malformed Host header"),
            ErrorFormat::Text,
        );
    };
    let mut location = format!("https://{host}");
    if https_port != 443 {
        location.push_str(&format!(":{https_port}"));
    }
    match req.target() {
        "*" => location.push('/'),
        target => location.push_str(target),
    }
    let body = format!("308 Permanent Redirect: this site is served at {location}\n");
    Response::new(308, TEXT_PLAIN, Body::Bytes(body.into_bytes())).header("Location", location)
}

/// The host part of a Host value (`name`, `name:port`, `[v6]`, `[v6]:port`), lower-cased,
/// when it is well-formed: a DNS name or IPv4 address of letters, digits, dots and hyphens, or
/// a bracketed IPv6 address.
fn host_name(value: &str) -> Option<String> {
    let value = value.trim();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        (&value[..inside.len() + 2], after.strip_prefix(':'))
    } else {
        match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let plain = !host.starts_with('[');
    let valid = !host.is_empty()
        && host.len() <= 253
        && (!plain
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                && !host.starts_with(['.', '-']));
    valid.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parsed as request;

    #[test]
    fn redirects_to_the_same_host_over_https_and_refuses_bad_hosts() {
        // (Host header, TLS port, expected Location or status 400)
        let cases: &[(&str, u16, Result<&str, u16>)] = &[
            ("Example.COM", 443, Ok("https://example.com/p?q=1")),
            (
                "example.com:8080",
                8443,
                Ok("https://example.com:8443/p?q=1"),
            ),
            ("127.0.0.1:80", 443, Ok("https://127.0.0.1/p?q=1")),
            ("[::1]:8080", 8443, Ok("https://[::1]:8443/p?q=1")),
            ("evil.com/x", 443, Err(400)),
            ("evil.com@good.com", 443, Err(400)),
            ("a b", 443, Err(400)),
            ("host:", 443, Err(400)),
            ("host:99999x", 443, Err(400)),
            ("[not-v6]", 443, Err(400)),
            (".dot", 443, Err(400)),
        ];
        for (host, port, want) in cases {
            let req = request(&format!("GET /p?q=1 HTTP/1.1\r\nHost: {host}\r\n\r\n"));
            let response = to_https(&req, *port);
            match want {
                Ok(location) => {
                    assert_eq!(response.status, 308, "{host}");
                    let got = response.headers.iter().find(|(n, _)| *n == "Location");
                    assert_eq!(got.map(|(_, v)| v.as_str()), Some(*location), "{host}");
                }
                Err(status) => assert_eq!(response.status, *status, "{host}"),
            }
        }
        // HTTP/1.0 without a Host: nowhere to send it.
        let req = request("GET / HTTP/1.0\r\n\r\n");
        assert_eq!(to_https(&req, 443).status, 400);
    }
}
