//! Responses, and the one writer of status lines and header blocks. Every answer tws sends,
//! error pages included, is serialised by `write_head`.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;

use super::error::reason_phrase;
use super::{HttpError, Version};

/// The value of the `Server` header.
pub const SERVER: &str = concat!("tws/", env!("CARGO_PKG_VERSION"));

/// The interim response sent before reading a body the client asked permission to send.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Makes a body a piece at a time, on a worker, as the connection is ready for more (a large
/// file through a compressor). Its length is not known in advance: the body is sent chunked
/// (HTTP/1.1) or delimited by the close of the connection (HTTP/1.0).
pub trait Producer: Send + std::fmt::Debug {
    /// The next piece (possibly empty), or `None` once everything was produced.
    fn produce(&mut self) -> std::io::Result<Option<Vec<u8>>>;
}

/// Says that a `Feed` has more (called from any thread, at most once per `Feed::take` that
/// found it empty).
pub type Wake = Box<dyn Fn() + Send + Sync>;

/// What `Feed::take` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// More may come: the feed wakes the connection when it does.
    Open,
    /// The body is complete after what was taken.
    Ended,
}

/// A body pushed from elsewhere as things happen (server-sent events): the connection takes
/// what is queued when it can write, and is woken when more arrives, so that it costs no
/// thread while it waits. Dropping it ends the subscription.
pub trait Feed: Send + std::fmt::Debug {
    /// Where to say that more arrived once `take` found nothing (set on the loop, once).
    fn attach(&mut self, wake: Wake);
    /// Appends the pieces queued so far to `out`.
    fn take(&mut self, out: &mut Vec<Bytes>) -> Flow;
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    Static(&'static [u8]),
    /// A byte range of shared content: streamed from an open file, or copied from memory.
    Content {
        content: Content,
        offset: u64,
        len: u64,
    },
    /// `multipart/byteranges`: each part's header block then its range of the content, then
    /// `tail`.
    Multipart {
        content: Content,
        parts: Vec<Part>,
        tail: Vec<u8>,
    },
    /// Made a piece at a time; its length is unknown.
    Stream(Box<dyn Producer>),
    /// Pushed as things happen, until the feed ends; its length is unknown.
    Live(Box<dyn Feed>),
}

/// Content shared between responses (and with a cache).
#[derive(Debug, Clone)]
pub enum Content {
    /// Bytes held in memory (cheap to clone and slice: a reference count).
    Memory(Bytes),
    /// An open file, sent with sendfile.
    File(Arc<File>),
}

/// One part of a multipart/byteranges body.
#[derive(Debug)]
pub struct Part {
    pub head: Vec<u8>,
    pub offset: u64,
    pub len: u64,
}

impl Body {
    /// All of some bytes held in memory.
    pub fn shared(bytes: Bytes) -> Body {
        let len = bytes.len() as u64;
        Body::Content {
            content: Content::Memory(bytes),
            offset: 0,
            len,
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Static(b) => b.len() as u64,
            Body::Content { len, .. } => *len,
            Body::Multipart { parts, tail, .. } => {
                let parts: u64 = parts.iter().map(|p| p.head.len() as u64 + p.len).sum();
                parts + tail.len() as u64
            }
            // Unknown until sent; the access log counts it as 0.
            Body::Stream(_) | Body::Live(_) => 0,
        }
    }

    /// True for a body of unknown length, made as it is sent.
    pub fn is_stream(&self) -> bool {
        matches!(self, Body::Stream(_) | Body::Live(_))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response before serialisation. `Date`, `Server`, `Content-Length`, `Content-Type` and
/// `Connection` are added by `write_head`; `headers` and `fixed` hold the rest.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: Cow<'static, str>,
    pub headers: Vec<(&'static str, String)>,
    /// Header lines serialised once by `header_block` and reused (cached files).
    pub fixed: Option<Arc<[u8]>>,
    /// Header lines the site declares (routes.toml `headers`), serialised once.
    pub extra: Option<Arc<[u8]>>,
    /// The declared headers carry their own `Server`.
    pub omit_server: bool,
    pub body: Body,
}

/// Where a handler's answer goes, once; possibly later and from another thread (a write
/// waits for its commit).
pub type Respond = Box<dyn FnOnce(Response) + Send>;

/// How an error body is written: JSON for actions, plain text elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    Text,
    Json,
}

pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
pub const TEXT_HTML: &str = "text/html; charset=utf-8";
pub const APPLICATION_JSON: &str = "application/json";

impl Response {
    pub fn new(status: u16, content_type: impl Into<Cow<'static, str>>, body: Body) -> Response {
        Response {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            fixed: None,
            extra: None,
            omit_server: false,
            body,
        }
    }

