//! One set of store tests, run against both stores: the embedded SQLite one and PostgreSQL
//! (a throwaway cluster). Durability across reopening, ids never reused, If-Match decided in
//! the writer (one winner among twenty, and across two nodes), keyset pages with records
//! lacking the sort field, filters, and refused changes of a field's type.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pg::Postgres;
use serde_json::{Map, Value, json};
use tws::api::postgres::PgStore;
use tws::api::schema::{Collection, Field, FieldType, Invalid};
use tws::api::sqlite::SqliteStore;
use tws::api::store::{
    Conditions, PageQuery, ReadError, Record, Store, SyncMode, Write, WriteError,
};

/// Opens the store under test afresh (on the same data).
type Open<'a> = &'a dyn Fn() -> Arc<dyn Store>;

fn things() -> Arc<Collection> {
    let field = |name: &str, kind, required| Field {
        name: name.to_owned(),
        kind,
        required,
        trim: kind == FieldType::String,
        min_length: None,
        max_length: None,
        min: None,
        max: None,
        index: name == "count",
        search: name == "name",
    };
    Arc::new(Collection {
        name: "things".into(),
        path: "/things".into(),
        fields: vec![
            Field {
                min_length: Some(1),
                max_length: Some(5),
                ..field("name", FieldType::String, true)
            },
            Field {
                min: Some(0.0),
                max: Some(10.0),
                ..field("count", FieldType::Integer, false)
            },
            field("ratio", FieldType::Number, false),
        ],
        form_redirect: None,
        require_if_match: false,
        max_page_bytes: tws::api::schema::DEFAULT_MAX_PAGE_BYTES,
        max_batch: tws::api::schema::DEFAULT_MAX_BATCH,
        origin: None,
        live: Default::default(),
    })
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// Applies a write and waits until it is durable.
fn write(store: &dyn Store, c: &Arc<Collection>, w: Write) -> Result<Option<Record>, WriteError> {
    let (tx, rx) = std::sync::mpsc::channel();
    store.write(c, w, Box::new(move |r| tx.send(r).unwrap()));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the store answers")
}

fn create(store: &dyn Store, c: &Arc<Collection>, value: Value) -> Record {
    write(store, c, Write::Create(fields(value)))
        .unwrap()
        .unwrap()
}

fn writes_survive_reopening_and_ids_are_never_reused(open: Open) {
    let c = things();
    let store = open();
    store.prepare(std::slice::from_ref(&c)).unwrap();
    let a = create(&*store, &c, json!({"name": "a"}));
    let b = create(&*store, &c, json!({"name": "b \"q\""}));
    assert_eq!((b.id - a.id, a.version), (1, 1));
    let patch = Write::Patch {
        id: b.id,
        conditions: Conditions {
            if_match: Some(b.etag()),
            ..Conditions::default()
        },
        patch: fields(json!({"count": 3})),
    };
    let patched = write(&*store, &c, patch).unwrap().unwrap();
    assert_eq!(patched.etag(), format!("\"{}-2\"", b.id));
    let delete = Write::Delete {
        id: b.id,
        conditions: Conditions {
            if_match: None,
            ..Conditions::default()
        },
    };
    assert_eq!(write(&*store, &c, delete), Ok(None));
    drop(store);
    let store = open();
    store.prepare(std::slice::from_ref(&c)).unwrap();
    let again = store.get(&c, a.id).unwrap().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&again.data).unwrap(),
        json!({"name": "a"})
    );
    assert_eq!(
        (again.id, again.version, &again.created),
        (a.id, 1, &a.created)
    );
    assert_eq!(store.get(&c, b.id).unwrap(), None);
    assert!(create(&*store, &c, json!({"name": "c"})).id > b.id);
}

