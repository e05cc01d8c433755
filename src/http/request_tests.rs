//! Table-driven tests for the request-head parser.

use super::*;

fn parse(raw: &str) -> Result<Parse, HttpError> {
    parse_head(raw.as_bytes(), &Limits::default())
}

fn complete(raw: &str) -> (Request, usize) {
    match parse(raw) {
        Ok(Parse::Complete(req, used)) => (req, used),
        other => panic!("expected a complete head for {raw:?}, got {other:?}"),
    }
}

fn status_of(raw: &str) -> Option<u16> {
    match parse(raw) {
        Ok(Parse::Complete(..)) => None,
        Ok(Parse::Partial) => Some(0),
        Err(e) => Some(e.status()),
    }
}

#[test]
fn rejects_and_accepts_as_rfc_9112_says() {
    // (request head, expected status: None = accepted, Some(0) = partial)
    let cases: &[(&str, Option<u16>)] = &[
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
        ("GET / HTTP/1.0\r\n\r\n", None),
        ("GET / HTTP/1.1\r\nHost: a\r\n", Some(0)),
        ("GET / HTTP/1.1\r\n\r\n", Some(400)),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Some(400)),
        ("BREW / HTTP/1.1\r\nHost: a\r\n\r\n", Some(501)),
        ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", Some(501)),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", Some(505)),
        ("GET / FTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("GET x HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", None),
        ("GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", None),
        ("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", Some(400)),
        ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", Some(400)),
        ("GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n", Some(400)),
        ("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", Some(400)),
        ("GET / HTTP/1.1\rHost: a\r\n\r\n", Some(400)),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            Some(400),
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
            Some(400),
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            None,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            Some(400),
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            Some(400),
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
            Some(400),
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            Some(400),
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            Some(400),
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Some(501),
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            Some(400),
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            None,
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            Some(400),
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            None,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n",
            Some(417),
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(status_of(raw), *want, "request {raw:?}");
    }
}

#[test]
fn framing_and_persistence_follow_the_headers() {
    let cases: &[(&str, Framing, bool)] = &[
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Framing::None, true),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            Framing::None,
            false,
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n",
            Framing::None,
            false,
        ),
        ("GET / HTTP/1.0\r\n\r\n", Framing::None, false),
        (
            "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            Framing::None,
            true,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n",
            Framing::Length(12),
            true,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            Framing::None,
            true,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
            Framing::Chunked,
            true,
        ),
    ];
    for (raw, framing, keep_alive) in cases {
        let (req, _) = complete(raw);
        assert_eq!(req.framing, *framing, "{raw:?}");
        assert_eq!(req.keep_alive, *keep_alive, "{raw:?}");
    }
}

#[test]
fn exposes_target_headers_and_consumed_length() {
    let raw = "\r\nPOST /createUser?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: Application/JSON; charset=utf-8\r\nX-Empty:\r\n\r\nBODY";
    let (req, used) = complete(raw);
    assert_eq!(used, raw.len() - 4);
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.version, Version::Http11);
    assert_eq!(req.path(), "/createUser");
    assert_eq!(req.query(), Some("x=1"));
    assert_eq!(req.header("HOST"), Some(&b"a"[..]));
    assert_eq!(req.header("x-empty"), Some(&b""[..]));
    assert_eq!(req.header("missing"), None);
    assert_eq!(req.media_type().as_deref(), Some("application/json"));
    assert_eq!(req.headers().count(), 3);
}

#[test]
fn absolute_form_is_reduced_to_origin_form_and_its_host_wins() {
    let cases = [
        ("http://b.example/a/b?q", "/a/b?q", "b.example"),
        ("HTTP://b.example:8080", "/", "b.example:8080"),
        ("https://user@b.example?q", "/?q", "b.example"),
        ("/plain", "/plain", "other"),
    ];
    for (target, want, host) in cases {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: other\r\n\r\n");
        let req = complete(&raw).0;
        assert_eq!((req.target(), req.host()), (want, Some(host)), "{target}");
    }
}

#[test]
fn expect_continue_only_counts_for_http_11() {
    let (req, _) =
        complete("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert!(req.expect_continue);
    let (req, _) = complete("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert!(!req.expect_continue);
}

#[test]
fn limits_give_414_and_431() {
    let limits = Limits {
        max_head_bytes: 256,
        max_uri_bytes: 64,
        max_headers: 4,
        max_body_bytes: 10,
    };
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100));
    assert_eq!(
        parse_head(long_uri.as_bytes(), &limits)
            .unwrap_err()
            .status(),
        414
    );
    // An overlong target is spotted before its line is complete.
    let unfinished = format!("GET /{}", "a".repeat(200));
    assert_eq!(
        parse_head(unfinished.as_bytes(), &limits)
            .unwrap_err()
            .status(),
        414
    );
    let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{}\r\n", "X: y\r\n".repeat(5));
    assert_eq!(
        parse_head(many.as_bytes(), &limits).unwrap_err().status(),
        431
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "y".repeat(300)
    );
    assert_eq!(
        parse_head(big.as_bytes(), &limits).unwrap_err().status(),
        431
    );
    let big_partial = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "y".repeat(300));
    assert_eq!(
        parse_head(big_partial.as_bytes(), &limits)
            .unwrap_err()
            .status(),
        431
    );
}

#[test]
fn every_prefix_of_a_valid_head_is_partial() {
    let raw = b"GET /a HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
    for end in 0..raw.len() {
        match parse_head(&raw[..end], &Limits::default()) {
            Ok(Parse::Partial) => {}
            other => panic!("prefix of {end} bytes gave {other:?}"),
        }
    }
}