    /// A response with no content: `Content-Length: 0`, typed as plain text.
    pub fn empty(status: u16) -> Response {
        Response::new(status, TEXT_PLAIN, Body::Empty)
    }

    /// A JSON body followed by a newline.
    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        Response::new(status, APPLICATION_JSON, Body::Bytes(body))
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The answer to an error: its status, a one-line body saying what was wrong, and the
    /// headers the status requires (`Allow` on 405).
    pub fn error(err: HttpError, format: ErrorFormat) -> Response {
        let (status, message) = err.status_and_message();
        let mut response = match format {
            ErrorFormat::Json => Response::json(status, &serde_json::json!({ "error": message })),
            ErrorFormat::Text => {
                let body = format!("{status} {}: {message}\n", reason_phrase(status));
                Response::new(status, TEXT_PLAIN, Body::Bytes(body.into_bytes()))
            }
        };
        match err {
            HttpError::MethodNotAllowed(allowed) => {
                response.headers.push(("Allow", allowed.allow_header()));
            }
            HttpError::RangeNotSatisfiable(len) => {
                response
                    .headers
                    .push(("Content-Range", format!("bytes */{len}")));
            }
            _ => {}
        }
        response
    }
}

/// Custom HTML error pages by status (`[errors]`), shared by every answer that uses them.
pub type ErrorPages = std::sync::Arc<std::collections::HashMap<u16, Bytes>>;

/// Where an error page says what went wrong: replaced by the message, HTML-escaped.
pub const MESSAGE_SLOT: &str = "{{message}}";

impl Response {
    /// An HTML error page: `page` with its `{{message}}` slots filled with `message`.
    pub fn page(status: u16, page: &Bytes, message: &str) -> Response {
        let body = match std::str::from_utf8(page) {
            Ok(text) if text.contains(MESSAGE_SLOT) => Body::Bytes(
                text.replace(MESSAGE_SLOT, &escape_html(message))
                    .into_bytes(),
            ),
            _ => Body::shared(page.clone()),
        };
        Response::new(status, TEXT_HTML, body)
    }
}

/// Text made safe to place in HTML (element content or a quoted attribute).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An error as a plain-text answer, boxed (what refuses an upload midway).
impl From<HttpError> for Box<Response> {
    fn from(e: HttpError) -> Box<Response> {
        Box::new(Response::error(e, ErrorFormat::Text))
    }
}

/// What the connection knows that the response does not.
pub struct HeadContext<'a> {
    pub date: &'a str,
    pub keep_alive: bool,
    pub request_version: Version,
}

/// Every header field of a response's head, in order, for either protocol: the fields tws
/// adds (Date, Server, Content-Length or HTTP/1.1's chunked coding, Content-Type, nosniff),
/// the response's own, its serialised blocks line by line, and on HTTP/1.x the connection's
/// fate. `write_head` writes the same fields, with the blocks copied as they are.
pub fn head_fields(response: &Response, ctx: &HeadContext<'_>, mut field: impl FnMut(&str, &str)) {
    own_fields(response, ctx, &mut field);
    for block in [&response.fixed, &response.extra].into_iter().flatten() {
        let text = std::str::from_utf8(block).unwrap_or("");
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            if let Some((name, value)) = line.split_once(": ") {
                field(name, value);
            }
        }
    }
    connection_field(ctx, &mut field);
}

