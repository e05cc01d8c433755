//! Durable user storage. `UserStore` is the contract; `JsonlStore` keeps users as JSON Lines in
//! one append-only file and answers `create` only once the record is on disk. Creates waiting
//! at the same time share one fsync (group commit) unless `SyncMode::EachRecord` is chosen.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::time::Civil;

/// The file users are kept in, inside the data folder.
pub const USERS_FILE: &str = "users.jsonl";

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    #[serde(rename = "Nombre")]
    pub name: String,
    /// RFC 3339, UTC.
    pub created: String,
}

#[derive(Debug)]
pub enum StoreError {
    /// An earlier write could not be made durable; the store refuses further writes.
    Unavailable,
    Io(io::Error),
}

/// Called once a create is durable (or has failed), possibly on another thread.
pub type Created = Box<dyn FnOnce(Result<User, StoreError>) + Send>;

/// Where users live. `create` reports success only once the user would survive a crash.
pub trait UserStore: Send + Sync {
    /// Stores a user and calls `done` when the record is durable. Never blocks on the disk
    /// flush itself, so a caller can start many creates that share one flush.
    fn create(&self, name: &str, done: Created);
    fn get(&self, id: u64) -> Option<User>;
    /// Every durable user, by increasing id.
    fn list(&self) -> Vec<User>;
}

/// How writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Every create waiting when a flush starts shares it (group commit).
    #[default]
    Group,
    /// Every create gets its own flush.
    EachRecord,
}

impl SyncMode {
    pub fn from_name(name: &str) -> Option<SyncMode> {
        match name {
            "group" => Some(SyncMode::Group),
            "each" => Some(SyncMode::EachRecord),
            _ => None,
        }
    }
}

/// Users in a JSON Lines file. Appends happen on the caller's thread, under a lock, so records
/// never interleave; a committer thread flushes them (fdatasync) and then answers every create
/// the flush covered.
pub struct JsonlStore {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
}

struct Shared {
    /// The file, for messages.
    path: PathBuf,
    mode: SyncMode,
    writer: Mutex<Writer>,
    /// A second handle on the file, so a flush does not hold up appends.
    sync_file: File,
    /// Signalled when a record is appended or the store shuts down.
    work: Condvar,
    /// Durable users, by increasing id.
    users: RwLock<Vec<User>>,
    /// Flushes run so far.
    flushes: AtomicU64,
}

