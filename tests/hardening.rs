//! What the last review found broken for browsers or open to attackers, each tried as a
//! client would: CORS headers exactly once (HTTP/1.1 and HTTP/2), files with a slash after
//! their name, clean URLs and fallbacks that led around another route's auth, pages of large
//! records bounded by bytes with short cursors, conditional requests on records, aliases of
//! record ids, compressed request bodies, absolute-form targets, a body cut off by FIN, file
//! modes of the database, and the data folder kept out of every listing.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Reply, Server, basic, hash, one, scratch};

fn request(server: &Server, method: &str, path: &str, fields: &str, body: &str) -> Reply {
    let length = if body.is_empty() && method == "GET" {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    one(
        server,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\n{fields}{length}Connection: close\r\n\r\n{body}"
        )
        .as_bytes(),
    )
}

/// How many times a response carries header `name`.
fn times(reply: &Reply, name: &str) -> usize {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
}

fn site(name: &str, routes: &str) -> (PathBuf, Server) {
    let dir = scratch(name);
    for folder in ["site/public", "site/app"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
    }
    std::fs::write(dir.join("site/public/a.txt"), "a").unwrap();
    std::fs::write(dir.join("site/admin.html"), "<p>admin page</p>").unwrap();
    std::fs::write(dir.join("site/index.html"), "<p>home</p>").unwrap();
    std::fs::write(dir.join("site/app/index.html"), "<p>app</p>").unwrap();
    std::fs::write(
        dir.join("routes.toml"),
        format!("[server]\nroot = \"site\"\ndata = \"data\"\n\n{routes}"),
    )
    .unwrap();
    let server = Server::start(&["--config", dir.join("routes.toml").to_str().unwrap()]);
    (dir, server)
}

#[test]
fn cors_headers_appear_exactly_once_over_http1_and_http2() {
    let routes = "[[route]]\npath = \"/public\"\ndir = \"public\"\n\
                  cors = { origins = [\"http://127.0.0.1:1\"], headers = [\"X-Custom\"], credentials = true, expose = [\"ETag\"] }\n";
    let (dir, server) = site("cors-once", routes);
    let preflight = request(
        &server,
        "OPTIONS",
        "/public/a.txt",
        "Origin: http://127.0.0.1:1\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: x-custom\r\n",
        "",
    );
    assert_eq!(preflight.status, 204);
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "vary",
    ] {
        assert_eq!(
            times(&preflight, name),
            1,
            "{name}: {:?}",
            preflight.headers
        );
    }
    assert_eq!(times(&preflight, "access-control-expose-headers"), 0);
    let actual = request(
        &server,
        "GET",
        "/public/a.txt",
        "Origin: http://127.0.0.1:1\r\n",
        "",
    );
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
    ] {
        assert_eq!(times(&actual, name), 1, "{name}: {:?}", actual.headers);
    }
    // The same preflight over HTTP/2, as curl sees it.
    let heads = dir.join("heads");
    let out = Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-X",
            "OPTIONS",
            "-o",
            "/dev/null",
            "-D",
        ])
        .arg(&heads)
        .args([
            "-H",
            "Origin: http://127.0.0.1:1",
            "-H",
            "Access-Control-Request-Method: GET",
        ])
        .arg(server.url("/public/a.txt"))
        .status()
        .unwrap();
    assert!(out.success());
    let text = std::fs::read_to_string(&heads).unwrap();
    let lines = |name: &str| {
        text.lines()
            .filter(|l| l.to_ascii_lowercase().starts_with(name))
            .count()
    };
    assert!(text.starts_with("HTTP/2 204"), "{text}");
    assert_eq!(lines("access-control-allow-origin:"), 1, "{text}");
    assert_eq!(lines("access-control-allow-credentials:"), 1, "{text}");
    assert_eq!(lines("vary:"), 1, "{text}");
}

