//! The readiness loop: one thread owns the connections it accepts. It only waits on epoll
//! (mio), accepts within the connection cap, hands each event, finished answer or
//! streamed piece to the connection it is for, sweeps for timeouts, and stops gracefully.
//! Everything about a request is the connection's (`conn`); what connections share of the
//! loop is lent to them as a `Ctx`. An idle or slow client costs a slab entry, never a worker.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::accept::{self, ACCEPTS_PER_TURN, Listening, listener_index, listener_token};
use super::conn::{Conn, Next};
use super::context::Ctx;
use super::control::Control;
use super::exchange;
use super::pool::{Done, Pool};
use super::ticket::Origin;
use super::transport::{Accepted, Transport};
use super::upload::Back;
use crate::http::Response;
use crate::http::response::ErrorFormat;
use crate::log::AccessLog;
use crate::metrics;
use crate::reload::Live;

pub const WAKER: Token = Token(usize::MAX - 2);
/// How often deadlines are checked and idle buffers released.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// How soon to retry accepting after the process ran out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

pub struct EventLoop {
    poll: Poll,
    /// The sockets this loop accepts from; emptied when stopping.
    listeners: Vec<Listening>,
    conns: Slab<Conn>,
    /// What connections share of the loop.
    cx: Ctx,
    /// The routes and settings in force, and the generation they belong to.
    live: Arc<Live>,
    next_id: u64,
    last_sweep: Instant,
    /// Accepting failed for want of descriptors: retry shortly.
    accept_paused: bool,
    /// The last turn stopped accepting before a queue was empty.
    accept_more: bool,
    /// Set when stopping: connections still open then are closed.
    stop_deadline: Option<Instant>,
}

impl EventLoop {
    pub fn new(
        poll: Poll,
        listeners: Vec<Listening>,
        pool: Pool,
        live: Arc<Live>,
        control: Arc<Control>,
        log: AccessLog,
    ) -> EventLoop {
        let snapshot = live.snapshot();
        let counts = metrics::registry().add_loop();
        let cx = Ctx::new(&snapshot, live.generation(), pool, control, log, counts);
        EventLoop {
            poll,
            listeners,
            conns: Slab::new(),
            last_sweep: cx.now,
            cx,
            live,
            next_id: 0,
            accept_paused: false,
            accept_more: false,
            stop_deadline: None,
        }
    }

