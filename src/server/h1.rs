//! HTTP/1.x on one connection: read and parse a head, read its body, hand the request to the
//! shared exchange, write the answer (head, then the body as the socket takes it), then wait
//! for the next request, close, or drain before closing. A connection that opens with the
//! HTTP/2 preface, or whose TLS negotiated `h2`, is handed over to HTTP/2.

use super::context::Ctx;
use super::exchange::{self, Answer, Exchange};
use super::h2::frame::PREFACE;
use super::output::Flushed;
use super::proto::Step;
use super::transport::{ReadOutcome, Role, Transport};
use super::upload::{self, Back, Upload};
use crate::handlers::{Dispatch, Routed};
use crate::http::body::BodyDecoder;
use crate::http::request::{Framing, Parse, parse_head};
use crate::http::response::{CONTINUE, ErrorFormat, HeadContext, Producer, write_head};
use crate::http::{HttpError, Request, Response, Version};
use crate::metrics::Timeout;
use std::time::Instant;

/// Bytes of body input buffered per read.
const BODY_READ_CAP: usize = 64 * 1024;
/// Reads spent discarding input per turn while draining a closing connection.
const DRAIN_READS: usize = 16;

/// What a step of the state machine came to.
enum Next {
    Again,
    Wait,
    Close,
    Upgrade,
}

/// Where the connection is in its request/response cycle.
enum State {
    /// Waiting for the first byte of a request.
    Idle,
    /// Part of a request head has arrived.
    Head,
    /// Reading the body of a routed request.
    Body(Box<PendingBody>),
    /// The answer is being made elsewhere (a worker, or another request's worker).
    Waiting,
    /// Writing an answer.
    Sending,
    /// The write side is shut; input is read and dropped until the peer closes or time runs out.
    Draining,
}

/// A request waiting for its body.
struct PendingBody {
    ex: Exchange,
    req: Request,
    routed: Routed,
    decoder: BodyDecoder,
    /// What arrived (of an upload: what waits to go to disk).
    body: Vec<u8>,
    /// Where an upload's body goes.
    upload: Option<Upload>,
    /// All of the body was read (an upload's last write may still be waiting).
    ended: bool,
}

pub struct H1 {
    state: State,
    /// No answer has been sent yet.
    first_request: bool,
    /// Keep the connection open after the answer being sent.
    keep_alive: bool,
    /// When the current state times out.
    deadline: Instant,
    /// When the current request's first byte was read.
    started: Instant,
}

impl H1 {
    /// A new connection; it has until `deadline` to send its first request.
    pub fn new(deadline: Instant, now: Instant) -> H1 {
        H1 {
            state: State::Idle,
            first_request: true,
            keep_alive: true,
            deadline,
            started: now,
        }
    }

    /// Steps the state machine until it must wait.
    pub fn drive(&mut self, t: &mut Transport, cx: &mut Ctx) -> Step {
        loop {
            let next = match self.state {
                State::Idle | State::Head => self.step_head(t, cx),
                State::Body(_) => self.step_body(t, cx),
                State::Waiting => Next::Wait,
                State::Sending => self.step_send(t, cx),
                State::Draining => step_drain(t, cx),
            };
            match next {
                Next::Again => {}
                Next::Wait => return Step::Wait,
                Next::Close => return Step::Close,
                Next::Upgrade => return Step::Upgrade,
            }
        }
    }

    /// The answer made elsewhere for this connection's request.
    pub fn answered(&mut self, t: &mut Transport, cx: &mut Ctx, ex: &Exchange, response: Response) {
        if !matches!(self.state, State::Waiting) {
            return;
        }
        let req = ex.req.as_deref();
        let keep_alive = req.is_some_and(|r| r.keep_alive);
        self.respond(t, cx, ex, req, response, keep_alive);
    }

    /// What came back to the upload whose body is being read; a refusal answers it.
    pub fn upload_back(
        &mut self,
        t: &mut Transport,
        cx: &mut Ctx,
        back: Result<Back, Box<Response>>,
    ) {
        let State::Body(pending) = &mut self.state else {
            return;
        };
        match back {
            Ok(back) => {
                if let Some(upload) = &mut pending.upload {
                    upload.back(back);
                }
            }
            Err(refusal) => {
                let State::Body(pending) = std::mem::replace(&mut self.state, State::Draining)
                else {
                    unreachable!("matched above")
                };
                self.respond(t, cx, &pending.ex, Some(&pending.req), *refusal, false);
            }
        }
    }

    /// The next piece of the streamed body being sent.
    pub fn piece(
        &mut self,
        t: &mut Transport,
        producer: Box<dyn Producer>,
        piece: Option<Vec<u8>>,
    ) {
        t.out.put_piece(producer, piece);
    }

