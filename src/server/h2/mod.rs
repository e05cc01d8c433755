//! HTTP/2 connections in the event loop. A connection becomes HTTP/2 when TLS negotiated `h2`
//! with ALPN, or when a cleartext connection opens with the HTTP/2 preface (prior knowledge).
//! From then on `session` runs the protocol (the `h2` crate over an in-memory transport) and
//! this module feeds it: what the wire delivers goes in, what it writes goes out, and each
//! request it decodes goes through the same request model, routing, handlers and response
//! fields as HTTP/1.1 (its head is checked by the HTTP/1.1 parser with the same limits). An
//! idle HTTP/2 connection is a table entry, like an idle HTTP/1.1 one.

mod session;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::cache::Lookup;
use super::conn::{ReadOutcome, State};
use super::event_loop::EventLoop;
use super::pool::Ticket;
use crate::handlers::{Dispatch, Routed};
use crate::http::request::{Framing, Limits, Parse, parse_head};
use crate::http::response::{ErrorFormat, HeadContext, Response, head_fields};
use crate::http::{HttpError, Request, Version};
use session::{Incoming, Received, Session};

/// What a connection must open with to be HTTP/2 with prior knowledge.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Input h2 has not read yet, past which the wire is not read (the peer waits).
const UNREAD_LIMIT: usize = 256 * 1024;
/// Streams open at once on one connection.
const MAX_STREAMS: u32 = 100;

/// An HTTP/2 connection: the protocol, and what the loop holds for its streams.
pub struct H2 {
    session: Session,
    /// Requests whose body is arriving.
    bodies: Vec<(usize, Request, Routed)>,
    /// Requests being answered (by a worker): the request, for the log, and its route.
    answering: HashMap<usize, (Arc<Request>, usize)>,
}

impl EventLoop {
    /// Makes connection `key` an HTTP/2 connection; what it received so far is its start.
    pub(super) fn start_h2(&mut self, key: usize) {
        let limits = session::Limits {
            max_concurrent_streams: MAX_STREAMS,
            max_header_list: self.limits.max_head_bytes as u32,
        };
        let conn = &mut self.conns[key];
        let session = Session::new(limits, &conn.input);
        conn.input.clear();
        conn.deadline = self.now + self.timeouts.header;
        conn.state = State::H2(Box::new(H2 {
            session,
            bodies: Vec::new(),
            answering: HashMap::new(),
        }));
    }

    /// Runs an HTTP/2 connection until it must wait: reads, lets h2 work, answers new
    /// requests, writes. False once the connection is over.
    pub(super) fn step_h2(&mut self, key: usize) -> bool {
        for _ in 0..16 {
            let stopping = self.stopping();
            let mut progress = false;
            let conn = &mut self.conns[key];
            let State::H2(h2) = &mut conn.state else {
                return false;
            };
            if stopping {
                h2.session.shut_down();
            }
            // Read while h2 keeps up.
            if h2.session.unread() < UNREAD_LIMIT && conn.readable {
                match conn.read_some(64 * 1024, &mut self.scratch) {
                    Ok(ReadOutcome::Data) => {
                        let State::H2(h2) = &mut conn.state else {
                            unreachable!("checked above")
                        };
                        h2.session.feed(&conn.input);
                        conn.input.clear();
                        progress = true;
                    }
                    Ok(ReadOutcome::WouldBlock) => {}
                    Ok(ReadOutcome::Eof | ReadOutcome::NotTls) | Err(_) => {
                        let State::H2(h2) = &mut conn.state else {
                            unreachable!("checked above")
                        };
                        h2.session.peer_closed();
                    }
                }
            }
            let State::H2(h2) = &mut conn.state else {
                unreachable!("checked above")
            };
            let incoming = match h2.session.poll() {
                Ok(incoming) => incoming,
                Err(()) => {
                    h2.session.take_output(&mut conn.out.buf);
                    let _ = conn.flush(self.now);
                    return false;
                }
            };
            progress |= !incoming.is_empty();
            for request in incoming {
                self.h2_request(key, request);
            }
            progress |= self.h2_bodies(key);
            let conn = &mut self.conns[key];
            let State::H2(h2) = &mut conn.state else {
                return false;
            };
            // What the wire has not taken stays with h2, which then waits: memory stays bounded
            // when a peer sends much and reads nothing.
            let before = conn.out.buf.len();
            if before < UNREAD_LIMIT {
                h2.session.take_output(&mut conn.out.buf);
            }
            progress |= conn.out.buf.len() > before;
            let busy = h2.session.busy() || !h2.answering.is_empty();
            if h2.session.is_closed() || (stopping && !busy && conn.flushed()) {
                let _ = conn.flush(self.now);
                return false;
            }
            // Answers queued this turn reach h2's output at the next poll: write once the
            // connection has nothing more to do (or much is waiting), so that a batch of
            // requests costs one write, not two.
            if (!progress || conn.out.buf.len() >= UNREAD_LIMIT) && conn.flush(self.now).is_err() {
                return false;
            }
            conn.deadline = if busy {
                conn.last_active + self.timeouts.send
            } else {
                conn.last_active + self.timeouts.idle
            };
            if !progress {
                return true;
            }
        }
        // Out of turns with work left: write what is ready; the connection comes back.
        self.conns[key].flush(self.now).is_ok()
    }

