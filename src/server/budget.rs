//! The server-wide budget for request-body bytes held in memory (`max_body_memory`). Each
//! connection reading a body is charged what its buffers hold, one atomic update per read
//! (at most a read's worth of bytes), never per byte. A body may always grow to
//! `BODY_ALLOWANCE`, so small requests are never held up; past that, while the budget is
//! spent, the connection is not read from: the kernel's buffers fill and the client waits
//! (backpressure), until bodies finish or their connections time out. Waiting connections are
//! resumed fewest bytes first once the budget has room again (by the event loop).

use std::sync::atomic::Ordering;

use super::context::Ctx;
use super::transport::Transport;

/// Body bytes a connection may always buffer, whatever the budget.
pub const BODY_ALLOWANCE: usize = 16 * 1024;
/// Once this many body bytes were given back, the allocator is asked to return free memory
/// to the system (glibc keeps freed heap pages otherwise, and RSS would stay at its peak).
const TRIM_AFTER_BYTES: usize = 8 << 20;

impl Ctx {
    /// True when the server's budget has room for more body bytes at all.
    pub fn body_room(&self) -> bool {
        self.control.body_held.load(Ordering::Relaxed) < self.settings.max_body_memory
    }

    /// True when connection `t`, reading a body, may read `next_read` more bytes now.
    /// Otherwise it is noted, to be driven again when the budget has room.
    pub fn may_read_body(&mut self, t: &mut Transport, next_read: usize) -> bool {
        let held = self.control.body_held.load(Ordering::Relaxed);
        if t.body_charge < BODY_ALLOWANCE || held + next_read <= self.settings.max_body_memory {
            return true;
        }
        if !t.awaiting_budget {
            t.awaiting_budget = true;
            self.awaiting_budget.push((t.key, t.id));
        }
        false
    }

    /// Charges connection `t` for the `holds` bytes its body buffers hold now.
    pub fn charge_body(&mut self, t: &mut Transport, holds: usize) {
        let before = std::mem::replace(&mut t.body_charge, holds);
        if holds > before {
            self.control
                .body_held
                .fetch_add(holds - before, Ordering::Relaxed);
        } else if before > holds {
            self.control
                .body_held
                .fetch_sub(before - holds, Ordering::Relaxed);
            self.body_released += before - holds;
        }
    }

    /// Gives back what connection `t` was charged: its body is answered, handed to a worker,
    /// or dropped with the connection.
    pub fn release_body(&mut self, t: &mut Transport) {
        self.charge_body(t, 0);
    }

    /// Returns freed memory to the system once many body bytes were released (from the
    /// sweep, a few times a second at most).
    pub fn trim_after_bodies(&mut self) {
        if self.body_released < TRIM_AFTER_BYTES {
            return;
        }
        self.body_released = 0;
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only returns unused memory of the allocator's own arenas.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    /// The connections waiting for budget that may go on now, those holding least first
    /// (`charge` tells what each holds; gone ones are dropped by it returning `None`).
    pub fn budget_waiters(&mut self, charge: impl Fn(usize, u64) -> Option<usize>) -> Vec<usize> {
        if self.awaiting_budget.is_empty() || !self.body_room() {
            return Vec::new();
        }
        let mut waiting: Vec<(usize, usize)> = std::mem::take(&mut self.awaiting_budget)
            .into_iter()
            .filter_map(|(key, id)| charge(key, id).map(|held| (held, key)))
            .collect();
        waiting.sort_unstable();
        waiting.into_iter().map(|(_, key)| key).collect()
    }
}