    /// True when waiting for a request with nothing buffered (safe to close when stopping).
    pub fn idle(&self, t: &Transport) -> bool {
        matches!(self.state, State::Idle) && t.input.is_empty()
    }

    /// The timeout the connection ran into by `cx.now`, if any.
    pub fn overdue(&self, t: &mut Transport, cx: &Ctx) -> Option<Timeout> {
        let now = cx.now;
        let s = &cx.settings;
        match self.state {
            State::Waiting => None,
            // A live body waiting for its feed is quiet, not stalled; one with something to
            // send is judged by the send timeout alone (it sends little, so no rate applies).
            State::Sending if t.out.live_waiting() && t.flushed() => None,
            State::Sending if t.out.is_live() => t
                .send_stalled(now, s.timeouts.send, 0)
                .then_some(Timeout::Send),
            State::Sending => t
                .send_stalled(now, s.timeouts.send, s.min_send_rate)
                .then_some(Timeout::Send),
            _ if self.deadline > now => None,
            State::Head => Some(Timeout::Header),
            State::Body(_) => Some(Timeout::Body),
            _ => Some(Timeout::Idle),
        }
    }

    /// Deals with a timeout `overdue` reported: a late head or body gets a 408; anything else
    /// closes (a reader too slow for its answer with a reset).
    pub fn expire(&mut self, t: &mut Transport, cx: &mut Ctx, kind: Timeout) -> Step {
        match kind {
            Timeout::Header | Timeout::Body => {
                let response = cx.app.error(HttpError::RequestTimeout, ErrorFormat::Text);
                let ex = self.exchange(t, cx);
                self.respond(t, cx, &ex, None, response, false);
                self.drive(t, cx)
            }
            Timeout::Send => {
                t.reset_on_close();
                Step::Close
            }
            Timeout::Idle => Step::Close,
        }
    }

    /// A new exchange for the request being read.
    fn exchange(&self, t: &Transport, cx: &Ctx) -> Exchange {
        Exchange::new(t, 0, self.started, cx)
    }

    /// Reads more input when the socket may hold some; otherwise waits, or closes once the
    /// peer has.
    fn read_more(&mut self, t: &mut Transport, cx: &mut Ctx, cap: usize) -> Next {
        if !t.readable {
            return if t.peer_closed {
                Next::Close
            } else {
                Next::Wait
            };
        }
        match t.read_some(cap, &mut cx.scratch) {
            Ok(ReadOutcome::Data) => Next::Again,
            Ok(ReadOutcome::WouldBlock) => Next::Wait,
            Ok(ReadOutcome::NotTls) => {
                // Say so in plain text, then close: no request on this connection is served.
                t.drop_tls();
                t.input.clear();
                let err = HttpError::BadRequest("this port speaks HTTPS; use an https:// URL");
                let response = cx.app.error(err, ErrorFormat::Text);
                let ex = self.exchange(t, cx);
                self.respond(t, cx, &ex, None, response, false);
                Next::Again
            }
            Ok(ReadOutcome::Eof) | Err(_) => Next::Close,
        }
    }

    fn step_head(&mut self, t: &mut Transport, cx: &mut Ctx) -> Next {
        let limit = cx.settings.limits.max_head_bytes;
        if t.input.is_empty() {
            return self.read_more(t, cx, limit);
        }
        if self.first_request && t.role == Role::Site && starts_h2(t) {
            if t.input.len() < PREFACE.len() && !t.alpn_h2() {
                return self.read_more(t, cx, limit);
            }
            return Next::Upgrade;
        }
        if let State::Idle = self.state {
            self.state = State::Head;
            self.started = cx.now;
            // A new connection keeps the deadline it got at accept; a kept-alive one gets the
            // header timeout from its next request's first byte.
            if !self.first_request {
                self.deadline = cx.now + cx.settings.timeouts.header;
            }
        }
        match parse_head(&t.input, &cx.settings.limits) {
            Ok(Parse::Partial) => self.read_more(t, cx, limit),
            Err(e) => {
                let response = cx.app.error(e, ErrorFormat::Text);
                let ex = self.exchange(t, cx);
                self.respond(t, cx, &ex, None, response, false);
                Next::Again
            }
            Ok(Parse::Complete(req, used)) => {
                t.input.drain(..used);
                self.on_head(t, cx, req)
            }
        }
    }

