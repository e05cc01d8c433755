//! The request-head parser: pure and bounded. Bytes in; `Parse::Partial`, `Parse::Complete` or an
//! `HttpError` out. Syntax is checked by httparse; framing and connection semantics follow RFC 9112.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::{HttpError, Method, Version};

/// Default limit on the request head (request line plus header fields), in bytes. Beyond it: 431.
pub const DEFAULT_MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default limit on the request target, in bytes. Beyond it: 414.
pub const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
/// Default limit on the number of header fields. Beyond it: 431.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// No configuration can raise the header count above this (the parser's array size).
pub const MAX_HEADERS_CEILING: usize = 256;
/// Default limit on a request body (after chunked decoding), in bytes. Beyond it: 413.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Room for the method and version around a request target, used to spot an overlong target
/// before its line is complete.
const REQUEST_LINE_SLACK: usize = 32;
/// Empty lines before a request line are ignored (RFC 9112 section 2.2), up to this many.
const MAX_LEADING_EMPTY_LINES: usize = 8;

/// The limits a client's request must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_uri_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: DEFAULT_MAX_HEAD_BYTES,
            max_uri_bytes: DEFAULT_MAX_URI_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// How the request body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. Header fields are kept as ranges into one copy of the head bytes.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub version: Version,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// The target in origin form (`/path?query`), or `*`.
    target: String,
    /// The host of an absolute-form target (`GET http://host/path`), which Host then does
    /// not override (RFC 9112 §3.2.2).
    authority: Option<String>,
    head: Vec<u8>,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

/// The result of feeding the bytes received so far to the parser.
#[derive(Debug)]
pub enum Parse {
    /// More bytes are needed; none were consumed.
    Partial,
    /// A complete head, and how many bytes of the input it used.
    Complete(Request, usize),
}

impl Request {
    /// The request target as received, in origin form (absolute-form targets are reduced to it).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The host the request is for: an absolute-form target's authority, else the Host
    /// field (which HTTP/2's `:authority` fills).
    pub fn host(&self) -> Option<&str> {
        self.authority
            .as_deref()
            .or_else(|| self.header_str("host"))
    }

    /// The path part of the target, still percent-encoded.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The first header field with this name (case-insensitive), as raw bytes.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| self.head[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &self.head[v.clone()])
    }

    /// Every field with this name as one list value (RFC 9110 §5.3: lines joined with ", "),
    /// when there is at least one and all are valid UTF-8.
    pub fn header_list(&self, name: &str) -> Option<String> {
        let mut joined: Option<String> = None;
        for (n, v) in &self.fields {
            if self.head[n.clone()].eq_ignore_ascii_case(name.as_bytes()) {
                let value = std::str::from_utf8(&self.head[v.clone()]).ok()?;
                match &mut joined {
                    None => joined = Some(value.to_owned()),
                    Some(list) => {
                        list.push_str(", ");
                        list.push_str(value);
                    }
                }
            }
        }
        joined
    }

    /// The first header field with this name, when it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header field in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| {
            // Names were validated as tokens (ASCII) by httparse.
            let name = std::str::from_utf8(&self.head[n.clone()]).unwrap_or("");
            (name, &self.head[v.clone()])
        })
    }

    pub fn is_head(&self) -> bool {
        self.method == Method::Head
    }

    /// The same request for another target (an internal redirect), in origin form.
    pub fn with_target(&self, target: String) -> Request {
        Request {
            target,
            ..self.clone()
        }
    }

    /// The media type of the body, lower-cased, without parameters (`application/json`).
    pub fn media_type(&self) -> Option<String> {
        let value = self.header_str("content-type")?;
        let essence = value.split(';').next().unwrap_or("").trim();
        Some(essence.to_ascii_lowercase())
    }
}

