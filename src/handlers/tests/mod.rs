//! Handler tests: requests parsed from bytes, routed and handled without any socket.

mod collections;
mod files;
mod queries;

use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::*;
use crate::api::sqlite::SqliteStore;
use crate::api::store::{Store, SyncMode};
use crate::config::{Config, Overrides};
use crate::http::Body;
use crate::http::request::parsed as request;
use crate::http::response::Content;

/// The address handler tests pretend to be.
const PEER: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

struct Site {
    dir: PathBuf,
    app: App,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn site(name: &str) -> Site {
    site_with(name, "")
}

/// The fixture site, with `extra` appended to its routes file.
fn site_with(name: &str, extra: &str) -> Site {
    let dir = std::env::temp_dir().join(format!("tws-handlers-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("site/files/inner")).unwrap();
    std::fs::write(dir.join("site/index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(dir.join("site/big.txt"), "x".repeat(5000)).unwrap();
    std::fs::write(dir.join("site/files/a b.txt"), "spaced").unwrap();
    std::fs::write(dir.join("site/files/.secret"), "hidden").unwrap();
    std::fs::write(dir.join("site/files/inner/index.html"), "inner index").unwrap();
    std::fs::write(dir.join("secret.txt"), "outside").unwrap();
    std::fs::write(dir.join("site/digits.txt"), "0123456789".repeat(100)).unwrap();
    std::fs::write(dir.join("site/files/doc.txt"), "plain document").unwrap();
    std::fs::write(dir.join("site/files/doc.txt.gz"), "gzip variant").unwrap();
    std::fs::write(dir.join("site/files/doc.txt.br"), "brotli variant").unwrap();
    std::fs::write(dir.join("site/files/notes.md"), "# notes").unwrap();
    std::fs::write(dir.join("site/404.html"), "<h1>custom not found</h1>").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("site/files/escape.txt")).unwrap();
    let routes = r#"
[server]
root = "site"

[[route]]
path = "/"
page = "index.html"

[[route]]
path = "/bigfile"
file = "big.txt"
download = true

[[route]]
path = "/digits"
file = "digits.txt"
cache_control = "public, max-age=60"

[[route]]
path = "/files"
dir = "files"
listing = true

[[route]]
path = "/createUser"
action = "create_user"

[[route]]
path = "/users"
action = "list_users"

[[route]]
path = "/users/{id}"
action = "get_user"
"#;
    std::fs::write(dir.join("routes.toml"), format!("{routes}{extra}")).unwrap();
    let config = Config::load(&dir.join("routes.toml"), &Overrides::default()).unwrap();
    let store = SqliteStore::open(&config.server.data, SyncMode::Group).unwrap();
    store.prepare(&config.collections).unwrap();
    let app = App::from_config(&config, Some(Arc::new(store)));
    Site { dir, app }
}

/// Routes and handles a request, returning the response and its body bytes.
fn exchange(
    app: &App,
    method: &str,
    target: &str,
    headers: &str,
    body: &str,
) -> (Response, Vec<u8>) {
    let raw = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n");
    let req = request(&raw);
    let mut response = match app.route(&req, PEER) {
        Dispatch::Answer(r, _) => r,
        Dispatch::Run(routed) => handle(app, &req, &routed, body.as_bytes()).0,
    };
    let bytes = body_bytes(std::mem::replace(&mut response.body, Body::Empty));
    response.body = Body::Bytes(bytes.clone());
    (response, bytes)
}

/// Runs `App::handle` and waits for its reply (which may come from the store's committer).
fn handle(app: &App, req: &Request, routed: &Routed, body: &[u8]) -> (Response, Option<Cacheable>) {
    let (tx, rx) = std::sync::mpsc::channel();
    app.handle(
        req,
        routed,
        body,
        Reply::new(move |r, set| tx.send((r, set)).unwrap()),
    );
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("a reply")
}

/// Every byte a body would put on the wire.
fn body_bytes(body: Body) -> Vec<u8> {
    let range = |content: &Content, offset: u64, len: u64| match content {
        Content::Memory(b) => b[offset as usize..(offset + len) as usize].to_vec(),
        Content::File(file) => {
            let mut b = vec![0u8; len as usize];
            file.read_exact_at(&mut b, offset).unwrap();
            b
        }
    };
    match body {
        Body::Empty => Vec::new(),
        Body::Bytes(b) => b,
        Body::Stream(mut producer) => {
            let mut out = Vec::new();
            while let Some(piece) = producer.produce().unwrap() {
                out.extend(piece);
            }
            out
        }
        // What a live body has queued so far.
        Body::Live(mut feed) => {
            let mut pieces = Vec::new();
            feed.take(&mut pieces);
            pieces.concat()
        }
        Body::Static(b) => b.to_vec(),
        Body::Content {
            content,
            offset,
            len,
        } => range(&content, offset, len),
        Body::Multipart {
            content,
            parts,
            tail,
        } => {
            let mut out = Vec::new();
            for part in parts {
                out.extend_from_slice(&part.head);
                out.extend_from_slice(&range(&content, part.offset, part.len));
            }
            out.extend_from_slice(&tail);
            out
        }
    }
}

/// A header from `headers` or from the serialised `fixed` block.
fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    let listed = response.headers.iter().map(|(n, v)| (*n, v.as_str()));
    let fixed = response
        .fixed
        .as_deref()
        .map(|b| std::str::from_utf8(b).unwrap())
        .unwrap_or("")
        .split("\r\n")
        .filter_map(|line| line.split_once(": "));
    listed
        .chain(fixed)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[test]
fn serves_each_kind_of_route_with_the_right_status() {
    let site = site("kinds");
    // (method, target, expected status, expected body start)
    let cases: &[(&str, &str, u16, &str)] = &[
        ("GET", "/", 200, "<h1>home"),
        ("HEAD", "/", 200, "<h1>home"),
        ("GET", "/bigfile", 200, "xxxx"),
        ("GET", "/files/a%20b.txt", 200, "spaced"),
        ("GET", "/files/inner/", 200, "inner index"),
        ("GET", "/files/", 200, "<!DOCTYPE html>"),
        ("GET", "/files/.secret", 404, "404 Not Found"),
        ("GET", "/files/escape.txt", 404, "404 Not Found"),
        ("GET", "/files/missing", 404, "404 Not Found"),
        ("GET", "/nothing", 404, "404 Not Found"),
        ("GET", "/files/%2e%2e/secret.txt", 404, "404 Not Found"),
        (
            "GET",
            "/files/%2e%2e/%2e%2e/secret.txt",
            400,
            "400 Bad Request",
        ),
        ("GET", "/files/..%2fsecret.txt", 400, "400 Bad Request"),
        ("GET", "/files/..%5csecret.txt", 400, "400 Bad Request"),
        ("GET", "/files/a%00b", 400, "400 Bad Request"),
        ("GET", "/../secret.txt", 400, "400 Bad Request"),
        ("POST", "/", 405, "405 Method Not Allowed"),
        ("GET", "/createUser", 405, "{\"error\""),
        ("GET", "/users/99", 404, "{\"error\""),
        ("GET", "/users/abc", 404, "{\"error\""),
        ("GET", "/users", 200, "[]"),
    ];
    for (method, target, status, start) in cases {
        let (response, body) = exchange(&site.app, method, target, "", "");
        let text = String::from_utf8_lossy(&body);
        assert_eq!(response.status, *status, "{method} {target}: {text}");
        assert!(text.starts_with(start), "{method} {target}: {text}");
    }
}

#[test]
fn folders_redirect_to_their_slash_form_on_the_same_host() {
    let site = site("slash");
    for (target, location) in [
        ("/files", "/files/"),
        ("/files/inner", "/files/inner/"),
        ("/files/inner?x=1", "/files/inner/"),
        ("//evil.example/../files", "/files/"),
    ] {
        let (response, _) = exchange(&site.app, "GET", target, "", "");
        assert_eq!(response.status, 301, "{target}");
        let got = header(&response, "Location").unwrap();
        assert!(
            got.starts_with(location) && !got.starts_with("//"),
            "{target} -> {got}"
        );
    }
}

#[test]
fn file_headers_are_typed_and_downloads_named() {
    let site = site("headers");
    let (response, body) = exchange(&site.app, "GET", "/bigfile", "", "");
    assert_eq!(response.content_type, "text/plain; charset=utf-8");
    assert_eq!(
        header(&response, "Content-Disposition"),
        Some("attachment; filename=\"big.txt\"")
    );
    assert_eq!(body.len(), 5000);
    let (response, _) = exchange(&site.app, "GET", "/", "", "");
    assert_eq!(response.content_type, "text/html; charset=utf-8");
}

#[test]
fn options_lists_the_allowed_methods() {
    let site = site("options");
    let (response, _) = exchange(&site.app, "OPTIONS", "/createUser", "", "");
    assert_eq!(
        (response.status, header(&response, "Allow")),
        (204, Some("POST, OPTIONS"))
    );
    let (response, _) = exchange(&site.app, "OPTIONS", "*", "", "");
    assert_eq!(header(&response, "Allow"), Some("GET, HEAD, POST, OPTIONS"));
}

#[test]
fn create_user_validates_stores_and_answers_201() {
    let site = site("create");
    let json = "Content-Type: application/json\r\n";
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    // (headers, body, expected status)
    let cases: &[(&str, &str, u16)] = &[
        (json, r#"{"Nombre": "  Ana  "}"#, 201),
        (form, "Nombre=Bo", 201),
        (
            "Content-Type: application/json; charset=utf-8\r\n",
            r#"{"Nombre": "Cy"}"#,
            201,
        ),
        (json, r#"{"Nombre": "#, 400),
        (json, r#"{"Name": "x"}"#, 422),
        (json, r#"{"Nombre": ""}"#, 422),
        (
            json,
            &format!(r#"{{"Nombre": "{}"}}"#, "a".repeat(101)),
            422,
        ),
        ("Content-Type: text/plain\r\n", "Nombre=Ana", 415),
        ("", "Nombre=Ana", 415),
    ];
    for (headers, body, status) in cases {
        let (response, bytes) = exchange(&site.app, "POST", "/createUser", headers, body);
        assert_eq!(
            response.status,
            *status,
            "{headers}{body}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(response.content_type, "application/json");
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if *status != 201 {
            assert!(value["error"].is_string(), "{value}");
        }
    }
    let (response, bytes) = exchange(&site.app, "POST", "/createUser", json, r#"{"Nombre":"Di"}"#);
    assert_eq!(header(&response, "Location"), Some("/users/4"));
    let user: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (user["id"].as_u64(), user["Nombre"].as_str()),
        (Some(4), Some("Di"))
    );
    assert!(user["created"].as_str().unwrap().ends_with('Z'));
    let (_, bytes) = exchange(&site.app, "GET", "/users", "", "");
    let users: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["Nombre"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ana", "Bo", "Cy", "Di"]);
    let (response, bytes) = exchange(&site.app, "GET", "/users/2", "", "");
    assert_eq!(response.status, 200);
    assert!(String::from_utf8_lossy(&bytes).contains("\"Nombre\":\"Bo\""));
}

#[test]
fn a_reply_dropped_unsent_answers_500() {
    let (tx, rx) = std::sync::mpsc::channel();
    let reply = Reply::new(move |r, _| tx.send(r.status).unwrap());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _reply = reply;
        panic!("a handler bug");
    }));
    assert!(outcome.is_err());
    assert_eq!(rx.try_recv(), Ok(500));
}
