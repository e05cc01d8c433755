//! Locks that outlive a panicking holder: a handler that panics while holding a lock costs
//! its request (a 500), not every later request that needs the same lock.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking over the data of a holder that panicked.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
