//! The PostgreSQL store: collections shared by several tws nodes. Ids come from identity
//! columns and versions from a version column, so they are unique across nodes; `If-Match` is
//! checked on the row locked `FOR UPDATE`. Writer threads commit the writes waiting together
//! in one transaction (a write that fails the transaction is retried alone, so it fails only
//! itself); reads run on the workers. Every wait is bounded: connecting, taking a connection,
//! and each statement. Changes go to a shared change log in their transaction; each node's
//! listener hands them to its live subscribers in commit order (`changes`).

mod changes;
mod pool;
mod sql;

use std::sync::mpsc::{self, Receiver, Sender};

use crate::sync::lock;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use postgres::error::SqlState;

use super::apply::{Outcome, apply};
use super::live::Backlog;
use super::live::hub::Hub;
use super::schema::Collection;
use super::schema::LiveSettings;
use super::store::{Counters, Done, Page, PageQuery, ReadError, Record, Store, Write, WriteError};
pub use pool::reason;
use pool::{Conn, Pool};
pub use sql::MIGRATION_LOCK;

/// Threads committing writes.
const WRITERS: usize = 2;
/// Most writes sharing one transaction.
const MAX_BATCH: usize = 256;
/// Connections per node (readers on the workers, and the writers).
const MAX_CONNECTIONS: usize = 16;
/// Longest wait to connect, or for a connection to come free.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a statement (or a lock it waits for) may take, in milliseconds.
const STATEMENT_TIMEOUT_MS: u32 = 2000;
/// How long a health answer is reused.
const HEALTH_FRESH: Duration = Duration::from_millis(500);

struct Job {
    collection: Arc<Collection>,
    write: Write,
    done: Done,
}

