//! createUser against the real server: durability across restarts and crashes, concurrency,
//! and error answers in JSON.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{Server, client, scratch};
use serde_json::Value;

fn create(agent: &ureq::Agent, server: &Server, name: &str) -> (u16, Value) {
    let mut response = agent
        .post(server.url("/createUser"))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({ "Nombre": name }).to_string())
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
    (status, body)
}

/// Every user, page by page (1,000 at a time), following the `Link` headers.
fn users(agent: &ureq::Agent, server: &Server) -> Vec<Value> {
    let mut all = Vec::new();
    let mut next = Some("/users?limit=1000".to_owned());
    for _ in 0..1000 {
        let Some(path) = next.take() else {
            return all;
        };
        let mut response = agent.get(server.url(&path)).call().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        next = response
            .headers()
            .get("link")
            .map(|link| link.to_str().unwrap().to_owned())
            .map(|link| link[1..link.find('>').unwrap()].to_owned());
        let page: Vec<Value> =
            serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
        all.extend(page);
    }
    panic!("/users pages do not end");
}

#[test]
fn users_survive_a_crash_and_restart() {
    let data = scratch("users-restart");
    let server = Server::bundled(&data);
    let agent = client();
    let (status, ana) = create(&agent, &server, "Ana");
    assert_eq!(status, 201);
    let (_, bo) = create(&agent, &server, "  Bo  ");
    assert_eq!(bo["Nombre"], "Bo");
    let mut response = agent
        .post(server.url("/createUser"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("Nombre=Mar%C3%ADa+Jos%C3%A9")
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers().get("location").unwrap(), "/users/3");
    let maria: Value = serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
    server.kill();

    let server = Server::bundled(&data);
    assert_eq!(users(&agent, &server), vec![ana, bo, maria.clone()]);
    let mut one = agent.get(server.url("/users/3")).call().unwrap();
    let fetched: Value = serde_json::from_slice(&one.body_mut().read_to_vec().unwrap()).unwrap();
    assert_eq!(fetched, maria);
    let (_, next) = create(&agent, &server, "Di");
    assert_eq!(next["id"], 4);
}

#[test]
fn concurrent_creates_get_distinct_ids_and_all_survive_a_restart() {
    const THREADS: usize = 8;
    const EACH: usize = 200;
    let data = scratch("users-concurrent");
    let server = Arc::new(Server::bundled(&data));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let server = Arc::clone(&server);
            std::thread::spawn(move || {
                let agent = client();
                (0..EACH)
                    .map(|i| {
                        let (status, user) = create(&agent, &server, &format!("user {t}-{i}"));
                        assert_eq!(status, 201, "{user}");
                        user["id"].as_u64().unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let ids: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let distinct: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), THREADS * EACH);
    Arc::into_inner(server).unwrap().kill();

    let server = Server::bundled(&data);
    let stored = users(&client(), &server);
    let stored_ids: HashSet<u64> = stored.iter().map(|u| u["id"].as_u64().unwrap()).collect();
    assert_eq!(stored.len(), THREADS * EACH);
    assert_eq!(stored_ids, distinct);
}

#[test]
fn the_old_user_file_is_imported_once_and_kept_as_a_backup() {
    let data = scratch("users-import");
    let old = "{\"id\":1,\"Nombre\":\"Ana\",\"created\":\"2026-01-01T00:00:00Z\"}\n\
               {\"id\":5,\"Nombre\":\"Bo\",\"created\":\"2026-01-02T00:00:00Z\"}\n{\"id\":6,\"Nomb";
    std::fs::write(data.join("users.jsonl"), old).unwrap();
    let server = Server::bundled(&data);
    let warning = server.wait_error("skipped a torn last record");
    assert!(warning.contains("users.jsonl:3"), "{warning}");
    server.wait_error("imported 2 users from");
    let agent = client();
    let stored = users(&agent, &server);
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[1],
        serde_json::json!({"id": 5, "Nombre": "Bo", "created": "2026-01-02T00:00:00Z"})
    );
    let (status, user) = create(&agent, &server, "Cy");
    assert_eq!((status, user["id"].as_u64()), (201, Some(6)));
    assert!(!data.join("users.jsonl").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("users.jsonl.imported")).unwrap(),
        old
    );
    server.kill();
    // Only once: the next start finds no old file and imports nothing.
    let server = Server::bundled(&data);
    assert_eq!(users(&agent, &server).len(), 3);
    assert!(
        !server
            .errors
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("imported"))
    );
}

#[test]
fn bad_input_gets_a_json_error_with_the_right_status() {
    let data = scratch("users-errors");
    let server = Server::bundled(&data);
    let agent = client();
    // (content type, body, status)
    let cases = [
        ("application/json", "{\"Nombre\": ", 400),
        ("application/json", "[1, 2]", 400),
        ("application/json", "{\"nombre\": \"Ana\"}", 422),
        ("application/json", "{\"Nombre\": \"   \"}", 422),
        ("application/json", "{\"Nombre\": \"a\\u0007b\"}", 422),
        ("application/x-www-form-urlencoded", "Nombre=", 422),
        ("text/plain", "Nombre=Ana", 415),
    ];
    for (content_type, body, status) in cases {
        let mut response = agent
            .post(server.url("/createUser"))
            .header("Content-Type", content_type)
            .send(body)
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{content_type} {body}");
        let error: Value =
            serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{error}"
        );
    }
    let long = format!("{{\"Nombre\": \"{}\"}}", "x".repeat(101));
    let mut response = agent
        .post(server.url("/createUser"))
        .header("Content-Type", "application/json")
        .send(long)
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let _ = response.body_mut().read_to_vec();
    assert!(users(&agent, &server).is_empty());
}

#[test]
fn every_acknowledged_user_survives_a_kill_during_concurrent_creates() {
    const CLIENTS: usize = 8;
    let data = scratch("users-crash");
    let server = Server::bundled(&data);
    let url = server.url("/createUser");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, stop) = (url.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let agent = client();
                let mut acknowledged = Vec::new();
                for i in 0..100_000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let sent = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(format!("{{\"Nombre\": \"crash {c}-{i}\"}}"));
                    // Once the server is killed, requests fail: only 201s count.
                    let Ok(mut response) = sent else { break };
                    if response.status().as_u16() != 201 {
                        break;
                    }
                    let Ok(body) = response.body_mut().read_to_vec() else {
                        break;
                    };
                    let user: Value = serde_json::from_slice(&body).unwrap();
                    acknowledged.push(user["id"].as_u64().unwrap());
                }
                acknowledged
            })
        })
        .collect();
    // Let creates pile up, then kill the server mid-stream.
    let started = std::time::Instant::now();
    while server
        .log_lines()
        .iter()
        .filter(|l| l.contains("POST /createUser"))
        .count()
        < 300
    {
        assert!(
            started.elapsed() < common::WAIT,
            "creates are not being served"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    server.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged: HashSet<u64> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        acknowledged.len() >= 300 - CLIENTS * 2,
        "only {} acknowledged",
        acknowledged.len()
    );

    let server = Server::bundled(&data);
    let stored: HashSet<u64> = users(&client(), &server)
        .iter()
        .map(|u| u["id"].as_u64().unwrap())
        .collect();
    let lost: Vec<&u64> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged users lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
