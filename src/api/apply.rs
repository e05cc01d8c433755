//! One write applied inside a database transaction, the same for every store: the record read
//! (and, where the database can, locked) in the transaction, the `If-Match` check against its
//! version, the merge patch checked whole, the record as written, and, for a collection with
//! live updates, its entry in the change log. A store supplies the row operations.

use serde_json::{Map, Value};

use super::live::{self, Kind};
use super::schema::{Collection, merge_patch};
use super::store::{Record, Write, WriteError};
use crate::http::conditional::{if_match_holds, none_match_names};

/// What a write did: the record as written (`None` after a delete), or why not.
pub type Outcome = Result<Option<Record>, WriteError>;

/// The row operations of one transaction; `E` is the database's error, which fails the
/// transaction.
pub trait Rows {
    type Error;
    /// Inserts a record at version 1; returns its id.
    fn insert(&mut self, collection: &str, created: &str, data: &str) -> Result<i64, Self::Error>;
    /// The record as it is in this transaction (locked against other writers where the
    /// database has row locks).
    fn current(&mut self, collection: &str, id: i64) -> Result<Option<Record>, Self::Error>;
    fn update(&mut self, collection: &str, record: &Record) -> Result<(), Self::Error>;
    fn delete(&mut self, collection: &str, id: i64) -> Result<(), Self::Error>;
    /// Adds a change to the log, in this transaction (its number is given there).
    fn log(&mut self, change: live::Change) -> Result<(), Self::Error>;
}

/// Logs a change of a collection that sends live updates.
fn log<R: Rows>(
    rows: &mut R,
    collection: &Collection,
    kind: Kind,
    record: &Record,
) -> Result<(), R::Error> {
    if collection.live.events.is_some() {
        rows.log(entry(collection, kind, record))?;
    }
    Ok(())
}

/// Applies one write; `Err` only for a database failure.
pub fn apply<R: Rows>(
    rows: &mut R,
    collection: &Collection,
    write: &Write,
    now: &str,
) -> Result<Outcome, R::Error> {
    let name = &collection.name;
    let (id, conditions) = match write {
        Write::Create(fields) => {
            let data = json_text(fields);
            let id = rows.insert(name, now, &data)?;
            let record = Record {
                id,
                version: 1,
                created: now.to_owned(),
                updated: None,
                data,
            };
            log(rows, collection, Kind::Created, &record)?;
            return Ok(Ok(Some(record)));
        }
        Write::CreateMany(records) => return create_many(rows, collection, records, now).map(Ok),
        Write::Replace { id, conditions, .. }
        | Write::Patch { id, conditions, .. }
        | Write::Delete { id, conditions } => (*id, conditions),
    };
    let Some(current) = rows.current(name, id)? else {
        return Ok(Err(WriteError::NotFound));
    };
    // RFC 9110 §13.2.2: If-Match must hold; If-None-Match (`*`: the record exists) must not
    // name it.
    let etag = current.etag();
    let fails = conditions
        .if_match
        .as_deref()
        .is_some_and(|value| !if_match_holds(value, &etag))
        || conditions
            .if_none_match
            .as_deref()
            .is_some_and(|value| none_match_names(value, &etag));
    if fails {
        return Ok(Err(WriteError::PreconditionFailed));
    }
    let fields = match write {
        Write::Delete { .. } => {
            rows.delete(name, id)?;
            log(rows, collection, Kind::Deleted, &current)?;
            return Ok(Ok(None));
        }
        Write::Replace { fields, .. } => fields.clone(),
        Write::Patch { patch, .. } => match patched(collection, &current, patch) {
            Ok(fields) => fields,
            Err(e) => return Ok(Err(e)),
        },
        Write::Create(_) | Write::CreateMany(_) => unreachable!("handled above"),
    };
    let record = Record {
        version: current.version + 1,
        updated: Some(now.to_owned()),
        data: json_text(&fields),
        ..current
    };
    rows.update(name, &record)?;
    log(rows, collection, Kind::Updated, &record)?;
    Ok(Ok(Some(record)))
}

/// Inserts every record of a batch (the transaction holds them all or none); the answer is
/// one record whose data is the JSON array of those created.
fn create_many<R: Rows>(
    rows: &mut R,
    collection: &Collection,
    records: &[Map<String, Value>],
    now: &str,
) -> Result<Option<Record>, R::Error> {
    let name = &collection.name;
    let mut array = Vec::with_capacity(records.len() * 64 + 2);
    array.push(b'[');
    for (i, fields) in records.iter().enumerate() {
        let data = json_text(fields);
        let id = rows.insert(name, now, &data)?;
        if i > 0 {
            array.push(b',');
        }
        let record = Record {
            id,
            version: 1,
            created: now.to_owned(),
            updated: None,
            data,
        };
        record.write_json(&mut array);
        log(rows, collection, Kind::Created, &record)?;
    }
    array.push(b']');
    Ok(Some(Record {
        id: 0,
        version: 0,
        created: now.to_owned(),
        updated: None,
        data: String::from_utf8(array).unwrap_or_default(),
    }))
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

/// The entry a write leaves in the change log for `record` (the record's JSON unless over the
/// collection's limit).
fn entry(collection: &Collection, kind: Kind, record: &Record) -> live::Change {
    let json = record.to_json();
    let data = (json.len() <= collection.live.max_event_bytes)
        .then(|| String::from_utf8(json).ok())
        .flatten();
    live::Change {
        number: 0,
        collection: collection.name.clone(),
        kind,
        id: record.id,
        version: record.version,
        data,
    }
}
