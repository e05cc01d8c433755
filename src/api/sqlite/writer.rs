//! The writer thread: takes the writes waiting, applies them in one transaction (with their
//! entries in the change log), commits (one fsync of the WAL for all of them), and only then
//! hands the changes to live subscribers and answers each; between batches, prunes the log.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::cache::Cache;
use super::{Live, changes, table};
use crate::api::apply::{Outcome, Rows, apply};
use crate::api::live::Change;
use crate::api::schema::Collection;
use crate::api::store::{Counters, Done, Record, SyncMode, Write, WriteError};

/// Most writes sharing one commit.
const MAX_BATCH: usize = 1024;
/// How often the change log is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// A write waiting for the writer.
pub(super) struct Job {
    pub collection: Arc<Collection>,
    pub write: Write,
    pub done: Done,
}

/// Serves writes until every sender is gone.
pub(super) fn run(
    mut conn: Connection,
    queue: Receiver<Job>,
    mode: SyncMode,
    cache: &Cache,
    counters: &Counters,
    shown: &str,
    live: &Live,
) {
    let mut failing = false;
    let mut statements = HashMap::new();
    let mut pruned = Instant::now();
    let mut logged = Vec::new();
    loop {
        if pruned.elapsed() >= PRUNE_EVERY {
            prune(&mut conn, live, shown);
            pruned = Instant::now();
        }
        let first = match queue.recv_timeout(PRUNE_EVERY) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        if mode == SyncMode::Group {
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        logged.clear();
        let outcomes = match commit(&mut conn, &batch, &mut statements, &mut logged) {
            Ok(outcomes) => {
                counters.committed(batch.len());
                if failing {
                    crate::report!("tws: {shown}: writes succeed again");
                    failing = false;
                }
                outcomes
            }
            Err(e) => {
                counters.failed();
                // Nothing of the batch was written (the transaction rolled back); later
                // writes try again.
                if !failing {
                    crate::report!("tws: error: {shown}: a commit failed, nothing written: {e}");
                    failing = true;
                }
                let why = WriteError::Failed(e.to_string());
                logged.clear();
                batch.iter().map(|_| Err(why.clone())).collect()
            }
        };
        // Committed: subscribers hear of it, in commit order, before the writers do.
        if !logged.is_empty() {
            live.hub.publish(&logged);
        }
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            // The cache forgets the old version before anyone hears of the new one.
            if outcome.is_ok() && !matches!(job.write, Write::Create(_)) {
                cache.changed(&job.collection.name, job.write.id());
            }
            (job.done)(outcome);
        }
    }
}

/// The statements of one collection's table.
struct Statements {
    insert: String,
    select: String,
    update: String,
    delete: String,
}

impl Statements {
    fn new(collection: &str) -> Statements {
        let t = table(collection);
        Statements {
            insert: format!("INSERT INTO {t} (version, created, data) VALUES (1, ?1, ?2)"),
            select: format!("SELECT version, created, updated, data FROM {t} WHERE id = ?1"),
            update: format!("UPDATE {t} SET version = ?1, updated = ?2, data = ?3 WHERE id = ?4"),
            delete: format!("DELETE FROM {t} WHERE id = ?1"),
        }
    }
}

/// Prunes the change log; a failure is said and tried again later.
fn prune(conn: &mut Connection, live: &Live, shown: &str) {
    let collections = crate::sync::lock(&live.settings).clone();
    if collections.is_empty() {
        return;
    }
    if let Err(e) = changes::prune(conn, &collections, changes::now_secs()) {
        crate::report!("tws: warning: {shown}: cannot prune the change log: {e}");
    }
}

/// A transaction's row operations, with each table's statements made once.
struct SqliteRows<'t, 'c> {
    tx: &'t Transaction<'c>,
    statements: &'t mut HashMap<String, Statements>,
    /// The changes logged, numbered.
    logged: &'t mut Vec<Change>,
    at: i64,
}

impl SqliteRows<'_, '_> {
    fn sql(&mut self, collection: &str) -> &Statements {
        if !self.statements.contains_key(collection) {
            self.statements
                .insert(collection.to_owned(), Statements::new(collection));
        }
        &self.statements[collection]
    }
}

impl Rows for SqliteRows<'_, '_> {
    type Error = rusqlite::Error;

    fn insert(&mut self, collection: &str, created: &str, data: &str) -> rusqlite::Result<i64> {
        let tx = self.tx;
        tx.prepare_cached(&self.sql(collection).insert)?
            .execute(params![created, data])?;
        Ok(tx.last_insert_rowid())
    }

    fn current(&mut self, collection: &str, id: i64) -> rusqlite::Result<Option<Record>> {
        // The writer is the only one: what it reads stays so until it commits.
        let tx = self.tx;
        tx.prepare_cached(&self.sql(collection).select)?
            .query_row([id], |row| {
                Ok(Record {
                    id,
                    version: row.get(0)?,
                    created: row.get(1)?,
                    updated: row.get(2)?,
                    data: row.get(3)?,
                })
            })
            .optional()
    }

    fn update(&mut self, collection: &str, r: &Record) -> rusqlite::Result<()> {
        let tx = self.tx;
        tx.prepare_cached(&self.sql(collection).update)?
            .execute(params![r.version, r.updated, r.data, r.id])?;
        Ok(())
    }

    fn delete(&mut self, collection: &str, id: i64) -> rusqlite::Result<()> {
        let tx = self.tx;
        tx.prepare_cached(&self.sql(collection).delete)?
            .execute([id])?;
        Ok(())
    }

    fn log(&mut self, mut change: Change) -> rusqlite::Result<()> {
        changes::insert(self.tx, &mut change, self.at)?;
        self.logged.push(change);
        Ok(())
    }
}

/// Applies a batch in one transaction and commits it.
fn commit(
    conn: &mut Connection,
    batch: &[Job],
    statements: &mut HashMap<String, Statements>,
    logged: &mut Vec<Change>,
) -> rusqlite::Result<Vec<Outcome>> {
    let now = crate::time::now_rfc3339();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rows = SqliteRows {
        tx: &tx,
        statements,
        logged,
        at: changes::now_secs(),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        outcomes.push(apply(&mut rows, &job.collection, &job.write, &now)?);
    }
    tx.commit()?;
    Ok(outcomes)
}
