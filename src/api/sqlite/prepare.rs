//! Making declared collections ready: a table for each, an index per indexed field, a
//! full-text index (FTS5) kept by triggers for the searchable fields, the declared
//! field types remembered so that a change of type is refused while values of the old type
//! are stored, and the one-time import of the old `users.jsonl`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{field_expr, search_table, table};
use crate::api::import::{self, BACKUP_FILE, LEGACY_FILE};
use crate::api::schema::{Collection, FieldType, type_change};

/// The table remembering each declared field's type.
pub(super) const REGISTRY: &str = "CREATE TABLE IF NOT EXISTS tws_fields (
    collection TEXT NOT NULL,
    field TEXT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (collection, field)
) WITHOUT ROWID;";

/// The collection the old user file is imported into.
const LEGACY_COLLECTION: &str = "users";

pub(super) fn run(
    conn: &mut Connection,
    collections: &[Arc<Collection>],
    data: &Path,
    db: &Path,
) -> Result<()> {
    let legacy = data.join(LEGACY_FILE);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut imported = None;
    for collection in collections {
        let t = table(&collection.name);
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                version INTEGER NOT NULL,
                created TEXT NOT NULL,
                updated TEXT,
                data TEXT NOT NULL
            );"
        ))
        .with_context(|| format!("cannot create the table of collection {}", collection.name))?;
        for field in &collection.fields {
            check_type_change(&tx, collection, &field.name, field.kind)?;
            tx.execute(
                "INSERT INTO tws_fields (collection, field, type) VALUES (?1, ?2, ?3)
                 ON CONFLICT (collection, field) DO UPDATE SET type = excluded.type",
                params![collection.name, field.name, field.kind.name()],
            )?;
            let index = format!("\"c_{}__{}\"", collection.name, field.name);
            if field.index {
                let expr = field_expr(&field.name);
                tx.execute_batch(&format!(
                    "CREATE INDEX IF NOT EXISTS {index} ON {t} ({expr}, id);"
                ))?;
            } else {
                tx.execute_batch(&format!("DROP INDEX IF EXISTS {index};"))?;
            }
        }
        prepare_search(&tx, collection)
            .with_context(|| format!("cannot index collection {} for search", collection.name))?;
        if collection.name == LEGACY_COLLECTION && legacy.exists() {
            imported = Some(import_users(&tx, &legacy)?);
        }
    }
    tx.commit()
        .with_context(|| format!("cannot write {}", db.display()))?;
    if let Some(read) = imported {
        let backup = data.join(BACKUP_FILE);
        std::fs::rename(&legacy, &backup)
            .with_context(|| format!("imported {} but cannot rename it", legacy.display()))?;
        if let Some((line, bytes)) = read.torn {
            crate::report!(
                "tws: warning: {}:{line}: skipped a torn last record ({bytes} bytes) left by an interrupted write",
                legacy.display()
            );
        }
        crate::report!(
            "tws: imported {} users from {} into {}; the old file is kept as {}",
            read.records,
            legacy.display(),
            db.display(),
            backup.display()
        );
    }
    Ok(())
}

/// The full-text index of the fields declared `search = true`: an FTS5 table holding only
/// the index (contentless), kept in step by triggers in the writer's own transactions, and
/// rebuilt when the searchable fields change.
fn prepare_search(tx: &Connection, collection: &Collection) -> rusqlite::Result<()> {
    let t = table(&collection.name);
    let fts = search_table(&t);
    let trigger = |what: &str| format!("{}:{what}\"", fts.trim_end_matches('"'));
    let text = |row: &str| {
        let parts: Vec<String> = collection
            .searched()
            .map(|f| format!("coalesce(json_extract({row}.data, '$.{}'), '')", f.name))
            .collect();
        parts.join(" || ' ' || ")
    };
    let new = text("new");
    let current: Option<String> = tx
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
            [trigger("insert").trim_matches('"')],
            |row| row.get(0),
        )
        .optional()?;
    let searched = collection.searched().next().is_some();
    if searched && current.is_some_and(|sql| sql.contains(&format!("(new.id, {new});"))) {
        return Ok(());
    }
    tx.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS {insert}; DROP TRIGGER IF EXISTS {update};
         DROP TRIGGER IF EXISTS {delete}; DROP TABLE IF EXISTS {fts};",
        insert = trigger("insert"),
        update = trigger("update"),
        delete = trigger("delete"),
    ))?;
    if !searched {
        return Ok(());
    }
    tx.execute_batch(&format!(
        "CREATE VIRTUAL TABLE {fts} USING fts5(body, content = '', contentless_delete = 1);
         INSERT INTO {fts} (rowid, body) SELECT id, {all} FROM {t};
         CREATE TRIGGER {insert} AFTER INSERT ON {t} BEGIN
             INSERT INTO {fts} (rowid, body) VALUES (new.id, {new});
         END;
         CREATE TRIGGER {update} AFTER UPDATE ON {t} BEGIN
             DELETE FROM {fts} WHERE rowid = old.id;
             INSERT INTO {fts} (rowid, body) VALUES (new.id, {new});
         END;
         CREATE TRIGGER {delete} AFTER DELETE ON {t} BEGIN
             DELETE FROM {fts} WHERE rowid = old.id;
         END;",
        all = text(&t),
        insert = trigger("insert"),
        update = trigger("update"),
        delete = trigger("delete"),
    ))
}

/// Refuses a field's new type while records hold values of its old one.
fn check_type_change(
    tx: &Connection,
    collection: &Collection,
    field: &str,
    kind: FieldType,
) -> Result<()> {
    let stored: Option<String> = tx
        .query_row(
            "SELECT type FROM tws_fields WHERE collection = ?1 AND field = ?2",
            params![collection.name, field],
            |row| row.get(0),
        )
        .optional()?;
    let Some(old) = stored.as_deref().and_then(FieldType::from_name) else {
        return Ok(());
    };
    if old == kind {
        return Ok(());
    }
    let holding: i64 = tx.query_row(
        &format!(
            "SELECT count(*) FROM {} WHERE json_type(data, '$.{field}') IS NOT NULL",
            table(&collection.name)
        ),
        [],
        |row| row.get(0),
    )?;
    type_change(collection, field, old, kind, holding)
}

/// Copies the old user file into the users table. Ids are kept; a record already there (an
/// import cut short before the rename) is left as it is.
fn import_users(tx: &Connection, path: &Path) -> Result<import::Read> {
    let mut insert = tx.prepare(&format!(
        "INSERT OR IGNORE INTO {} (id, version, created, data) VALUES (?1, 1, ?2, ?3)",
        table(LEGACY_COLLECTION)
    ))?;
    import::read(path, |user| {
        let data = serde_json::json!({ "Nombre": user.name }).to_string();
        insert.execute(params![user.id, user.created, data])?;
        Ok(())
    })
}