    fn on_head(&mut self, t: &mut Transport, cx: &mut Ctx, req: Request) -> Next {
        let mut ex = self.exchange(t, cx);
        let mut routed = match exchange::route(cx, t, &mut ex, &req) {
            Dispatch::Answer(response, _) => {
                // An unread body would be taken for the next request: close instead.
                let keep_alive = req.keep_alive && req.framing == Framing::None;
                self.respond(t, cx, &ex, Some(&req), response, keep_alive);
                return Next::Again;
            }
            Dispatch::Run(routed) => routed,
        };
        let upload = match upload::start(cx, &ex, &req, &mut routed) {
            Ok(upload) => upload,
            Err(refusal) => {
                self.respond(t, cx, &ex, Some(&req), *refusal, false);
                return Next::Again;
            }
        };
        // An upload of nothing still goes through the body's steps (its login may be pending).
        let framing = match (&upload, req.framing) {
            (Some(_), Framing::None) => Framing::Length(0),
            (_, framing) => framing,
        };
        let Some(decoder) = BodyDecoder::new(framing) else {
            return self.answer(t, cx, ex, req, routed, Vec::new());
        };
        if upload.is_none()
            && let Err(e) = exchange::body_allowed(cx, &req)
        {
            let response = cx.app.error_response(&routed, e);
            self.respond(t, cx, &ex, Some(&req), response, false);
            return Next::Again;
        }
        if req.expect_continue {
            t.out.buf.extend_from_slice(CONTINUE);
        }
        self.state = State::Body(Box::new(PendingBody {
            ex,
            req,
            routed,
            decoder,
            body: Vec::new(),
            upload,
            ended: false,
        }));
        self.deadline = cx.now + cx.settings.timeouts.body;
        Next::Again
    }

    /// Hands a complete request to the exchange; sends its answer if it came at once.
    fn answer(
        &mut self,
        t: &mut Transport,
        cx: &mut Ctx,
        ex: Exchange,
        req: Request,
        routed: Routed,
        body: Vec<u8>,
    ) -> Next {
        cx.release_body(t);
        let kept = ex.clone();
        match exchange::answer(cx, ex, req, routed, body) {
            Answer::Now(req, response) => {
                let keep_alive = req.keep_alive;
                self.respond(t, cx, &kept, Some(&req), response, keep_alive);
                Next::Again
            }
            Answer::Later => {
                self.state = State::Waiting;
                Next::Wait
            }
        }
    }

    fn step_body(&mut self, t: &mut Transport, cx: &mut Ctx) -> Next {
        if !t.flushed() && t.flush(cx.now).is_err() {
            return Next::Close;
        }
        let State::Body(mut pending) = std::mem::replace(&mut self.state, State::Draining) else {
            unreachable!("step_body runs in the Body state")
        };
        if let Some(upload) = &mut pending.upload {
            upload.write(cx, pending.ex.origin, &mut pending.body);
            if pending.ended && upload.free() {
                let PendingBody {
                    ex,
                    req,
                    body,
                    upload,
                    ..
                } = *pending;
                cx.release_body(t);
                upload.expect("matched above").finish(cx, ex, req, body);
                self.state = State::Waiting;
                return Next::Wait;
            }
            if pending.ended || upload.full(pending.body.len()) {
                // The sink is away (a login being checked, a write): the client waits.
                self.state = State::Body(pending);
                return Next::Wait;
            }
        }
        let empty = matches!(pending.decoder.remaining(), Some(0));
        if !t.input.is_empty() || empty {
            // An upload's size is bounded by its route, not by the body limit.
            let limit = match pending.upload {
                Some(_) => u64::MAX,
                None => cx.settings.limits.max_body_bytes,
            };
            match pending.decoder.decode(&t.input, &mut pending.body, limit) {
                Err(e) => {
                    let response = cx.app.error_response(&pending.routed, e);
                    self.respond(t, cx, &pending.ex, Some(&pending.req), response, false);
                    return Next::Again;
                }
                Ok(progress) => {
                    t.input.drain(..progress.consumed);
                    if pending.upload.is_some() {
                        pending.ended = progress.done;
                        if progress.consumed > 0 || progress.done {
                            // The next step writes it (or waits for the sink).
                            self.state = State::Body(pending);
                            return Next::Again;
                        }
                    } else if progress.done {
                        let PendingBody {
                            ex,
                            req,
                            routed,
                            body,
                            ..
                        } = *pending;
                        return self.answer(t, cx, ex, req, routed, body);
                    }
                }
            }
        }
        // The peer has finished sending (EPOLLRDHUP): when what it sent cannot make up the
        // declared length, the body will never complete; its memory goes back now, not at the
        // body timeout.
        if t.hangup
            && let Some(remaining) = pending.decoder.remaining()
            && ((t.input.len() + t.unread_in_kernel()) as u64) < remaining
        {
            cx.release_body(t);
            return Next::Close;
        }
        let holds = pending.body.capacity();
        let cap = match pending.upload {
            Some(_) => upload::UPLOAD_READ,
            None => BODY_READ_CAP,
        };
        self.state = State::Body(pending);
        if !cx.may_read_body(t, cap) {
            // A body waiting for budget whose sender has hung up can never be finished.
            return if t.hangup { Next::Close } else { Next::Wait };
        }
        let next = self.read_more(t, cx, cap);
        cx.charge_body(t, holds + t.input.capacity());
        next
    }

