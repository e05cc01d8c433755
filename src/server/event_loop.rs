//! The readiness loop: one thread owns the connections it accepts. It waits on epoll (mio),
//! accepts within the connection cap, drives each ready connection's state machine (in
//! `steps`), sends what workers finished, enforces deadlines, and stops gracefully.
//! An idle or slow client costs a slab entry, never a worker.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::Control;
use super::accept::{Listening, listener_index, listener_token};
use super::cache::FileCache;
use super::conn::{Conn, State};
use super::pool::Pool;
use crate::config::Timeouts;
use crate::handlers::App;
use crate::http::date::DateCache;
use crate::http::response::ErrorFormat;
use crate::http::{HttpError, Limits};
use crate::log::AccessLog;
use crate::metrics::{self, LoopCounts, Timeout};
use crate::reload::Live;
use std::sync::Mutex;

pub const WAKER: Token = Token(usize::MAX - 2);
/// How often deadlines are checked and idle buffers released.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Bytes asked of the kernel per read.
const READ_SCRATCH_BYTES: usize = 16 * 1024;
/// How soon to retry accepting after the process ran out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// After a turn that had events, how long to keep polling without sleeping before blocking.
/// Waking a sleeping thread costs the waker an inter-processor interrupt, which on a virtual
/// machine is several microseconds of the client's CPU per wake-up: with a stream of short
/// connections, a loop that sleeps between them is woken for each one. An idle loop (its last
/// poll timed out) does not spin.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(20);