pub struct PgStore {
    pool: Arc<Pool>,
    jobs: Mutex<Option<Sender<Job>>>,
    writers: Mutex<Vec<JoinHandle<()>>>,
    /// The URL without its password.
    shown: String,
    counters: Arc<Counters>,
    health: Mutex<Option<(Instant, Result<(), String>)>>,
    /// How every connection is made (the listener's too).
    config: postgres::Config,
    hub: Arc<Hub>,
    /// What the declared collections with live updates keep.
    live: Arc<Mutex<Vec<(String, LiveSettings)>>>,
    /// The listener, started once the schema is ready; told to stop when the store closes.
    listener: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl PgStore {
    /// Connects to `url` (a `postgres://` URL or `key=value` pairs), failing at once with the
    /// reason when the database cannot be reached; starts the writers.
    pub fn open(url: &str) -> Result<PgStore> {
        let (config, shown) = connection_config(url)?;
        let pool = Arc::new(Pool::new(
            config.clone(),
            MAX_CONNECTIONS,
            CONNECT_TIMEOUT,
            shown.clone(),
        ));
        pool.connect()
            .map_err(|e| anyhow!("cannot connect to PostgreSQL at {shown}: {}", reason(&e)))?;
        let (jobs, queue) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let counters = Arc::new(Counters::default());
        let mut writers = Vec::new();
        for i in 0..WRITERS {
            let (pool, queue, counters) =
                (Arc::clone(&pool), Arc::clone(&queue), Arc::clone(&counters));
            writers.push(
                std::thread::Builder::new()
                    .name(format!("tws-pg-writer-{i}"))
                    .spawn(move || write_loop(&pool, &queue, &counters))
                    .context("cannot start a database writer")?,
            );
        }
        Ok(PgStore {
            pool,
            jobs: Mutex::new(Some(jobs)),
            writers: Mutex::new(writers),
            shown,
            counters,
            health: Mutex::new(None),
            config,
            hub: Hub::new(),
            live: Arc::new(Mutex::new(Vec::new())),
            listener: Mutex::new(None),
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// Starts the node's change listener (once; after the schema is made).
    fn listen(&self) -> Result<()> {
        let mut listener = lock(&self.listener);
        if listener.is_some() {
            return Ok(());
        }
        let run = changes::Listener {
            config: self.config.clone(),
            hub: Arc::clone(&self.hub),
            settings: Arc::clone(&self.live),
            stop: Arc::clone(&self.stop),
            shown: self.shown.clone(),
        };
        *listener = Some(
            std::thread::Builder::new()
                .name("tws-pg-listen".into())
                .spawn(move || run.run())
                .context("cannot start the change listener")?,
        );
        Ok(())
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, ReadError> {
        let mut conn = self.pool.get().map_err(|e| {
            self.counters.failed();
            ReadError::Failed(e)
        })?;
        f(&mut conn).map_err(|e| {
            if e.code() == Some(&SqlState::QUERY_CANCELED) {
                return ReadError::TooSlow;
            }
            self.counters.failed();
            if conn.client.is_closed() {
                self.pool.failed();
            }
            ReadError::Failed(reason(&e))
        })
    }
}

/// How every connection to the database at `url` is made (a `postgres://` URL or `key=value`
/// pairs; the password from the URL, `PGPASSWORD` or the password file), with the statement,
/// lock and connection timeouts; and where it is, without the password, for messages.
pub fn connection_config(url: &str) -> Result<(postgres::Config, String)> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| anyhow!("store: not a PostgreSQL URL: {e}"))?;
    if config.get_password().is_none()
        && let Some(password) = password_for(&config)
    {
        config.password(password);
    }
    let options = format!(
        "{} -c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={STATEMENT_TIMEOUT_MS} -c idle_in_transaction_session_timeout=10000",
        config.get_options().unwrap_or("")
    );
    config
        .options(options.trim_start())
        .application_name("tws")
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives_idle(Duration::from_secs(10))
        .tcp_user_timeout(Duration::from_secs(5));
    let shown = shown(&config);
    Ok((config, shown))
}

/// `postgres://user@host:port/db`: where the store is, without the password.
fn shown(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(name)) => name.clone(),
        Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    format!(
        "postgres://{}@{host}:{}/{}",
        config.get_user().unwrap_or(""),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("")
    )
}

/// The password from `PGPASSWORD`, else from the password file (`PGPASSFILE`, or
/// `~/.pgpass`: `host:port:database:user:password` lines, `*` matching anything).
fn password_for(config: &postgres::Config) -> Option<String> {
    if let Ok(password) = std::env::var("PGPASSWORD") {
        return Some(password);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".pgpass")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(name)) => name.clone(),
        _ => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        config.get_dbname().unwrap_or(""),
        config.get_user().unwrap_or(""),
    ];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let parts: Vec<&str> = line.splitn(5, ':').collect();
            let [h, p, d, u, password] = parts.as_slice() else {
                return None;
            };
            [h, p, d, u]
                .iter()
                .zip(wanted)
                .all(|(have, want)| **have == "*" || **have == want)
                .then(|| (*password).to_owned())
        })
}

/// Takes the writes waiting and commits them, until the store closes.
fn write_loop(pool: &Pool, queue: &Mutex<Receiver<Job>>, counters: &Counters) {
    loop {
        let batch = {
            let queue = lock(queue);
            let Ok(first) = queue.recv() else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let outcomes = commit(pool, &batch, counters);
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            (job.done)(outcome);
        }
    }
}

/// Commits a batch in one transaction; if that fails, each write alone, so that one write's
/// failure (a deadlock with another node, say) fails only itself.
fn commit(pool: &Pool, batch: &[Job], counters: &Counters) -> Vec<Outcome> {
    let failed = |why: String| {
        batch
            .iter()
            .map(|_| Err(WriteError::Failed(why.clone())))
            .collect()
    };
    let now = crate::time::now_rfc3339();
    let mut conn = match pool.get() {
        Ok(conn) => conn,
        Err(e) => {
            counters.failed();
            return failed(e);
        }
    };
    match transaction(&mut conn, batch, &now) {
        Ok(outcomes) => {
            counters.committed(batch.len());
            return outcomes;
        }
        Err(_) if batch.len() > 1 && !conn.client.is_closed() => {}
        Err(e) => {
            counters.failed();
            if conn.client.is_closed() {
                pool.failed();
            }
            return failed(reason(&e));
        }
    }
    batch
        .iter()
        .map(
            |job| match transaction(&mut conn, std::slice::from_ref(job), &now) {
                Ok(mut outcome) => {
                    counters.committed(1);
                    outcome.remove(0)
                }
                Err(e) => {
                    counters.failed();
                    Err(WriteError::Failed(reason(&e)))
                }
            },
        )
        .collect()
}

