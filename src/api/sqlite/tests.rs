//! The SQLite store on its own: durability across reopening, preconditions in the writer,
//! pages, refused type changes, and the import of the old user file.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::*;
use crate::api::import;
use crate::api::schema::tests::collection;
use crate::api::store::{Cursor, WriteError};

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
fn writes_survive_reopening_and_ids_are_never_reused() {
    let dir = scratch("reopen");
    let things = Arc::new(collection());
    for mode in [SyncMode::Group, SyncMode::EachRecord] {
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir, mode).unwrap();
        store.prepare(std::slice::from_ref(&things)).unwrap();
        let a = create(&store, &things, json!({"name": "a"}));
        let b = create(&store, &things, json!({"name": "b \"q\""}));
        assert_eq!((a.id, b.id, a.version), (1, 2, 1));
        let patched = write(
            &store,
            &things,
            Write::Patch {
                id: 2,
                if_match: Some(b.etag()),
                patch: fields(json!({"count": 3})),
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!((patched.version, patched.etag()), (2, "\"2-2\"".to_owned()));
        assert_eq!(
            write(
                &store,
                &things,
                Write::Delete {
                    id: 2,
                    if_match: None
                }
            ),
            Ok(None)
        );
        drop(store);
        let store = SqliteStore::open(&dir, mode).unwrap();
        store.prepare(std::slice::from_ref(&things)).unwrap();
        assert_eq!(store.get(&things, 1).unwrap().as_deref(), Some(&a));
        assert_eq!(store.get(&things, 2).unwrap(), None);
        assert_eq!(create(&store, &things, json!({"name": "c"})).id, 3);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn preconditions_and_missing_records_are_checked_in_the_writer() {
    let dir = scratch("preconditions");
    let things = Arc::new(collection());
    let store = SqliteStore::open(&dir, SyncMode::Group).unwrap();
    store.prepare(std::slice::from_ref(&things)).unwrap();
    let a = create(&store, &things, json!({"name": "a"}));
    // Twenty writers holding the same version: exactly one wins.
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..20 {
        let tx = tx.clone();
        store.write(
            &things,
            Write::Patch {
                id: 1,
                if_match: Some(a.etag()),
                patch: fields(json!({"count": i})),
            },
            Box::new(move |r| tx.send(r).unwrap()),
        );
    }
    let outcomes: Vec<_> = (0..20)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Err(WriteError::PreconditionFailed))
            .count(),
        19
    );
    let cases = [
        (
            Write::Delete {
                id: 9,
                if_match: None,
            },
            WriteError::NotFound,
        ),
        (
            Write::Replace {
                id: 1,
                if_match: Some("\"1-1\"".into()),
                fields: fields(json!({"name": "b"})),
            },
            WriteError::PreconditionFailed,
        ),
        (
            Write::Replace {
                id: 1,
                if_match: Some("W/\"1-2\"".into()),
                fields: fields(json!({"name": "b"})),
            },
            WriteError::PreconditionFailed,
        ),
        (
            Write::Patch {
                id: 1,
                if_match: None,
                patch: fields(json!({"count": 1000})),
            },
            WriteError::Invalid(crate::api::schema::Invalid::Content(
                "\"count\" must be at most 10".into(),
            )),
        ),
    ];
    for (w, want) in cases {
        assert_eq!(write(&store, &things, w.clone()), Err(want), "{w:?}");
    }
    assert_eq!(store.get(&things, 1).unwrap().unwrap().version, 2);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pages_are_keyset_ordered_with_nulls_and_filters() {
    let dir = scratch("pages");
    let things = Arc::new(collection());
    let store = SqliteStore::open(&dir, SyncMode::Group).unwrap();
    store.prepare(std::slice::from_ref(&things)).unwrap();
    // Counts 2, none, 1, 2, none, 0: ties and records without the sort field.
    for count in [Some(2), None, Some(1), Some(2), None, Some(0)] {
        let mut value = json!({"name": "x"});
        if let Some(c) = count {
            value["count"] = json!(c);
        }
        create(&store, &things, value);
    }
    let order = |descending: bool| {
        let mut ids = Vec::new();
        let mut after = None;
        for _ in 0..10 {
            let query = PageQuery {
                sort: Some("count".into()),
                descending,
                after,
                limit: 2,
                ..PageQuery::default()
            };
            let page = store.page(&things, &query).unwrap();
            ids.extend(page.records.iter().map(|r| r.id));
            match page.next {
                Some(next) => after = Some(next),
                None => return ids,
            }
        }
        panic!("pages do not end: {ids:?}");
    };
    assert_eq!(order(false), [2, 5, 6, 3, 1, 4]);
    assert_eq!(order(true), [4, 1, 3, 6, 5, 2]);
    let query = PageQuery {
        filters: vec![("count".into(), json!(2))],
        limit: 10,
        ..PageQuery::default()
    };
    let ids: Vec<i64> = store
        .page(&things, &query)
        .unwrap()
        .records
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [1, 4]);
    let after = Some(Cursor {
        value: Value::Null,
        id: 4,
    });
    let query = PageQuery {
        after,
        limit: 10,
        ..PageQuery::default()
    };
    assert_eq!(store.page(&things, &query).unwrap().records.len(), 2);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_field_cannot_change_type_while_records_hold_it() {
    let dir = scratch("types");
    let things = Arc::new(collection());
    let store = SqliteStore::open(&dir, SyncMode::Group).unwrap();
    store.prepare(std::slice::from_ref(&things)).unwrap();
    let retyped = |field: &str, kind: crate::api::schema::FieldType| {
        let mut c = collection();
        c.fields.iter_mut().find(|f| f.name == field).unwrap().kind = kind;
        Arc::new(c)
    };
    use crate::api::schema::FieldType::*;
    // No record holds `ratio` or `count` yet: any change goes.
    store.prepare(&[retyped("ratio", String)]).unwrap();
    store.prepare(&[retyped("ratio", Number)]).unwrap();
    create(&store, &things, json!({"name": "a", "count": 2}));
    let err = store
        .prepare(&[retyped("count", String)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("field \"count\" cannot change from integer to string while 1 records"),
        "{err}"
    );
    store.prepare(&[retyped("count", Number)]).unwrap();
    // Not every number is an integer.
    assert!(store.prepare(std::slice::from_ref(&things)).is_err());
    // Adding a collection, or a field, is fine.
    let mut more = collection();
    more.name = "more".into();
    store
        .prepare(&[retyped("count", Number), Arc::new(more)])
        .unwrap();
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