/// The fields before the serialised blocks.
fn own_fields(response: &Response, ctx: &HeadContext<'_>, field: &mut impl FnMut(&str, &str)) {
    let status = response.status;
    field("Date", ctx.date);
    if !response.omit_server {
        field("Server", SERVER);
    }
    // RFC 9110 section 8.6: no Content-Length in 1xx and 204 responses; 304 carries none either.
    // A body made as it is sent goes chunked on HTTP/1.1, until the close on HTTP/1.0, and in
    // DATA frames on HTTP/2.
    if !matches!(status, 100..=199 | 204 | 304) {
        if !response.body.is_stream() {
            let mut digits = [0u8; 20];
            field(
                "Content-Length",
                format_u64(&mut digits, response.body.len()),
            );
        } else if ctx.request_version == Version::Http11 {
            field("Transfer-Encoding", "chunked");
        }
        field("Content-Type", &response.content_type);
        field("X-Content-Type-Options", "nosniff");
    }
    for (name, value) in &response.headers {
        field(name, value);
    }
}

/// HTTP/1.x only: `Connection: close`, or keep-alive said out loud to an HTTP/1.0 client.
fn connection_field(ctx: &HeadContext<'_>, field: &mut impl FnMut(&str, &str)) {
    match ctx.request_version {
        Version::Http2 => {}
        _ if !ctx.keep_alive => field("Connection", "close"),
        Version::Http10 => field("Connection", "keep-alive"),
        Version::Http11 => {}
    }
}

/// A number's decimal digits, written into `buf`.
fn format_u64(buf: &mut [u8; 20], mut n: u64) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// Serialises the status line and header block of `response` into `out` (HTTP/1.1).
pub fn write_head(out: &mut Vec<u8>, response: &Response, ctx: &HeadContext<'_>) {
    let status = response.status;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    own_fields(response, ctx, &mut |name, value| {
        push_header(out, name, value)
    });
    for block in [&response.fixed, &response.extra].into_iter().flatten() {
        out.extend_from_slice(block);
    }
    connection_field(ctx, &mut |name, value| push_header(out, name, value));
    out.extend_from_slice(b"\r\n");
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Serialises header lines once, for responses that repeat them (see `Response::fixed`).
pub fn header_block(headers: &[(&str, &str)]) -> Arc<[u8]> {
    let mut out = Vec::new();
    for (name, value) in headers {
        push_header(&mut out, name, value);
    }
    Arc::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Method, Methods};

    fn head(response: &Response, keep_alive: bool, version: Version) -> String {
        let mut out = Vec::new();
        let ctx = HeadContext {
            date: "Sun, 06 Nov 1994 08:49:37 GMT",
            keep_alive,
            request_version: version,
        };
        write_head(&mut out, response, &ctx);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn writes_the_mandatory_headers() {
        let mut response =
            Response::new(200, TEXT_HTML, Body::Static(b"<p>hi</p>")).header("X-A", "b");
        response.fixed = Some(header_block(&[("ETag", "\"1\"")]));
        assert_eq!(
            head(&response, true, Version::Http11),
            format!(
                "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: {SERVER}\r\n\
                 Content-Length: 9\r\nContent-Type: text/html; charset=utf-8\r\n\
                 X-Content-Type-Options: nosniff\r\nX-A: b\r\nETag: \"1\"\r\n\r\n"
            )
        );
    }

    #[test]
    fn connection_header_follows_persistence_and_version() {
        let response = Response::empty(200);
        assert!(head(&response, false, Version::Http11).contains("\r\nConnection: close\r\n"));
        assert!(head(&response, true, Version::Http10).contains("\r\nConnection: keep-alive\r\n"));
        assert!(!head(&response, true, Version::Http11).contains("Connection"));
    }

    #[test]
    fn no_content_responses_carry_no_length() {
        let text = head(&Response::empty(204), true, Version::Http11);
        assert!(!text.contains("Content-Length"), "{text}");
    }

    #[test]
    fn errors_say_what_was_wrong_in_text_or_json() {
        let r = Response::error(HttpError::BadRequest("invalid header"), ErrorFormat::Text);
        assert_eq!(r.status, 400);
        assert!(matches!(&r.body, Body::Bytes(b) if b == b"400 Bad Request: invalid header\n"));
        let allowed = Methods::of(&[Method::Post]);
        let r = Response::error(HttpError::MethodNotAllowed(allowed), ErrorFormat::Json);
        assert_eq!(r.content_type, APPLICATION_JSON);
        assert_eq!(r.headers, vec![("Allow", "POST, OPTIONS".to_owned())]);
        let Body::Bytes(b) = &r.body else { panic!() };
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        assert_eq!(v["error"], "method not allowed on this path");
    }
}
