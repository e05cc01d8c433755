//! The worker pool: a rayon `ThreadPool` runs routed requests (file opens, listings, store
//! appends) and hands each response back to the event loop through a channel and a mio
//! `Waker`. A response may also come later from another thread (a create answered by the
//! store's committer once its flush is done). Logins (argon2, slow on purpose) run on a
//! small pool of their own with a bounded queue, so that guessing never takes the workers
//! files need.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use anyhow::{Context, Result};
use mio::Waker;

use super::ticket::{Origin, Ticket};
use crate::handlers::upload::BodySink;
use crate::handlers::{Cacheable, Reply};
use crate::http::Response;
use crate::http::response::Producer;

/// Finished work, addressed to the connection (and stream) it was for. (Moved once through a
/// channel: boxing the answer would cost an allocation per request.)
#[allow(clippy::large_enum_variant)]
pub enum Done {
    /// A response, and what it was made from, for the loop's cache.
    Answer {
        ticket: Ticket,
        response: Response,
        cached: Option<Cacheable>,
    },
    /// The verdict on a login checked before its request's body is read: `None` lets the
    /// body in, a refusal answers the request.
    Verified {
        origin: Origin,
        refusal: Option<Box<Response>>,
    },
    /// An upload's sink and emptied buffer after a write on a worker (`None` if the write
    /// panicked), with the refusal that answers the upload if the write failed.
    Written {
        origin: Origin,
        sink: Option<(Box<dyn BodySink>, Vec<u8>)>,
        refusal: Option<Box<Response>>,
    },
    /// The next piece of a streamed body, with its producer to make the one after.
    Piece {
        origin: Origin,
        producer: Box<dyn Producer>,
        piece: std::io::Result<Option<Vec<u8>>>,
    },
    /// A live body's feed has more for `origin` (see `Pool::wake_for`).
    Live { origin: Origin },
}

impl Done {
    /// A response made with nothing to keep.
    pub fn answer(ticket: Ticket, response: Response) -> Done {
        Done::Answer {
            ticket,
            response,
            cached: None,
        }
    }
}

/// Runs a handler so that its panic costs only its request: the `Reply` it dropped answers
/// 500 (see `handlers::Reply`), and the thread, worker or loop, lives on.
pub fn caught(job: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(job)).is_err() {
        crate::report!("tws: error: a request handler panicked; the request was answered 500");
    }
}

/// Sends finished requests to the loop and wakes it, once per burst.
#[derive(Clone)]
struct Notifier {
    tx: Sender<Done>,
    waker: Arc<Waker>,
    /// Set while a wake-up is on its way.
    pending: Arc<AtomicBool>,
}

impl Notifier {
    fn send(&self, done: Done) {
        // The loop outlives every job; if it is gone there is no one to answer.
        let _ = self.tx.send(done);
        if !self.pending.swap(true, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }
}

/// Logins waiting for or being checked, past which new ones are answered at once.
const MAX_QUEUED_LOGINS: usize = 32;

/// The threads that verify logins, and how many logins they hold.
pub struct Logins {
    threads: rayon::ThreadPool,
    queued: AtomicUsize,
}

pub struct Pool {
    threads: Arc<rayon::ThreadPool>,
    logins: Arc<Logins>,
    notifier: Notifier,
    done_rx: Receiver<Done>,
}

impl Pool {
    /// A loop's handle on the shared worker and login threads, answering through `waker`.
    pub fn new(threads: Arc<rayon::ThreadPool>, logins: Arc<Logins>, waker: Arc<Waker>) -> Pool {
        let (tx, done_rx) = channel();
        let pending = Arc::new(AtomicBool::new(false));
        let notifier = Notifier { tx, waker, pending };
        Pool {
            threads,
            logins,
            notifier,
            done_rx,
        }
    }

