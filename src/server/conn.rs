//! One client connection: its socket (and TLS state), its buffers and where it is in its
//! request/response cycle. Every byte it reads or writes goes through its `Wire`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;

use super::output::{Flushed, Output};
use super::wire::{Delivered, Tls, Wire};
use crate::handlers::Routed;
use crate::http::body::BodyDecoder;
use crate::http::{Body, Request};

/// Where a connection is in its request/response cycle.
pub enum State {
    /// Waiting for the first byte of a request.
    Idle,
    /// Part of a request head has arrived.
    Head,
    /// Reading the body of a routed request.
    Body(Box<PendingBody>),
    /// A worker is producing the response.
    Busy { req: Arc<Request> },
    /// Waiting for a worker that is answering the same path for another connection; answered
    /// from what that worker made.
    Parked { req: Request, routed: Routed },
    /// Writing a response.
    Sending,
    /// The write side is shut; input is read and dropped until the peer closes or time runs out.
    Draining,
    /// An HTTP/2 connection: its streams are its requests.
    H2(Box<super::h2::H2>),
}

/// A request waiting for its body.
pub struct PendingBody {
    pub req: Request,
    pub routed: Routed,
    pub decoder: BodyDecoder,
    pub body: Vec<u8>,
}

/// What the connection's requests get: the site, or a redirect to its HTTPS address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Site,
    /// Every request is answered 308 to `https://` + its host at this port.
    RedirectToHttps(u16),
}

pub struct Conn {
    /// Unique for the server's life; slab slots are reused, ids are not.
    pub id: u64,
    pub sock: TcpStream,
    /// TLS state, on a TLS listener's connections.
    tls: Option<Box<Tls>>,
    pub role: Role,
    pub peer: SocketAddr,
    pub state: State,
    /// Received bytes not yet parsed.
    pub input: Vec<u8>,
    /// What is still to be sent.
    pub out: Output,
    /// The socket may have unread input (no short read or WouldBlock seen since the last event).
    pub readable: bool,
    /// The peer has shut down its side.
    pub peer_closed: bool,
    /// Keep the connection open after the response being sent.
    pub keep_alive: bool,
    /// When the current state times out.
    pub deadline: Instant,
    /// When the connection last made progress (reading or writing).
    pub last_active: Instant,
    /// No response has been sent yet.
    pub first_request: bool,
    /// When the current request's first byte was read.
    pub started: Instant,
    /// Response bytes written so far, and at the start of the current send-rate window.
    pub sent: u64,
    pub window_sent: u64,
    pub window_start: Instant,
    /// Body bytes this connection is charged against the server's budget.
    pub body_charge: usize,
    /// Waiting for room in the body budget before reading more.
    pub awaiting_budget: bool,
    /// epoll reported that the peer shut down its side (or an error), possibly before what it
    /// sent was read.
    pub hangup: bool,
    /// The send buffer was sized for the path (before the first file was streamed).
    send_buffer_sized: bool,
    /// The route (with the routes generation it belongs to) the request being answered matched.
    pub route: Option<(u64, usize)>,
}

/// The outcome of a read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data,
    WouldBlock,
    Eof,
    /// Plain HTTP arrived on a TLS port: answer 400 in plain text.
    NotTls,
}

impl Conn {
    pub fn new(
        id: u64,
        sock: TcpStream,
        peer: SocketAddr,
        tls: Option<Box<Tls>>,
        role: Role,
        deadline: Instant,
        now: Instant,
    ) -> Conn {
        Conn {
            id,
            sock,
            tls,
            role,
            peer,
            state: State::Idle,
            input: Vec::new(),
            out: Output::default(),
            readable: true,
            peer_closed: false,
            keep_alive: true,
            deadline,
            last_active: now,
            first_request: true,
            started: now,
            sent: 0,
            window_sent: 0,
            window_start: now,
            body_charge: 0,
            awaiting_budget: false,
            hangup: false,
            send_buffer_sized: false,
            route: None,
        }
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

    /// Answers in plain text from now on (plain HTTP arrived on a TLS port).
    /// True when TLS negotiated HTTP/2 with ALPN.
    pub fn alpn_h2(&self) -> bool {
        self.tls
            .as_ref()
            .and_then(|t| t.conn.alpn_protocol())
            .is_some_and(|p| p == b"h2")
    }

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

    /// Queues a response body to follow the bytes already in `out`; a streamed body is sent
    /// in chunks when `chunked`.
    pub fn queue_body(&mut self, body: Body, chunked: bool) {
        self.out.queue_body(body, chunked);
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
