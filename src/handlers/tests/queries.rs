//! Collection queries through the handler: operators, full-text search with its cursor,
//! `count=exact`, `fields`, and batch creates.

use serde_json::{Value, json};

use super::*;

const PEOPLE: &str = r#"
[[collection]]
name = "people"
path = "/people"
max_batch = 50
fields.name = { type = "string", required = true, search = true, index = true }
fields.bio = { type = "string", search = true }
fields.age = { type = "integer", index = true }
fields.score = { type = "number" }
fields.member = { type = "boolean" }
fields.seen = { type = "datetime" }

[[collection]]
name = "plain"
path = "/plain"
fields.n = { type = "integer" }
"#;

const JSON: &str = "Content-Type: application/json\r\n";

fn call(site: &Site, method: &str, target: &str, body: &str) -> (u16, Value, Response) {
    let headers = if body.is_empty() { "" } else { JSON };
    let (response, bytes) = exchange(&site.app, method, target, headers, body);
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (response.status, value, response)
}

fn people(site: &Site) {
    let names = ["Ana", "Andrés", "Bob", "Carla", "Dan", "Anabel"];
    let records: Vec<Value> = (0..30)
        .map(|i| {
            json!({
                "name": names[i % names.len()],
                "bio": if i % 3 == 0 { "likes rust and tea" } else { "likes tea" },
                "age": 10 + i * 3,
                "score": i as f64 / 2.0,
                "member": i % 2 == 0,
                "seen": format!("2026-11-{:02}T10:00:00Z", 1 + i % 28),
            })
        })
        .collect();
    let (status, made, _) = call(site, "POST", "/people", &Value::from(records).to_string());
    assert_eq!(status, 201, "{made}");
    assert_eq!(made.as_array().map(Vec::len), Some(30));
}

/// Every record of every page, by their Link headers.
fn walk(site: &Site, start: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut target = Some(start.to_owned());
    while let Some(t) = target.take() {
        let (status, page, response) = call(site, "GET", &t, "");
        assert_eq!(status, 200, "{t}: {page}");
        seen.extend(page.as_array().unwrap().iter().cloned());
        target = header(&response, "Link").map(|link| link[1..link.find('>').unwrap()].to_owned());
        assert!(seen.len() < 1000);
    }
    seen
}

#[test]
fn operators_filter_and_pages_keep_following_them() {
    let site = site_with("queries-operators", PEOPLE);
    people(&site);
    // (query, what every record returned must satisfy, how many)
    type Check = fn(&Value) -> bool;
    let cases: &[(&str, Check, usize)] = &[
        (
            "age[gte]=40&age[lt]=70",
            |r| (40..70).contains(&r["age"].as_i64().unwrap()),
            10,
        ),
        (
            "name[prefix]=An",
            |r| r["name"].as_str().unwrap().starts_with("An"),
            15,
        ),
        (
            "name[in]=Bob,Dan",
            |r| ["Bob", "Dan"].contains(&r["name"].as_str().unwrap()),
            10,
        ),
        ("member[ne]=true", |r| r["member"] == false, 15),
        ("score[gt]=10.5", |r| r["score"].as_f64().unwrap() > 10.5, 8),
        (
            "bio[contains]=rust",
            |r| r["bio"] == "likes rust and tea",
            10,
        ),
        (
            "seen[lt]=2026-11-03T00:00:00Z",
            |r| r["seen"].as_str().unwrap() < "2026-11-03",
            4,
        ),
        (
            "name=Ana&age[lte]=40",
            |r| r["name"] == "Ana" && r["age"].as_i64() <= Some(40),
            2,
        ),
    ];
    for (query, holds, count) in cases {
        for sort in ["", "&sort=-age", "&sort=name"] {
            let got = walk(&site, &format!("/people?limit=3&{query}{sort}"));
            assert_eq!(got.len(), *count, "{query}{sort}");
            assert!(got.iter().all(holds), "{query}{sort}: {got:?}");
            let mut ids: Vec<i64> = got.iter().map(|r| r["id"].as_i64().unwrap()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), *count, "{query}{sort}: a record repeated");
        }
    }
    for (query, want) in [
        (
            "/people?age[gte]=x",
            "\"age[gte]\": \"x\" is not an integer",
        ),
        ("/people?age.gte=1", "age[gte]=1"),
        ("/people?member[lt]=true", "lt does not apply to boolean"),
        ("/people?nope[eq]=1", "\"nope\" is not a field of people"),
    ] {
        let (status, body, _) = call(&site, "GET", query, "");
        assert_eq!(status, 400, "{query}");
        assert!(
            body["error"].as_str().unwrap().contains(want),
            "{query}: {body}"
        );
    }
}

