//! The server-wide budget for request-body bytes held in memory (`max_body_memory`). Each
//! connection reading a body is charged what its buffers hold, one atomic update per read
//! (at most `BODY_READ_CAP` bytes), never per byte. A body may always grow to
//! `BODY_ALLOWANCE`, so small requests are never held up; past that, while the budget is
//! spent, the connection is not read from: the kernel's buffers fill and the client waits
//! (backpressure), until bodies finish or their connections time out. Waiting connections are
//! resumed fewest bytes first once the budget has room again.

use std::sync::atomic::Ordering;

use super::conn::State;
use super::event_loop::EventLoop;

/// Body bytes a connection may always buffer, whatever the budget.
pub const BODY_ALLOWANCE: usize = 16 * 1024;
/// Once this many body bytes were given back, the allocator is asked to return free memory
/// to the system (glibc keeps freed heap pages otherwise, and RSS would stay at its peak).
const TRIM_AFTER_BYTES: usize = 8 << 20;

impl EventLoop {
    /// True when connection `key`, reading a body, may read more now. Otherwise it is noted,
    /// to be resumed by `resume_body_readers` when the budget has room.
    pub(super) fn may_read_body(&mut self, key: usize, next_read: usize) -> bool {
        let conn = &mut self.conns[key];
        let held = self.control.body_held.load(Ordering::Relaxed);
        if conn.body_charge < BODY_ALLOWANCE || held + next_read <= self.max_body_memory {
            return true;
        }
        if !conn.awaiting_budget {
            conn.awaiting_budget = true;
            self.awaiting_budget.push((key, conn.id));
        }
        false
    }

    /// Charges connection `key` for what its body buffers hold now.
    pub(super) fn charge_body(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let State::Body(pending) = &conn.state else {
            return;
        };
        let holds = pending.body.capacity() + conn.input.capacity();
        let before = std::mem::replace(&mut conn.body_charge, holds);
        if holds > before {
            self.control
                .body_held
                .fetch_add(holds - before, Ordering::Relaxed);
        } else if before > holds {
            self.control
                .body_held
                .fetch_sub(before - holds, Ordering::Relaxed);
        }
    }

    /// Gives back what connection `key` was charged: its body is answered, handed to a
    /// worker, or dropped with the connection.
    pub(super) fn release_body(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            let charged = std::mem::take(&mut conn.body_charge);
            if charged > 0 {
                self.control.body_held.fetch_sub(charged, Ordering::Relaxed);
                self.body_released += charged;
            }
        }
    }

    /// Returns freed memory to the system once many body bytes were released (from the
    /// sweep, a few times a second at most).
    pub(super) fn trim_after_bodies(&mut self) {
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

    /// Resumes connections waiting for budget, those holding least first, while it has room.
    pub(super) fn resume_body_readers(&mut self) {
        if self.awaiting_budget.is_empty()
            || self.control.body_held.load(Ordering::Relaxed) >= self.max_body_memory
        {
            return;
        }
        let mut waiting = std::mem::take(&mut self.awaiting_budget);
        waiting.retain(|(key, id)| self.conns.get(*key).is_some_and(|c| c.id == *id));
        waiting.sort_by_key(|(key, _)| self.conns[*key].body_charge);
        for (key, _) in waiting {
            self.conns[key].awaiting_budget = false;
            // Driving it reads (or notes it as waiting again, if the budget ran out meanwhile).
            self.drive(key);
        }
    }
}