/// Parses a request head from the start of `buf`.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Parse, HttpError> {
    let skip = leading_empty_lines(buf);
    let data = &buf[skip..];
    // Left uninitialised: httparse writes the headers it finds (no 8 KiB memset per request).
    let mut storage =
        [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CEILING];
    let max_headers = limits.max_headers.clamp(1, MAX_HEADERS_CEILING);
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(data, &mut storage[..max_headers]) {
        Ok(httparse::Status::Partial) => {
            let line_done = data.contains(&b'\n');
            if !line_done && data.len() > limits.max_uri_bytes + REQUEST_LINE_SLACK {
                return Err(HttpError::UriTooLong);
            }
            if data.len() >= limits.max_head_bytes {
                return Err(HttpError::HeaderFieldsTooLarge(
                    "request head is larger than the limit",
                ));
            }
            return Ok(Parse::Partial);
        }
        Ok(httparse::Status::Complete(len)) => len,
        Err(e) => return Err(syntax_error(e, data)),
    };
    if len > limits.max_head_bytes {
        return Err(HttpError::HeaderFieldsTooLarge(
            "request head is larger than the limit",
        ));
    }
    let method_token = parsed.method.unwrap_or("");
    let method = Method::from_token(method_token)
        .ok_or(HttpError::NotImplemented("request method not implemented"))?;
    if method == Method::Connect {
        return Err(HttpError::NotImplemented(
            "CONNECT is not supported: tws is not a proxy",
        ));
    }
    let raw_target = parsed.path.unwrap_or("");
    if raw_target.len() > limits.max_uri_bytes {
        return Err(HttpError::UriTooLong);
    }
    let (target, authority) = origin_form(method, raw_target)?;
    let version = match parsed.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };

    let base = data.as_ptr() as usize;
    let mut fields = Vec::with_capacity(parsed.headers.len());
    let mut facts = HeadFacts::default();
    for h in parsed.headers.iter() {
        let name_at = h.name.as_ptr() as usize - base;
        let value_at = h.value.as_ptr() as usize - base;
        fields.push((
            name_at..name_at + h.name.len(),
            value_at..value_at + h.value.len(),
        ));
        facts.note(h.name, h.value)?;
    }
    let framing = facts.framing(version)?;
    if version == Version::Http11 {
        match facts.hosts {
            0 => return Err(HttpError::BadRequest("missing Host header")),
            1 => {}
            _ => return Err(HttpError::BadRequest("more than one Host header")),
        }
    }
    let keep_alive = if facts.close {
        false
    } else {
        version == Version::Http11 || facts.keep_alive
    };
    if facts.expectation_unknown {
        return Err(HttpError::ExpectationFailed);
    }
    let request = Request {
        method,
        version,
        framing,
        keep_alive,
        expect_continue: facts.expect_continue && version == Version::Http11,
        target,
        authority,
        head: data[..len].to_vec(),
        fields,
    };
    Ok(Parse::Complete(request, skip + len))
}

fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut at = 0;
    for _ in 0..MAX_LEADING_EMPTY_LINES {
        if buf[at..].starts_with(b"\r\n") {
            at += 2;
        } else if buf[at..].starts_with(b"\n") {
            at += 1;
        } else {
            break;
        }
    }
    at
}

fn syntax_error(e: httparse::Error, data: &[u8]) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => {
            HttpError::HeaderFieldsTooLarge("more header fields than the limit")
        }
        httparse::Error::Version => {
            let line = data.split(|b| *b == b'\n').next().unwrap_or(data);
            let other_http = line
                .windows(6)
                .any(|w| w.starts_with(b"HTTP/") && w[5].is_ascii_digit() && w[5] != b'1');
            if other_http {
                HttpError::VersionNotSupported
            } else {
                HttpError::BadRequest("malformed request line")
            }
        }
        httparse::Error::HeaderName => HttpError::BadRequest("invalid header field name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("invalid header field value"),
        httparse::Error::NewLine | httparse::Error::Status => {
            HttpError::BadRequest("invalid line ending")
        }
        httparse::Error::Token => HttpError::BadRequest("malformed request line"),
    }
}

