//! The access log: one line per response on stdout, in Combined Log Format or as JSON.
//! Client-controlled fields are escaped so that a request cannot forge or break log lines.

use std::io::{BufWriter, Stdout, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::LogFormat;
use crate::http::Request;
use crate::time::Civil;

/// Buffered log lines, flushed by the event loop once per turn.
pub struct AccessLog {
    format: LogFormat,
    out: Option<BufWriter<Stdout>>,
    clock_secs: u64,
    clock: Civil,
    clock_text: String,
}

impl AccessLog {
    pub fn new(format: LogFormat) -> AccessLog {
        let enabled = format != LogFormat::Off;
        AccessLog {
            format,
            out: enabled.then(|| BufWriter::with_capacity(64 * 1024, std::io::stdout())),
            clock_secs: u64::MAX,
            clock: Civil::from_unix(0),
            clock_text: String::new(),
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
            self.clock = Civil::from_system(now);
            self.clock_text = match self.format {
                LogFormat::Json => self.clock.rfc3339(),
                _ => self.clock.clf(),
            };
        }
        let line = match self.format {
            LogFormat::Json => json_line(peer, &self.clock_text, req, status, bytes),
            _ => format_line(peer, &self.clock_text, req, status, bytes),
        };
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

/// One JSON object: serde_json escapes quotes and control characters; invalid UTF-8 is
/// replaced by U+FFFD.
pub fn json_line(
    peer: SocketAddr,
    time: &str,
    req: Option<&Request>,
    status: u16,
    bytes: u64,
) -> String {
    let text = |name| {
        req.and_then(|r| r.header(name))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let value = serde_json::json!({
        "time": time,
        "remote": peer.ip().to_string(),
        "method": req.map(|r| r.method.as_str()),
        "target": req.map(|r| r.target()),
        "version": req.map(|r| r.version.as_str()),
        "status": status,
        "bytes": bytes,
        "referer": text("referer"),
        "user_agent": text("user-agent"),
    });
    let mut line = value.to_string();
    line.push('\n');
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
        let line = json_line(peer, "t", Some(&req), 200, 512);
        assert_eq!(line.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["user_agent"], "a\"b\\cé");
        assert_eq!(v["target"], "/p?q=%0A");
        assert_eq!(v["status"], 200);
    }
}
