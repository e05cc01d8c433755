//! One client connection: its socket, buffers and state, and the non-blocking reads and writes
//! (sendfile for file bodies) the event loop drives.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;

use crate::handlers::Routed;
use crate::http::body::BodyDecoder;
use crate::http::response::Content;
use crate::http::{Body, Request};

/// Buffers larger than this are given back once emptied rather than kept for the next request.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;
/// Most file bytes sent to one connection per turn of the loop, so that one fast reader of a
/// large file cannot starve the others.
const SEND_BUDGET: u64 = 1 << 20;

/// How far a flush got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued was sent.
    All,
    /// The socket is full: wait for it to become writable.
    Blocked,
    /// The turn's budget is spent but the socket would take more: come back next turn.
    Yielded,
}

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
}

/// A request waiting for its body.
pub struct PendingBody {
    pub req: Request,
    pub routed: Routed,
    pub decoder: BodyDecoder,
    pub body: Vec<u8>,
}

/// Part of a response still to be sent after `output`.
enum Segment {
    Bytes {
        data: Vec<u8>,
        pos: usize,
    },
    File {
        file: Arc<File>,
        offset: u64,
        remaining: u64,
    },
}

pub struct Conn {
    /// Unique for the server's life; slab slots are reused, ids are not.
    pub id: u64,
    pub sock: TcpStream,
    pub peer: SocketAddr,
    pub state: State,
    /// Received bytes not yet parsed.
    pub input: Vec<u8>,
    /// Serialised response bytes not yet written, from `out_pos`.
    pub output: Vec<u8>,
    out_pos: usize,
    /// File ranges (and the bytes between them) that follow `output`.
    queue: VecDeque<Segment>,
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
    /// Response bytes written so far, and at the start of the current send-rate window.
    pub sent: u64,
    pub window_sent: u64,
    pub window_start: Instant,
}

/// The outcome of a read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data,
    WouldBlock,
    Eof,
}

impl Conn {
    pub fn new(
        id: u64,
        sock: TcpStream,
        peer: SocketAddr,
        deadline: Instant,
        now: Instant,
    ) -> Conn {
        Conn {
            id,
            sock,
            peer,
            state: State::Idle,
            input: Vec::new(),
            output: Vec::new(),
            out_pos: 0,
            queue: VecDeque::new(),
            readable: true,
            peer_closed: false,
            keep_alive: true,
            deadline,
            last_active: now,
            first_request: true,
            sent: 0,
            window_sent: 0,
            window_start: now,
        }
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
        match (&self.sock).read(&mut scratch[..room]) {
            Ok(0) => {
                self.peer_closed = true;
                self.readable = false;
                Ok(ReadOutcome::Eof)
            }
            Ok(n) => {
                self.input.extend_from_slice(&scratch[..n]);
                // A short read drained the socket; epoll reports the next arrival.
                if n < room {
                    self.readable = false;
                }
                Ok(ReadOutcome::Data)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Ok(ReadOutcome::WouldBlock)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(ReadOutcome::Data),
            Err(e) => Err(e),
        }
    }

    /// Queues a response body to follow the bytes already in `output`.
    pub fn queue_body(&mut self, body: Body) {
        match body {
            Body::Empty => {}
            Body::Bytes(bytes) => self.output.extend_from_slice(&bytes),
            Body::Static(bytes) => self.output.extend_from_slice(bytes),
            Body::Content {
                content,
                offset,
                len,
            } => self.queue_content(content, offset, len),
            Body::Multipart {
                content,
                parts,
                tail,
            } => {
                for part in parts {
                    self.queue.push_back(Segment::Bytes {
                        data: part.head,
                        pos: 0,
                    });
                    self.queue_content(content.clone(), part.offset, part.len);
                }
                self.queue.push_back(Segment::Bytes { data: tail, pos: 0 });
            }
        }
    }

    /// Queues a range of content: file ranges go out with sendfile, memory is copied. Bytes
    /// follow whatever is already queued, so they join `output` only while the queue is empty.
    fn queue_content(&mut self, content: Content, offset: u64, len: u64) {
        match content {
            Content::File(file) => self.queue_file(file, offset, len),
            Content::Memory(bytes) => {
                let range = &bytes[offset as usize..(offset + len) as usize];
                if self.queue.is_empty() {
                    self.output.extend_from_slice(range);
                } else {
                    self.queue.push_back(Segment::Bytes {
                        data: range.to_vec(),
                        pos: 0,
                    });
                }
            }
        }
    }

    fn queue_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        if len > 0 {
            self.queue.push_back(Segment::File {
                file,
                offset,
                remaining: len,
            });
        }
    }

