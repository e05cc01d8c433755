//! One client connection: its socket, buffers and state, and the non-blocking reads and writes
//! (sendfile for file bodies) the event loop drives.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;

use crate::handlers::Routed;
use crate::http::body::BodyDecoder;
use crate::http::{Body, Request};

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 16 * 1024;
/// Largest count handed to one sendfile call.
const SENDFILE_CHUNK: u64 = 1 << 20;

/// Where a connection is in its request/response cycle.
pub enum State {
    /// Waiting for the first byte of a request.
    Idle,
    /// Part of a request head has arrived.
    Head,
    /// Reading the body of a routed request.
    Body(Box<PendingBody>),
    /// A worker is producing the response. `cache_key` is the path under which the loop may
    /// cache the file set the response comes with.
    Busy {
        req: Arc<Request>,
        cache_key: Option<String>,
    },
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
    /// When the connection last made progress (used to release idle buffers).
    pub last_active: Instant,
}

/// The outcome of a read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data,
    WouldBlock,
    Eof,
}

impl Conn {
    pub fn new(id: u64, sock: TcpStream, peer: SocketAddr, deadline: Instant) -> Conn {
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
            last_active: Instant::now(),
        }
    }

    /// Reads once into `input`, up to `cap` buffered bytes.
    pub fn read_some(&mut self, cap: usize) -> io::Result<ReadOutcome> {
        if self.peer_closed {
            return Ok(ReadOutcome::Eof);
        }
        let room = cap.saturating_sub(self.input.len()).min(READ_CHUNK);
        if room == 0 {
            return Ok(ReadOutcome::WouldBlock);
        }
        let start = self.input.len();
        self.input.resize(start + room, 0);
        let result = self.sock.read(&mut self.input[start..]);
        let n = *result.as_ref().unwrap_or(&0);
        self.input.truncate(start + n);
        match result {
            Ok(0) => {
                self.peer_closed = true;
                self.readable = false;
                Ok(ReadOutcome::Eof)
            }
            Ok(n) => {
                // A short read drained the socket; epoll reports the next arrival.
                if n < room {
                    self.readable = false;
                }
                self.last_active = Instant::now();
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
            Body::Shared(bytes) => self.output.extend_from_slice(&bytes),
            Body::File { file, offset, len } => self.queue_file(file, offset, len),
            Body::Multipart { file, parts, tail } => {
                for part in parts {
                    self.queue.push_back(Segment::Bytes {
                        data: part.head,
                        pos: 0,
                    });
                    self.queue_file(Arc::clone(&file), part.offset, part.len);
                }
                self.queue.push_back(Segment::Bytes { data: tail, pos: 0 });
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

    /// Writes what it can. `Ok(true)` once everything queued has been sent.
    pub fn flush(&mut self) -> io::Result<bool> {
        if !write_from(
            &mut self.sock,
            &self.output,
            &mut self.out_pos,
            &mut self.last_active,
        )? {
            return Ok(false);
        }
        self.output.clear();
        self.out_pos = 0;
        while let Some(segment) = self.queue.front_mut() {
            let done = match segment {
                Segment::Bytes { data, pos } => {
                    write_from(&mut self.sock, data, pos, &mut self.last_active)?
                }
                Segment::File {
                    file,
                    offset,
                    remaining,
                } => loop {
                    let count = (*remaining).min(SENDFILE_CHUNK);
                    match sendfile(&self.sock, file, offset, count) {
                        // The file shrank under us: the promised length can no longer be met.
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => {
                            *remaining -= n as u64;
                            self.last_active = Instant::now();
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
                return Ok(false);
            }
            self.queue.pop_front();
        }
        Ok(true)
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
fn write_from(
    sock: &mut TcpStream,
    data: &[u8],
    pos: &mut usize,
    last_active: &mut Instant,
) -> io::Result<bool> {
    while *pos < data.len() {
        match sock.write(&data[*pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                *pos += n;
                *last_active = Instant::now();
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
