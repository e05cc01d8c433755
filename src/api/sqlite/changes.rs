//! The SQLite change log: one row per change of a collection with live updates, written by
//! the writer in the transaction of the change (its `AUTOINCREMENT` number is its place in
//! commit order, since the writer is the only one and numbers are never reused), read by a
//! subscriber resuming after a change number, and pruned by count and age in batches, with
//! the highest number pruned of each collection remembered so that a client too far behind
//! is told to reload.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::api::live::{Backlog, Change, Kind};
use crate::api::schema::LiveSettings;

/// The log and the prune marks.
pub(super) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tws_changes (
    change INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    collection TEXT NOT NULL,
    kind TEXT NOT NULL,
    id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    data TEXT
);
CREATE INDEX IF NOT EXISTS tws_changes_by_collection ON tws_changes (collection, change);
CREATE TABLE IF NOT EXISTS tws_change_floor (
    collection TEXT PRIMARY KEY,
    pruned INTEGER NOT NULL
) WITHOUT ROWID;";

/// Most changes pruned from one collection at a time.
pub(super) const PRUNE_BATCH: i64 = 10_000;
/// Most changes read for a subscriber resuming.
const MAX_BACKLOG: i64 = 100_000;

/// Adds `change` to the log in the writer's transaction and numbers it.
pub(super) fn insert(tx: &Connection, change: &mut Change, at: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO tws_changes (at, collection, kind, id, version, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        at,
        change.collection,
        change.kind.name(),
        change.id,
        change.version,
        change.data
    ])?;
    change.number = tx.last_insert_rowid();
    Ok(())
}

