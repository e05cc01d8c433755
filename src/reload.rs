//! Hot reload of routes.toml. `Live` holds the current application and settings; event loops
//! notice a new generation at their next turn and switch to it, while requests in flight
//! finish on the snapshot they started with. The `Reloader` re-reads the routes file when it
//! changes (checked a few times a second) or on SIGHUP, validates it fully, and either swaps it
//! in or logs why not and keeps serving the previous table.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::store::Store;
use crate::config::{self, Config, Overrides};
use crate::handlers::App;
use crate::stamp::FileStamp;
use crate::sync::lock;
use crate::tls::{PairStamps, Tls};

/// How often the routes file is checked for changes.
pub const WATCH_EVERY: Duration = Duration::from_millis(200);

/// An application and the settings it was loaded with.
pub struct Snapshot {
    pub app: Arc<App>,
    pub server: config::Server,
}

/// The snapshot in force, and a counter bumped at each swap.
pub struct Live {
    current: Mutex<Arc<Snapshot>>,
    generation: AtomicU64,
}

impl Live {
    pub fn new(app: App, server: config::Server) -> Live {
        let snapshot = Snapshot {
            app: Arc::new(app),
            server,
        };
        Live {
            current: Mutex::new(Arc::new(snapshot)),
            generation: AtomicU64::new(0),
        }
    }

