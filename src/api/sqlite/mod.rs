//! The SQLite store: one database file under the data folder, in WAL mode with
//! `synchronous=FULL`. One writer thread commits the writes waiting together in one
//! transaction (group commit); reads run on the calling worker, on a pooled read-only
//! connection, and never wait for the writer. Changes of collections with live updates go to
//! a change log in the same transaction and, once committed, to the hub.

mod cache;
mod changes;
mod prepare;
mod read;
mod writer;

use std::path::{Path, PathBuf};

use crate::sync::lock;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

use super::live::Backlog;
use super::live::hub::Hub;
use super::schema::Collection;
use super::schema::LiveSettings;
use super::store::{Counters, Done, Page, PageQuery, ReadError, Record, Store, SyncMode, Write};

/// The database file, inside the data folder.
pub const DB_FILE: &str = "tws.db";

/// Bytes of records kept in memory for reads by id.
pub const RECORD_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// Longest a page query may run before it is stopped.
const PAGE_TIME_LIMIT: Duration = Duration::from_secs(1);

/// How long a connection waits for a lock held by another (a reload preparing tables while
/// the writer commits).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Collections in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    data: PathBuf,
    jobs: Mutex<Option<Sender<writer::Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Read-only connections not in use.
    readers: Mutex<Vec<Connection>>,
    cache: Arc<cache::Cache>,
    counters: Arc<Counters>,
    live: Arc<Live>,
    /// Held (locked) while the store is open: one server per data folder, since the cache
    /// trusts that no one else writes.
    _lock: Arc<std::fs::File>,
}

/// Live updates: where committed changes go, and what each collection's log keeps.
pub(super) struct Live {
    hub: Arc<Hub>,
    settings: Mutex<Vec<(String, LiveSettings)>>,
}

impl Live {
    fn new() -> Live {
        Live {
            hub: Hub::new(),
            settings: Mutex::new(Vec::new()),
        }
    }

    /// Remembers what the declared collections with live updates keep.
    fn declare(&self, collections: &[Arc<Collection>]) {
        *lock(&self.settings) = collections
            .iter()
            .filter(|c| c.live.events.is_some())
            .map(|c| (c.name.clone(), c.live.clone()))
            .collect();
    }
}

/// A table's name for a collection (collection names are checked at load: `[a-z][a-z0-9_]*`).
fn table(collection: &str) -> String {
    format!("\"c_{collection}\"")
}

/// The full-text index of a collection's table (`"c_users"` → `"c_users:search"`: a name no
/// field's index can take).
fn search_table(table: &str) -> String {
    format!("{}:search\"", table.trim_end_matches('"'))
}

/// The SQL expression of a field's value (field names are checked at load: `[A-Za-z_]\w*`).
fn field_expr(field: &str) -> String {
    format!("json_extract(data, '$.{field}')")
}

impl SqliteStore {
    /// Opens (creating if needed) `data/tws.db` and starts its writer.
    pub fn open(data: &Path, mode: SyncMode) -> Result<SqliteStore> {
        crate::private::folder(data)
            .with_context(|| format!("cannot create data folder {}", data.display()))?;
        let lock = crate::private::lock_data(data)?;
        let path = data.join(DB_FILE);
        // Made for the owner alone before SQLite opens it; its WAL and shared-memory files
        // take the same mode.
        crate::private::file(&path).with_context(|| format!("cannot create {}", path.display()))?;
        for suffix in ["-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            let extra = std::path::PathBuf::from(name);
            if extra.exists() {
                crate::private::file(&extra)
                    .with_context(|| format!("cannot restrict {}", extra.display()))?;
            }
        }
        let conn = open_read_write(&path)?;
        conn.execute_batch(prepare::REGISTRY)
            .and_then(|()| conn.execute_batch(changes::SCHEMA))
            .with_context(|| format!("cannot set up {}", path.display()))?;
        let (jobs, queue) = mpsc::channel();
        let shown = path.display().to_string();
        let cache = Arc::new(cache::Cache::new(RECORD_CACHE_BYTES));
        let written = Arc::clone(&cache);
        let counters = Arc::new(Counters::default());
        let counted = Arc::clone(&counters);
        let live = Arc::new(Live::new());
        let logging = Arc::clone(&live);
        let writer = std::thread::Builder::new()
            .name("tws-db-writer".into())
            .spawn(move || writer::run(conn, queue, mode, &written, &counted, &shown, &logging))
            .context("cannot start the database writer")?;
        Ok(SqliteStore {
            path,
            data: data.to_path_buf(),
            jobs: Mutex::new(Some(jobs)),
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(Vec::new()),
            cache,
            counters,
            live,
            _lock: lock,
        })
    }

