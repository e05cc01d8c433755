//! One HTTP/2 connection as the event loop drives it: the `h2` crate's server (framing, HPACK,
//! flow control, its own abuse limits) over an in-memory transport. The loop puts what the
//! wire delivered into the transport and writes out what h2 produced; h2 never touches a
//! socket and needs no async runtime: every poll happens here, on the loop's thread, after an
//! event (input, room on the wire, a worker's answer), with a no-op waker. Streams are kept in
//! a slab: requests being received, requests a worker is answering, bodies being sent as the
//! peer's flow-control window allows (files read a window at a time, so memory stays bounded).

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::server::{Connection, Handshake, SendResponse};
use h2::{Reason, RecvStream, SendStream};
use slab::Slab;

use super::transport::Transport;
use crate::http::response::{Body, Content, Producer};

/// Most bytes read from a file for one DATA send.
const FILE_CHUNK: usize = 64 * 1024;
/// Most bytes of body a stream asks the peer's window for at once.
const RESERVE: usize = 256 * 1024;

/// The settings tws serves HTTP/2 with.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_concurrent_streams: u32,
    /// Decoded header list (and so, a request head): SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list: u32,
}

enum Phase {
    Handshaking(Pin<Box<Handshake<Transport, Bytes>>>),
    Open(Box<Connection<Transport, Bytes>>),
    Closed,
}

/// A request the connection has just received: its head as h2 decoded it.
pub struct Incoming {
    pub stream: usize,
    pub head: http::request::Parts,
    /// The request has no body (END_STREAM on its HEADERS).
    pub ended: bool,
}

/// A body to send, in pieces.
enum Chunk {
    Memory(Bytes),
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
}

enum Stream {
    /// The request is being received or answered; `body` holds what arrived so far.
    Open {
        respond: SendResponse<Bytes>,
        recv: Option<RecvStream>,
        body: Vec<u8>,
    },
    /// The response's body is being sent.
    Sending {
        send: SendStream<Bytes>,
        chunks: VecDeque<Chunk>,
        producer: Option<Box<dyn Producer>>,
    },
}

/// What receiving a body came to.
pub enum Received {
    /// More may come.
    Partial,
    Complete(Vec<u8>),
    /// Past the limit: answer 413.
    TooLarge,
    /// The peer reset the stream, or the connection failed.
    Gone,
}

pub struct Session {
    transport: Transport,
    phase: Phase,
    streams: Slab<Stream>,
    waker: Waker,
    closing: bool,
    /// Streams the peer reset before they were answered (Rapid Reset), and answered in all.
    peer_resets: u64,
    answered: u64,
}

/// Streams the peer may reset before being answered, over the connection's life, before it is
/// closed with ENHANCE_YOUR_CALM (unless most of its streams were answered).
const MAX_PEER_RESETS: u64 = 200;

impl Session {
    pub fn new(limits: Limits, initial: &[u8]) -> Session {
        let transport = Transport::default();
        transport.lock().input.extend_from_slice(initial);
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(limits.max_header_list)
            .initial_window_size(256 * 1024)
            .initial_connection_window_size(1024 * 1024)
            .max_send_buffer_size(RESERVE)
            .max_pending_accept_reset_streams(50)
            .max_concurrent_reset_streams(50)
            .max_local_error_reset_streams(Some(256));
        let handshake = builder.handshake::<_, Bytes>(transport.clone());
        Session {
            transport,
            phase: Phase::Handshaking(Box::pin(handshake)),
            streams: Slab::new(),
            waker: Waker::noop().clone(),
            closing: false,
            peer_resets: 0,
            answered: 0,
        }
    }

    /// Hands h2 what the wire delivered.
    pub fn feed(&mut self, input: &[u8]) {
        self.transport.lock().input.extend_from_slice(input);
    }

    /// Input h2 has not read yet (the loop stops reading the wire past a limit).
    pub fn unread(&self) -> usize {
        self.transport.lock().input.len()
    }

    pub fn peer_closed(&mut self) {
        self.transport.lock().eof = true;
    }

    /// Takes what h2 wrote, for the wire.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.transport.lock().output);
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// True while some stream is open, or h2 still holds frames of one, or output waits.
    pub fn busy(&self) -> bool {
        let wired = matches!(&self.phase, Phase::Open(conn) if conn.has_streams());
        !self.streams.is_empty() || wired || !self.transport.lock().output.is_empty()
    }

    /// Says GOAWAY: no new streams; the open ones finish.
    pub fn shut_down(&mut self) {
        if !self.closing {
            self.closing = true;
            if let Phase::Open(conn) = &mut self.phase {
                conn.graceful_shutdown();
            }
        }
    }

