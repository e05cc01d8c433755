//! The PostgreSQL change log, shared by every node: each change of a collection with live
//! updates is written in its write's transaction, numbered from a one-row counter, and
//! announced with `pg_notify`; each node has one listening connection that, on a
//! notification (and once a second, as a safety net), reads the changes after the last it
//! saw, in number order, and hands them to its hub. Pruned by count and age in batches.
//!
//! Why a counter row and not a `bigserial`: a sequence hands out numbers when rows are
//! inserted, not when transactions commit, so a transaction holding 7 may commit after one
//! holding 8, and a reader that saw 8 and moved past it would never read 7. Taking the numbers
//! with `UPDATE tws.change_counter SET last = last + n` locks that row until the transaction
//! ends: the next writer (on any node) waits for the commit (or rollback, which gives the
//! numbers back) before taking its own, so numbers are contiguous and in commit order, and
//! "everything after the last number seen" misses nothing and repeats nothing. The lock is
//! taken last in the transaction, just before the commit, so that it is held briefly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Statement, Transaction};

use super::pool::prepare;

use crate::api::live::hub::Hub;
use crate::api::live::{Backlog, Change, Kind};
use crate::api::schema::LiveSettings;
use crate::sync::lock;

/// The migration that makes the log (see `sql::MIGRATIONS`).
pub(super) const MIGRATION: &str = "CREATE TABLE tws.changes (
        change BIGINT PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        collection TEXT NOT NULL,
        kind TEXT NOT NULL,
        id BIGINT NOT NULL,
        version BIGINT NOT NULL,
        data TEXT
    );
    CREATE INDEX changes_by_collection ON tws.changes (collection, change);
    CREATE TABLE tws.change_counter (
        only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
        last BIGINT NOT NULL
    );
    INSERT INTO tws.change_counter (only_row, last) VALUES (true, 0);
    CREATE TABLE tws.change_floor (collection TEXT PRIMARY KEY, pruned BIGINT NOT NULL);";

/// The channel notifications go on.
const CHANNEL: &str = "tws_changes";
/// Most changes read at once by the listener, and for a subscriber resuming.
const READ_BATCH: i64 = 1000;
const MAX_BACKLOG: i64 = 100_000;
/// How long the listener waits for a notification before reading anyway.
const POLL: Duration = Duration::from_secs(1);
/// How often a node prunes the log, and how many changes of a collection at once.
const PRUNE_EVERY: Duration = Duration::from_secs(5);
const PRUNE_BATCH: i64 = 10_000;

/// Numbers the transaction's changes (in commit order: see the module's comment), writes
/// them to the log and notifies the listeners; called last before the commit.
pub(super) fn log(
    tx: &mut Transaction<'_>,
    statements: &mut HashMap<String, Statement>,
    logged: &mut [Change],
) -> Result<(), postgres::Error> {
    if logged.is_empty() {
        return Ok(());
    }
    let n = logged.len() as i64;
    let last: i64 = tx
        .query_one(
            "UPDATE tws.change_counter SET last = last + $1 RETURNING last",
            &[&n],
        )?
        .get(0);
    let insert = prepare(
        tx,
        statements,
        "INSERT INTO tws.changes (change, collection, kind, id, version, data)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )?;
    for (i, change) in logged.iter_mut().enumerate() {
        change.number = last - n + 1 + i as i64;
        tx.execute(
            &insert,
            &[
                &change.number,
                &change.collection,
                &change.kind.name(),
                &change.id,
                &change.version,
                &change.data,
            ],
        )?;
    }
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &last.to_string()])?;
    Ok(())
}

fn change(row: &postgres::Row) -> Change {
    let kind: String = row.get(2);
    Change {
        number: row.get(0),
        collection: row.get(1),
        kind: Kind::from_name(&kind).unwrap_or(Kind::Updated),
        id: row.get(3),
        version: row.get(4),
        data: row.get(5),
    }
}

const COLUMNS: &str = "change, collection, kind, id, version, data";