    /// Runs `f` on a read-only connection, kept for the next read afterwards.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, ReadError> {
        let pooled = lock(&self.readers).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => open_read_only(&self.path).map_err(|e| ReadError::Failed(format!("{e:#}")))?,
        };
        let result = f(&mut conn).map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::OperationInterrupted) => ReadError::TooSlow,
            _ => {
                self.counters.failed();
                ReadError::Failed(e.to_string())
            }
        });
        lock(&self.readers).push(conn);
        result
    }
}

fn open_read_write(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never wait for the writer. FULL: a commit is on disk (the WAL fsynced)
    // before it returns, so an acknowledged write survives a crash or a power cut.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .with_context(|| format!("cannot use {}", path.display()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!("{}: cannot switch to WAL mode (got {mode})", path.display());
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")?;
    Ok(conn)
}

fn open_read_only(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

impl Store for SqliteStore {
    fn prepare(&self, collections: &[Arc<Collection>]) -> Result<()> {
        let mut conn = open_read_write(&self.path)?;
        prepare::run(&mut conn, collections, &self.data, &self.path)?;
        self.live.declare(collections);
        Ok(())
    }

    fn write(&self, collection: &Arc<Collection>, write: Write, done: Done) {
        let job = writer::Job {
            collection: Arc::clone(collection),
            write,
            done,
        };
        let sent = match &*lock(&self.jobs) {
            Some(jobs) => jobs.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            (job.done)(Err(super::store::WriteError::Failed(
                "the database writer has stopped".into(),
            )));
        }
    }

    fn get(&self, collection: &Collection, id: i64) -> Result<Option<Arc<Record>>, ReadError> {
        if let Some(record) = self.cache.get(&collection.name, id) {
            return Ok(Some(record));
        }
        let ticket = self.cache.ticket(&collection.name, id);
        let record = self.read(|conn| read::get(conn, &collection.name, id))?;
        if let Some(record) = &record {
            self.cache.fill(ticket, &collection.name, record);
        }
        Ok(record.map(Arc::new))
    }

    fn cached(&self, collection: &Collection, id: i64) -> Option<Arc<Record>> {
        self.cache.get(&collection.name, id)
    }

    fn page(&self, collection: &Collection, query: &PageQuery) -> Result<Page, ReadError> {
        self.read(|conn| {
            // A filter or sort on a field without an index reads every record: bounded in time.
            let deadline = std::time::Instant::now() + PAGE_TIME_LIMIT;
            conn.progress_handler(10_000, Some(move || std::time::Instant::now() > deadline))?;
            let page = read::page(conn, &collection.name, query);
            conn.progress_handler(0, None::<fn() -> bool>)?;
            page
        })?
        .ok_or(ReadError::CursorGone)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn hub(&self) -> Option<&Arc<Hub>> {
        Some(&self.live.hub)
    }

    fn changes_since(&self, collection: &str, after: i64) -> Result<Backlog, ReadError> {
        self.read(|conn| changes::since(conn, collection, after))
    }
}

impl Drop for SqliteStore {
    /// Lets the writer finish what is queued, then stops it.
    fn drop(&mut self) {
        lock(&self.jobs).take();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests;
