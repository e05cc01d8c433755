//! Tests for the JSON Lines user store: durability rules, torn lines, concurrency.

use std::sync::Arc;

use super::*;

/// Creates a user and waits for the store to report it durable.
fn create(store: &dyn UserStore, name: &str) -> Result<User, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    store.create(name, Box::new(move |result| tx.send(result).unwrap()));
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the store answers")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tws-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn users_survive_reopening_with_increasing_ids() {
    let dir = scratch("reopen");
    for mode in [SyncMode::Group, SyncMode::EachRecord] {
        let _ = std::fs::remove_dir_all(&dir);
        let store = JsonlStore::open(&dir, mode).unwrap();
        let ana = create(&store, "Ana").unwrap();
        let bo = create(&store, "Bo \"quoted\"").unwrap();
        assert_eq!((ana.id, bo.id), (1, 2));
        assert_eq!(store.get(2), Some(bo.clone()));
        assert_eq!(store.get(3), None);
        drop(store);
        let store = JsonlStore::open(&dir, mode).unwrap();
        assert_eq!(store.list(), vec![ana, bo]);
        assert_eq!(create(&store, "Cy").unwrap().id, 3);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_torn_last_line_is_cut_off_and_appends_continue_cleanly() {
    let dir = scratch("torn");
    std::fs::create_dir_all(&dir).unwrap();
    let good = "{\"id\":1,\"Nombre\":\"Ana\",\"created\":\"2026-01-01T00:00:00Z\"}\n";
    for torn in [
        "{\"id\":2,\"Nom",
        "{\"id\":2}\n",
        "\0\0\0\0",
        "{\"id\":2,\"Nombre\":\"x\"\0\0\n\0",
    ] {
        std::fs::write(dir.join(USERS_FILE), format!("{good}{torn}")).unwrap();
        let store = JsonlStore::open(&dir, SyncMode::Group).unwrap();
        assert_eq!(store.list().len(), 1, "{torn:?}");
        assert_eq!(create(&store, "Bo").unwrap().id, 2);
        drop(store);
        let text = std::fs::read_to_string(dir.join(USERS_FILE)).unwrap();
        assert!(
            text.starts_with(good) && text.lines().count() == 2,
            "{text:?}"
        );
        assert_eq!(
            JsonlStore::open(&dir, SyncMode::Group)
                .unwrap()
                .list()
                .len(),
            2
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damage_before_the_last_line_stops_startup() {
    let dir = scratch("damaged");
    std::fs::create_dir_all(&dir).unwrap();
    let good = "{\"id\":1,\"Nombre\":\"Ana\",\"created\":\"2026-01-01T00:00:00Z\"}\n";
    std::fs::write(dir.join(USERS_FILE), format!("garbage\n{good}")).unwrap();
    let err = JsonlStore::open(&dir, SyncMode::Group)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("users.jsonl:1: damaged record"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn concurrent_creates_lose_nothing_and_never_interleave() {
    let dir = scratch("concurrent");
    let store = Arc::new(JsonlStore::open(&dir, SyncMode::Group).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| create(store.as_ref(), &format!("t{t}-{i}")).unwrap().id)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=400).collect::<Vec<_>>());
    let listed: Vec<u64> = store.list().iter().map(|u| u.id).collect();
    assert_eq!(listed, ids);
    drop(store);
    let reopened = JsonlStore::open(&dir, SyncMode::Group).unwrap();
    assert_eq!(reopened.list().len(), 400);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn group_commit_shares_flushes_and_each_mode_does_not() {
    const CREATES: usize = 200;
    for (mode, name) in [(SyncMode::Group, "group"), (SyncMode::EachRecord, "each")] {
        let dir = scratch(&format!("flushes-{name}"));
        let store = JsonlStore::open(&dir, mode).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..CREATES {
            let tx = tx.clone();
            store.create(
                &format!("u{i}"),
                Box::new(move |r| tx.send(r.unwrap().id).unwrap()),
            );
        }
        let mut ids: Vec<u64> = (0..CREATES)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=CREATES as u64).collect::<Vec<_>>());
        let flushes = store.flushes() as usize;
        match mode {
            SyncMode::Group => assert!(flushes < CREATES / 2, "{flushes} flushes"),
            SyncMode::EachRecord => assert_eq!(flushes, CREATES),
        }
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
