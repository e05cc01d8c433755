//! The access log: one line per response, in Combined Log Format or as JSON, and the sinks
//! that carry log lines away from the event loop (`sink`). Client-controlled fields are
//! escaped so that a request cannot forge or break log lines.

pub mod sink;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::LogFormat;
use crate::http::Request;
use sink::Sink;

/// A loop's lines are handed to the sink once they pass this many bytes, and at the end of
/// every turn of the loop.
const BATCH_BYTES: usize = 32 * 1024;

/// One event loop's access log: lines are formatted into a batch, and the batch is queued on
/// the sink (never written) at the end of each turn.
pub struct AccessLog {
    format: LogFormat,
    sink: Option<Sink>,
    batch: Vec<u8>,
    lines: u64,
    clock_secs: u64,
    clock_text: String,
}

impl AccessLog {
    /// A log writing through `sink`; `None` (or the `off` format) logs nothing.
    pub fn new(format: LogFormat, sink: Option<Sink>) -> AccessLog {
        AccessLog {
            format,
            sink: sink.filter(|_| format != LogFormat::Off),
            batch: Vec::new(),
            lines: 0,
            clock_secs: u64::MAX,
            clock_text: String::new(),
        }
    }

    /// Records one response. `req` is `None` when the head could not be parsed; `tls` names
    /// the TLS version the connection negotiated.
    pub fn record(
        &mut self,
        peer: SocketAddr,
        req: Option<&Request>,
        status: u16,
        bytes: u64,
        tls: Option<&'static str>,
    ) {
        if self.sink.is_none() {
            return;
        }
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.clock_secs {
            self.clock_secs = secs;
            self.clock_text = match self.format {
                LogFormat::Json => crate::time::rfc3339_system(now),
                _ => crate::time::clf(now),
            };
        }
        let entry = Entry {
            peer,
            req,
            status,
            bytes,
            tls,
        };
        match self.format {
            LogFormat::Json => json_line(&mut self.batch, &self.clock_text, &entry),
            _ => format_line(&mut self.batch, &self.clock_text, &entry),
        }
        self.lines += 1;
        if self.batch.len() >= BATCH_BYTES {
            self.flush();
        }
    }

    /// Hands the lines recorded so far to the sink, without waiting.
    pub fn flush(&mut self) {
        if self.lines == 0 {
            return;
        }
        if let Some(sink) = &self.sink {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(1024));
            sink.send(batch, self.lines);
        }
        self.lines = 0;
    }
}

/// What one access-log line says.
pub struct Entry<'a> {
    pub peer: SocketAddr,
    /// `None` when the head could not be parsed.
    pub req: Option<&'a Request>,
    pub status: u16,
    pub bytes: u64,
    /// The TLS version, on an HTTPS connection.
    pub tls: Option<&'static str>,
}

/// `host - - [time] "request line" status bytes "referer" "user agent"`
pub fn format_line(out: &mut Vec<u8>, clock: &str, e: &Entry<'_>) {
    let _ = write!(out, "{} - - [{clock}] \"", e.peer.ip());
    match e.req {
        Some(req) => {
            out.extend_from_slice(req.method.as_str().as_bytes());
            out.push(b' ');
            escape_into(out, req.target().as_bytes());
            out.push(b' ');
            out.extend_from_slice(req.version.as_str().as_bytes());
        }
        None => out.push(b'-'),
    }
    let _ = write!(out, "\" {} {} \"", e.status, e.bytes);
    let field = |name| e.req.and_then(|r| r.header(name)).unwrap_or(b"-");
    escape_into(out, field("referer"));
    out.extend_from_slice(b"\" \"");
    escape_into(out, field("user-agent"));
    out.extend_from_slice(b"\"\n");
}