fn one_of_twenty_writers_holding_a_version_wins(open: Open) {
    let c = things();
    let store = open();
    store.prepare(std::slice::from_ref(&c)).unwrap();
    let a = create(&*store, &c, json!({"name": "a"}));
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..20 {
        let tx = tx.clone();
        let patch = Write::Patch {
            id: a.id,
            conditions: Conditions {
                if_match: Some(a.etag()),
                ..Conditions::default()
            },
            patch: fields(json!({"count": i % 10})),
        };
        store.write(&c, patch, Box::new(move |r| tx.send(r).unwrap()));
    }
    let outcomes: Vec<_> = (0..20)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let failed = outcomes
        .iter()
        .filter(|o| **o == Err(WriteError::PreconditionFailed))
        .count();
    assert_eq!(failed, 19);
    let replace = |tag: &str| Write::Replace {
        id: a.id,
        conditions: Conditions {
            if_match: Some(tag.to_owned()),
            ..Conditions::default()
        },
        fields: fields(json!({"name": "b"})),
    };
    let cases = [
        (
            Write::Delete {
                id: a.id + 100,
                conditions: Conditions {
                    if_match: None,
                    ..Conditions::default()
                },
            },
            WriteError::NotFound,
        ),
        (replace(&a.etag()), WriteError::PreconditionFailed),
        (
            replace(&format!("W/\"{}-2\"", a.id)),
            WriteError::PreconditionFailed,
        ),
        (
            Write::Patch {
                id: a.id,
                conditions: Conditions {
                    if_match: None,
                    ..Conditions::default()
                },
                patch: fields(json!({"count": 1000})),
            },
            WriteError::Invalid(Invalid::Content("\"count\" must be at most 10".into())),
        ),
    ];
    for (w, want) in cases {
        assert_eq!(write(&*store, &c, w.clone()), Err(want), "{w:?}");
    }
    assert_eq!(store.get(&c, a.id).unwrap().unwrap().version, 2);
}

fn pages_are_keyset_ordered_with_missing_fields_and_filters(open: Open) {
    let c = things();
    let store = open();
    store.prepare(std::slice::from_ref(&c)).unwrap();
    // Counts 2, none, 1, 2, none, 0: ties, and records without the sort field.
    let mut ids = Vec::new();
    for count in [Some(2), None, Some(1), Some(2), None, Some(0)] {
        let mut value = json!({"name": "x"});
        if let Some(n) = count {
            value["count"] = json!(n);
        }
        ids.push(create(&*store, &c, value).id);
    }
    let order = |descending: bool| {
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..10 {
            let query = PageQuery {
                sort: Some("count".into()),
                descending,
                after,
                limit: 2,
                ..PageQuery::default()
            };
            let page = store.page(&c, &query).unwrap();
            seen.extend(
                page.records
                    .iter()
                    .map(|r| ids.iter().position(|i| *i == r.id).unwrap() + 1),
            );
            match page.next {
                Some(next) => after = Some(next),
                None => return seen,
            }
        }
        panic!("pages do not end: {seen:?}");
    };
    assert_eq!(order(false), [2, 5, 6, 3, 1, 4]);
    assert_eq!(order(true), [4, 1, 3, 6, 5, 2]);
    let query = PageQuery {
        filters: vec![("count".into(), json!(2))],
        limit: 10,
        ..PageQuery::default()
    };
    let found: Vec<i64> = store
        .page(&c, &query)
        .unwrap()
        .records
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(found, [ids[0], ids[3]]);
    let query = PageQuery {
        after: Some(ids[3]),
        limit: 10,
        ..PageQuery::default()
    };
    assert_eq!(store.page(&c, &query).unwrap().records.len(), 2);
}

