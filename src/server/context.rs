//! What a connection may use of the loop that owns it, lent for each step: the application
//! and settings in force (with their generation), the worker pool, the file cache, the body
//! budget, the clock and `Date`, the access log and counters, and the queues through which a
//! connection asks to be driven again or answers reach it. Protocols take a `&mut Ctx`
//! instead of reaching into the event loop.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::cache::FileCache;
use super::control::Control;
use super::pool::{Done, Pool};
use super::ticket::Waiter;
use crate::config::Timeouts;
use crate::handlers::App;
use crate::http::Limits;
use crate::http::date::DateCache;
use crate::log::AccessLog;
use crate::metrics::LoopCounts;
use crate::reload::Snapshot;
use crate::rules::proxies::TrustedProxies;
use crate::sync::lock;

/// Bytes asked of the kernel per read.
const READ_SCRATCH_BYTES: usize = 16 * 1024;

/// The settings of the routes table in force that connections obey.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// Bytes per second a response must average over each send-timeout window (0: no check).
    pub min_send_rate: u64,
    /// Most request-body bytes held in memory across the server.
    pub max_body_memory: usize,
    /// Peers whose word about the client's address is taken.
    pub trusted: Arc<TrustedProxies>,
}

impl Settings {
    fn of(snapshot: &Snapshot) -> Settings {
        let server = &snapshot.server;
        Settings {
            limits: server.limits,
            timeouts: server.timeouts,
            min_send_rate: server.min_send_rate,
            max_body_memory: server.max_body_memory,
            trusted: Arc::new(server.trusted_proxies.clone()),
        }
    }
}

pub struct Ctx {
    pub app: Arc<App>,
    /// The routes generation `app` belongs to.
    pub generation: u64,
    pub settings: Settings,
    pub pool: Pool,
    pub cache: FileCache<Waiter>,
    pub control: Arc<Control>,
    pub date: DateCache,
    pub log: AccessLog,
    counts: Arc<Mutex<LoopCounts>>,
    /// The time, read once per turn of the loop.
    pub now: Instant,
    /// Where reads land before what arrived is copied to its connection.
    pub scratch: Vec<u8>,
    /// The server is stopping: answers close their connection, HTTP/2 says GOAWAY.
    pub stopping: bool,
    /// Connections that yielded with more to send, driven again after the next poll.
    pub ready: VecDeque<usize>,
    /// Answers made on the loop for requests that waited, delivered as a worker's are.
    pub delivered: Vec<Done>,
    /// Connections (key, id) waiting for room in the body budget.
    pub awaiting_budget: Vec<(usize, u64)>,
    /// Body bytes given back since the allocator was last trimmed.
    pub body_released: usize,
}

impl Ctx {
    pub fn new(
        snapshot: &Snapshot,
        generation: u64,
        pool: Pool,
        control: Arc<Control>,
        log: AccessLog,
        counts: Arc<Mutex<LoopCounts>>,
    ) -> Ctx {
        let ctx = Ctx {
            app: Arc::clone(&snapshot.app),
            generation,
            settings: Settings::of(snapshot),
            pool,
            cache: FileCache::default(),
            control,
            date: DateCache::default(),
            log,
            counts,
            now: Instant::now(),
            scratch: vec![0; READ_SCRATCH_BYTES],
            stopping: false,
            ready: VecDeque::new(),
            delivered: Vec::new(),
            awaiting_budget: Vec::new(),
            body_released: 0,
        };
        ctx.label_routes();
        ctx
    }

    /// Takes up a reloaded routes table: new requests use it. Cached answers of the old
    /// table are dropped (take what waits for one first).
    pub fn switch(&mut self, snapshot: &Snapshot, generation: u64) {
        self.generation = generation;
        self.app = Arc::clone(&snapshot.app);
        self.settings = Settings::of(snapshot);
        self.label_routes();
        self.cache = FileCache::default();
    }

    /// This loop's metrics, to count in.
    pub fn count(&self) -> MutexGuard<'_, LoopCounts> {
        lock(&self.counts)
    }

    fn label_routes(&self) {
        self.count()
            .routes(self.app.routes().iter().map(|r| r.path.clone()));
    }
}