    /// Serves until the server stops and every connection is finished (or the grace is over).
    pub fn run(mut self) -> io::Result<()> {
        for (i, listening) in self.listeners.iter_mut().enumerate() {
            self.poll.registry().register(
                &mut listening.listener,
                listener_token(i),
                Interest::READABLE,
            )?;
        }
        let mut events = Events::with_capacity(1024);
        loop {
            if let Err(e) = self.wait(&mut events) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.cx.now = Instant::now();
            if self.live.generation() != self.cx.generation {
                self.switch_snapshot();
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    token if listener_index(token).is_some() => self.accept_all(),
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.t.readable = true;
                            }
                            if event.is_read_closed() || event.is_error() {
                                conn.t.hangup = true;
                            }
                            self.drive(key);
                        }
                    }
                }
            }
            if self.accept_more || self.accept_paused {
                self.accept_all();
            }
            for _ in 0..self.cx.ready.len() {
                if let Some(key) = self.cx.ready.pop_front() {
                    self.drive(key);
                }
            }
            self.complete();
            self.resume_body_readers();
            if self.cx.now.duration_since(self.last_sweep) >= SWEEP_EVERY {
                self.sweep();
            }
            if self.cx.control.stopping() && self.stop_deadline.is_none() {
                self.begin_stop();
            }
            self.cx.log.flush();
            if let Some(deadline) = self.stop_deadline
                && (self.conns.is_empty() || self.cx.now >= deadline)
            {
                let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                for key in keys {
                    self.close(key);
                }
                return Ok(());
            }
        }
    }

    /// Runs connection `key` until it must wait; closes it when it is over.
    fn drive(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key)
            && conn.drive(&mut self.cx) == Next::Close
        {
            self.close(key);
        }
    }

    /// Hands what workers (and the loop itself, for requests that waited) finished to the
    /// connections they are for.
    fn complete(&mut self) {
        let mut finished: Vec<Done> = std::mem::take(&mut self.cx.delivered);
        finished.extend(self.cx.pool.finished());
        while !finished.is_empty() {
            for done in finished {
                self.deliver(done);
            }
            // Requests that waited for what just came back may have been answered on the loop.
            finished = std::mem::take(&mut self.cx.delivered);
        }
    }

    fn deliver(&mut self, done: Done) {
        match done {
            Done::Answer {
                ticket,
                response,
                cached,
            } => {
                exchange::completed(&mut self.cx, &ticket, cached);
                self.hand_over(ticket.ex.origin, |conn, cx| {
                    conn.answered(&ticket.ex, response, cx)
                });
            }
            Done::Verified { origin, refusal } => {
                let back = refusal.map_or(Ok(Back::Verified), Err);
                self.hand_over(origin, |conn, cx| conn.upload_back(origin.stream, back, cx));
            }
            Done::Written {
                origin,
                sink,
                refusal,
            } => {
                let back = match (sink, refusal) {
                    (Some((sink, buffer)), None) => Ok(Back::Written(sink, buffer)),
                    (_, refusal) => Err(refusal.unwrap_or_else(|| {
                        let e = crate::http::HttpError::Internal("the upload was lost");
                        Box::new(Response::error(e, ErrorFormat::Text))
                    })),
                };
                self.hand_over(origin, |conn, cx| conn.upload_back(origin.stream, back, cx));
            }
            Done::Live { origin } => {
                self.hand_over(origin, |conn, cx| conn.live(origin.stream, cx));
            }
            Done::Piece {
                origin,
                producer,
                piece,
            } => {
                self.hand_over(origin, |conn, cx| {
                    conn.piece(origin.stream, producer, piece, cx)
                });
            }
        }
    }

    /// Hands what came back from elsewhere to the connection it is for (dropped, with what
    /// it holds, such as an upload's staged file, if that connection has gone).
    fn hand_over(&mut self, origin: Origin, deliver: impl FnOnce(&mut Conn, &mut Ctx) -> Next) {
        let Some(conn) = self
            .conns
            .get_mut(origin.key)
            .filter(|c| c.t.id == origin.conn)
        else {
            return;
        };
        if deliver(conn, &mut self.cx) == Next::Close {
            self.close(origin.key);
        }
    }

    /// Drives the connections that waited for room in the body budget, while it has room.
    fn resume_body_readers(&mut self) {
        let conns = &self.conns;
        let keys = self.cx.budget_waiters(|key, id| {
            conns
                .get(key)
                .filter(|c| c.t.id == id)
                .map(|c| c.t.body_charge)
        });
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.t.awaiting_budget = false;
            }
            // Driving it reads (or notes it as waiting again, if the budget ran out meanwhile).
            self.drive(key);
        }
    }

    /// Takes up a reloaded routes file: new requests use it; requests already with a worker
    /// finish on the application they started with, and so do those that waited for one.
    fn switch_snapshot(&mut self) {
        // Requests that waited for another's answer are run now, on the table they were
        // routed with.
        for waiter in self.cx.cache.take_parked() {
            exchange::resume(&mut self.cx, waiter, None);
        }
        let snapshot = self.live.snapshot();
        self.cx.switch(&snapshot, self.live.generation());
    }

    /// Waits for events. It never spins: polling without sleeping for a while after a busy
    /// turn saved the client a wake-up per short connection, but cost the server 8-9 µs of CPU
    /// per connection (`perf`: `epoll_wait` and syscall entry), more than nginx spends on the
    /// whole connection (bench/RESULTS.md).
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        let timeout = self.poll_timeout();
        self.poll.poll(events, Some(timeout))
    }

    fn poll_timeout(&self) -> Duration {
        if !self.cx.ready.is_empty() || self.accept_more {
            Duration::ZERO
        } else if self.accept_paused {
            ACCEPT_RETRY
        } else {
            SWEEP_EVERY
        }
    }

    /// Accepts from every listening socket, a bounded number each.
    fn accept_all(&mut self) {
        self.accept_paused = false;
        self.accept_more = false;
        for index in 0..self.listeners.len() {
            self.accept(index);
        }
    }

    fn accept(&mut self, index: usize) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listening) = self.listeners.get(index) else {
                return;
            };
            let (tls, role) = (listening.tls.clone(), listening.role);
            match listening.listener.accept() {
                Ok((sock, peer)) => self.admit(sock, peer, tls, role),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of descriptors or memory: try again shortly rather than spin.
                    crate::report!("tws: warning: cannot accept a connection: {e}");
                    self.accept_paused = true;
                    return;
                }
            }
        }
        // A flood of new connections must not starve the open ones: accept the rest next turn.
        self.accept_more = true;
    }

    fn admit(
        &mut self,
        sock: mio::net::TcpStream,
        peer: std::net::SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        role: super::transport::Role,
    ) {
        if !self.cx.control.admit() {
            if tls.is_none() {
                let sent = accept::refuse(sock, self.cx.date.now());
                self.cx.log.record(peer, None, 503, sent, None);
                self.cx.count().refused();
            }
            return;
        }
        let tls = match tls.as_ref().map(accept::tls_session) {
            None => None,
            Some(Ok(tls)) => Some(tls),
            Some(Err(e)) => {
                crate::report!("tws: error: cannot start a TLS connection: {e}");
                self.cx.control.release();
                return;
            }
        };
        let _ = sock.set_nodelay(true);
        // A new connection has the header timeout to send its first request (and, on TLS,
        // to finish its handshake).
        let now = self.cx.now;
        let deadline = now + self.cx.settings.timeouts.header;
        let id = self.next_id;
        self.next_id += 1;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let accepted = Accepted {
            sock,
            peer,
            tls,
            role,
            trusted: self.cx.settings.trusted.contains(peer.ip()),
        };
        let t = Transport::new(key, id, accepted, now);
        entry.insert(Conn::new(t, deadline, now));
        // The request (or ClientHello) usually arrives with the handshake: answer it before
        // registering with epoll, so that a connection answered and closed at once costs no
        // registration, and the client's later packets to it wake nobody. Registering a ready
        // socket reports it at once, so nothing that arrived meanwhile is missed.
        self.drive(key);
        if let Some(conn) = self.conns.get_mut(key).filter(|c| c.t.id == id) {
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(conn.t.sock_mut(), Token(key), interest)
                .is_err()
            {
                self.close(key);
            }
        }
    }

    /// Removes a connection; closing its socket takes it out of epoll.
    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            self.cx.release_body(&mut conn.t);
            conn.t.finish();
            self.cx.control.release();
        }
    }

    /// Stops accepting, closes idle connections; the rest close after their answers.
    fn begin_stop(&mut self) {
        for mut listening in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listening.listener);
        }
        self.cx.stopping = true;
        // Live bodies end with a last chunk, so that their clients see a clean end.
        self.cx.app.end_live();
        let mut idle = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            if conn.stop(&mut self.cx) {
                idle.push(key);
            }
        }
        for key in idle {
            self.close(key);
        }
        self.stop_deadline = Some(self.cx.now + self.cx.settings.timeouts.shutdown_grace);
    }

    /// Times out stalled connections, cuts off answers read too slowly, and frees the
    /// buffers of idle connections.
    fn sweep(&mut self) {
        let now = self.cx.now;
        self.last_sweep = now;
        self.cx.trim_after_bodies();
        let mut expired = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            if let Some(kind) = conn.overdue(&self.cx) {
                expired.push((key, kind));
            } else if conn.idle() && now.duration_since(conn.t.last_active) >= SWEEP_EVERY {
                conn.t.release_buffers();
            }
        }
        for (key, kind) in expired {
            self.cx.count().timeout(kind);
            if let Some(conn) = self.conns.get_mut(key)
                && conn.expire(kind, &mut self.cx) == Next::Close
            {
                self.close(key);
            }
        }
    }
}
