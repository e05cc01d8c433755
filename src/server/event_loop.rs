//! The readiness loop: one thread owns every socket. It accepts, reads and parses request heads
//! and bodies, hands routed requests to the worker pool, and writes responses as sockets allow.
//! An idle or slow client costs a slab entry, never a worker.

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::Timeouts;
use super::cache::FileCache;
use super::conn::{Conn, Flushed, PendingBody, ReadOutcome, State};
use super::pool::Pool;
use crate::handlers::{App, Dispatch, Routed};
use crate::http::body::BodyDecoder;
use crate::http::date::DateCache;
use crate::http::request::{Framing, Parse, parse_head};
use crate::http::response::{CONTINUE, ErrorFormat, HeadContext, Response, write_head};
use crate::http::{HttpError, Limits, Request, Version};
use crate::log::AccessLog;

pub const LISTENER: Token = Token(usize::MAX - 1);
pub const WAKER: Token = Token(usize::MAX - 2);
/// How often deadlines are checked and idle buffers released.
const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// How soon to retry accepting after the process ran out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// Bytes of body input buffered per read.
const BODY_READ_CAP: usize = 64 * 1024;
/// Reads spent discarding input per turn while draining a closing connection.
const DRAIN_READS: usize = 16;

/// What a connection needs next.
enum Next {
    /// Progress was made; step again.
    Again,
    /// Wait for readiness or a worker.
    Wait,
    Close,
}

pub struct EventLoop {
    pub poll: Poll,
    pub listener: TcpListener,
    pub pool: Pool,
    pub app: Arc<App>,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub log: AccessLog,
    conns: Slab<Conn>,
    cache: FileCache,
    /// Connections that yielded with more to send, served again after the next poll.
    ready: VecDeque<usize>,
    date: DateCache,
    /// The time, read once per turn of the loop.
    now: Instant,
    next_id: u64,
    last_sweep: Instant,
    accept_paused: bool,
}

impl EventLoop {
    pub fn new(
        poll: Poll,
        listener: TcpListener,
        pool: Pool,
        app: Arc<App>,
        limits: Limits,
        timeouts: Timeouts,
        log: AccessLog,
    ) -> EventLoop {
        EventLoop {
            poll,
            listener,
            pool,
            app,
            limits,
            timeouts,
            log,
            conns: Slab::new(),
            cache: FileCache::default(),
            ready: VecDeque::new(),
            date: DateCache::default(),
            now: Instant::now(),
            next_id: 0,
            last_sweep: Instant::now(),
            accept_paused: false,
        }
    }

