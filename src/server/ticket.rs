//! What names a request in flight wherever its answer is made: the `Origin` an answer goes
//! back to (connection and stream), the `Exchange` that finishing it needs, and the `Ticket`
//! a worker's answer comes back with, and the `Waiter` that waits for another request's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::handlers::Routed;
use crate::http::Request;

/// Whom an answer goes back to: a connection (its slot and unique id) and, on HTTP/2, a
/// stream (0 on HTTP/1.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub key: usize,
    pub conn: u64,
    pub stream: u32,
}

/// A request being answered: what is needed to finish its answer, wherever that is made.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub origin: Origin,
    /// Who asked: the peer.
    pub client: SocketAddr,
    /// The TLS version of the connection, for the log.
    pub tls: Option<&'static str>,
    /// The request, once it waits for an answer made elsewhere.
    pub req: Option<Arc<Request>>,
    /// The route it matched, in the table of `generation`.
    pub route: Option<usize>,
    pub generation: u64,
    /// When its first byte arrived.
    pub started: Instant,
}

/// Whom a job answers (the exchange, which names its origin), and under which cache key its
/// result may be kept.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub ex: Exchange,
    pub cache_key: Option<Box<str>>,
}

/// A request waiting for the answer a worker is making for its path (see `FileCache`).
pub struct Waiter {
    pub ex: Exchange,
    pub req: Request,
    pub routed: Routed,
}