#[test]
fn search_ranks_pages_by_relevance_and_counts_once() {
    let site = site_with("queries-search", PEOPLE);
    people(&site);
    call(
        &site,
        "POST",
        "/people",
        r#"{"name": "Rust Rust", "bio": "rust rust rust"}"#,
    );
    let ranked = walk(&site, "/people?q=rust&limit=2");
    assert_eq!(ranked.len(), 11);
    assert_eq!(ranked[0]["name"], "Rust Rust", "the most relevant first");
    let mut ids: Vec<i64> = ranked.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 11, "nothing repeated across ranked pages");
    let sorted = walk(&site, "/people?q=RUST+tea&sort=-age&limit=4");
    assert_eq!(sorted.len(), 10);
    let ages: Vec<i64> = sorted.iter().map(|r| r["age"].as_i64().unwrap()).collect();
    assert!(ages.windows(2).all(|w| w[0] > w[1]), "{ages:?}");
    // Query syntax is read as words.
    let (status, found, _) = call(&site, "GET", "/people?q=%22rust%22+OR+NEAR(x*)", "");
    assert_eq!((status, found.as_array().map(Vec::len)), (200, Some(0)));
    let (status, body, _) = call(&site, "GET", "/plain?q=x", "");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("search = true"));

    let (status, page, response) = call(&site, "GET", "/people?q=rust&count=exact&limit=1", "");
    assert_eq!((status, page.as_array().map(Vec::len)), (200, Some(1)));
    let totals: Vec<&str> = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-total-count"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(totals, ["11"], "X-Total-Count exactly once");
    let (_, _, response) = call(&site, "GET", "/people?age[lt]=20", "");
    assert_eq!(
        header(&response, "X-Total-Count"),
        None,
        "no count unless asked"
    );
}

#[test]
fn fields_project_and_batches_are_all_or_nothing() {
    let site = site_with("queries-batch", PEOPLE);
    people(&site);
    let (status, page, _) = call(&site, "GET", "/people?fields=id,name&limit=2", "");
    assert_eq!(status, 200);
    assert_eq!(
        page,
        json!([{"id": 1, "name": "Ana"}, {"id": 2, "name": "Andrés"}])
    );
    let (status, body, _) = call(&site, "GET", "/people?fields=id,password", "");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("\"password\""));

    let bad = r#"[{"name": "ok"}, {"name": "ok"}, {"name": "ok"}, {"age": 3}]"#;
    let (status, body, _) = call(&site, "POST", "/people", bad);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("record 3: "),
        "{body}"
    );
    let (status, body, _) = call(&site, "POST", "/people", r#"[{"name": "a"}, "x"]"#);
    assert_eq!(status, 400, "{body}");
    let many = Value::from(vec![json!({"name": "x"}); 51]).to_string();
    let (status, body, _) = call(&site, "POST", "/people", &many);
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("max_batch"),
        "{body}"
    );
    let (_, _, response) = call(&site, "GET", "/people?count=exact&limit=1", "");
    assert_eq!(
        header(&response, "X-Total-Count"),
        Some("30"),
        "nothing written"
    );
}