    pub fn run(mut self) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)?;
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if !self.ready.is_empty() {
                Duration::ZERO
            } else if self.accept_paused {
                ACCEPT_RETRY
            } else {
                SWEEP_EVERY
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.readable = true;
                            }
                            self.drive(key);
                        }
                    }
                }
            }
            if self.accept_paused {
                self.accept();
            }
            for _ in 0..self.ready.len() {
                if let Some(key) = self.ready.pop_front() {
                    self.drive(key);
                }
            }
            self.complete();
            if self.last_sweep.elapsed() >= SWEEP_EVERY {
                self.sweep();
            }
            self.log.flush();
        }
    }

    fn accept(&mut self) {
        self.accept_paused = false;
        loop {
            match self.listener.accept() {
                Ok((mut sock, peer)) => {
                    let _ = sock.set_nodelay(true);
                    let entry = self.conns.vacant_entry();
                    let token = Token(entry.key());
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if self
                        .poll
                        .registry()
                        .register(&mut sock, token, interest)
                        .is_err()
                    {
                        continue;
                    }
                    let deadline = Instant::now() + self.timeouts.idle;
                    let key = entry.key();
                    entry.insert(Conn::new(self.next_id, sock, peer, deadline));
                    self.next_id += 1;
                    // The request usually arrives with the handshake: read it now rather than
                    // after another trip through epoll.
                    self.drive(key);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of descriptors or memory: try again shortly rather than spin.
                    eprintln!("tws: warning: cannot accept a connection: {e}");
                    self.accept_paused = true;
                    return;
                }
            }
        }
    }

    /// Steps a connection's state machine until it must wait.
    fn drive(&mut self, key: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let next = match conn.state {
                State::Idle | State::Head => self.step_head(key),
                State::Body(_) => self.step_body(key),
                State::Busy { .. } => Next::Wait,
                State::Sending => self.step_send(key),
                State::Draining => self.step_drain(key),
            };
            match next {
                Next::Again => {}
                Next::Wait => return,
                Next::Close => {
                    self.conns.remove(key);
                    return;
                }
            }
        }
    }

    fn step_head(&mut self, key: usize) -> Next {
        let conn = &mut self.conns[key];
        if conn.input.is_empty() {
            if !conn.readable {
                return if conn.peer_closed {
                    Next::Close
                } else {
                    Next::Wait
                };
            }
            return match conn.read_some(self.limits.max_head_bytes) {
                Ok(ReadOutcome::Data) => Next::Again,
                Ok(ReadOutcome::WouldBlock) => Next::Wait,
                Ok(ReadOutcome::Eof) | Err(_) => Next::Close,
            };
        }
        if let State::Idle = conn.state {
            conn.state = State::Head;
            conn.deadline = Instant::now() + self.timeouts.header;
        }
        match parse_head(&conn.input, &self.limits) {
            Ok(Parse::Partial) => {
                if !conn.readable {
                    return if conn.peer_closed {
                        Next::Close
                    } else {
                        Next::Wait
                    };
                }
                match conn.read_some(self.limits.max_head_bytes) {
                    Ok(ReadOutcome::Data) => Next::Again,
                    Ok(ReadOutcome::WouldBlock) => Next::Wait,
                    Ok(ReadOutcome::Eof) | Err(_) => Next::Close,
                }
            }
            Err(e) => {
                let response = self.app.error(e, ErrorFormat::Text);
                self.respond(key, None, response, false);
                Next::Again
            }
            Ok(Parse::Complete(req, used)) => {
                conn.input.drain(..used);
                self.on_head(key, req)
            }
        }
    }

    fn on_head(&mut self, key: usize, req: Request) -> Next {
        let routed = match self.app.route(&req) {
            Dispatch::Answer(response) => {
                // An unread body would be taken for the next request: close instead.
                let keep_alive = req.keep_alive && req.framing == Framing::None;
                self.respond(key, Some(&req), response, keep_alive);
                return Next::Again;
            }
            Dispatch::Run(routed) => routed,
        };
        let Some(decoder) = BodyDecoder::new(req.framing) else {
            return self.answer(key, req, routed, Vec::new());
        };
        if let Framing::Length(n) = req.framing
            && n > self.limits.max_body_bytes
        {
            let response = self.app.error_response(&routed, HttpError::PayloadTooLarge);
            self.respond(key, Some(&req), response, false);
            return Next::Again;
        }
        let conn = &mut self.conns[key];
        if req.expect_continue {
            conn.output.extend_from_slice(CONTINUE);
        }
        conn.state = State::Body(Box::new(PendingBody {
            req,
            routed,
            decoder,
            body: Vec::new(),
        }));
        conn.deadline = self.now + self.timeouts.body;
        Next::Again
    }

    /// Answers a routed request: from the file cache, in the loop, when it can; otherwise on a
    /// worker.
    fn answer(&mut self, key: usize, req: Request, routed: Routed, body: Vec<u8>) -> Next {
        let serves_files = self.app.serves_files(&routed);
        if serves_files
            && req.framing == Framing::None
            && let Some(set) = self.cache.get(routed.path(), self.now)
        {
            let response = set
                .respond(&req)
                .unwrap_or_else(|e| self.app.error_response(&routed, e));
            let keep_alive = req.keep_alive;
            self.respond(key, Some(&req), response, keep_alive);
            return Next::Again;
        }
        let req = Arc::new(req);
        let conn = &mut self.conns[key];
        let cache_key = serves_files.then(|| routed.path().to_owned());
        conn.state = State::Busy {
            req: Arc::clone(&req),
            cache_key,
        };
        self.pool.run(key, conn.id, req, routed, body);
        Next::Wait
    }

    fn step_body(&mut self, key: usize) -> Next {
        let conn = &mut self.conns[key];
        if !conn.flushed() && conn.flush().is_err() {
            return Next::Close;
        }
        let State::Body(mut pending) = std::mem::replace(&mut conn.state, State::Draining) else {
            unreachable!("step_body runs in the Body state")
        };
        if !conn.input.is_empty() {
            match pending
                .decoder
                .decode(&conn.input, &mut pending.body, self.limits.max_body_bytes)
            {
                Err(e) => {
                    let response = self.app.error_response(&pending.routed, e);
                    self.respond(key, Some(&pending.req), response, false);
                    return Next::Again;
                }
                Ok(progress) => {
                    conn.input.drain(..progress.consumed);
                    if progress.done {
                        let PendingBody {
                            req, routed, body, ..
                        } = *pending;
                        return self.answer(key, req, routed, body);
                    }
                }
            }
        }
        conn.state = State::Body(pending);
        if !conn.readable {
            return if conn.peer_closed {
                Next::Close
            } else {
                Next::Wait
            };
        }
        match conn.read_some(BODY_READ_CAP) {
            Ok(ReadOutcome::Data) => Next::Again,
            Ok(ReadOutcome::WouldBlock) => Next::Wait,
            Ok(ReadOutcome::Eof) | Err(_) => Next::Close,
        }
    }

    fn step_send(&mut self, key: usize) -> Next {
        let conn = &mut self.conns[key];
        match conn.flush() {
            Err(_) => Next::Close,
            Ok(Flushed::Blocked) => Next::Wait,
            Ok(Flushed::Yielded) => {
                self.ready.push_back(key);
                Next::Wait
            }
            Ok(Flushed::All) if conn.keep_alive && !(conn.peer_closed && conn.input.is_empty()) => {
                conn.state = State::Idle;
                conn.deadline = self.now + self.timeouts.idle;
                Next::Again
            }
            Ok(Flushed::All) if conn.peer_closed => Next::Close,
            // Nothing unread is known: a plain close cannot reset the answer away.
            Ok(Flushed::All) if conn.input.is_empty() && !conn.readable => Next::Close,
            Ok(Flushed::All) => {
                // Lingering close: stop writing, but keep reading for a moment so that unread
                // request bytes do not turn our close into a reset that destroys the response.
                let _ = conn.sock.shutdown(Shutdown::Write);
                conn.state = State::Draining;
                conn.deadline = self.now + self.timeouts.linger;
                Next::Again
            }
        }
    }

    fn step_drain(&mut self, key: usize) -> Next {
        let conn = &mut self.conns[key];
        for _ in 0..DRAIN_READS {
            if !conn.readable {
                return Next::Wait;
            }
            conn.input.clear();
            match conn.read_some(BODY_READ_CAP) {
                Ok(ReadOutcome::Data) => {}
                Ok(ReadOutcome::WouldBlock) => return Next::Wait,
                Ok(ReadOutcome::Eof) | Err(_) => return Next::Close,
            }
        }
        Next::Wait
    }

    /// Serialises a response onto the connection and logs it; the one path every answer takes.
    fn respond(&mut self, key: usize, req: Option<&Request>, response: Response, keep_alive: bool) {
        let conn = &mut self.conns[key];
        let head_only = req.is_some_and(Request::is_head);
        let ctx = HeadContext {
            date: self.date.now(),
            keep_alive,
            request_version: req.map_or(Version::Http11, |r| r.version),
        };
        write_head(&mut conn.output, &response, &ctx);
        let sent = if head_only { 0 } else { response.body.len() };
        self.log.record(conn.peer, req, response.status, sent);
        if !head_only {
            conn.queue_body(response.body);
        }
        conn.keep_alive = keep_alive;
        conn.state = State::Sending;
    }

    /// Sends the responses workers have finished, keeping their file sets for next time.
    fn complete(&mut self) {
        let finished: Vec<_> = self.pool.finished().collect();
        for done in finished {
            let Some(conn) = self.conns.get_mut(done.key) else {
                continue;
            };
            if conn.id != done.conn_id || !matches!(conn.state, State::Busy { .. }) {
                continue;
            }
            let State::Busy { req, cache_key } = std::mem::replace(&mut conn.state, State::Sending)
            else {
                unreachable!("checked above")
            };
            if let (Some(set), Some(path)) = (done.cached, cache_key) {
                self.cache.insert(&path, set, self.now);
            }
            self.respond(done.key, Some(&req), done.response, req.keep_alive);
            self.drive(done.key);
        }
    }

    /// Times out stalled connections and frees the buffers of idle ones.
    fn sweep(&mut self) {
        let now = Instant::now();
        self.last_sweep = now;
        let mut expired = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            let deadline = match conn.state {
                State::Busy { .. } => continue,
                State::Sending => conn.last_active + self.timeouts.send,
                _ => conn.deadline,
            };
            if deadline <= now {
                expired.push(key);
            } else if matches!(conn.state, State::Idle) && now - conn.last_active >= SWEEP_EVERY {
                conn.release_buffers();
            }
        }
        for key in expired {
            let conn = &mut self.conns[key];
            match conn.state {
                State::Head | State::Body(_) => {
                    let response = self.app.error(HttpError::RequestTimeout, ErrorFormat::Text);
                    self.respond(key, None, response, false);
                    self.drive(key);
                }
                _ => {
                    self.conns.remove(key);
                }
            }
        }
    }
}
