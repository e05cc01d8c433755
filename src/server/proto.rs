//! What every protocol tells its connection after a step: wait, close, or (HTTP/1.1 only)
//! hand the connection over to HTTP/2.

/// What the connection needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wait for readiness, a worker, or the next turn.
    Wait,
    Close,
    /// The connection speaks HTTP/2 from here (its input holds what arrived of it).
    Upgrade,
}
