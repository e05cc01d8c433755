//! What a connection still has to send, in order: serialised bytes (heads, small bodies),
//! bytes shared with a cache (sent from where they are, never copied), and file ranges
//! (sendfile on a plain connection, read and encrypted on TLS). `Output::send` writes as
//! much as the wire takes this turn, gathering memory pieces into one call.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::{Buf, Bytes};

use super::wire::{MAX_PIECES, Wire};
use crate::http::Body;
use crate::http::response::{Content, Feed, Flow, Producer};

/// Buffers larger than this are given back once emptied rather than kept for the next request.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;
/// Most file bytes sent to one connection per turn of the loop, so that one fast reader of a
/// large file cannot starve the others.
const SEND_BUDGET: u64 = 1 << 20;
/// Shared bytes up to this size are copied after the head; larger ones are sent from where
/// they are shared (a listing page, a cached file), so no connection holds a copy.
const COPY_SHARED_BYTES: u64 = 16 * 1024;

/// How far a send got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued was sent.
    All,
    /// The socket is full: wait for it to become writable.
    Blocked,
    /// The turn's budget is spent but the socket would take more: come back next turn.
    Yielded,
    /// Everything before a streamed body is out: its next piece must be made (`take_producer`).
    NeedsPiece,
    /// A streamed body's next piece is being made on a worker, or a live body waits for
    /// its feed.
    Waiting,
}

/// Part of a response still to be sent after `buf`.
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
    /// A body made a piece at a time; `None` while a worker makes the next piece.
    Stream {
        producer: Option<Box<dyn Producer>>,
        /// Pieces are framed as HTTP/1.1 chunks.
        chunked: bool,
    },
    /// A body pushed by a feed (server-sent events), taken when all before it is out.
    Live {
        feed: Box<dyn Feed>,
        chunked: bool,
    },
}

#[derive(Default)]
pub struct Output {
    /// Serialised bytes not yet written, from `pos`.
    pub buf: Vec<u8>,
    pos: usize,
    /// What follows `buf`.
    queue: VecDeque<Segment>,
    /// The connection closes (or shuts its sending side) as soon as this is out: every send
    /// then sets MSG_MORE, and the close pushes the tail out with the FIN in the same segment,
    /// one packet (and one wake-up of the peer) fewer per short-lived connection.
    pub ends_connection: bool,
}