fn pages_stop_at_their_bytes_and_a_deleted_cursor_is_gone(open: Open) {
    let c = things();
    let store = open();
    store.prepare(std::slice::from_ref(&c)).unwrap();
    let ids: Vec<i64> = (0..6)
        .map(|i| create(&*store, &c, json!({"name": "abcde", "count": i})).id)
        .collect();
    // Each record's data is about 30 bytes, counted with 64 of overhead: three fit in 300.
    let mut seen = Vec::new();
    let mut after = None;
    for _ in 0..10 {
        let query = PageQuery {
            sort: Some("count".into()),
            after,
            limit: 100,
            max_bytes: 300,
            ..PageQuery::default()
        };
        let page = store.page(&c, &query).unwrap();
        assert!(page.records.len() <= 3, "{} records", page.records.len());
        seen.extend(page.records.iter().map(|r| r.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every record once, in order");
    // A sorted page cannot continue after a record that is gone.
    write(
        &*store,
        &c,
        Write::Delete {
            id: ids[2],
            conditions: Conditions::default(),
        },
    )
    .unwrap();
    let query = PageQuery {
        sort: Some("count".into()),
        after: Some(ids[2]),
        ..PageQuery::default()
    };
    assert!(matches!(store.page(&c, &query), Err(ReadError::CursorGone)));
    // By id it can: the id is the order.
    let query = PageQuery {
        after: Some(ids[2]),
        ..PageQuery::default()
    };
    assert_eq!(store.page(&c, &query).unwrap().records.len(), 3);
}

fn a_field_cannot_change_type_while_records_hold_it(open: Open) {
    let c = things();
    let store = open();
    store.prepare(std::slice::from_ref(&c)).unwrap();
    let retyped = |field: &str, kind: FieldType| {
        let mut changed = (*things()).clone();
        changed
            .fields
            .iter_mut()
            .find(|f| f.name == field)
            .unwrap()
            .kind = kind;
        Arc::new(changed)
    };
    // No record holds `ratio` yet: any change goes.
    store
        .prepare(&[retyped("ratio", FieldType::String)])
        .unwrap();
    store
        .prepare(&[retyped("ratio", FieldType::Number)])
        .unwrap();
    create(&*store, &c, json!({"name": "a", "count": 2}));
    let err = store
        .prepare(&[retyped("count", FieldType::String)])
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("field \"count\" cannot change from integer to string while 1 records"),
        "{text}"
    );
    store
        .prepare(&[retyped("count", FieldType::Number)])
        .unwrap();
    assert!(
        store.prepare(std::slice::from_ref(&c)).is_err(),
        "not every number is an integer"
    );
    let mut more = (*things()).clone();
    more.name = "more".into();
    store
        .prepare(&[retyped("count", FieldType::Number), Arc::new(more)])
        .unwrap();
}

/// A store test: given how to open the store under test.
type Case = fn(Open);

const CASES: [(&str, Case); 5] = [
    ("reopen", writes_survive_reopening_and_ids_are_never_reused),
    ("race", one_of_twenty_writers_holding_a_version_wins),
    (
        "pages",
        pages_are_keyset_ordered_with_missing_fields_and_filters,
    ),
    ("types", a_field_cannot_change_type_while_records_hold_it),
    (
        "bytes",
        pages_stop_at_their_bytes_and_a_deleted_cursor_is_gone,
    ),
];

#[test]
fn the_sqlite_store() {
    for (name, case) in CASES {
        let dir = common::scratch(&format!("stores-sqlite-{name}"));
        let open =
            || -> Arc<dyn Store> { Arc::new(SqliteStore::open(&dir, SyncMode::Group).unwrap()) };
        case(&open);
    }
}

#[test]
fn the_postgres_store() {
    let Some(pg) = Postgres::start("stores") else {
        return;
    };
    for (name, case) in CASES {
        let url = pg.database(name);
        let open = || -> Arc<dyn Store> { Arc::new(PgStore::open(&url).unwrap()) };
        case(&open);
    }
    // Two nodes on one database: one winner among writers on both.
    let url = pg.database("nodes");
    let (a, b) = (PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap());
    let c = things();
    a.prepare(std::slice::from_ref(&c)).unwrap();
    b.prepare(std::slice::from_ref(&c)).unwrap();
    let record = create(&a, &c, json!({"name": "n"}));
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..20 {
        let tx = tx.clone();
        let node: &dyn Store = if i % 2 == 0 { &a } else { &b };
        let patch = Write::Patch {
            id: record.id,
            conditions: Conditions {
                if_match: Some(record.etag()),
                ..Conditions::default()
            },
            patch: fields(json!({"count": i % 10})),
        };
        node.write(&c, patch, Box::new(move |r| tx.send(r).unwrap()));
    }
    let wins = (0..20)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .filter(Result::is_ok)
        .count();
    assert_eq!(wins, 1);
    // Ids from either node never collide.
    let ids: Vec<i64> = (0..10)
        .map(|i| create(if i % 2 == 0 { &a } else { &b }, &c, json!({"name": "m"})).id)
        .collect();
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len());
}