#[test]
fn no_way_around_another_routes_auth_and_no_slash_after_a_file() {
    let routes = format!(
        "[auth.staff]\nusers = {{ alice = \"{}\" }}\n\n\
         [[route]]\npath = \"/\"\ndir = \".\"\nclean_urls = true\n\n\
         [[route]]\npath = \"/admin.html\"\nfile = \"admin.html\"\nauth = \"staff\"\n\n\
         [[route]]\npath = \"/app\"\ndir = \"app\"\nfallback = \"index.html\"\n\n\
         [[route]]\npath = \"/app/index.html\"\nfile = \"app/index.html\"\nauth = \"staff\"\n",
        hash("pw")
    );
    let (_dir, server) = site("no-way-around", &routes);
    let status = |path: &str| request(&server, "GET", path, "", "").status;
    assert_eq!(status("/public/a.txt"), 200);
    assert_eq!(status("/public/a.txt/"), 404);
    assert_eq!(status("/admin.html"), 401);
    assert_eq!(status("/admin.html/"), 404);
    // Clean URL and fallback lead to another route's file: that route's auth applies.
    assert_eq!(status("/admin"), 401);
    assert_eq!(status("/app/some/client/route"), 401);
    let admin = request(&server, "GET", "/admin", &basic("alice", "pw"), "");
    assert_eq!(
        (admin.status, admin.text().as_str()),
        (200, "<p>admin page</p>")
    );
    // Still refused without credentials after an authorised request (nothing cached).
    assert_eq!(status("/admin"), 401);
    assert_eq!(status("/index"), 200);
}

fn books(name: &str, extra: &str) -> (PathBuf, Server) {
    let routes = format!(
        "[[collection]]\nname = \"books\"\npath = \"/books\"\n{extra}\
         fields.title = {{ type = \"string\", required = true, index = true }}\n\
         fields.note = {{ type = \"string\" }}\n"
    );
    site(name, &routes)
}