/// What the log holds of `collection` after change `after`, in one snapshot.
pub(super) fn since(
    client: &mut Client,
    collection: &str,
    after: i64,
) -> Result<Backlog, postgres::Error> {
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let last: i64 = tx
        .query_one("SELECT last FROM tws.change_counter", &[])?
        .get(0);
    let floor: i64 = tx
        .query_opt(
            "SELECT pruned FROM tws.change_floor WHERE collection = $1",
            &[&collection],
        )?
        .map_or(0, |row| row.get(0));
    let mut backlog = Backlog {
        changes: Vec::new(),
        reset: after < floor || after > last,
        last,
    };
    if !backlog.reset {
        let rows = tx.query(
            &format!(
                "SELECT {COLUMNS} FROM tws.changes WHERE collection = $1 AND change > $2
                 ORDER BY change LIMIT $3"
            ),
            &[&collection, &after, &MAX_BACKLOG],
        )?;
        backlog.changes = rows.iter().map(change).collect();
    }
    tx.commit()?;
    Ok(backlog)
}

/// Prunes what each collection keeps past its count or age, a batch at a time.
fn prune(
    client: &mut Client,
    collections: &[(String, LiveSettings)],
) -> Result<(), postgres::Error> {
    for (name, settings) in collections {
        let mut tx = client.transaction()?;
        let keep = settings.keep as i64;
        let age = settings.keep_for.as_secs_f64();
        let rows = tx.query(
            "DELETE FROM tws.changes WHERE change IN (
                SELECT change FROM tws.changes WHERE collection = $1 AND (
                    change <= (SELECT change FROM tws.changes WHERE collection = $1
                               ORDER BY change DESC OFFSET $2 LIMIT 1)
                    OR at < now() - make_interval(secs => $3))
                ORDER BY change LIMIT $4)
             RETURNING change",
            &[name, &keep, &age, &PRUNE_BATCH],
        )?;
        if let Some(upto) = rows.iter().map(|row| row.get::<_, i64>(0)).max() {
            tx.execute(
                "INSERT INTO tws.change_floor (collection, pruned) VALUES ($1, $2)
                 ON CONFLICT (collection) DO UPDATE SET pruned = GREATEST(tws.change_floor.pruned, excluded.pruned)",
                &[name, &upto],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

/// The node's listener: what it needs, shared with the store.
pub(super) struct Listener {
    pub config: postgres::Config,
    pub hub: Arc<Hub>,
    pub settings: Arc<Mutex<Vec<(String, LiveSettings)>>>,
    pub stop: Arc<AtomicBool>,
    pub shown: String,
}

impl Listener {
    /// Runs until the store closes: connects (again after a failure), listens, and hands
    /// every change after the last one seen to the hub, in order.
    pub fn run(self) {
        let mut last: Option<i64> = None;
        let mut failing = false;
        while !self.stop.load(Ordering::Acquire) {
            match self.serve(&mut last, &mut failing) {
                Ok(()) => return,
                Err(e) => {
                    if !failing {
                        crate::report!(
                            "tws: warning: live updates from {} paused: {}",
                            self.shown,
                            super::reason(&e)
                        );
                        failing = true;
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
    }

    fn serve(&self, last: &mut Option<i64>, failing: &mut bool) -> Result<(), postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
        if std::mem::take(failing) {
            crate::report!("tws: live updates from {} resumed", self.shown);
        }
        // A node starting up sends what is committed from now on; one reconnecting goes on
        // from where it was.
        let mut seen = match *last {
            Some(seen) => seen,
            None => client
                .query_one("SELECT last FROM tws.change_counter", &[])?
                .get(0),
        };
        *last = Some(seen);
        let read = client.prepare(&format!(
            "SELECT {COLUMNS} FROM tws.changes WHERE change > $1 ORDER BY change LIMIT $2"
        ))?;
        let mut pruned = Instant::now();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let rows = client.query(&read, &[&seen, &READ_BATCH])?;
            let changes: Vec<Change> = rows.iter().map(change).collect();
            if let Some(newest) = changes.last() {
                seen = newest.number;
                *last = Some(seen);
                self.hub.publish(&changes);
            }
            if changes.len() as i64 == READ_BATCH {
                continue;
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                let collections = lock(&self.settings).clone();
                prune(&mut client, &collections)?;
                pruned = Instant::now();
            }
            // Wait for a notification (or the poll), then take every one that came.
            let mut notifications = client.notifications();
            notifications.timeout_iter(POLL).next()?;
            while notifications.iter().next()?.is_some() {}
        }
    }
}
