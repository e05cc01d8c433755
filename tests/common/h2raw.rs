//! A raw HTTP/2 client for the attack tests: frames built by hand (HPACK literals and static
//! indexes, no Huffman coding), written as given, and frames read back one at a time (the
//! header blocks of HEADERS frames decoded, with the connection's HPACK table).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// One frame: its type, flags, stream and payload (and a HEADERS frame's decoded fields).
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
    pub fields: Vec<(String, String)>,
}

impl Frame {
    /// A GOAWAY's error code.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            GOAWAY => 4,
            RST_STREAM => 0,
            _ => return None,
        };
        self.payload
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    }

    /// A HEADERS frame's `:status`.
    pub fn status(&self) -> Option<u16> {
        self.field(":status")?.parse().ok()
    }

    /// A HEADERS frame's field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix, the prefix's other bits being `first`.
pub fn integer(first: u8, n: u32, mut value: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

fn string(text: &[u8], out: &mut Vec<u8>) {
    integer(0, 7, text.len(), out);
    out.extend_from_slice(text);
}

/// A literal header field without indexing, its name given.
pub fn literal(name: &str, value: &[u8], out: &mut Vec<u8>) {
    out.push(0);
    string(name.as_bytes(), out);
    string(value, out);
}

/// A literal header field added to the dynamic table.
pub fn indexed_literal(name: &str, value: &[u8], out: &mut Vec<u8>) {
    out.push(0x40);
    string(name.as_bytes(), out);
    string(value, out);
}

/// A request header block: the method and path, scheme http, authority `t`, then `extra`
/// fields.
pub fn request_block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    match method {
        "GET" => out.push(0x82),
        "POST" => out.push(0x83),
        other => {
            out.push(0x02);
            string(other.as_bytes(), &mut out);
        }
    }
    out.push(0x86);
    out.push(0x04);
    string(path.as_bytes(), &mut out);
    out.push(0x01);
    string(b"t", &mut out);
    for (name, value) in extra {
        literal(name, value.as_bytes(), &mut out);
    }
    out
}

/// A connection speaking raw frames.
pub struct Raw {
    pub sock: TcpStream,
    buf: Vec<u8>,
    decoder: tws::server::h2::hpack::Decoder,
}

impl Raw {
    /// Connects, sends the preface and empty SETTINGS, and acknowledges the server's.
    pub fn connect(addr: std::net::SocketAddr) -> Raw {
        let sock = TcpStream::connect_timeout(&addr, super::WAIT).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        sock.set_write_timeout(Some(super::WAIT)).unwrap();
        let mut raw = Raw {
            sock,
            buf: Vec::new(),
            decoder: tws::server::h2::hpack::Decoder::new(4096),
        };
        let mut start = PREFACE.to_vec();
        start.extend(frame(SETTINGS, 0, 0, &[]));
        raw.send(&start).unwrap();
        let settings = raw.expect(|f| f.kind == SETTINGS && f.flags & ACK == 0);
        assert!(settings.is_some(), "no SETTINGS from the server");
        raw.send(&frame(SETTINGS, ACK, 0, &[])).unwrap();
        raw
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// The next frame, if one arrives within the read timeout; `Err` when the connection ended.
    pub fn next(&mut self) -> Result<Option<Frame>, ()> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let head: Vec<u8> = self.buf.drain(..9 + len).collect();
                    let mut frame = Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff,
                        payload: head[9..].to_vec(),
                        fields: Vec::new(),
                    };
                    if frame.kind == HEADERS {
                        let fields = &mut frame.fields;
                        let decoded = self.decoder.decode(&frame.payload, 1 << 20, |n, v| {
                            fields.push((
                                String::from_utf8_lossy(n).into_owned(),
                                String::from_utf8_lossy(v).into_owned(),
                            ));
                            Ok::<(), ()>(())
                        });
                        assert!(matches!(decoded, Ok(Ok(()))), "a bad header block");
                    }
                    return Ok(Some(frame));
                }
            }
            let mut chunk = [0u8; 16384];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(_) => return Err(()),
            }
        }
    }

    /// Reads frames (bounded by `WAIT`) until one matches; `None` if the connection ends first.
    pub fn expect(&mut self, wanted: impl Fn(&Frame) -> bool) -> Option<Frame> {
        let started = Instant::now();
        while started.elapsed() < super::WAIT {
            match self.next() {
                Ok(Some(f)) if wanted(&f) => return Some(f),
                Ok(_) => {}
                Err(()) => return None,
            }
        }
        None
    }

    /// Reads until the server closes (bounded by `WAIT`); the GOAWAY seen, if any.
    pub fn until_closed(&mut self) -> Option<Frame> {
        let started = Instant::now();
        let mut goaway = None;
        while started.elapsed() < super::WAIT {
            match self.next() {
                Ok(Some(f)) if f.kind == GOAWAY => goaway = Some(f),
                Ok(_) => {}
                Err(()) => return goaway,
            }
        }
        panic!("the server did not close the connection");
    }
}

/// A site with the bundled pages and short timeouts, served in cleartext.
pub fn h2c_server(name: &str, timeouts: &str) -> super::Server {
    let dir = super::scratch(name);
    let routes = std::fs::read_to_string(super::repo().join("routes.toml")).unwrap();
    let routes = routes
        .replace(
            "root = \"site\"",
            &format!("root = \"{}\"", super::repo().join("site").display()),
        )
        .replace(
            "data = \"data\"",
            &format!("data = \"{}\"", dir.join("data").display()),
        )
        .replace(
            "[server.limits]",
            &format!("[server.timeouts]\n{timeouts}\n\n[server.limits]"),
        );
    std::fs::write(dir.join("routes.toml"), routes).unwrap();
    super::Server::start(&["--config", dir.join("routes.toml").to_str().unwrap()])
}

/// The server still answers a fresh connection.
pub fn alive(server: &super::Server) {
    let mut raw = Raw::connect(server.addr);
    raw.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("GET", "/", &[]),
    ))
    .unwrap();
    let head = raw
        .expect(|f| f.kind == HEADERS && f.stream == 1)
        .expect("an answer");
    assert_eq!(head.status(), Some(200));
}
