//! Live updates across three nodes sharing one PostgreSQL: a subscriber on any node sees the
//! writes made on every node, each once, in commit order (change numbers contiguous and
//! increasing), including a burst of concurrent creates, updates and deletes; a subscriber
//! resuming from the shared log sees the same sequence; the log matches what psql reads. A
//! page in Chromium served by one node lists the users created through the two others.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use common::pg::Postgres;
use common::sse::{Event, Sse};
use common::{Server, WAIT, client, installed, scratch};
use serde_json::{Value, json};

const ROUTES: &str = r#"
[server]
root = "site"

[[route]]
path = "/metrics"
action = "metrics"

[[route]]
path = "/live"
page = "live.html"

[[collection]]
name = "users"
path = "/users"
fields.name = { type = "string", required = true }
fields.writer = { type = "integer" }
"#;

fn cluster(name: &str) -> Option<(Postgres, std::path::PathBuf, Vec<Server>)> {
    let pg = Postgres::start(name)?;
    let url = pg.database("live");
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/live.html"), common::sse::LIVE_PAGE).unwrap();
    std::fs::write(dir.join("routes.toml"), ROUTES).unwrap();
    let nodes: Vec<Server> = (0..3).map(|_| node(&dir, &url)).collect();
    Some((pg, dir, nodes))
}

fn node(dir: &Path, url: &str) -> Server {
    Server::start(&[
        "--config",
        dir.join("routes.toml").to_str().unwrap(),
        "--store",
        url,
    ])
}

/// A request; its status and JSON body.
fn send(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("Content-Type", "application/json")
        .body(body.map(|b| b.to_string()).unwrap_or_default())
        .unwrap();
    let mut response = client().run(request).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn events(sse: &Sse, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            sse.event(WAIT)
                .unwrap_or_else(|| panic!("event {i} of {n} did not come"))
        })
        .collect()
}

/// What a change was: its kind and record.
fn what(events: &[Event]) -> Vec<(String, i64)> {
    events
        .iter()
        .map(|e| (e.kind.clone(), e.json()["id"].as_i64().unwrap()))
        .collect()
}

#[test]
fn every_node_sees_every_write_once_in_commit_order() {
    let Some((pg, _dir, nodes)) = cluster("live-nodes") else {
        return;
    };
    let url = pg.url("live");
    let on_c = Sse::curl(&nodes[2].url("/users/events"), &[]);
    let on_a = Sse::curl(&nodes[0].url("/users/events"), &["--http2-prior-knowledge"]);
    on_c.subscribed();
    on_a.subscribed();
    // A burst on A and B at once: 6 writers, each creating records, updating every one and
    // deleting every third.
    let bases: Arc<Vec<String>> = Arc::new(nodes[..2].iter().map(|n| n.url("")).collect());
    let per_writer = 30;
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let bases = Arc::clone(&bases);
            std::thread::spawn(move || {
                let base = &bases[w % 2];
                let mut done = Vec::new();
                for i in 0..per_writer {
                    let record = json!({"name": format!("w{w}-{i}"), "writer": w});
                    let (status, made) = send(base, "POST", "/users", Some(record));
                    assert_eq!(status, 201);
                    let id = made["id"].as_i64().unwrap();
                    done.push(("created".to_owned(), id));
                    let path = format!("/users/{id}");
                    let patch = Some(json!({"name": format!("w{w}-{i}!")}));
                    assert_eq!(send(base, "PATCH", &path, patch).0, 200);
                    done.push(("updated".to_owned(), id));
                    if i % 3 == 0 {
                        assert_eq!(send(base, "DELETE", &path, None).0, 204);
                        done.push(("deleted".to_owned(), id));
                    }
                }
                done
            })
        })
        .collect();
    let mut acknowledged = BTreeSet::new();
    for writer in writers {
        acknowledged.extend(writer.join().unwrap());
    }
    let total = acknowledged.len();
    let from_c = events(&on_c, total);
    let from_a = events(&on_a, total);
    let numbers: Vec<i64> = from_c.iter().map(|e| e.id.unwrap()).collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "change numbers are contiguous and in order: {numbers:?}"
    );
    let seen: BTreeSet<(String, i64)> = what(&from_c).into_iter().collect();
    assert_eq!(seen.len(), total, "none twice");
    assert_eq!(seen, acknowledged, "none lost");
    assert_eq!(what(&from_a), what(&from_c), "every node, one order");
    // Per record, the order it was written in.
    for (kind, id) in what(&from_c) {
        if kind != "created" {
            let first = what(&from_c).iter().position(|(_, i)| *i == id).unwrap();
            assert_eq!(what(&from_c)[first].0, "created", "record {id}");
        }
    }
    assert!(
        on_c.next(std::time::Duration::from_millis(300))
            .is_none_or(|e| e.kind == "comment")
    );
    // Resuming on B from the shared log gives the same sequence.
    let before_first = format!("Last-Event-ID: {}", numbers[0] - 1);
    let on_b = Sse::curl(&nodes[1].url("/users/events"), &["-H", &before_first]);
    assert_eq!(what(&events(&on_b, total)), what(&from_c));
    // The log as PostgreSQL holds it.
    if installed("psql") {
        let out = std::process::Command::new("psql")
            .args([
                &url,
                "-Atc",
                "SELECT change FROM tws.changes ORDER BY change",
            ])
            .output()
            .unwrap();
        let logged: Vec<i64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect();
        assert_eq!(logged, numbers);
    }
}

#[test]
fn a_page_on_one_node_lists_what_the_two_others_create() {
    let Some((_pg, dir, nodes)) = cluster("live-nodes-browser") else {
        return;
    };
    let writers = vec![nodes[0].url(""), nodes[1].url("")];
    let writer = common::sse::write_when_subscribed(nodes[2].url(""), writers);
    let profile = dir.join("profile");
    let Some(dom) = common::browser::dump_dom(&nodes[2].url("/live"), &profile, &[]) else {
        return;
    };
    writer.join().unwrap();
    assert_eq!(
        common::browser::text_of(&dom, "result"),
        "Ana,Bo,Cy",
        "{dom}"
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
