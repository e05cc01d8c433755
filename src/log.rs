//! The access log: one line per response on stdout, in Combined Log Format. Client-controlled
//! fields are escaped so that a request cannot forge or break log lines.

use std::io::{BufWriter, Stdout, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::Request;
use crate::time::Civil;

/// Buffered log lines, flushed by the event loop once per turn.
pub struct AccessLog {
    out: Option<BufWriter<Stdout>>,
    clock_secs: u64,
    clock: String,
}

impl AccessLog {
    pub fn new(enabled: bool) -> AccessLog {
        AccessLog {
            out: enabled.then(|| BufWriter::with_capacity(64 * 1024, std::io::stdout())),
            clock_secs: u64::MAX,
            clock: String::new(),
        }
    }

    /// Records one response. `req` is `None` when the head could not be parsed.
    pub fn record(&mut self, peer: SocketAddr, req: Option<&Request>, status: u16, bytes: u64) {
        if self.out.is_none() {
            return;
        }
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.clock_secs {
            self.clock_secs = secs;
            self.clock = Civil::from_system(now).clf();
        }
        let line = format_line(peer, &self.clock, req, status, bytes);
        if let Some(out) = &mut self.out {
            // A closed stdout must not take the server down; the line is dropped.
            let _ = out.write_all(line.as_bytes());
        }
    }

    pub fn flush(&mut self) {
        if let Some(out) = &mut self.out {
            let _ = out.flush();
        }
    }
}

/// `host - - [time] "request line" status bytes "referer" "user agent"`
pub fn format_line(
    peer: SocketAddr,
    clock: &str,
    req: Option<&Request>,
    status: u16,
    bytes: u64,
) -> String {
    let mut line = format!("{} - - [{clock}] \"", peer.ip());
    match req {
        Some(req) => {
            line.push_str(req.method.as_str());
            line.push(' ');
            escape_into(&mut line, req.target().as_bytes());
            line.push(' ');
            line.push_str(req.version.as_str());
        }
        None => line.push('-'),
    }
    line.push_str(&format!("\" {status} {bytes} \""));
    let field = |name| req.and_then(|r| r.header(name)).unwrap_or(b"-");
    escape_into(&mut line, field("referer"));
    line.push_str("\" \"");
    escape_into(&mut line, field("user-agent"));
    line.push_str("\"\n");
    line
}

/// Copies printable ASCII; writes `"`, `\`, control and non-ASCII bytes as `\xHH`.
fn escape_into(line: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            line.push(b as char);
        } else {
            line.push_str(&format!("\\x{b:02X}"));
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
        let line = format_line(peer, "25/Nov/2026:14:18:02 +0000", Some(&req), 200, 512);
        assert_eq!(
            line,
            "192.0.2.1 - - [25/Nov/2026:14:18:02 +0000] \"GET /p?q=%0A HTTP/1.1\" 200 512 \
             \"http://r/\" \"a\\x22b\\x5Cc\\xC3\\xA9\"\n"
        );
        let line = format_line(peer, "t", None, 400, 10);
        assert_eq!(line, "192.0.2.1 - - [t] \"-\" 400 10 \"-\" \"-\"\n");
    }
}