    /// Writes what it can this turn.
    pub fn flush(&mut self, now: Instant) -> io::Result<Flushed> {
        let mut written = 0;
        let result = self.send_queued(&mut written);
        if written > 0 {
            self.sent += written;
            self.last_active = now;
        }
        result
    }

    fn send_queued(&mut self, written: &mut u64) -> io::Result<Flushed> {
        // When file data follows the head, let the kernel hold the head back and fill whole
        // segments (MSG_MORE) instead of sending it alone.
        let more = !self.queue.is_empty();
        if !write_from(&self.sock, &self.output, &mut self.out_pos, more, written)? {
            return Ok(Flushed::Blocked);
        }
        self.output.clear();
        self.out_pos = 0;
        if self.output.capacity() > KEEP_BUFFER_BYTES {
            // A large answer (a listing) went out: do not keep its buffer for small ones.
            self.output = Vec::new();
        }
        let mut budget = SEND_BUDGET;
        while !self.queue.is_empty() {
            let more = self.queue.len() > 1;
            let Some(segment) = self.queue.front_mut() else {
                break;
            };
            let done = match segment {
                Segment::Bytes { data, pos } => write_from(&self.sock, data, pos, more, written)?,
                Segment::File {
                    file,
                    offset,
                    remaining,
                } => loop {
                    if budget == 0 {
                        return Ok(Flushed::Yielded);
                    }
                    let count = (*remaining).min(budget);
                    match sendfile(&self.sock, file, offset, count) {
                        // The file shrank under us: the promised length can no longer be met.
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => {
                            *remaining -= n as u64;
                            budget -= n as u64;
                            *written += n as u64;
                            if *remaining == 0 {
                                break true;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                },
            };
            if !done {
                return Ok(Flushed::Blocked);
            }
            self.queue.pop_front();
        }
        Ok(Flushed::All)
    }

    /// True when nothing is queued for writing.
    pub fn flushed(&self) -> bool {
        self.out_pos >= self.output.len() && self.queue.is_empty()
    }

    /// Gives back buffer memory held by an idle connection.
    pub fn release_buffers(&mut self) {
        if self.input.is_empty() {
            self.input = Vec::new();
        }
        if self.flushed() {
            self.output = Vec::new();
            self.out_pos = 0;
        }
    }
}

/// Writes `data[*pos..]`; `Ok(true)` once all of it is written, `Ok(false)` on WouldBlock.
/// `more` tells the kernel that more data follows at once (MSG_MORE); `written` counts bytes.
fn write_from(
    sock: &TcpStream,
    data: &[u8],
    pos: &mut usize,
    more: bool,
    written: &mut u64,
) -> io::Result<bool> {
    let flags = if more { libc::MSG_MORE } else { 0 } | libc::MSG_NOSIGNAL;
    while *pos < data.len() {
        let rest = &data[*pos..];
        // SAFETY: `rest` is a valid, initialised buffer for the duration of the call.
        let n = unsafe { libc::send(sock.as_raw_fd(), rest.as_ptr().cast(), rest.len(), flags) };
        let result = if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *pos += n;
                *written += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Copies up to `count` bytes from `file` at `offset` to the socket in the kernel.
fn sendfile(sock: &TcpStream, file: &File, offset: &mut u64, count: u64) -> io::Result<usize> {
    let mut off = *offset as libc::off_t;
    // SAFETY: both descriptors are open for the duration of the call and `off` is a valid,
    // exclusively borrowed off_t that the kernel updates.
    let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, count as usize) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    *offset = off as u64;
    Ok(n as usize)
}
