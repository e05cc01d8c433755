//! What every event loop and the signal thread share: the connection cap and count, whether
//! the server is stopping, and the request-body bytes held across all loops.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What the event loops share.
pub struct Control {
    /// The cap; a reload may change it.
    pub max_connections: AtomicUsize,
    /// Set by the first SIGTERM or SIGINT.
    pub signalled: AtomicBool,
    /// Set once the loops are to stop accepting (after the drain, if any).
    pub stopping: AtomicBool,
    /// Request-body bytes buffered across all loops (see `budget`).
    pub body_held: AtomicUsize,
}

impl Control {
    /// Counts a new connection, unless the cap is reached.
    pub fn admit(&self) -> bool {
        let max = self.max_connections.load(Ordering::Relaxed);
        let open = &crate::metrics::registry().open_connections;
        if open.fetch_add(1, Ordering::AcqRel) < max {
            true
        } else {
            open.fetch_sub(1, Ordering::AcqRel);
            false
        }
    }

    pub fn release(&self) {
        crate::metrics::registry()
            .open_connections
            .fetch_sub(1, Ordering::AcqRel);
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