/// Reduces a request target to origin form (RFC 9112 section 3.2), keeping the authority
/// of an absolute-form target.
fn origin_form(method: Method, target: &str) -> Result<(String, Option<String>), HttpError> {
    if target.starts_with('/') {
        return Ok((target.to_owned(), None));
    }
    if target == "*" {
        return if method == Method::Options {
            Ok((target.to_owned(), None))
        } else {
            Err(HttpError::BadRequest("'*' is only valid with OPTIONS"))
        };
    }
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return Err(HttpError::BadRequest("request target must start with '/'"));
    };
    let path_at = rest.find(['/', '?']).unwrap_or(rest.len());
    if path_at == 0 {
        return Err(HttpError::BadRequest("absolute URI has no host"));
    }
    let authority = rest[..path_at]
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let path = &rest[path_at..];
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    Ok((path, Some(authority)))
}

/// What the header fields say about framing and the connection, gathered in one pass.
#[derive(Debug, Default)]
struct HeadFacts {
    content_length: Option<u64>,
    transfer_encoding: bool,
    codings: Vec<String>,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    expectation_unknown: bool,
}

impl HeadFacts {
    fn note(&mut self, name: &str, value: &[u8]) -> Result<(), HttpError> {
        if name.eq_ignore_ascii_case("content-length") {
            for part in value.split(|b| *b == b',') {
                let n = parse_content_length(trim(part))?;
                if self.content_length.is_some_and(|seen| seen != n) {
                    return Err(HttpError::BadRequest("conflicting Content-Length values"));
                }
                self.content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.transfer_encoding = true;
            for part in value.split(|b| *b == b',') {
                let coding = trim(part);
                if !coding.is_empty() {
                    self.codings
                        .push(String::from_utf8_lossy(coding).to_ascii_lowercase());
                }
            }
        } else if name.eq_ignore_ascii_case("host") {
            self.hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|b| *b == b',') {
                let token = trim(token);
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if trim(value).eq_ignore_ascii_case(b"100-continue") {
                self.expect_continue = true;
            } else {
                self.expectation_unknown = true;
            }
        }
        Ok(())
    }

    /// RFC 9112 section 6.3, rules 3 to 6, for requests.
    fn framing(&self, version: Version) -> Result<Framing, HttpError> {
        if !self.transfer_encoding {
            return Ok(match self.content_length {
                None | Some(0) => Framing::None,
                Some(n) => Framing::Length(n),
            });
        }
        if version == Version::Http10 {
            return Err(HttpError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if self.content_length.is_some() {
            return Err(HttpError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        match self.codings.split_last() {
            Some((last, rest)) if last == "chunked" => {
                if rest.iter().any(|c| c == "chunked") {
                    Err(HttpError::BadRequest("chunked applied more than once"))
                } else if rest.is_empty() {
                    Ok(Framing::Chunked)
                } else {
                    Err(HttpError::NotImplemented("transfer coding not supported"))
                }
            }
            _ => Err(HttpError::BadRequest(
                "chunked is not the final transfer coding",
            )),
        }
    }
}

fn parse_content_length(digits: &[u8]) -> Result<u64, HttpError> {
    const BAD: HttpError = HttpError::BadRequest("invalid Content-Length");
    if digits.is_empty() {
        return Err(BAD);
    }
    digits.iter().try_fold(0u64, |n, d| {
        if !d.is_ascii_digit() {
            return Err(BAD);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(BAD)
    })
}

/// Strips optional whitespace (SP / HTAB) from both ends.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &bytes[s..=e],
        _ => &[],
    }
}

/// A complete request head parsed with the default limits, for tests elsewhere.
#[cfg(test)]
pub fn parsed(raw: &str) -> Request {
    match parse_head(raw.as_bytes(), &Limits::default()) {
        Ok(Parse::Complete(req, _)) => req,
        other => panic!("{raw:?} gave {other:?}"),
    }
}

#[path = "fields.rs"]
mod fields;
pub use fields::FieldsBuilder;

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