    /// A request h2 decoded: checked and routed as an HTTP/1.1 one would be.
    fn h2_request(&mut self, key: usize, incoming: Incoming) {
        let Incoming {
            stream,
            head,
            ended,
        } = incoming;
        let req = match request_of(&head, &self.limits) {
            Ok(req) => req,
            Err(e) => {
                let response = self.app.error(e, ErrorFormat::Text);
                return self.h2_send(key, stream, None, response, None);
            }
        };
        let peer = self.conns[key].peer.ip();
        match self.app.route(&req, peer) {
            Dispatch::Answer(response, route) => {
                self.h2_send(key, stream, Some(&req), response, route)
            }
            Dispatch::Run(routed) if ended => self.h2_run(key, stream, req, routed, Vec::new()),
            Dispatch::Run(routed) => {
                if let State::H2(h2) = &mut self.conns[key].state {
                    h2.bodies.push((stream, req, routed));
                }
            }
        }
    }

    /// Takes what arrived of request bodies; runs the requests whose body is complete.
    fn h2_bodies(&mut self, key: usize) -> bool {
        let held = self.control.body_held.load(Ordering::Relaxed);
        let room = held < self.max_body_memory;
        let limit = self.limits.max_body_bytes;
        let State::H2(h2) = &mut self.conns[key].state else {
            return false;
        };
        if h2.bodies.is_empty() {
            return false;
        }
        let mut done = Vec::new();
        for (i, (stream, _, _)) in h2.bodies.iter().enumerate() {
            match h2.session.receive(*stream, limit, room) {
                Received::Partial => {}
                Received::Complete(body) => done.push((i, Some(Ok(body)))),
                Received::TooLarge => done.push((i, Some(Err(HttpError::PayloadTooLarge)))),
                Received::Gone => done.push((i, None)),
            }
        }
        let held = h2.session.held();
        self.charge_h2(key, held);
        let finished = !done.is_empty();
        for (i, outcome) in done.into_iter().rev() {
            let State::H2(h2) = &mut self.conns[key].state else {
                return true;
            };
            let (stream, req, routed) = h2.bodies.swap_remove(i);
            match outcome {
                Some(Ok(body)) => self.h2_run(key, stream, req, routed, body),
                Some(Err(e)) => {
                    let response = self.app.error_response(&routed, e);
                    self.h2_send(key, stream, Some(&req), response, Some(routed.index()));
                }
                None => {}
            }
        }
        finished
    }

    /// Charges the connection's body buffers to the server's budget.
    fn charge_h2(&mut self, key: usize, holds: usize) {
        let conn = &mut self.conns[key];
        let before = std::mem::replace(&mut conn.body_charge, holds);
        if holds > before {
            self.control
                .body_held
                .fetch_add(holds - before, Ordering::Relaxed);
        } else {
            self.control
                .body_held
                .fetch_sub(before - holds, Ordering::Relaxed);
        }
    }

    /// Answers a routed request: from the loop's caches when they hold the answer, else on
    /// a worker.
    fn h2_run(&mut self, key: usize, stream: usize, req: Request, routed: Routed, body: Vec<u8>) {
        if let Some(response) = self.app.answer_now(&req, &routed) {
            return self.h2_send(key, stream, Some(&req), response, Some(routed.index()));
        }
        // Files and listings: from the loop's cache, as on HTTP/1.1; a miss is kept once a
        // worker made it.
        let mut cache_key = None;
        if self.app.serves_files(&routed)
            && req.framing == Framing::None
            && !routed.needs_verification()
        {
            match self.cache.lookup(routed.cache_key(), self.now) {
                Lookup::Hit(source) => {
                    if let Some(result) = source.try_respond(&req) {
                        let response =
                            result.unwrap_or_else(|e| self.app.error_response(&routed, e));
                        let route = Some(routed.index());
                        return self.h2_send(key, stream, Some(&req), response, route);
                    }
                }
                Lookup::Miss => {
                    self.cache.begin(routed.cache_key());
                    cache_key = Some(routed.cache_key().into());
                }
                Lookup::Pending => {}
            }
        }
        let req = Arc::new(req);
        let conn = &mut self.conns[key];
        let State::H2(h2) = &mut conn.state else {
            return;
        };
        h2.answering
            .insert(stream, (Arc::clone(&req), routed.index()));
        let ticket = self.ticket(key, cache_key, Some(stream));
        self.handle(ticket, req, routed, body);
    }