pub struct EventLoop {
    /// What this loop counts for /metrics.
    counts: Arc<Mutex<LoopCounts>>,
    pub(super) poll: Poll,
    /// The sockets this loop accepts from; emptied when stopping.
    pub(super) listeners: Vec<Listening>,
    pub(super) pool: Pool,
    /// The routes and settings in force, and the generation they belong to.
    live: Arc<Live>,
    pub(super) generation: u64,
    pub(super) app: Arc<App>,
    pub(super) limits: Limits,
    pub(super) timeouts: Timeouts,
    /// Bytes per second a response must average over each send-timeout window (0: no check).
    min_send_rate: u64,
    pub(super) control: Arc<Control>,
    /// Most request-body bytes held in memory across the server.
    pub(super) max_body_memory: usize,
    /// Connections (key, id) waiting for room in the body budget.
    pub(super) awaiting_budget: Vec<(usize, u64)>,
    /// Body bytes given back since the allocator was last trimmed.
    pub(super) body_released: usize,
    pub(super) log: AccessLog,
    pub(super) conns: Slab<Conn>,
    pub(super) cache: FileCache,
    /// Connections that yielded with more to send, served again after the next poll.
    pub(super) ready: VecDeque<usize>,
    pub(super) date: DateCache,
    /// Where reads land before what arrived is copied to its connection.
    pub(super) scratch: Vec<u8>,
    /// The time, read once per turn of the loop.
    pub(super) now: Instant,
    pub(super) next_id: u64,
    last_sweep: Instant,
    pub(super) accept_paused: bool,
    /// The last turn stopped accepting before a queue was empty.
    pub(super) accept_more: bool,
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
        let now = Instant::now();
        let snapshot = live.snapshot();
        let settings = &snapshot.server;
        let counts = metrics::registry().add_loop();
        route_labels(&counts, &snapshot.app);
        EventLoop {
            poll,
            listeners,
            pool,
            generation: live.generation(),
            live: Arc::clone(&live),
            app: Arc::clone(&snapshot.app),
            limits: settings.limits,
            timeouts: settings.timeouts,
            min_send_rate: settings.min_send_rate,
            control,
            max_body_memory: settings.max_body_memory,
            awaiting_budget: Vec::new(),
            body_released: 0,
            log,
            counts,
            conns: Slab::new(),
            cache: FileCache::default(),
            ready: VecDeque::new(),
            date: DateCache::default(),
            scratch: vec![0; READ_SCRATCH_BYTES],
            now,
            next_id: 0,
            last_sweep: now,
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
        let mut active = false;
        loop {
            if let Err(e) = self.wait(&mut events, active) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            active = !events.is_empty();
            self.now = Instant::now();
            if self.live.generation() != self.generation {
                self.switch_snapshot();
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    token if listener_index(token).is_some() => self.accept_all(),
                    Token(key) => {
                        if let Some(conn) = self.conns.get_mut(key) {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                conn.readable = true;
                            }
                            if event.is_read_closed() || event.is_error() {
                                conn.hangup = true;
                            }
                            self.drive(key);
                        }
                    }
                }
            }
            if self.accept_more || self.accept_paused {
                self.accept_all();
            }
            for _ in 0..self.ready.len() {
                if let Some(key) = self.ready.pop_front() {
                    self.drive(key);
                }
            }
            self.complete();
            self.resume_body_readers();
            if self.now.duration_since(self.last_sweep) >= SWEEP_EVERY {
                self.sweep();
            }
            if self.control.stopping() && self.stop_deadline.is_none() {
                self.begin_stop();
            }
            self.log.flush();
            if let Some(deadline) = self.stop_deadline
                && (self.conns.is_empty() || self.now >= deadline)
            {
                let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                for key in keys {
                    self.close(key);
                }
                return Ok(());
            }
        }
    }

    /// This loop's metrics, to count in.
    pub(super) fn count(&self) -> std::sync::MutexGuard<'_, LoopCounts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes up a reloaded routes file: new requests use it; requests already with a worker
    /// finish on the application they started with. Cached files of the old table are dropped.
    fn switch_snapshot(&mut self) {
        self.generation = self.live.generation();
        let snapshot = self.live.snapshot();
        self.app = Arc::clone(&snapshot.app);
        route_labels(&self.counts, &self.app);
        self.limits = snapshot.server.limits;
        self.timeouts = snapshot.server.timeouts;
        self.min_send_rate = snapshot.server.min_send_rate;
        self.max_body_memory = snapshot.server.max_body_memory;
        // What was kept came from the old table. Connections waiting for an answer being made
        // under it get answers of their own, from the new one.
        let parked = self.cache.take_parked();
        self.cache = FileCache::default();
        for (key, id) in parked {
            self.resume(key, id, None);
        }
    }

    /// Waits for events: when `active`, first polls without sleeping for `SPIN_BEFORE_SLEEP`.
    fn wait(&mut self, events: &mut Events, active: bool) -> io::Result<()> {
        let timeout = self.poll_timeout();
        if active && !timeout.is_zero() {
            let started = Instant::now();
            loop {
                self.poll.poll(events, Some(Duration::ZERO))?;
                if !events.is_empty() {
                    return Ok(());
                }
                if started.elapsed() >= SPIN_BEFORE_SLEEP {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        self.poll.poll(events, Some(timeout))
    }

    fn poll_timeout(&self) -> Duration {
        if !self.ready.is_empty() || self.accept_more {
            Duration::ZERO
        } else if self.accept_paused {
            ACCEPT_RETRY
        } else {
            SWEEP_EVERY
        }
    }

    /// Removes a connection; closing its socket takes it out of epoll.
    pub(super) fn close(&mut self, key: usize) {
        self.release_body(key);
        if let Some(mut conn) = self.conns.try_remove(key) {
            conn.finish();
            self.control.release();
        }
    }

    /// Stops accepting, closes idle connections; the rest close after their response.
    fn begin_stop(&mut self) {
        for mut listening in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listening.listener);
        }
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.state, State::Idle) && c.input.is_empty())
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            self.close(key);
        }
        // HTTP/2 connections say GOAWAY and finish their streams.
        let h2: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.state, State::H2(_)))
            .map(|(k, _)| k)
            .collect();
        self.ready.extend(h2);
        self.stop_deadline = Some(self.now + self.timeouts.shutdown_grace);
    }

    /// True once the server is stopping: responses then close their connection.
    pub(super) fn stopping(&self) -> bool {
        self.stop_deadline.is_some()
    }

    /// Times out stalled connections, cuts off responses read too slowly, and frees the
    /// buffers of idle connections.
    fn sweep(&mut self) {
        let now = self.now;
        self.last_sweep = now;
        self.trim_after_bodies();
        let window = self.timeouts.send;
        let mut expired = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            let late = match conn.state {
                State::Busy { .. } | State::Parked { .. } => false,
                State::Sending => {
                    // No progress at all, or too little over the last window.
                    let stalled = now.duration_since(conn.last_active) >= window;
                    let slow = now.duration_since(conn.window_start) >= window && {
                        let sent = conn.sent - conn.window_sent;
                        let needed = self.min_send_rate as f64 * window.as_secs_f64();
                        (sent as f64) < needed
                    };
                    if !slow && now.duration_since(conn.window_start) >= window {
                        conn.window_start = now;
                        conn.window_sent = conn.sent;
                    }
                    stalled || slow
                }
                _ => conn.deadline <= now,
            };
            if late {
                expired.push(key);
            } else if matches!(conn.state, State::Idle)
                && now.duration_since(conn.last_active) >= SWEEP_EVERY
            {
                conn.release_buffers();
            }
        }
        for key in expired {
            let kind = match self.conns[key].state {
                State::Head => Timeout::Header,
                State::Body(_) => Timeout::Body,
                State::Sending => Timeout::Send,
                State::H2(_) if !self.h2_idle(key) => Timeout::Send,
                _ => Timeout::Idle,
            };
            self.count().timeout(kind);
            match self.conns[key].state {
                State::H2(_) => self.h2_expire(key),
                State::Head | State::Body(_) => {
                    let response = self.app.error(HttpError::RequestTimeout, ErrorFormat::Text);
                    self.respond(key, None, response, false);
                    self.drive(key);
                }
                State::Sending => {
                    // Too slow a reader: reset rather than leave the kernel holding (and
                    // trickling out) what it buffered for it.
                    let _ = socket2::SockRef::from(&self.conns[key].sock)
                        .set_linger(Some(Duration::ZERO));
                    self.close(key);
                }
                _ => self.close(key),
            }
        }
    }
}

/// Names the routes of a table in a loop's metrics.
fn route_labels(counts: &Mutex<LoopCounts>, app: &App) {
    counts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .routes(app.routes().iter().map(|r| r.path.clone()));
}
