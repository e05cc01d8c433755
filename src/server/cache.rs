//! Each event loop's cache of file sets, keyed by normalised request path, so that repeated
//! requests for a file are answered in the loop without touching the disk. An entry is checked
//! against the disk (a few stats) when it is used more than `REVALIDATE_AFTER` after its last
//! check, and dropped when the file changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::handlers::file::FileSet;

/// How stale an entry may be before its next use checks the disk.
pub const REVALIDATE_AFTER: Duration = Duration::from_secs(1);
/// Most entries per loop.
pub const MAX_ENTRIES: usize = 1024;
/// Most file content held in memory per loop.
pub const MAX_BYTES: usize = 8 << 20;
/// Most files (larger than `file::SMALL_FILE_BYTES`) held open per loop.
pub const MAX_OPEN_FILES: usize = 256;

struct Entry {
    set: Arc<FileSet>,
    checked: Instant,
}

#[derive(Default)]
pub struct FileCache {
    entries: HashMap<Box<str>, Entry>,
    bytes: usize,
    open_files: usize,
}

impl FileCache {
    /// The set for `path`, if cached and still current.
    pub fn get(&mut self, path: &str, now: Instant) -> Option<Arc<FileSet>> {
        let entry = self.entries.get_mut(path)?;
        if now.duration_since(entry.checked) >= REVALIDATE_AFTER {
            if !entry.set.is_current() {
                self.remove(path);
                return None;
            }
            entry.checked = now;
        }
        Some(Arc::clone(&entry.set))
    }

    pub fn insert(&mut self, path: &str, set: Arc<FileSet>, now: Instant) {
        let (size, files) = (set.memory(), set.open_files());
        if size > MAX_BYTES / 8 {
            return;
        }
        self.remove(path);
        while self.entries.len() >= MAX_ENTRIES
            || self.bytes + size > MAX_BYTES
            || self.open_files + files > MAX_OPEN_FILES
        {
            let Some(victim) = self.entries.keys().next().cloned() else {
                break;
            };
            self.remove(&victim);
        }
        self.bytes += size;
        self.open_files += files;
        self.entries
            .insert(path.into(), Entry { set, checked: now });
    }

    fn remove(&mut self, path: &str) {
        if let Some(old) = self.entries.remove(path) {
            self.bytes -= old.set.memory();
            self.open_files -= old.set.open_files();
        }
    }
}
