//! One client connection: its socket, buffers and state, and the non-blocking reads and writes
//! (sendfile for file bodies) the event loop drives.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
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
/// Shared bytes up to this size are copied after the head; larger ones are sent from where
/// they are shared (a listing page, a cached file), so no connection holds a copy.
const COPY_SHARED_BYTES: u64 = 16 * 1024;
/// Most pieces gathered into one send.
const MAX_IOVECS: usize = 8;

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
    /// Bytes shared with a cache and other connections; advanced as they are sent.
    Shared(Bytes),
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
    /// Body bytes this connection is charged against the server's budget.
    pub body_charge: usize,
    /// Waiting for room in the body budget before reading more.
    pub awaiting_budget: bool,
    /// epoll reported that the peer shut down its side (or an error), possibly before what it
    /// sent was read.
    pub hangup: bool,
    /// The send buffer was sized for the path (before the first file was streamed).
    send_buffer_sized: bool,
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
            body_charge: 0,
            awaiting_budget: false,
            hangup: false,
            send_buffer_sized: false,
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
                // A short read drained the socket; epoll reports the next arrival. After a
                // hang-up no event will come: keep reading until the end or the error shows.
                if n < room && !self.hangup {
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
            Content::Memory(bytes) if len <= COPY_SHARED_BYTES && self.queue.is_empty() => {
                self.output
                    .extend_from_slice(&bytes[offset as usize..(offset + len) as usize]);
            }
            Content::Memory(bytes) => self.queue.push_back(Segment::Shared(
                bytes.slice(offset as usize..(offset + len) as usize),
            )),
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
        let mut budget = SEND_BUDGET;
        loop {
            // Bytes first: what is left of `output` and the memory segments after it, in one
            // gathered send.
            if !self.send_memory(written)? {
                return Ok(Flushed::Blocked);
            }
            let Some(Segment::File {
                file,
                offset,
                remaining,
            }) = self.queue.front_mut()
            else {
                break;
            };
            if !self.send_buffer_sized {
                self.send_buffer_sized = true;
                super::tcp::size_send_buffer(&self.sock);
            }
            let done = loop {
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
            };
            if !done {
                return Ok(Flushed::Blocked);
            }
            self.queue.pop_front();
        }
        Ok(Flushed::All)
    }

    /// Sends `output` and the memory segments at the front of the queue, gathered; true once
    /// they are all out (a file segment, if any, is next), false when the socket is full.
    fn send_memory(&mut self, written: &mut u64) -> io::Result<bool> {
        loop {
            let mut pieces: [&[u8]; MAX_IOVECS] = [&[]; MAX_IOVECS];
            let mut count = 0;
            if self.out_pos < self.output.len() {
                pieces[0] = &self.output[self.out_pos..];
                count = 1;
            }
            for segment in &self.queue {
                if count == MAX_IOVECS {
                    break;
                }
                pieces[count] = match segment {
                    Segment::Bytes { data, pos } => &data[*pos..],
                    Segment::Shared(bytes) => bytes,
                    Segment::File { .. } => break,
                };
                count += 1;
            }
            if count == 0 {
                self.reset_output();
                return Ok(true);
            }
            // When more follows (a file, or pieces past this send), let the kernel hold the
            // tail back to fill whole segments (MSG_MORE).
            let more = self.queue.len() + usize::from(self.out_pos < self.output.len()) > count;
            let mut n = match send_gathered(&self.sock, &pieces[..count], more) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            *written += n as u64;
            // Advance past what was sent.
            let left = self.output.len() - self.out_pos;
            if left > 0 {
                let step = n.min(left);
                self.out_pos += step;
                n -= step;
                if self.out_pos == self.output.len() {
                    self.reset_output();
                }
            }
            while n > 0 {
                let Some(front) = self.queue.front_mut() else {
                    break;
                };
                let left = match front {
                    Segment::Bytes { data, pos } => {
                        let step = n.min(data.len() - *pos);
                        *pos += step;
                        n -= step;
                        data.len() - *pos
                    }
                    Segment::Shared(bytes) => {
                        let step = n.min(bytes.len());
                        bytes.advance(step);
                        n -= step;
                        bytes.len()
                    }
                    Segment::File { .. } => break,
                };
                if left == 0 {
                    self.queue.pop_front();
                }
            }
        }
    }

    /// Empties `output` once sent; a large answer's buffer is not kept for small ones.
    fn reset_output(&mut self) {
        self.output.clear();
        self.out_pos = 0;
        if self.output.capacity() > KEEP_BUFFER_BYTES {
            self.output = Vec::new();
        }
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

/// One `sendmsg` of several pieces; `more` sets MSG_MORE. Never raises SIGPIPE.
fn send_gathered(sock: &TcpStream, pieces: &[&[u8]], more: bool) -> io::Result<usize> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_IOVECS];
    for (slot, piece) in iov.iter_mut().zip(pieces) {
        slot.iov_base = piece.as_ptr() as *mut libc::c_void;
        slot.iov_len = piece.len();
    }
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = pieces.len().min(MAX_IOVECS) as _;
    let flags = if more { libc::MSG_MORE } else { 0 } | libc::MSG_NOSIGNAL;
    // SAFETY: every iovec points into a buffer borrowed for the duration of the call, which
    // the kernel only reads.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
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
