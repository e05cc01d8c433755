//! Declared collections through the real server: every method over HTTP, one winner among
//! concurrent updates of one version, durability across SIGKILL, pages that stay correct
//! while records are added, and hot reload adding a collection.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, WAIT, client, config_site as site, start_config as start, write_routes};
use serde_json::{Value, json};

const NOTES: &str = r#"
[[collection]]
name = "notes"
path = "/api/notes"
fields.title = { type = "string", required = true, max_length = 50 }
fields.stars = { type = "integer", min = 0, max = 5 }
"#;

/// One request: status, the `ETag` and `Link` headers, and the body as JSON (null if none).
struct Answer {
    status: u16,
    etag: Option<String>,
    link: Option<String>,
    body: Value,
}

fn send(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let agent = client();
    let url = server.url(path);
    let mut request = ureq::http::Request::builder().method(method).uri(&url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = match body {
        Some(body) => agent.run(request.body(body.to_owned()).unwrap()),
        None => agent.run(request.body(()).unwrap()),
    }
    .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (etag, link) = (header("etag"), header("link"));
    let bytes = response.body_mut().read_to_vec().unwrap_or_default();
    Answer {
        status: response.status().as_u16(),
        etag,
        link,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn post(server: &Server, body: Value) -> Answer {
    send(
        server,
        "POST",
        "/api/notes",
        &[JSON],
        Some(&body.to_string()),
    )
}

#[test]
fn every_method_answers_over_http() {
    let dir = site("collections-methods", NOTES);
    let server = start(&dir);
    let made = post(&server, json!({"title": "first", "stars": 2}));
    assert_eq!((made.status, made.etag.as_deref()), (201, Some("\"1-1\"")));
    let got = send(&server, "GET", "/api/notes/1", &[], None);
    assert_eq!((got.status, &got.body), (200, &made.body));
    let head = send(&server, "HEAD", "/api/notes/1", &[], None);
    assert_eq!(
        (head.status, head.etag.as_deref(), head.body),
        (200, Some("\"1-1\""), Value::Null)
    );
    let fresh = send(
        &server,
        "GET",
        "/api/notes/1",
        &[("If-None-Match", "\"1-1\"")],
        None,
    );
    assert_eq!(fresh.status, 304);
    let put = send(
        &server,
        "PUT",
        "/api/notes/1",
        &[JSON, ("If-Match", "\"1-1\"")],
        Some(r#"{"title": "renamed"}"#),
    );
    assert_eq!(
        (put.status, put.etag.as_deref(), put.body.get("stars")),
        (200, Some("\"1-2\""), None)
    );
    let patch = send(
        &server,
        "PATCH",
        "/api/notes/1",
        &[("Content-Type", "application/merge-patch+json")],
        Some(r#"{"stars": 5}"#),
    );
    assert_eq!(
        (patch.status, &patch.body["title"], &patch.body["stars"]),
        (200, &json!("renamed"), &json!(5))
    );
    assert_eq!(
        send(
            &server,
            "PATCH",
            "/api/notes/1",
            &[JSON],
            Some(r#"{"stars": 6}"#)
        )
        .status,
        422
    );
    assert_eq!(
        send(
            &server,
            "DELETE",
            "/api/notes/1",
            &[("If-Match", "\"1-1\"")],
            None
        )
        .status,
        412
    );
    assert_eq!(
        send(&server, "DELETE", "/api/notes/1", &[], None).status,
        204
    );
    assert_eq!(send(&server, "GET", "/api/notes/1", &[], None).status, 404);
    for i in 0..5 {
        post(&server, json!({"title": format!("n{i}")}));
    }
    let page = send(&server, "GET", "/api/notes?limit=2&sort=-id", &[], None);
    let titles: Vec<&str> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["n4", "n3"]);
    let link = page.link.unwrap();
    assert_eq!(link, "</api/notes?limit=2&sort=-id&after=5>; rel=\"next\"");
    let error = send(&server, "GET", "/api/notes?stars=many", &[], None);
    assert_eq!(error.status, 400);
    assert!(
        error.body["error"]
            .as_str()
            .unwrap()
            .contains("\"many\" is not an integer")
    );
}

#[test]
fn of_twenty_concurrent_patches_with_one_etag_exactly_one_wins() {
    let dir = site("collections-race", NOTES);
    let server = Arc::new(start(&dir));
    let etag = post(&server, json!({"title": "contended"})).etag.unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(20));
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let (server, etag, barrier) = (Arc::clone(&server), etag.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let body = json!({"title": format!("racer {i}")}).to_string();
                send(
                    &server,
                    "PATCH",
                    "/api/notes/1",
                    &[JSON, ("If-Match", &etag)],
                    Some(&body),
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        19,
        "{statuses:?}"
    );
    let now = send(&server, "GET", "/api/notes/1", &[], None);
    assert_eq!(now.etag.as_deref(), Some("\"1-2\""));
}

#[test]
fn creates_updates_and_deletes_survive_a_kill() {
    let dir = site("collections-kill", NOTES);
    let server = start(&dir);
    for i in 0..30 {
        assert_eq!(post(&server, json!({"title": format!("t{i}")})).status, 201);
    }
    for id in 1..=10 {
        let path = format!("/api/notes/{id}");
        assert_eq!(
            send(&server, "PATCH", &path, &[JSON], Some(r#"{"stars": 4}"#)).status,
            200
        );
    }
    for id in 11..=20 {
        assert_eq!(
            send(&server, "DELETE", &format!("/api/notes/{id}"), &[], None).status,
            204
        );
    }
    // The last acknowledged write, then a crash before anything else can flush.
    assert_eq!(
        send(
            &server,
            "PUT",
            "/api/notes/30",
            &[JSON],
            Some(r#"{"title": "last"}"#)
        )
        .status,
        200
    );
    server.kill();
    let server = start(&dir);
    let page = send(&server, "GET", "/api/notes?limit=100", &[], None);
    let notes = page.body.as_array().unwrap();
    let ids: Vec<i64> = notes.iter().map(|n| n["id"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=10).chain(21..=30).collect();
    assert_eq!(ids, expected);
    assert!(notes[..10].iter().all(|n| n["stars"] == 4));
    assert_eq!(notes[19]["title"], "last");
    assert_eq!(post(&server, json!({"title": "next"})).body["id"], 31);
}

#[test]
fn paging_while_records_are_added_skips_and_repeats_nothing() {
    let dir = site("collections-paging", NOTES);
    let server = Arc::new(start(&dir));
    for i in 0..60 {
        post(
            &server,
            json!({"title": format!("before {i}"), "stars": i % 6}),
        );
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut added = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && added < 2000 {
                post(&server, json!({"title": "during", "stars": added % 6}));
                added += 1;
            }
            added
        })
    };
    for (query, key) in [("limit=7", "id"), ("limit=7&sort=stars", "stars")] {
        let mut seen: Vec<Value> = Vec::new();
        let mut next = Some(format!("/api/notes?{query}"));
        let started = Instant::now();
        while let Some(path) = next.take() {
            assert!(started.elapsed() < WAIT, "paging {query} does not end");
            let page = send(&server, "GET", &path, &[], None);
            seen.extend(page.body.as_array().unwrap().iter().cloned());
            next = page.link.map(|l| l[1..l.find('>').unwrap()].to_owned());
            if seen.len() > 200 {
                break;
            }
        }
        let ids: Vec<i64> = seen.iter().map(|n| n["id"].as_i64().unwrap()).collect();
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ids.len(), "{query}: a record was repeated");
        if key == "id" {
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{query}: {ids:?}");
            assert_eq!(
                &ids[..60],
                &(1..=60).collect::<Vec<_>>()[..],
                "{query}: a record was skipped"
            );
        } else {
            // Every record that existed before paging began is seen, in order of stars.
            let stars: Vec<i64> = seen.iter().map(|n| n["stars"].as_i64().unwrap()).collect();
            assert!(stars.windows(2).all(|w| w[0] <= w[1]), "{query}: {stars:?}");
            for id in 1..=60 {
                assert!(
                    ids.contains(&id) || seen.len() > 200,
                    "{query}: record {id} was skipped"
                );
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
}

#[test]
fn hot_reload_adds_a_collection_and_refuses_a_change_of_type() {
    let dir = site("collections-reload", NOTES);
    let server = start(&dir);
    assert_eq!(
        post(&server, json!({"title": "kept", "stars": 3})).status,
        201
    );
    assert_eq!(send(&server, "GET", "/api/tags", &[], None).status, 404);
    let tags = "\n[[collection]]\nname = \"tags\"\npath = \"/api/tags\"\nfields.label = { type = \"string\" }\n";
    write_routes(&dir, &format!("{NOTES}{tags}"));
    let started = Instant::now();
    while send(&server, "GET", "/api/tags", &[], None).status != 200 {
        assert!(started.elapsed() < WAIT, "the new collection is not served");
        std::thread::sleep(Duration::from_millis(20));
    }
    let label = send(
        &server,
        "POST",
        "/api/tags",
        &[JSON],
        Some(r#"{"label": "x"}"#),
    );
    assert_eq!(label.status, 201);
    // `stars` holds integers: it cannot become a string; the running routes stay.
    write_routes(
        &dir,
        &format!(
            "{}{tags}",
            NOTES.replace("\"integer\", min = 0, max = 5", "\"string\"")
        ),
    );
    let line = server.wait_error("refused");
    assert!(
        line.contains(
            "field \"stars\" cannot change from integer to string while 1 records hold a value"
        ),
        "{line}"
    );
    assert_eq!(
        post(&server, json!({"title": "still", "stars": 4})).status,
        201
    );
    assert_eq!(
        post(&server, json!({"title": "still", "stars": "4"})).status,
        422
    );
}