    /// Runs `check` (a login) on the login threads; its verdict comes back as a
    /// `Done::Verified` for `origin`. With `MAX_QUEUED_LOGINS` already waiting, `busy` is the
    /// verdict at once.
    pub fn verify(
        &self,
        origin: Origin,
        busy: Response,
        check: impl FnOnce() -> Option<Box<Response>> + Send + 'static,
    ) {
        let logins = Arc::clone(&self.logins);
        if logins.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_LOGINS {
            logins.queued.fetch_sub(1, Ordering::AcqRel);
            self.notifier.send(Done::Verified {
                origin,
                refusal: Some(Box::new(busy)),
            });
            return;
        }
        let notifier = self.notifier.clone();
        self.logins.threads.spawn(move || {
            let refusal = catch_unwind(AssertUnwindSafe(check)).unwrap_or_else(|_| {
                let err = crate::http::HttpError::Internal("the login check failed");
                Some(Box::new(Response::error(
                    err,
                    crate::http::response::ErrorFormat::Text,
                )))
            });
            logins.queued.fetch_sub(1, Ordering::AcqRel);
            notifier.send(Done::Verified { origin, refusal });
        });
    }

    /// Runs `login` on the login threads, then the job it lets through on a worker; what it
    /// refuses is the answer. With `MAX_QUEUED_LOGINS` already waiting, `busy` is the answer
    /// at once.
    pub fn spawn_login<J>(
        &self,
        ticket: Ticket,
        busy: Response,
        login: impl FnOnce() -> Result<J, Box<Response>> + Send + 'static,
    ) where
        J: FnOnce(Reply) + Send + 'static,
    {
        let logins = Arc::clone(&self.logins);
        if logins.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_LOGINS {
            logins.queued.fetch_sub(1, Ordering::AcqRel);
            self.notifier.send(Done::answer(ticket, busy));
            return;
        }
        let notifier = self.notifier.clone();
        let threads = Arc::clone(&self.threads);
        let held = Arc::clone(&self.logins);
        self.logins.threads.spawn(move || {
            let verdict = catch_unwind(AssertUnwindSafe(login));
            held.queued.fetch_sub(1, Ordering::AcqRel);
            let reply = reply_to(notifier, ticket);
            match verdict {
                Ok(Ok(job)) => threads.spawn(move || caught(|| job(reply))),
                Ok(Err(refusal)) => reply.send(*refusal),
                // The reply, dropped unsent, answers 500.
                Err(_) => crate::report!("tws: error: a login check panicked; answered 500"),
            }
        });
    }

    /// Runs `job` here, on the loop, for work that starts quickly and finishes on another
    /// thread (a write handed to the database's writer): its `Reply` comes back as a `Done`
    /// with `ticket`. As on a worker, a panicking job costs its request (a 500), not the loop.
    pub fn run_here(&self, ticket: Ticket, job: impl FnOnce(Reply)) {
        let reply = reply_to(self.notifier.clone(), ticket);
        caught(|| job(reply));
    }

    /// Runs a job on a worker; the job answers through its `Reply`, which comes back as a
    /// `Done` with `ticket`. A panicking job becomes a 500 for that request only, and the
    /// worker lives on.
    pub fn spawn(&self, ticket: Ticket, job: impl FnOnce(Reply) + Send + 'static) {
        let notifier = self.notifier.clone();
        self.threads.spawn(move || {
            let reply = reply_to(notifier, ticket);
            caught(|| job(reply));
        });
    }

    /// Makes the next piece of a streamed body on a worker; it comes back as a `Done::Piece`
    /// for `origin`.
    pub fn produce(&self, origin: Origin, mut producer: Box<dyn Producer>) {
        let notifier = self.notifier.clone();
        self.threads.spawn(move || {
            let piece = catch_unwind(AssertUnwindSafe(|| producer.produce()))
                .unwrap_or_else(|_| Err(std::io::Error::other("a body producer panicked")));
            notifier.send(Done::Piece {
                origin,
                producer,
                piece,
            });
        });
    }