impl Output {
    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len() && self.queue.is_empty()
    }

    /// Bytes queued in memory and not yet sent (files and streamed bodies not counted).
    pub fn queued(&self) -> usize {
        let segments: usize = self
            .queue
            .iter()
            .map(|s| match s {
                Segment::Bytes { data, pos } => data.len() - pos,
                Segment::Shared(bytes) => bytes.len(),
                Segment::File { .. } | Segment::Stream { .. } | Segment::Live { .. } => 0,
            })
            .sum();
        self.buf.len() - self.pos + segments
    }

    /// Gives back the buffer of an idle connection.
    pub fn release(&mut self) {
        if self.is_empty() {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    /// Queues a response body to follow the bytes already in `buf`; a streamed body is
    /// framed in chunks when `chunked` (HTTP/1.1).
    pub fn queue_body(&mut self, body: Body, chunked: bool) {
        match body {
            Body::Stream(producer) => self.queue.push_back(Segment::Stream {
                producer: Some(producer),
                chunked,
            }),
            Body::Live(feed) => self.queue.push_back(Segment::Live { feed, chunked }),
            Body::Empty => {}
            Body::Bytes(bytes) => self.buf.extend_from_slice(&bytes),
            Body::Static(bytes) => self.buf.extend_from_slice(bytes),
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

    /// Queues a range of content: small shared bytes are copied (while nothing else is
    /// queued), larger ones are referred to, files are streamed.
    fn queue_content(&mut self, content: Content, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        match content {
            Content::File(file) => self.queue.push_back(Segment::File {
                file,
                offset,
                remaining: len,
            }),
            Content::Memory(bytes) if len <= COPY_SHARED_BYTES && self.queue.is_empty() => {
                self.buf
                    .extend_from_slice(&bytes[offset as usize..(offset + len) as usize]);
            }
            Content::Memory(bytes) => self.queue.push_back(Segment::Shared(
                bytes.slice(offset as usize..(offset + len) as usize),
            )),
        }
    }

    /// Sends what the wire takes this turn; `written` counts the bytes that left.
    pub fn send(&mut self, wire: &mut Wire<'_>, written: &mut u64) -> io::Result<Flushed> {
        let mut budget = SEND_BUDGET;
        loop {
            if !self.send_memory(wire, written)? {
                return Ok(Flushed::Blocked);
            }
            let (file, offset, remaining) = match self.queue.front_mut() {
                Some(Segment::File {
                    file,
                    offset,
                    remaining,
                }) => (file, offset, remaining),
                Some(Segment::Stream { producer, .. }) => {
                    // What came before is out (and, over TLS, flushed): time for a piece.
                    if !wire.flush()? {
                        return Ok(Flushed::Blocked);
                    }
                    return Ok(if producer.is_some() {
                        Flushed::NeedsPiece
                    } else {
                        Flushed::Waiting
                    });
                }
                Some(Segment::Live { .. }) => {
                    if !wire.flush()? {
                        return Ok(Flushed::Blocked);
                    }
                    if self.take_live() {
                        continue;
                    }
                    return Ok(Flushed::Waiting);
                }
                _ => break,
            };
            loop {
                if budget == 0 {
                    return Ok(Flushed::Yielded);
                }
                match wire.send_file(file, *offset, (*remaining).min(budget), *remaining) {
                    // The file shrank under us: the promised length can no longer be met.
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => {
                        *offset += n as u64;
                        *remaining -= n as u64;
                        budget -= n as u64;
                        *written += n as u64;
                        if *remaining == 0 {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok(Flushed::Blocked);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.queue.pop_front();
        }
        // What the wire holds itself (TLS records) must leave too.
        Ok(if wire.flush()? {
            Flushed::All
        } else {
            Flushed::Blocked
        })
    }

    /// Sends `buf` and the memory segments at the front of the queue, gathered; true once
    /// they are all out (a file segment, if any, is next), false when the wire is full.
    fn send_memory(&mut self, wire: &mut Wire<'_>, written: &mut u64) -> io::Result<bool> {
        loop {
            let mut pieces: [&[u8]; MAX_PIECES] = [&[]; MAX_PIECES];
            let mut count = 0;
            if self.pos < self.buf.len() {
                pieces[0] = &self.buf[self.pos..];
                count = 1;
            }
            for segment in &self.queue {
                if count == MAX_PIECES {
                    break;
                }
                pieces[count] = match segment {
                    Segment::Bytes { data, pos } => &data[*pos..],
                    Segment::Shared(bytes) => bytes,
                    Segment::File { .. } | Segment::Stream { .. } | Segment::Live { .. } => break,
                };
                count += 1;
            }
            if count == 0 {
                self.reset_buf();
                return Ok(true);
            }
            // When more follows (a file, or pieces past this send), let the kernel hold the
            // tail back to fill whole segments (MSG_MORE).
            // A live body is not "more": its events must leave as they happen.
            let queued = match self.queue.back() {
                Some(Segment::Live { .. }) => self.queue.len() - 1,
                _ => self.queue.len(),
            };
            let more =
                self.ends_connection || queued + usize::from(self.pos < self.buf.len()) > count;
            let mut n = match wire.send(&pieces[..count], more) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            *written += n as u64;
            let left = self.buf.len() - self.pos;
            if left > 0 {
                let step = n.min(left);
                self.pos += step;
                n -= step;
                if self.pos == self.buf.len() {
                    self.reset_buf();
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
                    Segment::File { .. } | Segment::Stream { .. } | Segment::Live { .. } => break,
                };
                if left == 0 {
                    self.queue.pop_front();
                }
            }
        }
    }

    /// Takes the producer of the streamed body at the front, for a worker to make its next
    /// piece (after `Flushed::NeedsPiece`).
    pub fn take_producer(&mut self) -> Option<Box<dyn Producer>> {
        match self.queue.front_mut() {
            Some(Segment::Stream { producer, .. }) => producer.take(),
            _ => None,
        }
    }

    /// A worker made the next piece of the streamed body at the front (`None`: the body is
    /// complete); queues it, framed, and gives the producer back.
    pub fn put_piece(&mut self, producer: Box<dyn Producer>, piece: Option<Vec<u8>>) {
        let Some(Segment::Stream {
            producer: slot,
            chunked,
        }) = self.queue.front_mut()
        else {
            return;
        };
        let chunked = *chunked;
        match piece {
            None => {
                self.queue.pop_front();
                if chunked {
                    self.queue.push_front(Segment::Bytes {
                        data: b"0\r\n\r\n".to_vec(),
                        pos: 0,
                    });
                }
            }
            Some(data) => {
                *slot = Some(producer);
                if data.is_empty() {
                    return;
                }
                let data = if chunked {
                    let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
                    framed.reserve(data.len() + 2);
                    framed.extend_from_slice(&data);
                    framed.extend_from_slice(b"\r\n");
                    framed
                } else {
                    data
                };
                self.queue.push_front(Segment::Bytes { data, pos: 0 });
            }
        }
    }

    /// Takes what the live body at the front has queued into `buf`, framed; false when it
    /// has nothing yet (it wakes the connection when it does). An ended feed leaves the queue
    /// after its last chunk.
    fn take_live(&mut self) -> bool {
        let Some(Segment::Live { feed, chunked }) = self.queue.front_mut() else {
            return false;
        };
        let chunked = *chunked;
        let mut pieces = Vec::new();
        let flow = feed.take(&mut pieces);
        for piece in pieces.iter().filter(|p| !p.is_empty()) {
            if chunked {
                self.buf
                    .extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                self.buf.extend_from_slice(piece);
                self.buf.extend_from_slice(b"\r\n");
            } else {
                self.buf.extend_from_slice(piece);
            }
        }
        if flow == Flow::Ended {
            self.queue.pop_front();
            if chunked {
                self.buf.extend_from_slice(b"0\r\n\r\n");
            }
            return true;
        }
        !self.buf.is_empty()
    }

    /// True while the body being sent is a live one waiting for its feed, with nothing else
    /// to send: the connection is quiet, not stalled.
    pub fn live_waiting(&self) -> bool {
        self.pos >= self.buf.len() && matches!(self.queue.front(), Some(Segment::Live { .. }))
    }

    /// True when a live body is being sent.
    pub fn is_live(&self) -> bool {
        matches!(self.queue.back(), Some(Segment::Live { .. }))
    }

    /// Empties `buf` once sent; a large answer's buffer is not kept for small ones.
    fn reset_buf(&mut self) {
        self.buf.clear();
        self.pos = 0;
        if self.buf.capacity() > KEEP_BUFFER_BYTES {
            self.buf = Vec::new();
        }
    }
}