    /// Runs the connection: the handshake, frames received, new requests (returned), and
    /// bodies sent as windows open. `Err` once the connection is over (closed or failed).
    pub fn poll(&mut self) -> Result<Vec<Incoming>, ()> {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        if let Phase::Handshaking(handshake) = &mut self.phase {
            match handshake.as_mut().poll(&mut cx) {
                Poll::Pending => return Ok(Vec::new()),
                Poll::Ready(Ok(conn)) => {
                    self.phase = Phase::Open(Box::new(conn));
                    if self.closing
                        && let Phase::Open(conn) = &mut self.phase
                    {
                        conn.graceful_shutdown();
                    }
                }
                Poll::Ready(Err(_)) => {
                    self.phase = Phase::Closed;
                    return Err(());
                }
            }
        }
        let Phase::Open(conn) = &mut self.phase else {
            return Err(());
        };
        let mut incoming = Vec::new();
        loop {
            match conn.poll_accept(&mut cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok((request, respond)))) => {
                    let (head, recv) = request.into_parts();
                    let ended = recv.is_end_stream();
                    let stream = self.streams.insert(Stream::Open {
                        respond,
                        recv: (!ended).then_some(recv),
                        body: Vec::new(),
                    });
                    incoming.push(Incoming {
                        stream,
                        head,
                        ended,
                    });
                }
                Poll::Ready(Some(Err(e))) if e.is_reset() => {}
                Poll::Ready(Some(Err(_)) | None) => {
                    self.phase = Phase::Closed;
                    return Err(());
                }
            }
        }
        if self.peer_resets > MAX_PEER_RESETS && self.peer_resets > self.answered {
            conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
        }
        self.send_bodies(&mut cx);
        Ok(incoming)
    }

    /// Reads the body of stream `id` as far as it has arrived, up to `limit` bytes; `room`
    /// says whether the server's body budget allows taking more now (if not, the window is
    /// not reopened and the peer waits).
    pub fn receive(&mut self, id: usize, limit: u64, room: bool) -> Received {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        let received = match self.streams.get_mut(id) {
            Some(Stream::Open { recv, body, .. }) => read_body(recv, body, limit, room, &mut cx),
            _ => return Received::Gone,
        };
        if matches!(received, Received::Gone) {
            self.streams.remove(id);
        }
        received
    }

    /// Bytes of request bodies held.
    pub fn held(&self) -> usize {
        self.streams
            .iter()
            .map(|(_, s)| match s {
                Stream::Open { body, .. } => body.capacity(),
                Stream::Sending { .. } => 0,
            })
            .sum()
    }

    /// True when the peer reset stream `id` (or it is gone): its answer is not wanted.
    pub fn reset(&mut self, id: usize) -> bool {
        let waker = self.waker.clone();
        let mut cx = Context::from_waker(&waker);
        let gone = match self.streams.get_mut(id) {
            Some(Stream::Open { respond, .. }) => respond.poll_reset(&mut cx).is_ready(),
            Some(Stream::Sending { send, .. }) => send.poll_reset(&mut cx).is_ready(),
            None => true,
        };
        if gone && self.streams.contains(id) {
            self.streams.remove(id);
            self.peer_resets += 1;
        }
        gone
    }

    /// Sends the answer to stream `id`: its head (`head_only`: nothing more), then its body
    /// as the window allows.
    pub fn respond(&mut self, id: usize, head: http::Response<()>, body: Body, head_only: bool) {
        let Some(Stream::Open { .. }) = self.streams.get(id) else {
            return;
        };
        let Stream::Open { mut respond, .. } = self.streams.remove(id) else {
            unreachable!("checked above")
        };
        self.answered += 1;
        let empty = head_only || body.is_empty() && !body.is_stream();
        let Ok(send) = respond.send_response(head, empty) else {
            return;
        };
        if empty {
            return;
        }
        let (chunks, producer) = chunks_of(body);
        self.streams.insert(Stream::Sending {
            send,
            chunks,
            producer,
        });
    }

    /// Sends what the windows allow on every stream with a body pending.
    fn send_bodies(&mut self, cx: &mut Context<'_>) {
        let mut finished = Vec::new();
        for (id, stream) in self.streams.iter_mut() {
            let Stream::Sending {
                send,
                chunks,
                producer,
            } = stream
            else {
                continue;
            };
            match send_some(send, chunks, producer, cx) {
                Ok(true) | Err(_) => finished.push(id),
                Ok(false) => {}
            }
        }
        for id in finished {
            self.streams.remove(id);
        }
    }
}