    /// Runs an upload's write on a worker; its sink comes back as a `Done::Written` for
    /// `origin`.
    pub fn write(
        &self,
        origin: Origin,
        job: impl FnOnce() -> (Box<dyn BodySink>, Vec<u8>, Option<Box<Response>>) + Send + 'static,
    ) {
        let notifier = self.notifier.clone();
        self.threads.spawn(move || {
            let done = match catch_unwind(AssertUnwindSafe(job)) {
                Ok((sink, buffer, refusal)) => Done::Written {
                    origin,
                    sink: Some((sink, buffer)),
                    refusal,
                },
                Err(_) => Done::Written {
                    origin,
                    sink: None,
                    refusal: Some(Box::new(Response::error(
                        crate::http::HttpError::Internal("the upload could not be written"),
                        crate::http::response::ErrorFormat::Text,
                    ))),
                },
            };
            notifier.send(done);
        });
    }

    /// What a live body's feed calls when more arrives: a `Done::Live` for `origin`, through
    /// the channel and waker finished work takes, so that a subscription costs no thread.
    pub fn wake_for(&self, origin: Origin) -> crate::http::response::Wake {
        let notifier = self.notifier.clone();
        Box::new(move || notifier.send(Done::Live { origin }))
    }

    /// Takes every finished request; call after the waker fires (and at any other time).
    pub fn finished(&self) -> impl Iterator<Item = Done> + '_ {
        self.notifier.pending.store(false, Ordering::SeqCst);
        self.done_rx.try_iter()
    }
}

/// A `Reply` that comes back to the loop as a `Done` with `ticket`.
fn reply_to(notifier: Notifier, ticket: Ticket) -> Reply {
    Reply::new(move |response, cached| {
        notifier.send(Done::Answer {
            ticket,
            response,
            cached,
        });
    })
}

/// The login threads shared by every loop: half the CPUs, one or two.
pub fn logins() -> Result<Arc<Logins>> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads((cpus / 2).clamp(1, 2))
        .thread_name(|i| format!("tws-login-{i}"))
        .build()
        .context("cannot start the login threads")?;
    Ok(Arc::new(Logins {
        threads,
        queued: AtomicUsize::new(0),
    }))
}

/// The worker threads shared by every loop; `threads` = 0 means one per CPU.
pub fn workers(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tws-worker-{i}"))
        .build()
        .context("cannot start the worker pool")?;
    Ok(Arc::new(pool))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ticket::Exchange;
    use mio::{Events, Poll, Token};
    use std::time::{Duration, Instant};

    /// Waits (bounded) for the next finished job.
    fn next_done(poll: &mut Poll, pool: &Pool) -> Done {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Events::with_capacity(8);
        loop {
            if let Some(done) = pool.finished().next() {
                return done;
            }
            assert!(Instant::now() < deadline, "no job finished in time");
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
        }
    }

    #[test]
    fn a_panicking_job_answers_500_and_the_worker_lives_on() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).unwrap());
        let pool = Pool::new(workers(1).unwrap(), logins().unwrap(), waker);
        let ticket = |key, conn| Ticket {
            ex: Exchange {
                origin: Origin {
                    key,
                    conn,
                    stream: 0,
                },
                client: "127.0.0.1:1".parse().unwrap(),
                tls: None,
                req: None,
                route: None,
                generation: 0,
                started: Instant::now(),
            },
            cache_key: None,
        };
        pool.spawn(ticket(7, 70), |_reply| panic!("a handler bug"));
        let answer = |done: Done| match done {
            Done::Answer {
                ticket, response, ..
            } => (ticket.ex.origin.key, ticket.ex.origin.conn, response.status),
            Done::Piece { .. }
            | Done::Verified { .. }
            | Done::Written { .. }
            | Done::Live { .. } => (0, 0, 0),
        };
        assert_eq!(answer(next_done(&mut poll, &pool)), (7, 70, 500));
        pool.spawn(ticket(8, 80), |reply| reply.send(Response::empty(204)));
        assert_eq!(answer(next_done(&mut poll, &pool)), (8, 80, 204));
    }
}
