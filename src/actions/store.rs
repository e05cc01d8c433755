//! Durable user storage. `UserStore` is the contract; `JsonlStore` keeps users as JSON Lines in
//! one append-only file and answers `create` only once the record is on disk. Concurrent creates
//! share one fsync (group commit) unless `SyncMode::EachRecord` is chosen.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, RwLock};
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

/// Where users live. `create` returns only once the user would survive a crash.
pub trait UserStore: Send + Sync {
    fn create(&self, name: &str) -> Result<User, StoreError>;
    fn get(&self, id: u64) -> Option<User>;
    /// Every durable user, by increasing id.
    fn list(&self) -> Vec<User>;
}

/// How writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Concurrent creates wait for one shared fsync.
    #[default]
    Group,
    /// Every create runs its own fsync.
    EachRecord,
}

/// Users in a JSON Lines file.
pub struct JsonlStore {
    path: PathBuf,
    mode: SyncMode,
    writer: Mutex<Writer>,
    /// A second handle on the file, so an fsync does not hold up appends.
    sync_file: File,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Durable users, by increasing id.
    users: RwLock<Vec<User>>,
}

struct Writer {
    file: File,
    len: u64,
    next_id: u64,
    /// Records appended so far (a sequence number).
    written: u64,
    /// Appended users not yet known to be durable, oldest first.
    pending: Vec<User>,
}

#[derive(Default)]
struct SyncState {
    /// Records known to be durable.
    synced: u64,
    syncing: bool,
    failed: bool,
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
        let mut file = OpenOptions::new()
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
            eprintln!(
                "tws: warning: {}:{}: skipping a torn last record ({} bytes) left by an interrupted write",
                path.display(),
                loaded.users.len() + 1,
                text.len() - loaded.good_len
            );
            file.set_len(loaded.good_len as u64)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot repair {}", path.display()))?;
        }
        file.flush()?;
        let next_id = loaded.users.last().map_or(1, |u| u.id + 1);
        let sync_file = file.try_clone()?;
        Ok(JsonlStore {
            path,
            mode,
            writer: Mutex::new(Writer {
                file,
                len: loaded.good_len as u64,
                next_id,
                written: 0,
                pending: Vec::new(),
            }),
            sync_file,
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            users: RwLock::new(loaded.users),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Blocks until record `seq` is durable, running the fsync itself when no one else is.
    fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        let mut state = lock(&self.sync);
        loop {
            if state.failed {
                return Err(StoreError::Unavailable);
            }
            if state.synced >= seq {
                return Ok(());
            }
            if state.syncing {
                state = self
                    .synced
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.syncing = true;
            let from = state.synced;
            drop(state);
            let target = lock(&self.writer).written;
            let result = self.sync_file.sync_data();
            if result.is_ok() {
                self.publish(from, target);
            }
            state = lock(&self.sync);
            state.syncing = false;
            match result {
                Ok(()) => state.synced = target,
                Err(e) => {
                    eprintln!("tws: error: fsync of {} failed: {e}", self.path.display());
                    state.failed = true;
                }
            }
            self.synced.notify_all();
        }
    }

    /// Moves records `from+1 ..= to` from pending to the visible list.
    fn publish(&self, from: u64, to: u64) {
        let mut writer = lock(&self.writer);
        let count = (to - from) as usize;
        let durable: Vec<User> = writer.pending.drain(..count).collect();
        drop(writer);
        self.users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(durable);
    }
}

impl UserStore for JsonlStore {
    fn create(&self, name: &str) -> Result<User, StoreError> {
        let mut writer = lock(&self.writer);
        if lock(&self.sync).failed {
            return Err(StoreError::Unavailable);
        }
        let user = User {
            id: writer.next_id,
            name: name.to_owned(),
            created: Civil::from_system(SystemTime::now()).rfc3339(),
        };
        let mut line = serde_json::to_vec(&user).map_err(|e| StoreError::Io(e.into()))?;
        line.push(b'\n');
        // One append under the lock: records never interleave. On failure, cut back whatever
        // part of the line reached the file so the next record starts on a clean line.
        if let Err(e) = writer.file.write_all(&line) {
            let len = writer.len;
            let _ = writer.file.set_len(len);
            return Err(StoreError::Io(e));
        }
        writer.len += line.len() as u64;
        writer.next_id += 1;
        writer.written += 1;
        let seq = writer.written;
        writer.pending.push(user.clone());
        match self.mode {
            SyncMode::Group => {
                drop(writer);
                self.wait_durable(seq)?;
            }
            SyncMode::EachRecord => {
                // Holding the writer lock: no other record joins this fsync, and the visible
                // list stays in id order.
                if let Err(e) = writer.file.sync_data() {
                    lock(&self.sync).failed = true;
                    return Err(StoreError::Io(e));
                }
                writer.pending.clear();
                lock(&self.sync).synced = seq;
                self.users
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(user.clone());
            }
        }
        Ok(user)
    }

    fn get(&self, id: u64) -> Option<User> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        users
            .binary_search_by_key(&id, |u| u.id)
            .ok()
            .map(|i| users[i].clone())
    }

    fn list(&self) -> Vec<User> {
        self.users
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
