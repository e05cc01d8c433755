//! Collection queries through a running tws, on SQLite and on PostgreSQL (a throwaway
//! cluster), with plain HTTP requests as curl sends them: operators on every field type,
//! full-text search ranked and sorted with cursors, `count=exact` (its header exactly once),
//! `fields`, batch creates all or nothing, the OpenAPI document, and its rebuild on reload.

mod common;

use common::pg::Postgres;
use common::{Reply, Server, one};
use serde_json::{Value, json};

const ROUTES: &str = "tests/data/openapi-routes.toml";

/// A request as `curl -X METHOD [-d BODY] URL` sends it (with the test realm's login).
fn curl(server: &Server, method: &str, target: &str, body: Option<&Value>) -> Reply {
    let body = body.map(Value::to_string).unwrap_or_default();
    let kind = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{}{kind}\r\n",
        common::basic("alice", "secret")
    );
    one(server, format!("{head}{body}").as_bytes())
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
}

/// Every record of every page from `start`, following `Link`.
fn walk(server: &Server, start: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut target = Some(start.to_owned());
    while let Some(t) = target.take() {
        let reply = curl(server, "GET", &t, None);
        assert_eq!(reply.status, 200, "{t}: {}", reply.text());
        all.extend(json_of(&reply).as_array().unwrap().iter().cloned());
        target = reply.header("link").map(|l| {
            let path = &l[1..l.find('>').unwrap()];
            path.to_owned()
        });
        assert!(all.len() < 10_000, "pages do not end");
    }
    all
}

fn ids(records: &[Value]) -> Vec<i64> {
    records.iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

fn people() -> Vec<Value> {
    let words = ["apple", "banana", "cherry"];
    (0..60)
        .map(|i| {
            json!({
                "name": format!("{} {i}", ["Ana", "Andrés", "Bob", "Zoë"][i % 4]),
                "nick": format!("n{i:02}"),
                "bio": format!("{} pie", words[i % 3]),
                "age": i,
                "score": i as f64 / 4.0,
                "member": i % 2 == 0,
                "seen": format!("2026-01-{:02}T12:00:00Z", 1 + i % 28),
                "mail": format!("p{i}@example.org"),
            })
        })
        .collect()
}

fn queries(server: &Server) {
    // In batches of `max_batch` (20).
    for batch in people().chunks(20) {
        let made = curl(
            server,
            "POST",
            "/people",
            Some(&Value::from(batch.to_vec())),
        );
        assert_eq!(made.status, 201, "{}", made.text());
        assert_eq!(json_of(&made).as_array().unwrap().len(), 20);
    }

    // (query, the ids every page together must hold)
    let range = |f: fn(i64) -> bool| (1..=60).filter(|i| f(i - 1)).collect::<Vec<i64>>();
    let cases: Vec<(&str, Vec<i64>)> = vec![
        ("age[gte]=18&age[lt]=25", range(|i| (18..25).contains(&i))),
        ("age[in]=3,5,7", vec![4, 6, 8]),
        ("age[ne]=0&age[lte]=2", vec![2, 3]),
        ("score[gt]=14", range(|i| i as f64 / 4.0 > 14.0)),
        ("name[prefix]=An", range(|i| i % 4 < 2)),
        ("name[prefix]=Zo%C3%AB", range(|i| i % 4 == 3)),
        ("nick[in]=n01,n02", vec![2, 3]),
        ("bio[contains]=err", range(|i| i % 3 == 2)),
        ("member[ne]=true&age[lt]=6", vec![2, 4, 6]),
        ("member=false&age[lt]=6", vec![2, 4, 6]),
        ("seen[lt]=2026-01-03T00:00:00Z", range(|i| i % 28 < 2)),
        (
            "mail[prefix]=p5",
            vec![6, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60],
        ),
    ];
    for (query, want) in &cases {
        for sort in ["", "&sort=-age", "&sort=name", "&sort=-seen"] {
            let mut got = ids(&walk(server, &format!("/people?limit=4&{query}{sort}")));
            got.sort_unstable();
            assert_eq!(&got, want, "{query}{sort}");
        }
    }
    // Refusals, of a list's query and of a record's (which takes `fields` alone).
    for (target, want) in [
        (
            "/people?age[gte]=x",
            "\"age[gte]\": \"x\" is not an integer",
        ),
        ("/people?age.gte=1", "age[gte]=1"),
        (
            "/people?seen[prefix]=2026",
            "prefix does not apply to datetime",
        ),
        (
            "/people?colour[eq]=red",
            "\"colour\" is not a field of people",
        ),
        ("/people?fields=id,colour", "\"colour\" is not a field"),
        ("/people/2?fields=id,colour", "\"colour\" is not a field"),
        ("/people/2?colour=red", "unknown query parameter \"colour\""),
    ] {
        let reply = curl(server, "GET", target, None);
        assert_eq!(reply.status, 400, "{target}");
        let error = json_of(&reply)["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.contains(want), "{target}: {error}");
    }

    // Search: every word, most relevant first, pages by (relevance, id).
    let extra = json!({"name": "Cherry Cherry", "bio": "cherry cherry cherry pie"});
    assert_eq!(curl(server, "POST", "/people", Some(&extra)).status, 201);
    let ranked = walk(server, "/people?q=cherry&limit=3");
    assert_eq!(ranked.len(), 21);
    assert_eq!(ranked[0]["name"], "Cherry Cherry");
    let mut distinct = ids(&ranked);
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 21, "no record twice across ranked pages");
    // With another condition the matches are read with their records: the same order.
    let young: Vec<&Value> = ranked
        .iter()
        .filter(|r| r["age"].as_i64().is_some_and(|age| age < 30))
        .collect();
    let filtered = walk(server, "/people?q=cherry&limit=2&age[lt]=30");
    assert_eq!(
        ids(&filtered),
        ids(&young.into_iter().cloned().collect::<Vec<_>>())
    );
    let sorted = walk(server, "/people?q=CHERRY+pie&sort=-age&limit=5&age[lt]=30");
    let ages: Vec<i64> = sorted.iter().map(|r| r["age"].as_i64().unwrap()).collect();
    assert_eq!(ages, [29, 26, 23, 20, 17, 14, 11, 8, 5, 2]);
    let injected = curl(
        server,
        "GET",
        "/people?q=%22cherry%22+OR+apple*+NEAR(x)",
        None,
    );
    assert_eq!((injected.status, json_of(&injected)), (200, json!([])));

    // count=exact: the total once; nothing without it.
    let counted = curl(server, "GET", "/people?q=cherry&count=exact&limit=2", None);
    let totals: Vec<&str> = counted
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-total-count"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(totals, ["21"]);
    assert_eq!(
        curl(server, "GET", "/people?limit=2", None).header("x-total-count"),
        None
    );

    // fields
    let some = curl(server, "GET", "/people?fields=id,age&age[lt]=2", None);
    assert_eq!(
        json_of(&some),
        json!([{"id": 1, "age": 0}, {"id": 2, "age": 1}])
    );
    // ... and of one record, twice (the second from memory where the store keeps it).
    for _ in 0..2 {
        let one = curl(server, "GET", "/people/2?fields=age,id", None);
        assert_eq!(
            (one.status, json_of(&one)),
            (200, json!({"id": 2, "age": 1}))
        );
        assert_eq!(
            one.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("etag"))
                .count(),
            1
        );
    }

    // A batch is all or nothing, and names the first record refused.
    let mut bad = people()[..20].to_vec();
    bad[7]["age"] = json!(200);
    let refused = curl(server, "POST", "/people", Some(&Value::from(bad)));
    assert_eq!(refused.status, 422);
    let error = json_of(&refused)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(error, "record 7: \"age\" must be at most 150");
    let total = curl(server, "GET", "/people?count=exact&limit=1", None);
    assert_eq!(total.header("x-total-count"), Some("61"));

    // A method the list does not allow: 405 naming those it does.
    let put = curl(server, "PUT", "/people", Some(&json!({})));
    assert_eq!(put.status, 405);
    assert!(put.header("allow").is_some_and(|a| a.contains("POST")));
}

