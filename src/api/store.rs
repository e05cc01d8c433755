//! The contract between the API handlers and a database: records, writes answered once they
//! are durable, pages read by cursor. `sqlite` (embedded) and `postgres` (shared by several
//! nodes) implement it.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::live::Backlog;
use super::live::hub::Hub;
use super::schema::{Collection, Invalid};

/// One stored record: the declared fields as a JSON object, and what the server keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Unique in its collection, increasing, never reused.
    pub id: i64,
    /// 1 at creation, one more at every update: part of the entity tag.
    pub version: i64,
    /// RFC 3339, UTC.
    pub created: String,
    /// RFC 3339, UTC; absent until the first update.
    pub updated: Option<String>,
    /// The fields, as the text of a JSON object.
    pub data: String,
}

impl Record {
    /// The strong entity tag of this version.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id, self.version)
    }

    /// `{"id":1,<fields>,"created":"...","updated":"..."}`, appended to `out` without
    /// re-parsing the stored fields.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(out, "{{\"id\":{}", self.id);
        let inner = self
            .data
            .trim()
            .strip_prefix('{')
            .and_then(|d| d.strip_suffix('}'))
            .unwrap_or("")
            .trim();
        if !inner.is_empty() {
            out.push(b',');
            out.extend_from_slice(inner.as_bytes());
        }
        let _ = write!(out, ",\"created\":\"{}\"", self.created);
        if let Some(updated) = &self.updated {
            let _ = write!(out, ",\"updated\":\"{updated}\"");
        }
        out.push(b'}');
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 64);
        self.write_json(&mut out);
        out
    }

    /// The stored fields.
    pub fn fields(&self) -> Map<String, Value> {
        match serde_json::from_str(&self.data) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

/// A change's preconditions: the request's `If-Match` and `If-None-Match` (every line of
/// each, joined), checked against the record's current entity tag in the same transaction
/// as the change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

/// A change to a collection, under its conditions.
#[derive(Debug, Clone)]
pub enum Write {
    /// Fields already checked against the collection.
    Create(Map<String, Value>),
    /// Fields already checked against the collection.
    Replace {
        id: i64,
        conditions: Conditions,
        fields: Map<String, Value>,
    },
    /// A JSON merge patch, checked once applied to the current record.
    Patch {
        id: i64,
        conditions: Conditions,
        patch: Map<String, Value>,
    },
    Delete {
        id: i64,
        conditions: Conditions,
    },
    /// Several records, each already checked, created together or not at all. Answered with
    /// one `Record` (id 0) whose `data` is the JSON array of the records as created.
    CreateMany(Vec<Map<String, Value>>),
}

impl Write {
    /// The record it changes (0 for a create, whose id the store gives).
    pub fn id(&self) -> i64 {
        match self {
            Write::Create(_) | Write::CreateMany(_) => 0,
            Write::Replace { id, .. } | Write::Patch { id, .. } | Write::Delete { id, .. } => *id,
        }
    }
}

/// Why a write did not happen.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteError {
    NotFound,
    /// `If-Match` names another version.
    PreconditionFailed,
    /// The patched record breaks the collection's rules.
    Invalid(Invalid),
    /// The database could not make the change durable (disk full, I/O error); nothing was
    /// changed.
    Failed(String),
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The database could not be read.
    Failed(String),
    /// The query ran past its time limit (a filter or sort on a field without an index, over
    /// many records) and was stopped.
    TooSlow,
    /// The record a page was to continue after is gone (a sorted page cannot go on).
    CursorGone,
}

/// Called once a write is durable (with the record as written; `None` after a delete) or has
/// failed; possibly on another thread.
pub type Done = Box<dyn FnOnce(Result<Option<Record>, WriteError>) + Send>;

/// Where a page starts: after the record with this id, whose sort key had this value.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub value: Value,
    pub id: i64,
}

/// How a `field[op]=value` condition compares the field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    /// One of a list (the value is an array).
    In,
    /// A string starting with the value.
    Prefix,
    /// A string holding the value (case-sensitive).
    Contains,
}

/// A condition other than equality on a declared field; the value is of the field's type.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    pub value: Value,
}