fn create(server: &Server, json: &str) -> Reply {
    let reply = request(
        server,
        "POST",
        "/books",
        "Content-Type: application/json\r\n",
        json,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply
}

#[test]
fn pages_of_large_records_are_bounded_and_cursors_stay_short() {
    let (_dir, server) = books("pages-bytes", "max_page_bytes = 65536\n");
    let note = "n".repeat(20_000);
    for i in 0..12 {
        create(
            &server,
            &format!("{{\"title\": \"t{i:02}\", \"note\": \"{note}\"}}"),
        );
    }
    let mut path = "/books?limit=1000".to_owned();
    let mut seen = 0;
    for _ in 0..20 {
        let page = request(&server, "GET", &path, "", "");
        assert_eq!(page.status, 200);
        assert!(
            page.body.len() <= 65_536 + 20_100,
            "a page of {} bytes",
            page.body.len()
        );
        let records: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
        seen += records.as_array().unwrap().len();
        match page.header("link") {
            Some(link) => {
                assert!(link.len() < 100, "{link}");
                path = link[1..link.find('>').unwrap()].to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, 12);
    // Sorted by a 7,000-character value: the next link carries an id, not the value.
    let (_dir, server) = books("pages-sort", "");
    for c in ['a', 'b', 'c'] {
        create(
            &server,
            &format!("{{\"title\": \"{}\"}}", c.to_string().repeat(7000)),
        );
    }
    let first = request(&server, "GET", "/books?sort=-title&limit=1", "", "");
    let link = first.header("link").unwrap().to_owned();
    assert!(link.len() < 100, "{link}");
    let next = request(&server, "GET", &link[1..link.find('>').unwrap()], "", "");
    assert_eq!(next.status, 200);
    let record: serde_json::Value = serde_json::from_slice(&next.body).unwrap();
    assert!(record[0]["title"].as_str().unwrap().starts_with('b'));
}

#[test]
fn record_conditions_ids_and_encoded_bodies_follow_the_rfc() {
    let (_dir, server) = books("records-rfc", "");
    let made = create(&server, "{\"title\": \"one\"}");
    let etag = made.header("etag").unwrap().to_owned();
    let put = |fields: &str| {
        request(
            &server,
            "PUT",
            "/books/1",
            &format!("Content-Type: application/json\r\n{fields}"),
            "{\"title\": \"two\"}",
        )
        .status
    };
    assert_eq!(put("If-None-Match: *\r\n"), 412);
    assert_eq!(put(&format!("If-None-Match: {etag}\r\n")), 412);
    let get = |fields: &str| request(&server, "GET", "/books/1", fields, "").status;
    assert_eq!(get("If-Match: \"nope\"\r\n"), 412);
    assert_eq!(
        get(&format!("If-Match: \"nope\"\r\nIf-Match: {etag}\r\n")),
        200
    );
    assert_eq!(
        get(&format!(
            "If-None-Match: \"a\"\r\nIf-None-Match: {etag}\r\n"
        )),
        304
    );
    assert_eq!(
        put(&format!("If-Match: \"x\"\r\nIf-Match: {etag}\r\n")),
        200
    );
    // One record, one URL.
    assert_eq!(request(&server, "GET", "/books/01", "", "").status, 404);
    assert_eq!(request(&server, "GET", "/books/%31", "", "").status, 404);
    assert_eq!(request(&server, "GET", "/books/1", "", "").status, 200);
    // A compressed body is refused, naming its coding.
    let gz = request(
        &server,
        "POST",
        "/books",
        "Content-Type: application/json\r\nContent-Encoding: gzip\r\n",
        "{\"title\": \"zip\"}",
    );
    assert_eq!(gz.status, 415);
    assert!(gz.text().contains("gzip"), "{}", gz.text());
}

#[test]
fn an_absolute_target_names_the_host_over_the_host_field() {
    let routes = "[[route]]\npath = \"/\"\ndir = \"public\"\nhost = \"b.example\"\n\n\
                  [[route]]\npath = \"/\"\ndir = \"app\"\n";
    let (_dir, server) = site("absolute-host", routes);
    let reply = one(
        &server,
        b"GET http://b.example/a.txt HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((reply.status, reply.text().as_str()), (200, "a"));
}

#[test]
fn a_body_cut_off_by_fin_is_dropped_at_once() {
    let (_dir, server) = books("body-fin", "");
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut stream = server.connect();
        stream
            .write_all(
                b"POST /books HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
            )
            .unwrap();
        stream.write_all(&[b' '; 300_000]).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        held.push(stream);
    }
    // Each connection is closed well before the 30 s body timeout.
    let started = Instant::now();
    for mut stream in held {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        let ended = stream.read_to_end(&mut rest);
        assert!(
            ended.is_ok()
                || matches!(ended, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{ended:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_database_is_for_the_owner_alone() {
    let (dir, server) = books("file-modes", "");
    create(&server, "{\"title\": \"x\"}");
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700);
    for file in ["data/tws.db", "data/tws.db-wal", "data/tws.lock"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

#[test]
fn the_data_folder_is_never_served_or_listed() {
    let dir = scratch("data-hidden");
    std::fs::write(dir.join("hello.txt"), "hi").unwrap();
    std::fs::create_dir_all(dir.join("data/tls")).unwrap();
    std::fs::write(dir.join("data/tws.db"), "the users").unwrap();
    let mut command = common::tws();
    command.current_dir(&dir).args(["--port", "0"]);
    let server = Server::spawn(command);
    server.wait_error("is inside the folder served");
    assert_eq!(request(&server, "GET", "/hello.txt", "", "").status, 200);
    for path in ["/data/tws.db", "/data/", "/data/tls/", "/data"] {
        assert_eq!(request(&server, "GET", path, "", "").status, 404, "{path}");
    }
    let listing = request(&server, "GET", "/", "", "");
    assert!(listing.text().contains("hello.txt"));
    assert!(!listing.text().contains("data/\""), "{}", listing.text());
}