/// What the log holds of `collection` after change `after`, read in one snapshot.
pub(super) fn since(
    conn: &mut Connection,
    collection: &str,
    after: i64,
) -> rusqlite::Result<Backlog> {
    let tx = conn.transaction()?;
    let last: i64 = tx
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'tws_changes'",
            [],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let floor: i64 = tx
        .query_row(
            "SELECT pruned FROM tws_change_floor WHERE collection = ?1",
            [collection],
            |row| row.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mut backlog = Backlog {
        changes: Vec::new(),
        reset: after < floor || after > last,
        last,
    };
    if backlog.reset {
        return Ok(backlog);
    }
    let mut statement = tx.prepare_cached(
        "SELECT change, kind, id, version, data FROM tws_changes
         WHERE collection = ?1 AND change > ?2 ORDER BY change LIMIT ?3",
    )?;
    let rows = statement.query_map(params![collection, after, MAX_BACKLOG], |row| {
        let kind: String = row.get(1)?;
        Ok(Change {
            number: row.get(0)?,
            collection: collection.to_owned(),
            kind: Kind::from_name(&kind).unwrap_or(Kind::Updated),
            id: row.get(2)?,
            version: row.get(3)?,
            data: row.get(4)?,
        })
    })?;
    for change in rows {
        backlog.changes.push(change?);
    }
    Ok(backlog)
}

/// Prunes what each collection keeps past its count or age, a batch at a time; returns how
/// many changes went.
pub(super) fn prune(
    conn: &mut Connection,
    collections: &[(String, LiveSettings)],
    now: i64,
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let mut pruned = 0;
    for (name, settings) in collections {
        let by_count: i64 = tx
            .query_row(
                "SELECT change FROM tws_changes WHERE collection = ?1
                 ORDER BY change DESC LIMIT 1 OFFSET ?2",
                params![name, settings.keep as i64],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let oldest = now - age_secs(settings.keep_for);
        let by_age: i64 = tx.query_row(
            "SELECT coalesce(max(change), 0) FROM tws_changes WHERE collection = ?1 AND at < ?2",
            params![name, oldest],
            |row| row.get(0),
        )?;
        let cut = by_count.max(by_age);
        if cut == 0 {
            continue;
        }
        let upto: Option<i64> = tx.query_row(
            "SELECT max(change) FROM (SELECT change FROM tws_changes
             WHERE collection = ?1 AND change <= ?2 ORDER BY change LIMIT ?3)",
            params![name, cut, PRUNE_BATCH],
            |row| row.get(0),
        )?;
        let Some(upto) = upto else {
            continue;
        };
        pruned += tx.execute(
            "DELETE FROM tws_changes WHERE collection = ?1 AND change <= ?2",
            params![name, upto],
        )?;
        tx.execute(
            "INSERT INTO tws_change_floor (collection, pruned) VALUES (?1, ?2)
             ON CONFLICT (collection) DO UPDATE SET pruned = max(pruned, excluded.pruned)",
            params![name, upto],
        )?;
    }
    tx.commit()?;
    Ok(pruned)
}

fn age_secs(age: Duration) -> i64 {
    i64::try_from(age.as_secs()).unwrap_or(i64::MAX / 2)
}

/// The time as the log records it: seconds since the epoch.
pub(super) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schema::LiveSettings;

    fn log() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn
    }

    fn add(conn: &Connection, collection: &str, at: i64) -> i64 {
        let mut change = Change {
            number: 0,
            collection: collection.into(),
            kind: Kind::Created,
            id: 1,
            version: 1,
            data: Some("{}".into()),
        };
        insert(conn, &mut change, at).unwrap();
        change.number
    }

    fn settings(keep: usize, secs: u64) -> LiveSettings {
        LiveSettings {
            keep,
            keep_for: Duration::from_secs(secs),
            ..LiveSettings::default()
        }
    }

    #[test]
    fn resumes_after_a_number_and_resets_once_pruned_past_it() {
        let mut conn = log();
        for i in 0..10 {
            add(&conn, if i % 2 == 0 { "a" } else { "b" }, 1000 + i);
        }
        let numbers = |b: &Backlog| b.changes.iter().map(|c| c.number).collect::<Vec<_>>();
        let all = since(&mut conn, "a", 0).unwrap();
        assert_eq!(
            (numbers(&all), all.reset, all.last),
            (vec![1, 3, 5, 7, 9], false, 10)
        );
        assert_eq!(numbers(&since(&mut conn, "a", 5).unwrap()), vec![7, 9]);
        assert!(
            since(&mut conn, "a", 11).unwrap().reset,
            "a number from another log"
        );
        // Keep 2 of "a" (7 and 9), everything of "b" for a day.
        let kept = [
            ("a".to_owned(), settings(2, 86_400)),
            ("b".to_owned(), settings(100, 86_400)),
        ];
        assert_eq!(prune(&mut conn, &kept, 1010).unwrap(), 3);
        let table = [
            (0, true),
            (4, true),
            (5, false),
            (6, false),
            (9, false),
            (10, false),
        ];
        for (after, reset) in table {
            assert_eq!(
                since(&mut conn, "a", after).unwrap().reset,
                reset,
                "after {after}"
            );
        }
        assert_eq!(numbers(&since(&mut conn, "b", 0).unwrap()).len(), 5);
        // By age: "b" changes from before 1005 (2 and 4) go.
        let aged = [("b".to_owned(), settings(100, 4))];
        assert_eq!(prune(&mut conn, &aged, 1009).unwrap(), 2);
        assert_eq!(numbers(&since(&mut conn, "b", 4).unwrap()), vec![6, 8, 10]);
        assert!(since(&mut conn, "b", 3).unwrap().reset);
    }

    #[test]
    fn prunes_in_batches() {
        let mut conn = log();
        let tx = conn.transaction().unwrap();
        for _ in 0..(PRUNE_BATCH + 5) {
            add(&tx, "a", 1);
        }
        tx.commit().unwrap();
        let kept = [("a".to_owned(), settings(1, 86_400))];
        assert_eq!(prune(&mut conn, &kept, 2).unwrap(), PRUNE_BATCH as usize);
        assert_eq!(prune(&mut conn, &kept, 2).unwrap(), 4);
        assert_eq!(prune(&mut conn, &kept, 2).unwrap(), 0);
    }
}
