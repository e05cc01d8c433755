//! What only the SQLite store does: its record cache, its folder lock, and the import of the
//! old user file. (What every store does is tested on both in tests/stores.rs.)

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::*;
use crate::api::import;
use crate::api::schema::tests::collection;
use crate::api::store::WriteError;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tws-sqlite-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// Applies a write and waits until it is durable.
fn write(store: &SqliteStore, c: &Arc<Collection>, w: Write) -> Result<Option<Record>, WriteError> {
    let (tx, rx) = std::sync::mpsc::channel();
    store.write(c, w, Box::new(move |r| tx.send(r).unwrap()));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the writer answers")
}

fn create(store: &SqliteStore, c: &Arc<Collection>, value: Value) -> Record {
    write(store, c, Write::Create(fields(value)))
        .unwrap()
        .unwrap()
}

#[test]
fn a_cached_record_is_never_older_than_the_database() {
    let dir = scratch("cache");
    let things = Arc::new(collection());
    let store = SqliteStore::open(&dir, SyncMode::Group).unwrap();
    store.prepare(std::slice::from_ref(&things)).unwrap();
    let a = create(&store, &things, json!({"name": "a"}));
    assert!(
        store.cached(&things, a.id).is_none(),
        "creates do not fill the cache"
    );
    assert_eq!(store.get(&things, a.id).unwrap().unwrap().version, 1);
    assert_eq!(
        store.cached(&things, a.id).unwrap().version,
        1,
        "a read fills it"
    );
    let patch = Write::Patch {
        id: a.id,
        conditions: Default::default(),
        patch: fields(json!({"count": 4})),
    };
    write(&store, &things, patch).unwrap();
    assert!(
        store.cached(&things, a.id).is_none(),
        "a write clears it before answering"
    );
    assert_eq!(store.get(&things, a.id).unwrap().unwrap().version, 2);
    write(
        &store,
        &things,
        Write::Delete {
            id: a.id,
            conditions: Default::default(),
        },
    )
    .unwrap();
    assert!(store.cached(&things, a.id).is_none());
    assert_eq!(store.get(&things, a.id).unwrap(), None);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_old_user_file_is_imported_once_and_kept() {
    let dir = scratch("import");
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = String::new();
    for id in 1..=300 {
        lines.push_str(&format!(
            "{{\"id\":{id},\"Nombre\":\"user {id}\",\"created\":\"2026-01-01T00:00:00Z\"}}\n"
        ));
    }
    lines.push_str("{\"id\":301,\"Nomb");
    std::fs::write(dir.join(import::LEGACY_FILE), &lines).unwrap();
    let users = Arc::new(crate::config::legacy_users());
    let store = SqliteStore::open(&dir, SyncMode::Group).unwrap();
    store.prepare(std::slice::from_ref(&users)).unwrap();
    assert!(!dir.join(import::LEGACY_FILE).exists());
    assert_eq!(
        std::fs::read_to_string(dir.join(import::BACKUP_FILE)).unwrap(),
        lines
    );
    let r = store.get(&users, 300).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(r.to_json()).unwrap(),
        r#"{"id":300,"Nombre":"user 300","created":"2026-01-01T00:00:00Z"}"#
    );
    assert_eq!(create(&store, &users, json!({"Nombre": "next"})).id, 301);
    store.prepare(std::slice::from_ref(&users)).unwrap();
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