/// One JSON object: serde_json escapes quotes and ASCII control characters, and the
/// characters that fool terminals and viewers (C1 controls, line and paragraph separators,
/// bidirectional overrides) are written as `\uXXXX` too; invalid UTF-8 is replaced by U+FFFD.
pub fn json_line(out: &mut Vec<u8>, time: &str, e: &Entry<'_>) {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        time: &'a str,
        remote: std::net::IpAddr,
        method: Option<&'a str>,
        target: Option<&'a str>,
        version: Option<&'a str>,
        status: u16,
        bytes: u64,
        referer: Option<std::borrow::Cow<'a, str>>,
        user_agent: Option<std::borrow::Cow<'a, str>>,
        tls: Option<&'a str>,
    }
    let text = |name| {
        e.req
            .and_then(|r| r.header(name))
            .map(String::from_utf8_lossy)
    };
    let line = Line {
        time,
        remote: e.peer.ip(),
        method: e.req.map(|r| r.method.as_str()),
        target: e.req.map(|r| r.target()),
        version: e.req.map(|r| r.version.as_str()),
        status: e.status,
        bytes: e.bytes,
        referer: text("referer"),
        user_agent: text("user-agent"),
        tls: e.tls,
    };
    let Ok(text) = serde_json::to_string(&line) else {
        return;
    };
    for c in text.chars() {
        if is_deceptive(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    out.push(b'\n');
}

/// Characters a log viewer or terminal may act on rather than show: C1 controls (U+0085 is
/// a line break to some, U+009B starts a terminal control sequence), line and paragraph
/// separators, and bidirectional formatting that reorders what follows.
fn is_deceptive(c: char) -> bool {
    matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Copies printable ASCII; writes `"`, `\`, control and non-ASCII bytes as `\xHH`.
fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]);
        }
    }
}

/// A short reason for an I/O error, without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such file or directory".to_owned(),
        PermissionDenied => "permission denied".to_owned(),
        AddrInUse => "address already in use".to_owned(),
        AddrNotAvailable => "address not available on this machine".to_owned(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{Parse, parse_head};

    #[test]
    fn writes_combined_format_and_escapes_hostile_fields() {
        let raw = b"GET /a\"b HTTP/1.1\r\nHost: x\r\nUser-Agent: evil\"\r\n\x7f\r\nReferer: http://r/\r\n\r\n";
        // The raw bytes above hold a DEL; httparse refuses it, so build a valid but hostile one.
        assert!(parse_head(raw, &Default::default()).is_err());
        let raw = b"GET /p?q=%0A HTTP/1.1\r\nHost: x\r\nUser-Agent: a\"b\\c\xc3\xa9\r\nReferer: http://r/\r\n\r\n";
        let Ok(Parse::Complete(req, _)) = parse_head(raw, &Default::default()) else {
            panic!()
        };
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let entry = |req, status, bytes| Entry {
            peer,
            req,
            status,
            bytes,
            tls: None,
        };
        let text = |f: fn(&mut Vec<u8>, &str, &Entry<'_>), clock, e: Entry<'_>| {
            let mut out = Vec::new();
            f(&mut out, clock, &e);
            String::from_utf8(out).unwrap()
        };
        let line = text(
            format_line,
            "25/Nov/2026:14:18:02 +0000",
            entry(Some(&req), 200, 512),
        );
        assert_eq!(
            line,
            "192.0.2.1 - - [25/Nov/2026:14:18:02 +0000] \"GET /p?q=%0A HTTP/1.1\" 200 512 \
             \"http://r/\" \"a\\x22b\\x5Cc\\xC3\\xA9\"\n"
        );
        let line = text(format_line, "t", entry(None, 400, 10));
        assert_eq!(line, "192.0.2.1 - - [t] \"-\" 400 10 \"-\" \"-\"\n");
        let line = text(json_line, "t", entry(Some(&req), 200, 512));
        assert_eq!(line.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["user_agent"], "a\"b\\cé");
        assert_eq!(v["target"], "/p?q=%0A");
        assert_eq!(v["remote"], "192.0.2.1");
        assert_eq!(v["status"], 200);
    }

    #[test]
    fn the_json_log_escapes_what_a_terminal_would_act_on() {
        // C1 CSI, NEL, LINE SEPARATOR and RIGHT-TO-LEFT OVERRIDE in a User-Agent.
        let agent = "a\u{9b}31m\u{85}b\u{2028}c\u{202e}d";
        let raw = format!("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n\r\n");
        let Ok(Parse::Complete(req, _)) = parse_head(raw.as_bytes(), &Default::default()) else {
            panic!()
        };
        let mut out = Vec::new();
        let entry = Entry {
            peer: "192.0.2.1:5000".parse().unwrap(),
            req: Some(&req),
            status: 200,
            bytes: 1,
            tls: None,
        };
        json_line(&mut out, "t", &entry);
        let line = String::from_utf8(out).unwrap();
        for raw in ['\u{9b}', '\u{85}', '\u{2028}', '\u{202e}'] {
            assert!(!line.contains(raw), "{raw:?} written raw: {line}");
        }
        assert!(
            line.contains("\\u009b31m\\u0085b\\u2028c\\u202ed"),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["user_agent"], agent);
    }
}