    fn step_send(&mut self, t: &mut Transport, cx: &mut Ctx) -> Next {
        // A live stream's client that hung up is gone: nothing it will read is coming.
        if t.hangup && t.out.is_live() {
            return Next::Close;
        }
        match t.flush(cx.now) {
            Err(_) => Next::Close,
            Ok(Flushed::Blocked) => Next::Wait,
            Ok(Flushed::Yielded) => {
                cx.ready.push_back(t.key);
                Next::Wait
            }
            Ok(Flushed::NeedsPiece) => {
                if let Some(producer) = t.out.take_producer() {
                    cx.pool.produce(t.origin(0), producer);
                }
                Next::Wait
            }
            Ok(Flushed::Waiting) => Next::Wait,
            // Stopping: a connection closes once its answer is out, even one that began as
            // keep-alive before the stop.
            Ok(Flushed::All) if cx.stopping => Next::Close,
            Ok(Flushed::All) if self.keep_alive && !(t.peer_closed && t.input.is_empty()) => {
                self.state = State::Idle;
                self.first_request = false;
                self.deadline = cx.now + cx.settings.timeouts.idle;
                Next::Again
            }
            Ok(Flushed::All) if t.peer_closed => Next::Close,
            // Nothing unread is known: a plain close cannot reset the answer away.
            Ok(Flushed::All) if t.input.is_empty() && !t.readable => Next::Close,
            Ok(Flushed::All) => {
                // Lingering close: stop writing, but keep reading for a moment so that unread
                // request bytes do not turn our close into a reset that destroys the answer.
                t.shutdown_write();
                self.state = State::Draining;
                self.deadline = cx.now + cx.settings.timeouts.linger;
                Next::Again
            }
        }
    }

    /// Serialises an answer onto the connection after `exchange::finish`; the one way every
    /// HTTP/1.x answer leaves.
    fn respond(
        &mut self,
        t: &mut Transport,
        cx: &mut Ctx,
        ex: &Exchange,
        req: Option<&Request>,
        mut response: Response,
        keep_alive: bool,
    ) {
        let version = req.map_or(Version::Http11, |r| r.version);
        // A body of unknown length ends with the connection on HTTP/1.0.
        let keep_alive = keep_alive
            && !cx.stopping
            && !(response.body.is_stream() && version == Version::Http10);
        cx.release_body(t);
        exchange::finish(cx, ex, req, &mut response);
        let ctx = HeadContext {
            date: cx.date.now(),
            keep_alive,
            request_version: version,
        };
        write_head(&mut t.out.buf, &response, &ctx);
        // The close pushes the answer out with the FIN only if nothing unread is left: unread
        // input turns a close into a reset, which would drop what MSG_MORE held back. A
        // streamed body's pieces must leave as they come.
        t.out.ends_connection = !keep_alive
            && !response.body.is_stream()
            && req.is_some_and(|r| r.framing == Framing::None)
            && t.input.is_empty();
        if !req.is_some_and(Request::is_head) {
            t.out.queue_body(response.body, version == Version::Http11);
        }
        self.keep_alive = keep_alive;
        self.state = State::Sending;
        t.start_sending(cx.now);
    }
}

fn step_drain(t: &mut Transport, cx: &mut Ctx) -> Next {
    for _ in 0..DRAIN_READS {
        if !t.readable {
            return Next::Wait;
        }
        t.input.clear();
        match t.read_some(BODY_READ_CAP, &mut cx.scratch) {
            Ok(ReadOutcome::Data) => {}
            Ok(ReadOutcome::WouldBlock) => return Next::Wait,
            Ok(ReadOutcome::Eof | ReadOutcome::NotTls) | Err(_) => return Next::Close,
        }
    }
    Next::Wait
}

/// True when a connection's first bytes (or its ALPN) say HTTP/2: the whole preface, or so
/// far a beginning of it.
fn starts_h2(t: &Transport) -> bool {
    let preface = PREFACE;
    let n = t.input.len().min(preface.len());
    t.alpn_h2() || t.input[..n] == preface[..n]
}