    /// A worker's answer to an HTTP/2 stream.
    pub(super) fn h2_answered(&mut self, ticket: &Ticket, stream: usize, response: Response) {
        let Some(conn) = self.conns.get_mut(ticket.key) else {
            return;
        };
        if conn.id != ticket.conn_id {
            return;
        }
        let State::H2(h2) = &mut conn.state else {
            return;
        };
        let Some((req, route)) = h2.answering.remove(&stream) else {
            return;
        };
        // A stream the peer reset meanwhile wants no answer.
        if !h2.session.reset(stream) {
            let route = (ticket.generation == self.generation).then_some(route);
            self.h2_send(ticket.key, stream, Some(&req), response, route);
        }
        if !self.step_h2(ticket.key) {
            self.close(ticket.key);
        }
    }

    /// Sends a response on a stream: decorated, logged and counted as on HTTP/1.1, with the
    /// same header fields.
    fn h2_send(
        &mut self,
        key: usize,
        stream: usize,
        req: Option<&Request>,
        mut response: Response,
        route: Option<usize>,
    ) {
        self.app.decorate(route, req, &mut response);
        let head_only = req.is_some_and(Request::is_head);
        let ctx = HeadContext {
            date: self.date.now(),
            keep_alive: true,
            request_version: Version::Http2,
        };
        let mut fields = http::HeaderMap::with_capacity(16);
        head_fields(&response, &ctx, |name, value| {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                fields.append(name, value);
            }
        });
        let mut head = http::Response::new(());
        *head.status_mut() =
            http::StatusCode::from_u16(response.status).unwrap_or(http::StatusCode::OK);
        *head.headers_mut() = fields;
        let sent = if head_only { 0 } else { response.body.len() };
        let conn = &mut self.conns[key];
        self.log
            .record(conn.peer, req, response.status, sent, conn.tls_version());
        let took = self.now.saturating_duration_since(conn.started);
        self.count().response(route, response.status, sent, took);
        let State::H2(h2) = &mut self.conns[key].state else {
            return;
        };
        h2.session.respond(stream, head, response.body, head_only);
    }

    /// Closes an HTTP/2 connection that timed out: GOAWAY first, as far as the wire takes it.
    pub(super) fn h2_expire(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if let State::H2(h2) = &mut conn.state {
            h2.session.shut_down();
            let _ = h2.session.poll();
            h2.session.take_output(&mut conn.out.buf);
            let _ = conn.flush(self.now);
        }
        self.close(key);
    }

    /// True when connection `key` is HTTP/2 and has nothing in flight.
    pub(super) fn h2_idle(&self, key: usize) -> bool {
        matches!(&self.conns[key].state, State::H2(h2) if !h2.session.busy() && h2.answering.is_empty())
    }
}

/// The request model for an HTTP/2 request: its head written as HTTP/1.1 (`:authority` as
/// Host) and read by the HTTP/1.1 parser, so that both protocols are held to the same limits
/// and checks; then marked as HTTP/2.
fn request_of(head: &http::request::Parts, limits: &Limits) -> Result<Request, HttpError> {
    let mut text = Vec::with_capacity(256);
    let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let target =
        if head.method == http::Method::OPTIONS && target == "/" && head.uri.path().is_empty() {
            "*"
        } else {
            target
        };
    text.extend_from_slice(head.method.as_str().as_bytes());
    text.push(b' ');
    text.extend_from_slice(target.as_bytes());
    text.extend_from_slice(b" HTTP/1.1\r\n");
    let authority = head.uri.authority().map(|a| a.as_str());
    if let Some(authority) = authority {
        text.extend_from_slice(b"host: ");
        text.extend_from_slice(authority.as_bytes());
        text.extend_from_slice(b"\r\n");
    }
    for (name, value) in &head.headers {
        if authority.is_some() && name == http::header::HOST {
            continue;
        }
        text.extend_from_slice(name.as_str().as_bytes());
        text.extend_from_slice(b": ");
        text.extend_from_slice(value.as_bytes());
        text.extend_from_slice(b"\r\n");
    }
    text.extend_from_slice(b"\r\n");
    match parse_head(&text, limits)? {
        Parse::Complete(mut req, _) => {
            req.version = Version::Http2;
            req.keep_alive = true;
            Ok(req)
        }
        Parse::Partial => Err(HttpError::BadRequest("malformed request head")),
    }
}