#[test]
fn queries_on_sqlite() {
    let data = common::scratch("queries-sqlite");
    let server = Server::start(&["--config", ROUTES, "--data", data.to_str().unwrap()]);
    queries(&server);
}

#[test]
fn queries_on_postgres() {
    let Some(pg) = Postgres::start("queries") else {
        return;
    };
    let url = pg.database("queries");
    let data = common::scratch("queries-pg");
    let server = Server::start(&[
        "--config",
        ROUTES,
        "--data",
        data.to_str().unwrap(),
        "--store",
        &url,
    ]);
    queries(&server);
}

#[test]
fn the_openapi_document_follows_the_routes_file() {
    let dir = common::scratch("queries-openapi");
    let routes = dir.join("routes.toml");
    let text = std::fs::read_to_string(common::repo().join(ROUTES)).unwrap();
    std::fs::write(&routes, &text).unwrap();
    let data = dir.join("data");
    let server = Server::start(&[
        "--config",
        routes.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    let doc = json_of(&curl(&server, "GET", "/openapi.json", None));
    assert_eq!(doc["openapi"], "3.1.0");
    let list = &doc["paths"]["/people"]["get"];
    let names: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "limit",
        "after",
        "sort",
        "fields",
        "count",
        "q",
        "age[gte]",
        "name[prefix]",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_eq!(
        doc["paths"]["/audit"]["get"]["security"],
        json!([{"basic_staff": []}])
    );
    assert_eq!(
        doc["components"]["schemas"]["PeopleInput"]["required"],
        json!(["name"])
    );
    assert!(doc["paths"]["/audit/{id}"]["patch"]["parameters"][1]["required"] == true);

    // A reload rebuilds it: a new field, searchable.
    let changed = text.replace(
        "fields.mail = {",
        "fields.city = { type = \"string\", search = true }\nfields.mail = {",
    );
    std::fs::write(&routes, changed).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let doc = json_of(&curl(&server, "GET", "/openapi.json", None));
        if doc["components"]["schemas"]["PeopleInput"]["properties"]["city"].is_object() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the document was not rebuilt"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let city = json!({"name": "x", "city": "Valparaíso"});
    assert_eq!(curl(&server, "POST", "/people", Some(&city)).status, 201);
    let found = curl(&server, "GET", "/people?q=valpara%C3%ADso", None);
    assert_eq!(
        json_of(&found).as_array().map(Vec::len),
        Some(1),
        "{}",
        found.text()
    );
}
