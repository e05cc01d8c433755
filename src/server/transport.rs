//! A connection's transport: who it is (slot, id, peer, listener role), its socket and TLS
//! state (through its `Wire`), the bytes read and not yet parsed, what is still to be sent
//! (`Output`), and the progress figures the sweep judges it by. Protocols above it see only
//! plaintext; nothing here knows HTTP.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::output::{Flushed, Output};
use super::ticket::Origin;
use super::wire::{Delivered, Tls, Wire};
use crate::rules::proxies::{ProxyHeader, proxy_header};

/// What the connection's requests get: the site, or a redirect to its HTTPS address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Site,
    /// Every request is answered 308 to `https://` + its host at this port.
    RedirectToHttps(u16),
}

/// A connection and the PROXY protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    /// The peer is not a trusted proxy: it is the client.
    Untrusted,
    /// A trusted proxy, whose connection may start with a PROXY header.
    Expected,
    /// A trusted proxy whose PROXY header named the client.
    Named,
    /// A trusted proxy that sent no PROXY header: its forwarding headers name the client.
    Forwarded,
}

/// Most bytes of a PROXY header accepted (v1 is at most 107; v2 with a few TLVs).
const MAX_PROXY_HEADER: usize = 1024;

/// The outcome of a read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data,
    WouldBlock,
    Eof,
    /// Plain HTTP arrived on a TLS port: answer 400 in plain text.
    NotTls,
}

/// A connection as accepted: its socket, who is at the other end, and what its listener gives.
pub struct Accepted {
    pub sock: TcpStream,
    pub peer: SocketAddr,
    pub tls: Option<Box<Tls>>,
    pub role: Role,
    /// The peer is a trusted proxy.
    pub trusted: bool,
}

pub struct Transport {
    /// The connection's slot in its loop's table.
    pub key: usize,
    /// Unique for the server's life; slots are reused, ids are not.
    pub id: u64,
    pub peer: SocketAddr,
    /// The client: the peer, or the one a trusted proxy's PROXY header named.
    pub client: SocketAddr,
    /// Where the connection is with a trusted proxy's PROXY header.
    pub proxy: Proxy,
    pub role: Role,
    sock: TcpStream,
    /// TLS state, on a TLS listener's connections.
    tls: Option<Box<Tls>>,
    /// The send buffer was sized for the path (before the first file was streamed).
    send_buffer_sized: bool,
    /// Received bytes not yet parsed.
    pub input: Vec<u8>,
    /// What is still to be sent.
    pub out: Output,
    /// The socket may have unread input (no short read or WouldBlock seen since the last event).
    pub readable: bool,
    /// The peer has shut down its side (a read returned the end).
    pub peer_closed: bool,
    /// epoll reported that the peer shut down its side (or an error), possibly before what it
    /// sent was read.
    pub hangup: bool,
    /// When the connection last made progress (reading or writing).
    pub last_active: Instant,
    /// Response bytes written so far, and at the start of the current send-rate window.
    sent: u64,
    window_sent: u64,
    window_start: Instant,
    /// Body bytes this connection is charged against the server's budget (see `budget`).
    pub body_charge: usize,
    /// Waiting for room in the body budget before reading more.
    pub awaiting_budget: bool,
}

impl Transport {
    pub fn new(key: usize, id: u64, accepted: Accepted, now: Instant) -> Transport {
        let Accepted {
            sock,
            peer,
            tls,
            role,
            trusted,
        } = accepted;
        Transport {
            key,
            id,
            peer,
            client: peer,
            proxy: if trusted {
                Proxy::Expected
            } else {
                Proxy::Untrusted
            },
            role,
            sock,
            tls,
            send_buffer_sized: false,
            input: Vec::new(),
            out: Output::default(),
            readable: true,
            peer_closed: false,
            hangup: false,
            last_active: now,
            sent: 0,
            window_sent: 0,
            window_start: now,
            body_charge: 0,
            awaiting_budget: false,
        }
    }

    /// Where an answer for `stream` on this connection goes (0 on HTTP/1.1).
    pub fn origin(&self, stream: u32) -> Origin {
        Origin {
            key: self.key,
            conn: self.id,
            stream,
        }
    }

    pub fn sock_mut(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    pub fn sock(&self) -> &TcpStream {
        &self.sock
    }

    /// The connection's wire, for one operation.
    fn wire(&mut self) -> Wire<'_> {
        Wire {
            sock: &self.sock,
            tls: self.tls.as_deref_mut(),
            sized: &mut self.send_buffer_sized,
        }
    }

