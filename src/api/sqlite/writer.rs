//! The writer thread: takes the writes waiting, applies them in one transaction, commits
//! (one fsync of the WAL for all of them), and only then answers each.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};

use super::cache::Cache;
use super::table;
use crate::api::schema::{Collection, merge_patch};
use crate::api::store::{Done, Record, SyncMode, Write, WriteError};
use crate::http::conditional::if_match_holds;

/// Most writes sharing one commit.
const MAX_BATCH: usize = 1024;

/// A write waiting for the writer.
pub(super) struct Job {
    pub collection: Arc<Collection>,
    pub write: Write,
    pub done: Done,
}

type Outcome = Result<Option<Record>, WriteError>;

/// Serves writes until every sender is gone.
pub(super) fn run(
    mut conn: Connection,
    queue: Receiver<Job>,
    mode: SyncMode,
    cache: &Cache,
    shown: &str,
) {
    let mut failing = false;
    let mut statements = HashMap::new();
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        if mode == SyncMode::Group {
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let outcomes = match commit(&mut conn, &batch, &mut statements) {
            Ok(outcomes) => {
                if failing {
                    crate::report!("tws: {shown}: writes succeed again");
                    failing = false;
                }
                outcomes
            }
            Err(e) => {
                // Nothing of the batch was written (the transaction rolled back); later
                // writes try again.
                if !failing {
                    crate::report!("tws: error: {shown}: a commit failed, nothing written: {e}");
                    failing = true;
                }
                let why = WriteError::Failed(e.to_string());
                batch.iter().map(|_| Err(why.clone())).collect()
            }
        };
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
            select: format!("SELECT version, created, data FROM {t} WHERE id = ?1"),
            update: format!("UPDATE {t} SET version = ?1, updated = ?2, data = ?3 WHERE id = ?4"),
            delete: format!("DELETE FROM {t} WHERE id = ?1"),
        }
    }
}

/// Applies a batch in one transaction and commits it.
fn commit(
    conn: &mut Connection,
    batch: &[Job],
    statements: &mut HashMap<String, Statements>,
) -> rusqlite::Result<Vec<Outcome>> {
    let now = crate::time::now_rfc3339();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let name = &job.collection.name;
        if !statements.contains_key(name) {
            statements.insert(name.clone(), Statements::new(name));
        }
        outcomes.push(apply(&tx, job, &statements[name], &now)?);
    }
    tx.commit()?;
    Ok(outcomes)
}

/// One write inside the transaction: `Err` only for a database failure, which fails the batch.
fn apply(
    tx: &Transaction<'_>,
    job: &Job,
    sql: &Statements,
    now: &str,
) -> rusqlite::Result<Outcome> {
    let (id, if_match) = match &job.write {
        Write::Create(fields) => {
            let data = json_text(fields);
            tx.prepare_cached(&sql.insert)?
                .execute(params![now, data])?;
            return Ok(Ok(Some(Record {
                id: tx.last_insert_rowid(),
                version: 1,
                created: now.to_owned(),
                updated: None,
                data,
            })));
        }
        Write::Replace { id, if_match, .. }
        | Write::Patch { id, if_match, .. }
        | Write::Delete { id, if_match } => (*id, if_match),
    };
    let current = tx
        .prepare_cached(&sql.select)?
        .query_row([id], |row| {
            Ok(Record {
                id,
                version: row.get(0)?,
                created: row.get(1)?,
                updated: None,
                data: row.get(2)?,
            })
        })
        .optional()?;
    let Some(current) = current else {
        return Ok(Err(WriteError::NotFound));
    };
    if let Some(value) = if_match
        && !if_match_holds(value, &current.etag())
    {
        return Ok(Err(WriteError::PreconditionFailed));
    }
    let fields = match &job.write {
        Write::Delete { .. } => {
            tx.prepare_cached(&sql.delete)?.execute([id])?;
            return Ok(Ok(None));
        }
        Write::Replace { fields, .. } => fields.clone(),
        Write::Patch { patch, .. } => match patched(&job.collection, &current, patch) {
            Ok(fields) => fields,
            Err(e) => return Ok(Err(e)),
        },
        Write::Create(_) => unreachable!("handled above"),
    };
    let data = json_text(&fields);
    let version = current.version + 1;
    tx.prepare_cached(&sql.update)?
        .execute(params![version, now, data, id])?;
    Ok(Ok(Some(Record {
        version,
        updated: Some(now.to_owned()),
        data,
        ..current
    })))
}

fn json_text(fields: &Map<String, Value>) -> String {
    serde_json::to_string(fields).unwrap_or_else(|_| "{}".to_owned())
}

/// The record with a merge patch applied, checked whole. Stored fields the collection no
/// longer declares are dropped rather than refused: the patch did not write them.
fn patched(
    collection: &Collection,
    current: &Record,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, WriteError> {
    let mut fields = current.fields();
    fields.retain(|name, _| collection.field(name).is_some());
    merge_patch(&mut fields, patch.clone());
    collection.check(fields).map_err(WriteError::Invalid)
}