struct Writer {
    file: File,
    len: u64,
    next_id: u64,
    /// Appended records waiting for a flush, oldest first.
    pending: Vec<(User, Created)>,
    failed: bool,
    stop: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl JsonlStore {
    /// Opens (creating if needed) `data/users.jsonl` and loads every record. A torn last line,
    /// left by a crash mid-write, is cut off with a warning; damage elsewhere stops startup.
    pub fn open(data: &Path, mode: SyncMode) -> Result<JsonlStore> {
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create data folder {}", data.display()))?;
        let path = data.join(USERS_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if !existed {
            // Make the new file's directory entry durable too.
            File::open(data).and_then(|d| d.sync_all()).ok();
        }
        let text =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let loaded = load_records(&text).map_err(|(line, why)| {
            anyhow::anyhow!("{}:{line}: {why}; refusing to start", path.display())
        })?;
        if loaded.good_len < text.len() {
            crate::report!(
                "tws: warning: {}:{}: skipping a torn last record ({} bytes) left by an interrupted write",
                path.display(),
                loaded.users.len() + 1,
                text.len() - loaded.good_len
            );
            file.set_len(loaded.good_len as u64)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot repair {}", path.display()))?;
        }
        let next_id = loaded.users.last().map_or(1, |u| u.id + 1);
        let sync_file = file.try_clone()?;
        let shared = Arc::new(Shared {
            path,
            mode,
            sync_file,
            writer: Mutex::new(Writer {
                file,
                len: loaded.good_len as u64,
                next_id,
                pending: Vec::new(),
                failed: false,
                stop: false,
            }),
            work: Condvar::new(),
            users: RwLock::new(loaded.users),
            flushes: AtomicU64::new(0),
        });
        let committer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tws-committer".to_owned())
                .spawn(move || shared.commit_loop())
                .context("cannot start the store's committer thread")?
        };
        Ok(JsonlStore {
            shared,
            committer: Some(committer),
        })
    }

    /// How many flushes (fdatasync calls) the store has run: with group commit, fewer than
    /// the creates they made durable.
    pub fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// Flushes appended records and answers their creators, until the store is dropped.
    fn commit_loop(&self) {
        loop {
            let mut writer = lock(&self.writer);
            while writer.pending.is_empty() && !writer.stop {
                writer = self
                    .work
                    .wait(writer)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if writer.pending.is_empty() {
                return;
            }
            let batch: Vec<(User, Created)> = match self.mode {
                SyncMode::Group => std::mem::take(&mut writer.pending),
                SyncMode::EachRecord => vec![writer.pending.remove(0)],
            };
            // Every record in the batch was written before this point; the flush covers it.
            drop(writer);
            self.flushes.fetch_add(1, Ordering::Relaxed);
            match self.sync_file.sync_data() {
                Ok(()) => {
                    let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
                    users.extend(batch.iter().map(|(u, _)| u.clone()));
                    drop(users);
                    for (user, done) in batch {
                        done(Ok(user));
                    }
                }
                Err(e) => {
                    crate::report!("tws: error: fsync of {} failed: {e}", self.path.display());
                    lock(&self.writer).failed = true;
                    fail_all(batch, &e);
                }
            }
        }
    }
}

fn fail_all(batch: Vec<(User, Created)>, e: &io::Error) {
    for (_, done) in batch {
        done(Err(StoreError::Io(io::Error::new(e.kind(), e.to_string()))));
    }
}

impl Drop for JsonlStore {
    /// Flushes what is pending, answers it, and stops the committer.
    fn drop(&mut self) {
        lock(&self.shared.writer).stop = true;
        self.shared.work.notify_all();
        if let Some(committer) = self.committer.take() {
            let _ = committer.join();
        }
    }
}

impl UserStore for JsonlStore {
    fn create(&self, name: &str, done: Created) {
        let mut writer = lock(&self.shared.writer);
        if writer.failed {
            drop(writer);
            return done(Err(StoreError::Unavailable));
        }
        let user = User {
            id: writer.next_id,
            name: name.to_owned(),
            created: Civil::from_system(SystemTime::now()).rfc3339(),
        };
        let mut line = match serde_json::to_vec(&user) {
            Ok(line) => line,
            Err(e) => {
                drop(writer);
                return done(Err(StoreError::Io(e.into())));
            }
        };
        line.push(b'\n');
        // One append under the lock: records never interleave. On failure, cut back whatever
        // part of the line reached the file so the next record starts on a clean line.
        if let Err(e) = writer.file.write_all(&line) {
            let len = writer.len;
            let _ = writer.file.set_len(len);
            drop(writer);
            return done(Err(StoreError::Io(e)));
        }
        writer.len += line.len() as u64;
        writer.next_id += 1;
        writer.pending.push((user, done));
        drop(writer);
        self.shared.work.notify_one();
    }

    fn get(&self, id: u64) -> Option<User> {
        let users = self
            .shared
            .users
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        users
            .binary_search_by_key(&id, |u| u.id)
            .ok()
            .map(|i| users[i].clone())
    }

    fn list(&self) -> Vec<User> {
        self.shared
            .users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Loaded {
    users: Vec<User>,
    /// Bytes of the file made of complete, valid records.
    good_len: usize,
}

/// Parses the store file. Only the last line may be damaged (a torn write); a bad line with
/// complete records after it is corruption, reported as (line number, reason).
fn load_records(text: &[u8]) -> Result<Loaded, (usize, &'static str)> {
    let mut users: Vec<User> = Vec::new();
    let mut at = 0;
    let mut line_no = 0;
    while at < text.len() {
        line_no += 1;
        let Some(end) = text[at..].iter().position(|b| *b == b'\n').map(|i| at + i) else {
            break; // no newline: torn
        };
        match serde_json::from_slice::<User>(&text[at..end]) {
            Ok(user) => {
                if users.last().is_some_and(|last| last.id >= user.id) {
                    return Err((line_no, "user ids are not increasing"));
                }
                users.push(user);
                at = end + 1;
            }
            Err(_)
                if text[end + 1..]
                    .iter()
                    .all(|b| b.is_ascii_whitespace() || *b == 0) =>
            {
                break;
            }
            Err(_) => return Err((line_no, "damaged record")),
        }
    }
    Ok(Loaded {
        users,
        good_len: at,
    })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
