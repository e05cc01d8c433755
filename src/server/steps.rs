//! One connection's state machine, stepped by the event loop: read and parse the head, read the
//! body, answer from the file cache or hand the request to a worker, write the response, then
//! wait for the next request, close, or drain before closing.

use std::sync::Arc;

use super::cache::Lookup;
use super::conn::{PendingBody, ReadOutcome, Role, State};
use super::event_loop::EventLoop;
use super::output::Flushed;
use super::pool::Ticket;
use crate::handlers::{App, Cacheable, Dispatch, Reply, Routed, redirect};
use crate::http::body::BodyDecoder;
use crate::http::request::{Framing, Parse, parse_head};
use crate::http::response::{CONTINUE, ErrorFormat, HeadContext, Response, write_head};
use crate::http::{HttpError, Request, Version};

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

impl EventLoop {
    /// Steps a connection's state machine until it must wait.
    pub(super) fn drive(&mut self, key: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            let next = match conn.state {
                State::Idle | State::Head => self.step_head(key),
                State::Body(_) => self.step_body(key),
                State::Busy { .. } | State::Parked { .. } => Next::Wait,
                State::Sending => self.step_send(key),
                State::Draining => self.step_drain(key),
                State::H2(_) => self.step_h2_next(key),
            };
            match next {
                Next::Again => {}
                Next::Wait => return,
                Next::Close => {
                    self.close(key);
                    return;
                }
            }
        }
    }

    fn step_h2_next(&mut self, key: usize) -> Next {
        if self.step_h2(key) {
            Next::Wait
        } else {
            Next::Close
        }
    }

    /// Reads more input when the socket may hold some; otherwise waits, or closes once the
    /// peer has.
    fn read_more(&mut self, key: usize, cap: usize) -> Next {
        let conn = &mut self.conns[key];
        if !conn.readable {
            return if conn.peer_closed {
                Next::Close
            } else {
                Next::Wait
            };
        }
        match conn.read_some(cap, &mut self.scratch) {
            Ok(ReadOutcome::Data) => Next::Again,
            Ok(ReadOutcome::WouldBlock) => Next::Wait,
            Ok(ReadOutcome::NotTls) => {
                // Say so in plain text, then close: no request on this connection is served.
                conn.drop_tls();
                conn.input.clear();
                let err = HttpError::BadRequest("this port speaks HTTPS; use an https:// URL");
                let response = self.app.error(err, ErrorFormat::Text);
                self.respond(key, None, response, false);
                Next::Again
            }
            Ok(ReadOutcome::Eof) | Err(_) => Next::Close,
        }
    }

    fn step_head(&mut self, key: usize) -> Next {
        let conn = &mut self.conns[key];
        if conn.input.is_empty() {
            return self.read_more(key, self.limits.max_head_bytes);
        }
        if conn.first_request && conn.role == Role::Site && starts_h2(conn) {
            if conn.input.len() < super::h2::PREFACE.len() && !conn.alpn_h2() {
                return self.read_more(key, self.limits.max_head_bytes);
            }
            self.start_h2(key);
            return Next::Again;
        }
        if let State::Idle = conn.state {
            conn.state = State::Head;
            conn.started = self.now;
            // A new connection keeps the deadline it got at accept; a kept-alive one gets the
            // header timeout from its next request's first byte.
            if !conn.first_request {
                conn.deadline = self.now + self.timeouts.header;
            }
        }
        match parse_head(&conn.input, &self.limits) {
            Ok(Parse::Partial) => self.read_more(key, self.limits.max_head_bytes),
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
        let conn = &mut self.conns[key];
        let dispatch = match conn.role {
            Role::Site => self.app.route(&req, conn.peer.ip()),
            Role::RedirectToHttps(port) => Dispatch::Answer(redirect::to_https(&req, port), None),
        };
        let route = match &dispatch {
            Dispatch::Answer(_, route) => *route,
            Dispatch::Run(routed) => Some(routed.index()),
        };
        conn.route = route.map(|index| (self.generation, index));
        let routed = match dispatch {
            Dispatch::Answer(response, _) => {
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
            conn.out.buf.extend_from_slice(CONTINUE);
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

    /// Answers a routed request: from the loop's cache when it can; otherwise on a worker, or,
    /// when a worker is already answering the same path, by waiting for that answer.
    fn answer(&mut self, key: usize, req: Request, routed: Routed, body: Vec<u8>) -> Next {
        if !self.app.serves_files(&routed)
            || req.framing != Framing::None
            || routed.needs_verification()
        {
            if let Some(response) = self.app.answer_now(&req, &routed) {
                self.respond_with(key, req, &routed, Ok(response));
                return Next::Again;
            }
            return self.dispatch(key, req, routed, body, None);
        }
        match self.cache.lookup(routed.cache_key(), self.now) {
            Lookup::Hit(source) => match source.try_respond(&req) {
                Some(result) => {
                    self.respond_with(key, req, &routed, result);
                    Next::Again
                }
                None => self.render_from(key, req, routed, source),
            },
            Lookup::Pending => {
                let conn = &mut self.conns[key];
                self.cache.park(routed.cache_key(), key, conn.id);
                conn.state = State::Parked { req, routed };
                Next::Wait
            }
            Lookup::Miss => {
                self.cache.begin(routed.cache_key());
                let cache_key = Some(routed.cache_key().into());
                self.dispatch(key, req, routed, body, cache_key)
            }
        }
    }

    /// Answers a request through `App::handle` (see `EventLoop::handle`); with `cache_key`,
    /// what the answer is made from may be kept.
    fn dispatch(
        &mut self,
        key: usize,
        req: Request,
        routed: Routed,
        body: Vec<u8>,
        cache_key: Option<Box<str>>,
    ) -> Next {
        let (req, ticket) = self.make_busy(key, req, cache_key);
        self.handle(ticket, req, routed, body);
        Next::Wait
    }

    /// Hands a request to a worker that answers it from what the cache kept, when that needs
    /// rendering first (a page of a listing not rendered yet).
    fn render_from(&mut self, key: usize, req: Request, routed: Routed, source: Cacheable) -> Next {
        self.on_worker(key, req, None, move |app, req, reply| {
            app.handle_from(&source, req, &routed, reply);
        })
    }

    /// Runs `job` on a worker; the connection waits for its reply.
    fn on_worker(
        &mut self,
        key: usize,
        req: Request,
        cache_key: Option<Box<str>>,
        job: impl FnOnce(&App, &Request, Reply) + Send + 'static,
    ) -> Next {
        let (req, ticket) = self.make_busy(key, req, cache_key);
        let app = Arc::clone(&self.app);
        self.pool.spawn(ticket, move |reply| job(&app, &req, reply));
        Next::Wait
    }

    /// The connection waits for an answer to `req`: its body's memory is released, and the
    /// answer will come back with the ticket.
    fn make_busy(
        &mut self,
        key: usize,
        req: Request,
        cache_key: Option<Box<str>>,
    ) -> (Arc<Request>, Ticket) {
        self.release_body(key);
        let req = Arc::new(req);
        self.conns[key].state = State::Busy {
            req: Arc::clone(&req),
        };
        (req, self.ticket(key, cache_key, None))
    }

    /// The ticket an answer for connection `key` (and HTTP/2 `stream`) comes back with.
    pub(super) fn ticket(
        &self,
        key: usize,
        cache_key: Option<Box<str>>,
        stream: Option<usize>,
    ) -> Ticket {
        Ticket {
            key,
            conn_id: self.conns[key].id,
            cache_key,
            generation: self.generation,
            stream,
        }
    }

    /// Runs a routed request with its body through `App::handle`: on the loop when
    /// `App::starts_on_loop` says it is a quick start (its answer comes back as a worker's
    /// would), else on a worker.
    pub(super) fn handle(
        &mut self,
        ticket: Ticket,
        req: Arc<Request>,
        routed: Routed,
        body: Vec<u8>,
    ) {
        if self.app.starts_on_loop(&req, &routed, body.len()) {
            let reply = self.pool.reply(ticket);
            // As on a worker, a panicking handler costs its request (a 500), not the loop.
            super::pool::caught(|| self.app.handle(&req, &routed, &body, reply));
            return;
        }
        let app = Arc::clone(&self.app);
        self.pool
            .spawn(ticket, move |reply| app.handle(&req, &routed, &body, reply));
    }

    /// Sends what a cached source answered (or the error it gave).
    fn respond_with(
        &mut self,
        key: usize,
        req: Request,
        routed: &Routed,
        result: Result<crate::http::Response, HttpError>,
    ) {
        let response = result.unwrap_or_else(|e| self.app.error_response(routed, e));
        self.respond(key, Some(&req), response, req.keep_alive);
    }

    /// Answers a connection that waited for another's answer to the same path: from what that
    /// answer was made of, or, when nothing could be kept, on a worker of its own.
    pub(super) fn resume(&mut self, key: usize, id: u64, source: Option<&Cacheable>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.id != id || !matches!(conn.state, State::Parked { .. }) {
            return;
        }
        let State::Parked { req, routed } = std::mem::replace(&mut conn.state, State::Sending)
        else {
            unreachable!("checked above")
        };
        match source.map(|s| (s, s.try_respond(&req))) {
            Some((_, Some(result))) => {
                self.respond_with(key, req, &routed, result);
                self.drive(key);
            }
            Some((source, None)) => {
                self.render_from(key, req, routed, source.clone());
            }
            None => {
                self.dispatch(key, req, routed, Vec::new(), None);
            }
        }
    }

    fn step_body(&mut self, key: usize) -> Next {
        let conn = &mut self.conns[key];
        if !conn.flushed() && conn.flush(self.now).is_err() {
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
        if !self.may_read_body(key, BODY_READ_CAP) {
            // A body waiting for budget whose sender has hung up can never be finished.
            return if self.conns[key].hangup {
                Next::Close
            } else {
                Next::Wait
            };
        }
        let next = self.read_more(key, BODY_READ_CAP);
        self.charge_body(key);
        next
    }

    fn step_send(&mut self, key: usize) -> Next {
        // Stopping: a connection closes once its response is out, even one that began as
        // keep-alive before the stop.
        let stopping = self.stopping();
        let conn = &mut self.conns[key];
        match conn.flush(self.now) {
            Err(_) => Next::Close,
            Ok(Flushed::Blocked) => Next::Wait,
            Ok(Flushed::Yielded) => {
                self.ready.push_back(key);
                Next::Wait
            }
            Ok(Flushed::NeedsPiece) => {
                self.produce_piece(key);
                Next::Wait
            }
            Ok(Flushed::Waiting) => Next::Wait,
            Ok(Flushed::All) if stopping => Next::Close,
            Ok(Flushed::All) if conn.keep_alive && !(conn.peer_closed && conn.input.is_empty()) => {
                conn.state = State::Idle;
                conn.first_request = false;
                conn.deadline = self.now + self.timeouts.idle;
                Next::Again
            }
            Ok(Flushed::All) if conn.peer_closed => Next::Close,
            // Nothing unread is known: a plain close cannot reset the answer away.
            Ok(Flushed::All) if conn.input.is_empty() && !conn.readable => Next::Close,
            Ok(Flushed::All) => {
                // Lingering close: stop writing, but keep reading for a moment so that unread
                // request bytes do not turn our close into a reset that destroys the response.
                conn.shutdown_write();
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
            match conn.read_some(BODY_READ_CAP, &mut self.scratch) {
                Ok(ReadOutcome::Data) => {}
                Ok(ReadOutcome::WouldBlock) => return Next::Wait,
                Ok(ReadOutcome::Eof | ReadOutcome::NotTls) | Err(_) => return Next::Close,
            }
        }
        Next::Wait
    }

    /// Serialises a response onto the connection and logs it; the one path every answer takes.
    pub(super) fn respond(
        &mut self,
        key: usize,
        req: Option<&Request>,
        response: Response,
        keep_alive: bool,
    ) {
        let version = req.map_or(Version::Http11, |r| r.version);
        // A body of unknown length ends with the connection on HTTP/1.0.
        let keep_alive = keep_alive
            && !self.stopping()
            && !(response.body.is_stream() && version == Version::Http10);
        self.release_body(key);
        let conn = &mut self.conns[key];
        // The route's declared and CORS headers (or the server's), on every answer.
        let route = conn
            .route
            .take()
            .filter(|(generation, _)| *generation == self.generation)
            .map(|(_, index)| index);
        let mut response = response;
        self.app.decorate(route, req, &mut response);
        let head_only = req.is_some_and(Request::is_head);
        let ctx = HeadContext {
            date: self.date.now(),
            keep_alive,
            request_version: version,
        };
        write_head(&mut conn.out.buf, &response, &ctx);
        let sent = if head_only { 0 } else { response.body.len() };
        self.log
            .record(conn.peer, req, response.status, sent, conn.tls_version());
        let took = self.now.saturating_duration_since(conn.started);
        self.count().response(route, response.status, sent, took);
        let conn = &mut self.conns[key];
        if !head_only {
            conn.queue_body(response.body, version == Version::Http11);
        }
        conn.keep_alive = keep_alive;
        conn.state = State::Sending;
        conn.window_start = self.now;
        conn.window_sent = conn.sent;
    }
}

/// True when a connection's first bytes (or its ALPN) say HTTP/2: the whole preface, or so
/// far a beginning of it.
fn starts_h2(conn: &super::conn::Conn) -> bool {
    let preface = super::h2::PREFACE;
    let n = conn.input.len().min(preface.len());
    conn.alpn_h2() || conn.input[..n] == preface[..n]
}
