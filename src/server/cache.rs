//! Each event loop's cache of file sets and listings, keyed by normalised request path, so that
//! repeated requests are answered in the loop without a worker.
//!
//! A file set is compared with the disk (a few stats) when used more than `REVALIDATE_AFTER`
//! after its last check, and dropped if the file changed. A listing is dropped as soon as its
//! folder's stamp changes (checked at every use); once older than `LISTING_TTL` the next
//! request rebuilds it on a worker while the others keep getting the previous one, so that a
//! busy folder is not rebuilt by every connection at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::handlers::Cacheable;
use crate::handlers::file::REVALIDATE_AFTER;

/// Most entries per loop.
pub const MAX_ENTRIES: usize = 1024;
/// Most file content held in memory per loop.
pub const MAX_BYTES: usize = 8 << 20;
/// Most files (larger than `file::SMALL_FILE_BYTES`) held open per loop.
pub const MAX_OPEN_FILES: usize = 256;

struct Entry {
    source: Cacheable,
    checked: Instant,
    /// Since when a request has been rebuilding this (stale) listing.
    refreshing: Option<Instant>,
}

/// A rebuild that has not come back by then is given up, and the next request tries again.
const REFRESH_GIVE_UP: Duration = Duration::from_secs(5);

/// `W`: a request waiting for a worker's answer (see `lookup`'s `Pending`).
pub struct FileCache<W> {
    entries: HashMap<Box<str>, Entry>,
    bytes: usize,
    open_files: usize,
    /// Paths a worker is answering, with the requests waiting for that answer.
    pending: HashMap<Box<str>, Vec<W>>,
}

impl<W> Default for FileCache<W> {
    fn default() -> Self {
        FileCache {
            entries: HashMap::new(),
            bytes: 0,
            open_files: 0,
            pending: HashMap::new(),
        }
    }
}

/// What the cache can do for a request.
pub enum Lookup {
    Hit(Cacheable),
    /// A worker is already answering this path: wait for it (`park`).
    Pending,
    /// Nothing kept: a worker must answer; call `begin` first.
    Miss,
}

impl<W> FileCache<W> {
    pub fn lookup(&mut self, path: &str, now: Instant) -> Lookup {
        match self.get(path, now) {
            Some(source) => Lookup::Hit(source),
            None if self.pending.contains_key(path) => Lookup::Pending,
            None => Lookup::Miss,
        }
    }

    /// A worker starts answering `path`: later requests for it wait for that answer.
    pub fn begin(&mut self, path: &str) {
        self.pending.entry(path.into()).or_default();
    }

    /// A request waits for the answer to `path` (which `lookup` said is `Pending`).
    pub fn park(&mut self, path: &str, waiter: W) {
        self.pending.entry(path.into()).or_default().push(waiter);
    }

    /// The worker's answer to `path` is back: keeps what it was made from, if anything, and
    /// returns the requests that waited for it.
    pub fn finish(&mut self, path: &str, source: Option<Cacheable>, now: Instant) -> Vec<W> {
        if let Some(source) = source {
            self.insert(path, source, now);
        }
        self.pending.remove(path).unwrap_or_default()
    }

    /// Every waiting request, forgetting what they waited for (the routes were reloaded).
    pub fn take_parked(&mut self) -> Vec<W> {
        self.pending
            .drain()
            .flat_map(|(_, waiting)| waiting)
            .collect()
    }

    /// What is kept for `path`, if it can still answer.
    fn get(&mut self, path: &str, now: Instant) -> Option<Cacheable> {
        let entry = self.entries.get_mut(path)?;
        let usable = match &entry.source {
            Cacheable::File(set) => {
                if now.saturating_duration_since(entry.checked) < REVALIDATE_AFTER {
                    true
                } else {
                    entry.checked = now;
                    set.is_current()
                }
            }
            Cacheable::Listing(listing) => {
                if !listing.folder_unchanged() {
                    false
                } else if listing.is_young(now) {
                    true
                } else {
                    match entry.refreshing {
                        Some(since) if now.saturating_duration_since(since) < REFRESH_GIVE_UP => {
                            true
                        }
                        _ => {
                            // This request rebuilds it; the others keep the previous one.
                            entry.refreshing = Some(now);
                            return None;
                        }
                    }
                }
            }
        };
        if usable {
            Some(entry.source.clone())
        } else {
            self.remove(path);
            None
        }
    }

    fn insert(&mut self, path: &str, source: Cacheable, now: Instant) {
        let (size, files) = (source.memory(), source.open_files());
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
        self.entries.insert(
            path.into(),
            Entry {
                source,
                checked: now,
                refreshing: None,
            },
        );
    }

    fn remove(&mut self, path: &str) {
        if let Some(old) = self.entries.remove(path) {
            self.bytes -= old.source.memory();
            self.open_files -= old.source.open_files();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::listing::Listing;
    use crate::path::Exposure;
    use std::sync::Arc;

    fn listing(name: &str) -> (std::path::PathBuf, Cacheable) {
        let dir = std::env::temp_dir().join(format!("tws-cache-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        let root = dir.canonicalize().unwrap();
        let built = Listing::build(
            &root,
            "",
            "/",
            Exposure::default(),
            100,
            None,
            Default::default(),
        )
        .unwrap();
        (dir, Cacheable::Listing(Arc::new(built)))
    }

    #[test]
    fn one_miss_is_answered_and_the_others_wait_for_it() {
        let (dir, source) = listing("coalesce");
        let mut cache = FileCache::<u32>::default();
        let now = Instant::now();
        assert!(matches!(cache.lookup("/", now), Lookup::Miss));
        cache.begin("/");
        assert!(matches!(cache.lookup("/", now), Lookup::Pending));
        cache.park("/", 3);
        cache.park("/", 4);
        assert_eq!(cache.finish("/", Some(source), now), vec![3, 4]);
        assert!(matches!(cache.lookup("/", now), Lookup::Hit(_)));
        // Nothing kept: the waiting requests are handed back all the same.
        cache.begin("/other");
        cache.park("/other", 5);
        assert_eq!(cache.finish("/other", None, now), vec![5]);
        assert!(matches!(cache.lookup("/other", now), Lookup::Miss));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_stale_listing_is_rebuilt_by_one_request_while_others_get_it() {
        let (dir, source) = listing("stale");
        let mut cache = FileCache::<u32>::default();
        let now = Instant::now();
        cache.begin("/");
        cache.finish("/", Some(source), now);
        let later = now + crate::handlers::listing::LISTING_TTL;
        assert!(
            matches!(cache.lookup("/", later), Lookup::Miss),
            "the first rebuilds"
        );
        assert!(
            matches!(cache.lookup("/", later), Lookup::Hit(_)),
            "the others keep it"
        );
        // A change of the folder's entries is never served stale.
        std::fs::write(dir.join("b.txt"), "b").unwrap();
        assert!(matches!(cache.lookup("/", later), Lookup::Miss));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
