//! The worker pool: a rayon `ThreadPool` runs routed requests (file opens, listings, store
//! appends) and hands each response back to the event loop through a channel and a mio
//! `Waker`. A response may also come later from another thread (a create answered by the
//! store's committer once its flush is done).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use anyhow::{Context, Result};
use mio::Waker;

use crate::handlers::file::FileSet;
use crate::handlers::{App, Reply, Routed};
use crate::http::{Request, Response};

/// A finished request, addressed to the connection that sent it.
pub struct Done {
    pub key: usize,
    pub conn_id: u64,
    pub response: Response,
    /// The file set the response was made from, for the loop's cache.
    pub cached: Option<Arc<FileSet>>,
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

pub struct Pool {
    threads: Arc<rayon::ThreadPool>,
    app: Arc<App>,
    notifier: Notifier,
    done_rx: Receiver<Done>,
}

impl Pool {
    /// A loop's handle on the shared worker threads, answering through `waker`.
    pub fn new(threads: Arc<rayon::ThreadPool>, app: Arc<App>, waker: Waker) -> Pool {
        let (tx, done_rx) = channel();
        let notifier = Notifier {
            tx,
            waker: Arc::new(waker),
            pending: Arc::new(AtomicBool::new(false)),
        };
        Pool {
            threads,
            app,
            notifier,
            done_rx,
        }
    }

    /// Runs a request on a worker. A panicking handler becomes a 500 for that request only.
    pub fn run(&self, key: usize, conn_id: u64, req: Arc<Request>, routed: Routed, body: Vec<u8>) {
        let app = Arc::clone(&self.app);
        let notifier = self.notifier.clone();
        self.threads.spawn(move || {
            let reply = Reply::new(move |response, cached| {
                notifier.send(Done {
                    key,
                    conn_id,
                    response,
                    cached,
                });
            });
            let outcome =
                catch_unwind(AssertUnwindSafe(|| app.handle(&req, &routed, &body, reply)));
            if outcome.is_err() {
                eprintln!(
                    "tws: error: handler panicked on {} {}",
                    req.method.as_str(),
                    req.target()
                );
            }
        });
    }

    /// Takes every finished request; call after the waker fires (and at any other time).
    pub fn finished(&self) -> impl Iterator<Item = Done> + '_ {
        self.notifier.pending.store(false, Ordering::SeqCst);
        self.done_rx.try_iter()
    }
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
