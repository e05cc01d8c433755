//! Live updates of collections (server-sent events), below the HTTP handler (`api::events`)
//! and the stores: what a change is, `event` (a change as SSE bytes, encoded once), `filter`
//! (which changes a subscriber asked for) and `hub` (subscribers, their bounded queues,
//! fan-out and heartbeats). The stores write each change to a log in the write's own
//! transaction (`sqlite::changes`, `postgres::changes`) and hand it to the hub once
//! committed.

pub mod event;
pub mod filter;
pub mod hub;

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Created,
    Updated,
    Deleted,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Updated => "updated",
            Kind::Deleted => "deleted",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        match name {
            "created" => Some(Kind::Created),
            "updated" => Some(Kind::Updated),
            "deleted" => Some(Kind::Deleted),
            _ => None,
        }
    }
}

/// One committed change, as the log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its place in the log: increasing in commit order, across collections.
    pub number: i64,
    pub collection: String,
    pub kind: Kind,
    pub id: i64,
    pub version: i64,
    /// The record as JSON (as written; before its delete), unless over the size limit.
    pub data: Option<String>,
}

/// What the log holds for a subscriber resuming after a change number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backlog {
    /// The collection's changes after it, oldest first.
    pub changes: Vec<Change>,
    /// Changes after it were pruned (or it is from another log): the client must reload.
    pub reset: bool,
    /// The newest change number in the log.
    pub last: i64,
}