    /// The TLS version, once negotiated (for the access log).
    pub fn tls_version(&self) -> Option<&'static str> {
        let version = self.tls.as_ref()?.conn.protocol_version()?;
        Some(match version {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        })
    }

    /// True when TLS negotiated HTTP/2 with ALPN.
    pub fn alpn_h2(&self) -> bool {
        self.tls
            .as_ref()
            .and_then(|t| t.conn.alpn_protocol())
            .is_some_and(|p| p == b"h2")
    }

    /// Answers in plain text from now on (plain HTTP arrived on a TLS port).
    pub fn drop_tls(&mut self) {
        self.tls = None;
    }

    /// Reads once into `input`, up to `cap` buffered bytes.
    pub fn read_some(&mut self, cap: usize, scratch: &mut [u8]) -> io::Result<ReadOutcome> {
        if self.peer_closed {
            return Ok(ReadOutcome::Eof);
        }
        let room = cap.saturating_sub(self.input.len()).min(scratch.len());
        if room == 0 {
            return Ok(ReadOutcome::WouldBlock);
        }
        if self.proxy == Proxy::Expected && !self.read_proxy_header()? {
            self.readable = false;
            return Ok(ReadOutcome::WouldBlock);
        }
        // Read into the loop's scratch buffer and keep only what arrived, so an idle connection
        // holds no read buffer of its own.
        let mut readable = self.readable;
        let short_drains = !self.hangup;
        let delivered = self
            .wire()
            .read(&mut scratch[..room], &mut readable, short_drains);
        self.readable = readable;
        match delivered {
            Ok(Delivered::Bytes(n)) => {
                self.input.extend_from_slice(&scratch[..n]);
                // A short plain read drained the socket; epoll reports the next arrival.
                // After a hang-up no event will come: keep reading until the end shows.
                if n < room && self.tls.is_none() && !self.hangup {
                    self.readable = false;
                }
                Ok(ReadOutcome::Data)
            }
            Ok(Delivered::Eof) => {
                self.peer_closed = true;
                self.readable = false;
                Ok(ReadOutcome::Eof)
            }
            Ok(Delivered::WouldBlock) => Ok(ReadOutcome::WouldBlock),
            Ok(Delivered::NotTls) => Ok(ReadOutcome::NotTls),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(ReadOutcome::Data),
            Err(e) => Err(e),
        }
    }

    /// Takes a trusted proxy's PROXY header off the front of the connection, before TLS or
    /// HTTP see a byte; false while only part of it has arrived.
    fn read_proxy_header(&mut self) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let mut head = [0u8; MAX_PROXY_HEADER];
        // SAFETY: recv writes at most `head.len()` bytes into `head`.
        let n = unsafe {
            libc::recv(
                self.sock.as_raw_fd(),
                head.as_mut_ptr().cast(),
                head.len(),
                libc::MSG_PEEK,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(false)
            } else {
                Err(e)
            };
        }
        let n = n as usize;
        if n == 0 {
            // The end: the read that follows says so.
            self.proxy = Proxy::Forwarded;
            return Ok(true);
        }
        match proxy_header(&head[..n]) {
            ProxyHeader::Complete { len, client } => {
                let mut taken = 0;
                while taken < len {
                    match (&self.sock).read(&mut head[taken..len]) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(k) => taken += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                self.proxy = match client {
                    Some(client) => {
                        self.client = client;
                        Proxy::Named
                    }
                    None => Proxy::Forwarded,
                };
                Ok(true)
            }
            ProxyHeader::Absent => {
                self.proxy = Proxy::Forwarded;
                Ok(true)
            }
            ProxyHeader::Partial if n < head.len() => Ok(false),
            ProxyHeader::Partial | ProxyHeader::Invalid => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a PROXY header that cannot be read",
            )),
        }
    }

    /// Bytes the kernel holds for the connection, not yet read (`FIONREAD`; on TLS, records
    /// still encrypted, so at least the plaintext they hold).
    pub fn unread_in_kernel(&self) -> usize {
        use std::os::fd::AsRawFd;
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into `n`.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::FIONREAD, &mut n) };
        if rc == 0 { n.max(0) as usize } else { 0 }
    }

    /// Writes what it can this turn.
    pub fn flush(&mut self, now: Instant) -> io::Result<Flushed> {
        let mut written = 0;
        let mut wire = Wire {
            sock: &self.sock,
            tls: self.tls.as_deref_mut(),
            sized: &mut self.send_buffer_sized,
        };
        let result = self.out.send(&mut wire, &mut written);
        if written > 0 {
            self.sent += written;
            self.last_active = now;
        }
        result
    }

    /// True when nothing is queued for writing, on the wire either.
    pub fn flushed(&mut self) -> bool {
        self.out.is_empty() && !self.wire().pending()
    }

    /// Bytes written so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// A response starts: the send rate is measured from now.
    pub fn start_sending(&mut self, now: Instant) {
        self.window_start = now;
        self.window_sent = self.sent;
    }

    /// True when sending has stalled (nothing written for a whole `window`) or is too slow
    /// (under `min_rate` bytes a second over the last window); starts a new window when one
    /// has passed at a good rate.
    pub fn send_stalled(&mut self, now: Instant, window: Duration, min_rate: u64) -> bool {
        let stalled = now.duration_since(self.last_active) >= window;
        let over = now.duration_since(self.window_start) >= window;
        let slow = over && {
            let sent = self.sent - self.window_sent;
            ((sent as f64) / window.as_secs_f64()) < min_rate as f64
        };
        if over && !slow {
            self.start_sending(now);
        }
        stalled || slow
    }

    /// Too slow a reader: reset rather than leave the kernel holding (and trickling out) what
    /// it buffered for it.
    pub fn reset_on_close(&mut self) {
        let _ = socket2::SockRef::from(&self.sock).set_linger(Some(Duration::ZERO));
    }

    /// Stops writing: a lingering close reads on until the peer closes.
    pub fn shutdown_write(&mut self) {
        self.wire().shutdown_write();
    }

    /// Says goodbye on the wire (TLS close_notify) before the connection is dropped.
    pub fn finish(&mut self) {
        self.wire().close();
    }

    /// Gives back buffer memory held by an idle connection.
    pub fn release_buffers(&mut self) {
        if self.input.is_empty() {
            self.input = Vec::new();
        }
        self.out.release();
    }
}
