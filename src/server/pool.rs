//! The worker pool: a rayon `ThreadPool` runs routed requests (file opens, fsyncs, listings) and
//! hands each response back to the event loop through a channel and a mio `Waker`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use anyhow::{Context, Result};
use mio::Waker;

use crate::handlers::{App, Routed};
use crate::http::response::{ErrorFormat, Response};
use crate::http::{HttpError, Request};

/// A finished request, addressed to the connection that sent it.
pub struct Done {
    pub key: usize,
    pub conn_id: u64,
    pub req: Box<Request>,
    pub response: Response,
}

pub struct Pool {
    threads: rayon::ThreadPool,
    app: Arc<App>,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    waker: Arc<Waker>,
    /// Set while a wake-up is on its way, so a burst of completions costs one.
    wake_pending: Arc<AtomicBool>,
}

impl Pool {
    /// `threads` = 0 means one per CPU.
    pub fn new(threads: usize, app: Arc<App>, waker: Waker) -> Result<Pool> {
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tws-worker-{i}"))
            .build()
            .context("cannot start the worker pool")?;
        let (done_tx, done_rx) = channel();
        Ok(Pool {
            threads,
            app,
            done_tx,
            done_rx,
            waker: Arc::new(waker),
            wake_pending: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Runs a request on a worker. A panicking handler becomes a 500 for that request only.
    pub fn run(&self, key: usize, conn_id: u64, req: Box<Request>, routed: Routed, body: Vec<u8>) {
        let app = Arc::clone(&self.app);
        let done_tx = self.done_tx.clone();
        let waker = Arc::clone(&self.waker);
        let wake_pending = Arc::clone(&self.wake_pending);
        self.threads.spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| app.handle(&req, &routed, &body)));
            let response = outcome.unwrap_or_else(|_| {
                eprintln!(
                    "tws: error: handler panicked on {} {}",
                    req.method.as_str(),
                    req.target()
                );
                app.error(HttpError::Internal("the handler failed"), ErrorFormat::Text)
            });
            // The loop outlives the pool's jobs; if it is gone there is no one to answer.
            let _ = done_tx.send(Done {
                key,
                conn_id,
                req,
                response,
            });
            if !wake_pending.swap(true, Ordering::SeqCst) {
                let _ = waker.wake();
            }
        });
    }

    /// Takes every finished request; call after the waker fires (and at any other time).
    pub fn finished(&self) -> impl Iterator<Item = Done> + '_ {
        self.wake_pending.store(false, Ordering::SeqCst);
        self.done_rx.try_iter()
    }
}