/// What a page of a collection is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery {
    /// Equality on declared fields, values already of the field's type.
    pub filters: Vec<(String, Value)>,
    /// The other comparisons (`age[gte]=18`), all of which must hold too.
    pub conditions: Vec<Condition>,
    /// Full-text search (`q`): words every record on the page holds in its searchable fields.
    pub search: Option<Vec<String>>,
    /// Ordered by relevance to `search` (then id), rather than by `sort`.
    pub ranked: bool,
    /// The total of records matching the filters is wanted (`count=exact`).
    pub total: bool,
    /// A declared field to order by (then by id); `None`: by id, or by relevance (then id)
    /// when searching.
    pub sort: Option<String>,
    /// Largest first.
    pub descending: bool,
    /// The page starts after the record with this id (in the query's order).
    pub after: Option<i64>,
    pub limit: usize,
    /// The page ends before the record that would take its records' data past this many
    /// bytes (it always holds one record).
    pub max_bytes: usize,
}

/// Records on a page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;

impl Default for PageQuery {
    fn default() -> Self {
        PageQuery {
            filters: Vec::new(),
            conditions: Vec::new(),
            search: None,
            ranked: false,
            total: false,
            sort: None,
            descending: false,
            after: None,
            limit: DEFAULT_LIMIT,
            max_bytes: super::schema::DEFAULT_MAX_PAGE_BYTES,
        }
    }
}

/// One page, and the id of its last record when another page follows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub records: Vec<Record>,
    pub next: Option<i64>,
    /// Records matching the query's filters, when it asked (`total`).
    pub total: Option<u64>,
}

/// How writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// The writes waiting when a commit starts share it (group commit).
    #[default]
    Group,
    /// Every write gets its own commit.
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

/// What a store has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Transactions committed.
    pub commits: std::sync::atomic::AtomicU64,
    /// Writes those transactions carried.
    pub rows: std::sync::atomic::AtomicU64,
    /// Commits, reads or connections that failed.
    pub errors: std::sync::atomic::AtomicU64,
}

impl Counters {
    pub fn committed(&self, rows: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.commits.fetch_add(1, Relaxed);
        self.rows.fetch_add(rows as u64, Relaxed);
    }

    pub fn failed(&self) {
        self.errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A database of collections.
pub trait Store: Send + Sync {
    /// Makes the collections ready (tables, indexes), or says why a declared change cannot be
    /// applied to the data already stored (a field changing type). Safe to call again with a
    /// new declaration (hot reload).
    fn prepare(&self, collections: &[Arc<Collection>]) -> anyhow::Result<()>;
    /// Applies a write and calls `done` once it is durable. Never waits for the disk itself,
    /// so that writes arriving together share one commit.
    fn write(&self, collection: &Arc<Collection>, write: Write, done: Done);
    fn get(&self, collection: &Collection, id: i64) -> Result<Option<Arc<Record>>, ReadError>;
    /// The record if it is at hand in memory: a read that cannot block, fit for the event
    /// loop. Stores without such a cache (or whose data other servers change) answer `None`.
    fn cached(&self, _collection: &Collection, _id: i64) -> Option<Arc<Record>> {
        None
    }
    fn page(&self, collection: &Collection, query: &PageQuery) -> Result<Page, ReadError>;
    /// Where the data lives, for the banner (never with a password).
    fn location(&self) -> String;
    /// Commits, rows and errors so far.
    fn counters(&self) -> &Counters;
    /// Whether the database answers now (checked at most a few times a second): `/healthz`
    /// reports it so that a load balancer can take the node out.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }
    /// Where committed changes are handed to live subscribers (`None`: no live updates).
    fn hub(&self) -> Option<&Arc<Hub>> {
        None
    }
    /// What the change log holds of `collection` after change number `after`.
    fn changes_since(&self, _collection: &str, _after: i64) -> Result<Backlog, ReadError> {
        Err(ReadError::Failed("this store keeps no change log".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_written_as_one_json_object() {
        let mut record = Record {
            id: 7,
            version: 2,
            created: "2026-11-25T14:18:02Z".into(),
            updated: None,
            data: r#"{"Nombre":"Ana \"A\""}"#.into(),
        };
        let text = String::from_utf8(record.to_json()).unwrap();
        assert_eq!(
            text,
            r#"{"id":7,"Nombre":"Ana \"A\"","created":"2026-11-25T14:18:02Z"}"#
        );
        assert_eq!(record.etag(), "\"7-2\"");
        record.data = "{}".into();
        record.updated = Some("2026-11-26T00:00:00Z".into());
        let value: Value = serde_json::from_slice(&record.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"id": 7, "created": "2026-11-25T14:18:02Z", "updated": "2026-11-26T00:00:00Z"})
        );
    }
}
