//! Declared collections through the handler: every method and status, validation, pages and
//! cursors, entity tags and preconditions, and browsers' forms.

use serde_json::{Value, json};

use super::*;
use crate::http::response::TEXT_HTML;

const THINGS: &str = r#"
[[collection]]
name = "things"
path = "/things"
form_redirect = "/?made={id}"
fields.name = { type = "string", required = true, min_length = 1, max_length = 10 }
fields.count = { type = "integer", min = 0, max = 100 }
fields.done = { type = "boolean" }
fields.due = { type = "datetime" }

[[collection]]
name = "strict"
path = "/strict"
require_if_match = true
methods = ["GET", "POST", "PATCH"]
fields.n = { type = "number" }
"#;

const JSON: &str = "Content-Type: application/json\r\n";
const PATCH: &str = "Content-Type: application/merge-patch+json\r\n";
const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

fn call(
    site: &Site,
    method: &str,
    target: &str,
    headers: &str,
    body: &str,
) -> (u16, Value, Response) {
    let (response, bytes) = exchange(&site.app, method, target, headers, body);
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (response.status, value, response)
}

#[test]
fn records_are_created_read_replaced_patched_and_deleted() {
    let site = site_with("collection-crud", THINGS);
    let (status, made, response) = call(
        &site,
        "POST",
        "/things",
        JSON,
        r#"{"name": " a ", "count": 3}"#,
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(header(&response, "Location"), Some("/things/1"));
    assert_eq!(header(&response, "ETag"), Some("\"1-1\""));
    assert_eq!(
        (made["id"].as_i64(), made["name"].as_str()),
        (Some(1), Some("a"))
    );
    assert!(made["created"].is_string() && made.get("updated").is_none());

    let (status, got, response) = call(&site, "GET", "/things/1", "", "");
    assert_eq!((status, &got), (200, &made));
    assert_eq!(header(&response, "ETag"), Some("\"1-1\""));
    let (status, _, response) = call(&site, "GET", "/things/1", "If-None-Match: \"1-1\"\r\n", "");
    assert_eq!((status, header(&response, "ETag")), (304, Some("\"1-1\"")));

    // PUT replaces: the fields not given are gone.
    let (status, put, response) = call(
        &site,
        "PUT",
        "/things/1",
        JSON,
        r#"{"name": "b", "done": true}"#,
    );
    assert_eq!(status, 200, "{put}");
    assert_eq!(header(&response, "ETag"), Some("\"1-2\""));
    assert_eq!(
        (
            put["name"].as_str(),
            put.get("count"),
            put["done"].as_bool()
        ),
        (Some("b"), None, Some(true))
    );
    assert!(put["updated"].is_string());
    assert_eq!(put["created"], made["created"]);

    // PATCH merges; null removes.
    let patch = r#"{"count": 7, "done": null, "due": "2026-11-25T15:30:33+01:00"}"#;
    let (status, patched, _) = call(
        &site,
        "PATCH",
        "/things/1",
        &format!("{PATCH}If-Match: \"1-2\"\r\n"),
        patch,
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (
            patched["count"].as_i64(),
            patched.get("done"),
            patched["due"].as_str()
        ),
        (Some(7), None, Some("2026-11-25T14:30:33Z"))
    );
    // The old tag no longer matches.
    let stale = format!("{JSON}If-Match: \"1-2\"\r\n");
    assert_eq!(
        call(&site, "PATCH", "/things/1", &stale, r#"{"count": 8}"#).0,
        412
    );
    assert_eq!(
        call(&site, "DELETE", "/things/1", "If-Match: \"1-2\"\r\n", "").0,
        412
    );
    assert_eq!(call(&site, "GET", "/things/1", "", "").1["count"], 7);
    let (status, _, response) = call(&site, "DELETE", "/things/1", "If-Match: *\r\n", "");
    assert_eq!((status, response.body.len()), (204, 0));
    for method in ["GET", "DELETE"] {
        assert_eq!(call(&site, method, "/things/1", "", "").0, 404, "{method}");
    }
    assert_eq!(
        call(&site, "PUT", "/things/1", JSON, r#"{"name": "c"}"#).0,
        404
    );
    // Ids are never reused.
    assert_eq!(
        call(&site, "POST", "/things", JSON, r#"{"name": "d"}"#).1["id"],
        2
    );
}

#[test]
fn bad_requests_get_the_right_status_and_a_reason() {
    let site = site_with("collection-errors", THINGS);
    assert_eq!(
        call(&site, "POST", "/things", JSON, r#"{"name": "x"}"#).0,
        201
    );
    let cases: &[(&str, &str, &str, &str, u16, &str)] = &[
        (
            "POST",
            "/things",
            JSON,
            r#"{"name": "x", "colour": 1}"#,
            422,
            "\"colour\" is not a field of things",
        ),
        (
            "POST",
            "/things",
            JSON,
            r#"{"count": 1}"#,
            422,
            "missing \"name\"",
        ),
        (
            "POST",
            "/things",
            JSON,
            r#"{"name": "x", "count": 101}"#,
            422,
            "at most 100",
        ),
        (
            "POST",
            "/things",
            JSON,
            r#"{"name": "x", "count": "1"}"#,
            422,
            "must be an integer",
        ),
        (
            "POST",
            "/things",
            JSON,
            r#"{"name": "x", "id": 5}"#,
            422,
            "\"id\" is not a field",
        ),
        (
            "POST",
            "/things",
            JSON,
            r#"{"name": "#,
            400,
            "not valid JSON",
        ),
        ("POST", "/things", JSON, "[1]", 400, "JSON object"),
        (
            "POST",
            "/things",
            "Content-Type: text/plain\r\n",
            "x",
            415,
            "Content-Type",
        ),
        (
            "POST",
            "/things",
            FORM,
            "name=x&count=lots",
            422,
            "must be an integer",
        ),
        (
            "POST",
            "/things",
            FORM,
            "name=x&colour=red",
            422,
            "\"colour\" is not a field",
        ),
        ("PUT", "/things/1", FORM, "name=x", 415, "application/json"),
        (
            "PUT",
            "/things/1",
            JSON,
            r#"{"count": 2}"#,
            422,
            "missing \"name\"",
        ),
        (
            "PATCH",
            "/things/1",
            JSON,
            r#"{"name": null}"#,
            422,
            "\"name\" is required",
        ),
        (
            "PATCH",
            "/things/1",
            JSON,
            r#"{"name": ""}"#,
            422,
            "\"name\" is empty",
        ),
        (
            "PATCH",
            "/things/1",
            JSON,
            r#"{"other": 1}"#,
            422,
            "\"other\" is not a field",
        ),
        (
            "PATCH",
            "/things/1",
            "Content-Type: text/plain\r\n",
            "{}",
            415,
            "merge-patch",
        ),
        ("GET", "/things/0", "", "", 404, "no such"),
        ("GET", "/things/-1", "", "", 404, "no such"),
        (
            "GET",
            "/things/99999999999999999999",
            "",
            "",
            404,
            "no such",
        ),
        ("GET", "/things?limit=0", "", "", 400, "limit"),
        (
            "GET",
            "/things?colour=red",
            "",
            "",
            400,
            "unknown query parameter \"colour\"",
        ),
        (
            "GET",
            "/things?sort=colour",
            "",
            "",
            400,
            "cannot sort by \"colour\"",
        ),
        ("GET", "/things?after=zz", "", "", 400, "cursor"),
        ("PATCH", "/strict/1", JSON, "{}", 428, "If-Match"),
        ("DELETE", "/strict/1", "", "", 405, "not allowed"),
        ("DELETE", "/things", "", "", 405, "not allowed"),
    ];
    for (method, target, headers, body, status, reason) in cases {
        let (got, value, _) = call(&site, method, target, headers, body);
        assert_eq!(got, *status, "{method} {target} {body}: {value}");
        let error = value["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{method} {target} {body}: {error}");
    }
    // Nothing refused was stored.
    assert_eq!(
        call(&site, "GET", "/things", "", "")
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn pages_follow_cursors_filters_and_sorts() {
    let site = site_with("collection-pages", THINGS);
    for i in 0..25 {
        let body = json!({"name": format!("n{}", i % 5), "count": (i * 7) % 11}).to_string();
        assert_eq!(call(&site, "POST", "/things", JSON, &body).0, 201);
    }
    // Walks pages by their Link headers, adding a record after the first page.
    let walk = |start: &str, add: bool| {
        let mut seen = Vec::new();
        let mut target = Some(start.to_owned());
        let mut pages = 0;
        while let Some(t) = target.take() {
            pages += 1;
            assert!(pages < 50, "pages do not end");
            let (status, page, response) = call(&site, "GET", &t, "", "");
            assert_eq!(status, 200, "{t}: {page}");
            seen.extend(page.as_array().unwrap().iter().cloned());
            if add && pages == 1 {
                call(
                    &site,
                    "POST",
                    "/things",
                    JSON,
                    r#"{"name": "late", "count": 100}"#,
                );
            }
            target = header(&response, "Link").map(|link| {
                assert!(link.ends_with(">; rel=\"next\""), "{link}");
                link[1..link.find('>').unwrap()].to_owned()
            });
        }
        seen
    };
    let ids = |records: &[Value]| {
        records
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let all = walk("/things?limit=10", true);
    assert_eq!(
        ids(&all),
        (1..=26).collect::<Vec<_>>(),
        "oldest first, the late one at the end"
    );
    let newest = walk("/things?limit=4&sort=-id", false);
    assert_eq!(ids(&newest), (1..=26).rev().collect::<Vec<_>>());
    let by_count = walk("/things?limit=3&sort=count", false);
    let counts: Vec<i64> = by_count
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .collect();
    assert_eq!(by_count.len(), 26);
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    let mut sorted_ids = ids(&by_count);
    sorted_ids.sort_unstable();
    assert_eq!(
        sorted_ids,
        (1..=26).collect::<Vec<_>>(),
        "nothing skipped or repeated"
    );
    let desc = walk("/things?limit=4&sort=-name", false);
    let names: Vec<&str> = desc.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0] >= w[1]), "{names:?}");
    let n2 = walk("/things?name=n2&limit=2", false);
    assert_eq!(n2.len(), 5);
    assert!(n2.iter().all(|r| r["name"] == "n2"));
    let both = walk("/things?name=n2&count=3&sort=-count", false);
    assert!(both.iter().all(|r| r["name"] == "n2" && r["count"] == 3));
    let (_, page, response) = call(&site, "GET", "/things", "", "");
    assert_eq!(
        (page.as_array().unwrap().len(), header(&response, "Link")),
        (26, None)
    );
}

#[test]
fn a_browser_form_is_sent_on_with_303_and_refusals_are_pages() {
    let site = site_with("collection-forms", THINGS);
    let browser = format!("{FORM}Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n");
    let (status, _, response) = call(
        &site,
        "POST",
        "/things",
        &browser,
        "name=Ana&count=4&done=on",
    );
    assert_eq!(
        (status, header(&response, "Location")),
        (303, Some("/?made=1"))
    );
    let (_, record, _) = call(&site, "GET", "/things/1", "", "");
    assert_eq!(
        (record["count"].as_i64(), record["done"].as_bool()),
        (Some(4), Some(true))
    );
    let (response, bytes) = exchange(&site.app, "POST", "/things", &browser, "name=");
    assert_eq!(
        (response.status, response.content_type.as_ref()),
        (422, TEXT_HTML)
    );
    assert!(String::from_utf8_lossy(&bytes).contains("&quot;name&quot; is empty"));
    // An API client sending a form keeps getting JSON.
    let (status, record, response) = call(&site, "POST", "/things", FORM, "name=Bo");
    assert_eq!((status, record["name"].as_str()), (201, Some("Bo")));
    assert_eq!(header(&response, "Location"), Some("/things/2"));
    // The old create_user route goes to the record when the collection names no page.
    let (status, _, response) = call(&site, "POST", "/createUser", &browser, "Nombre=Cy");
    assert_eq!(
        (status, header(&response, "Location")),
        (303, Some("/users/1"))
    );
}
