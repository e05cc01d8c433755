//! Records recently read or written, in memory and bounded in bytes, so that a read by id
//! skips the database and can be answered on the event loop. The writer drops the entry of a
//! changed or deleted record after each commit and before acknowledging the write; a reader
//! fills an entry only if no change to a record of its shard committed while it read, so an
//! entry never holds an older version than the database. (Only this process writes the database: `SqliteStore` locks the data
//! folder.)

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use super::lock;
use crate::api::store::Record;

const SHARDS: usize = 16;
/// Bytes an entry costs besides its text (map slot, queue slot, `Record` fields).
const ENTRY_OVERHEAD: usize = 160;

/// (collection, id), with the collection's name hashed once per lookup.
type Key = (u64, i64);

pub(super) struct Cache {
    shards: Vec<Mutex<Shard>>,
    /// Bytes each shard may hold.
    budget: usize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Key, Entry>,
    /// Keys in insertion order, with the stamp of the entry they were queued for.
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    /// Changes of this shard's records committed so far.
    epoch: u64,
    stamp: u64,
}

struct Entry {
    collection: Arc<str>,
    record: Arc<Record>,
    stamp: u64,
}

fn cost(record: &Record) -> usize {
    record.data.len()
        + record.created.len()
        + record.updated.as_ref().map_or(0, String::len)
        + ENTRY_OVERHEAD
}

/// Where a reader saw the shard before reading: its fill is kept only if nothing changed.
pub(super) struct Ticket {
    epoch: u64,
}

impl Cache {
    /// A cache of at most `budget` bytes (0: off).
    pub fn new(budget: usize) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            budget: budget / SHARDS,
        }
    }

    fn key(collection: &str, id: i64) -> (usize, Key) {
        let mut h = DefaultHasher::new();
        collection.hash(&mut h);
        let name = h.finish();
        let shard = (id as u64 ^ name.rotate_left(17)) as usize % SHARDS;
        (shard, (name, id))
    }

    pub fn get(&self, collection: &str, id: i64) -> Option<Arc<Record>> {
        if self.budget == 0 {
            return None;
        }
        let (shard, key) = Cache::key(collection, id);
        let shard = lock(&self.shards[shard]);
        let entry = shard.map.get(&key)?;
        (&*entry.collection == collection).then(|| Arc::clone(&entry.record))
    }

    /// Taken before reading a record from the database.
    pub fn ticket(&self, collection: &str, id: i64) -> Ticket {
        let (shard, _) = Cache::key(collection, id);
        Ticket {
            epoch: lock(&self.shards[shard]).epoch,
        }
    }

    /// Keeps what a reader found, unless a change committed since its ticket.
    pub fn fill(&self, ticket: Ticket, collection: &str, record: &Record) {
        if self.budget == 0 {
            return;
        }
        let (shard, key) = Cache::key(collection, record.id);
        let mut shard = lock(&self.shards[shard]);
        if shard.epoch == ticket.epoch && !shard.map.contains_key(&key) {
            shard.insert(key, collection, Arc::new(record.clone()), self.budget);
        }
    }

    /// After a commit that changed or deleted a record: readers fetch it afresh, and no fill
    /// begun before the commit is kept. (New records need nothing: no one can hold an older
    /// version of them.)
    pub fn changed(&self, collection: &str, id: i64) {
        if self.budget == 0 {
            return;
        }
        let (shard, key) = Cache::key(collection, id);
        let mut shard = lock(&self.shards[shard]);
        shard.epoch += 1;
        shard.remove(&key);
    }

    /// Bytes held, for tests.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(s).bytes).sum()
    }
}

impl Shard {
    fn insert(&mut self, key: Key, collection: &str, record: Arc<Record>, budget: usize) {
        self.remove(&key);
        let size = cost(&record);
        if size > budget {
            return;
        }
        self.stamp += 1;
        let stamp = self.stamp;
        self.bytes += size;
        self.map.insert(
            key,
            Entry {
                collection: collection.into(),
                record,
                stamp,
            },
        );
        self.order.push_back((key, stamp));
        // Oldest first out; queue slots of entries replaced since are skipped.
        while self.bytes > budget {
            let Some((old, stamp)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|e| e.stamp == stamp) {
                self.remove(&old);
            }
        }
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|e| e.stamp == *s));
        }
    }

    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.map.remove(key) {
            self.bytes -= cost(&entry.record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64, version: i64, text: &str) -> Record {
        Record {
            id,
            version,
            created: "2026-01-01T00:00:00Z".into(),
            updated: None,
            data: format!("{{\"t\":\"{text}\"}}"),
        }
    }

    #[test]
    fn a_fill_racing_a_commit_is_dropped() {
        let cache = Cache::new(1 << 20);
        let ticket = cache.ticket("c", 1);
        cache.fill(ticket, "c", &record(1, 1, "first"));
        assert_eq!(cache.get("c", 1).unwrap().version, 1);
        // The writer commits version 2 while a reader still holds version 1.
        let ticket = cache.ticket("c", 1);
        cache.changed("c", 1);
        assert!(cache.get("c", 1).is_none());
        cache.fill(ticket, "c", &record(1, 1, "old"));
        assert!(cache.get("c", 1).is_none());
        let ticket = cache.ticket("c", 1);
        cache.fill(ticket, "c", &record(1, 2, "new"));
        assert_eq!(cache.get("c", 1).unwrap().version, 2);
        assert!(cache.get("other", 1).is_none());
    }

    #[test]
    fn memory_stays_within_the_budget() {
        let budget = 64 * 1024;
        let cache = Cache::new(budget);
        for id in 0..10_000 {
            let ticket = cache.ticket("c", id);
            cache.fill(ticket, "c", &record(id, 1, &"x".repeat(100)));
            cache.changed("c", id / 2);
        }
        assert!(cache.bytes() <= budget, "{}", cache.bytes());
        assert!(cache.bytes() > budget / 2, "{}", cache.bytes());
        assert!(cache.get("c", 9_999).is_some());
        let off = Cache::new(0);
        off.fill(off.ticket("c", 1), "c", &record(1, 1, "x"));
        assert!(off.get("c", 1).is_none());
    }
}