fn transaction(conn: &mut Conn, jobs: &[Job], now: &str) -> Result<Vec<Outcome>, postgres::Error> {
    let Conn { client, statements } = conn;
    let mut tx = client.transaction()?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut logged = Vec::new();
    {
        let mut rows = sql::PgRows {
            tx: &mut tx,
            statements,
            logged: &mut logged,
        };
        for job in jobs {
            outcomes.push(apply(&mut rows, &job.collection, &job.write, now)?);
        }
    }
    // Last: numbering the changes serializes writers on every node until the commit.
    changes::log(&mut tx, statements, &mut logged)?;
    tx.commit()?;
    Ok(outcomes)
}

impl Store for PgStore {
    fn prepare(&self, collections: &[Arc<Collection>]) -> Result<()> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| anyhow!("PostgreSQL at {}: {e}", self.shown))?;
        sql::prepare_collections(&mut conn, collections)
            .with_context(|| format!("PostgreSQL at {}", self.shown))?;
        *lock(&self.live) = collections
            .iter()
            .filter(|c| c.live.events.is_some())
            .map(|c| (c.name.clone(), c.live.clone()))
            .collect();
        self.listen()
    }

    fn write(&self, collection: &Arc<Collection>, write: Write, done: Done) {
        let job = Job {
            collection: Arc::clone(collection),
            write,
            done,
        };
        let sent = match &*lock(&self.jobs) {
            Some(jobs) => jobs.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            (job.done)(Err(WriteError::Failed(
                "the database writers have stopped".into(),
            )));
        }
    }

    fn get(&self, collection: &Collection, id: i64) -> Result<Option<Arc<Record>>, ReadError> {
        self.read(|conn| sql::get(conn, &collection.name, id))
            .map(|r| r.map(Arc::new))
    }

    fn page(&self, collection: &Collection, query: &PageQuery) -> Result<Page, ReadError> {
        self.read(|conn| sql::page(conn, &collection.name, query))?
            .ok_or(ReadError::CursorGone)
    }

    fn location(&self) -> String {
        self.shown.clone()
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn hub(&self) -> Option<&Arc<Hub>> {
        Some(&self.hub)
    }

    fn changes_since(&self, collection: &str, after: i64) -> Result<Backlog, ReadError> {
        self.read(|conn| changes::since(&mut conn.client, collection, after))
    }

    fn health(&self) -> Result<(), String> {
        let mut health = lock(&self.health);
        if let Some((at, result)) = &*health
            && at.elapsed() < HEALTH_FRESH
        {
            return result.clone();
        }
        let result = self
            .pool
            .get()
            .and_then(|mut conn| {
                conn.client
                    .simple_query("SELECT 1")
                    .map(|_| ())
                    .map_err(|e| reason(&e))
            })
            .map_err(|e| format!("PostgreSQL at {}: {e}", self.shown));
        *health = Some((Instant::now(), result.clone()));
        result
    }
}

impl Drop for PgStore {
    /// Lets the writers finish what is queued, then stops them.
    fn drop(&mut self) {
        lock(&self.jobs).take();
        for writer in lock(&self.writers).drain(..) {
            let _ = writer.join();
        }
        // The listener sees this within its poll.
        self.stop.store(true, std::sync::atomic::Ordering::Release);
    }
}