    /// Cheap: loops compare it with the generation they hold once per turn.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&lock(&self.current))
    }

    fn replace(&self, snapshot: Snapshot) {
        *lock(&self.current) = Arc::new(snapshot);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Told the settings in force after each successful reload.
type OnChange = Box<dyn Fn(&config::Server) + Send>;

/// Re-reads the routes file into a `Live`, and the TLS certificate into its store.
pub struct Reloader {
    /// The routes file (none when serving a folder).
    source: Option<PathBuf>,
    /// The certificate and key, with their files' stamps when last read.
    certs: Option<(Arc<Tls>, PairStamps)>,
    overrides: Overrides,
    live: Arc<Live>,
    store: Option<Arc<dyn Store>>,
    /// Most connections the descriptor limit allows: a reload cannot raise the cap past it.
    capacity: usize,
    on_change: Option<OnChange>,
    trigger_tx: Sender<()>,
    trigger_rx: Receiver<()>,
    /// The file as it was when last read.
    last: Option<FileStamp>,
}

impl Reloader {
    /// `read` is the file's stamp from before it was loaded.
    pub fn new(
        source: Option<PathBuf>,
        read: Option<FileStamp>,
        overrides: Overrides,
        live: Arc<Live>,
        store: Option<Arc<dyn Store>>,
    ) -> Reloader {
        let (trigger_tx, trigger_rx) = channel();
        Reloader {
            source,
            certs: None,
            overrides,
            live,
            store,
            capacity: usize::MAX,
            on_change: None,
            trigger_tx,
            trigger_rx,
            last: read,
        }
    }

    /// Sends a reload request (SIGHUP).
    pub fn trigger(&self) -> Sender<()> {
        self.trigger_tx.clone()
    }

    /// Calls `f` with the new settings after each successful reload; `capacity` caps
    /// `max_connections`.
    pub fn on_change(&mut self, capacity: usize, f: impl Fn(&config::Server) + Send + 'static) {
        self.capacity = capacity;
        self.on_change = Some(Box::new(f));
    }

    /// Also reloads the TLS certificate and key on triggers, and when their files change.
    pub fn with_certificate(mut self, tls: Arc<Tls>) -> Reloader {
        let last = tls.stamps();
        self.certs = Some((tls, last));
        self
    }

    /// Waits for triggers (and, when `watch`, for the files to change) until the process ends.
    pub fn run(mut self, watch: bool) {
        loop {
            let triggered = if watch {
                match self.trigger_rx.recv_timeout(WATCH_EVERY) {
                    Ok(()) => true,
                    Err(RecvTimeoutError::Timeout) => false,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match self.trigger_rx.recv() {
                    Ok(()) => true,
                    Err(_) => return,
                }
            };
            if let Some(source) = self.source.clone() {
                let now = FileStamp::of_path(&source);
                if triggered || now != self.last {
                    // An editor may still be writing: wait until the file holds still.
                    self.last = settle(now, || FileStamp::of_path(&source));
                    self.reload();
                }
            }
            if let Some((tls, last)) = &mut self.certs {
                let now = tls.stamps();
                if triggered || now != *last {
                    // certbot writes the certificate and the key one after the other.
                    *last = settle(now, || tls.stamps());
                    match tls.reload() {
                        Ok(fingerprint) => crate::report!(
                            "tws: reloaded the TLS certificate; new handshakes use it (SHA-256 {fingerprint})"
                        ),
                        Err(e) => crate::report!(
                            "tws: TLS certificate reload refused, still serving the previous one: {e:#}"
                        ),
                    }
                }
            }
        }
    }

    /// Loads and validates the routes file; swaps it in, or says why not. Returns success.
    pub fn reload(&mut self) -> bool {
        if self.source.is_none() {
            return false;
        }
        let ok = self.load_and_swap();
        let registry = crate::metrics::registry();
        let counter = if ok {
            &registry.reloads_ok
        } else {
            &registry.reloads_failed
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ok
    }

    fn load_and_swap(&mut self) -> bool {
        let Some(source) = self.source.clone() else {
            return false;
        };
        let shown = source.display().to_string();
        let config = match Config::load(&source, &self.overrides) {
            Ok(config) => config,
            Err(e) => {
                crate::report!(
                    "tws: reload of {shown} refused, still serving the previous routes: {e:#}"
                );
                return false;
            }
        };
        let old = self.live.snapshot();
        for key in restart_only_changes(&old.server, &config.server) {
            crate::report!(
                "tws: warning: {shown}: a change of [server] {key} needs a restart; keeping the running value"
            );
        }
        if config.uses_store() {
            let prepared = match &self.store {
                Some(store) => store.prepare(&config.collections),
                None => crate::api::open_store(
                    old.server.store.as_ref().map(|url| url.0.as_str()),
                    &old.server.data,
                    old.server.fsync,
                )
                .and_then(|store| {
                    store.prepare(&config.collections)?;
                    self.store = Some(store);
                    Ok(())
                }),
            };
            if let Err(e) = prepared {
                crate::report!(
                    "tws: reload of {shown} refused, still serving the previous routes: {e:#}"
                );
                return false;
            }
        }
        let mut server = config.server.clone();
        // What cannot change while running keeps its running value.
        server.host.clone_from(&old.server.host);
        server.port = old.server.port;
        server.threads = old.server.threads;
        server.data.clone_from(&old.server.data);
        server.fsync = old.server.fsync;
        server.store.clone_from(&old.server.store);
        server.access_log.clone_from(&old.server.access_log);
        server.tls.clone_from(&old.server.tls);
        server.redirect_http = old.server.redirect_http;
        server.max_connections = server.max_connections.map(|m| m.min(self.capacity));
        if let Some(f) = &self.on_change {
            f(&server);
        }
        let app = App::from_config(&config, self.store.clone());
        let routes = config.routes.len();
        self.live.replace(Snapshot {
            app: Arc::new(app),
            server,
        });
        // Users or passwords may have changed: every login is checked again.
        crate::rules::guard::guard().forget_logins();
        for warning in &config.warnings {
            crate::report!("tws: warning: {warning}");
        }
        crate::report!(
            "tws: reloaded {shown}: {}",
            crate::banner::count(routes, "route")
        );
        true
    }
}

/// Waits until what `read` sees holds still (an editor or certbot may still be writing),
/// checking a few times over at most 300 ms; returns what it saw last.
fn settle<T: PartialEq>(first: T, read: impl Fn() -> T) -> T {
    let mut settled = first;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(30));
        let again = read();
        if again == settled {
            break;
        }
        settled = again;
    }
    settled
}

/// The `[server]` keys whose change only a restart can apply.
fn restart_only_changes(old: &config::Server, new: &config::Server) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.host != new.host {
        changed.push("host");
    }
    if old.port != new.port {
        changed.push("port");
    }
    if old.threads != new.threads {
        changed.push("threads");
    }
    if old.data != new.data {
        changed.push("data");
    }
    if old.fsync != new.fsync {
        changed.push("fsync");
    }
    if old.store != new.store {
        changed.push("store");
    }
    if old.access_log != new.access_log {
        changed.push("access_log");
    }
    if old.tls != new.tls {
        changed.push("tls");
    }
    if old.redirect_http != new.redirect_http {
        changed.push("tls redirect_http");
    }
    changed
}