/// Takes what arrived of a request body.
fn read_body(
    recv: &mut Option<RecvStream>,
    body: &mut Vec<u8>,
    limit: u64,
    room: bool,
    cx: &mut Context<'_>,
) -> Received {
    let Some(stream) = recv else {
        return Received::Complete(std::mem::take(body));
    };
    loop {
        if !room && !body.is_empty() {
            return Received::Partial;
        }
        match stream.poll_data(cx) {
            Poll::Pending => return Received::Partial,
            Poll::Ready(None) => {
                *recv = None;
                return Received::Complete(std::mem::take(body));
            }
            Poll::Ready(Some(Ok(data))) => {
                if body.len() as u64 + data.len() as u64 > limit {
                    return Received::TooLarge;
                }
                let _ = stream.flow_control().release_capacity(data.len());
                body.extend_from_slice(&data);
            }
            Poll::Ready(Some(Err(_))) => return Received::Gone,
        }
    }
}

/// A body as pieces to send.
fn chunks_of(body: Body) -> (VecDeque<Chunk>, Option<Box<dyn Producer>>) {
    let mut chunks = VecDeque::new();
    let range = |content: &Content, offset: u64, len: u64| match content {
        Content::Memory(bytes) => {
            Chunk::Memory(bytes.slice(offset as usize..(offset + len) as usize))
        }
        Content::File(file) => Chunk::File {
            file: Arc::clone(file),
            offset,
            len,
        },
    };
    match body {
        Body::Empty => {}
        Body::Bytes(bytes) => chunks.push_back(Chunk::Memory(Bytes::from(bytes))),
        Body::Static(bytes) => chunks.push_back(Chunk::Memory(Bytes::from_static(bytes))),
        Body::Content {
            content,
            offset,
            len,
        } => chunks.push_back(range(&content, offset, len)),
        Body::Multipart {
            content,
            parts,
            tail,
        } => {
            for part in parts {
                chunks.push_back(Chunk::Memory(Bytes::from(part.head)));
                chunks.push_back(range(&content, part.offset, part.len));
            }
            chunks.push_back(Chunk::Memory(Bytes::from(tail)));
        }
        Body::Stream(producer) => return (chunks, Some(producer)),
    }
    (chunks, None)
}

/// Sends what the stream's window allows; true once the whole body is sent.
fn send_some(
    send: &mut SendStream<Bytes>,
    chunks: &mut VecDeque<Chunk>,
    producer: &mut Option<Box<dyn Producer>>,
    cx: &mut Context<'_>,
) -> io::Result<bool> {
    loop {
        if chunks.is_empty() {
            let Some(p) = producer else {
                return Ok(true);
            };
            match p.produce()? {
                Some(piece) => chunks.push_back(Chunk::Memory(Bytes::from(piece))),
                None => {
                    send.send_data(Bytes::new(), true)
                        .map_err(io::Error::other)?;
                    *producer = None;
                    return Ok(true);
                }
            }
        }
        let pending: u64 = chunks
            .iter()
            .map(|c| match c {
                Chunk::Memory(b) => b.len() as u64,
                Chunk::File { len, .. } => *len,
            })
            .sum();
        if send.capacity() == 0 {
            send.reserve_capacity(pending.min(RESERVE as u64) as usize);
            match send.poll_capacity(cx) {
                Poll::Ready(Some(Ok(n))) if n > 0 => {}
                Poll::Ready(Some(Ok(_))) | Poll::Pending => return Ok(false),
                Poll::Ready(Some(Err(e))) => return Err(io::Error::other(e)),
                Poll::Ready(None) => return Err(io::ErrorKind::BrokenPipe.into()),
            }
        }
        let room = send.capacity();
        let data = match chunks.front_mut() {
            Some(Chunk::Memory(bytes)) => {
                let n = room.min(bytes.len());
                let data = bytes.split_to(n);
                if bytes.is_empty() {
                    chunks.pop_front();
                }
                data
            }
            Some(Chunk::File { file, offset, len }) => {
                let n = (room as u64).min(*len).min(FILE_CHUNK as u64) as usize;
                let mut buf = vec![0u8; n];
                file.read_exact_at(&mut buf, *offset)?;
                *offset += n as u64;
                *len -= n as u64;
                if *len == 0 {
                    chunks.pop_front();
                }
                Bytes::from(buf)
            }
            None => continue,
        };
        let last = chunks.is_empty() && producer.is_none();
        send.send_data(data, last).map_err(io::Error::other)?;
        if last {
            return Ok(true);
        }
    }
}
