//! Site rules against the real server: redirects, clean URLs, SPA fallback, headers, CORS,
//! basic authentication and virtual hosts, each from routes.toml, the command line, and hot
//! reload.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Reply, Server, basic, hash, one, scratch, write_routes};

fn fetch(server: &Server, method: &str, path: &str, headers: &str) -> Reply {
    one(
        server,
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// A site with an app folder, a docs folder, and a private folder; `routes` is the whole
/// routes file below `[server]`.
fn site(name: &str, routes: &str) -> (PathBuf, Server) {
    let dir = scratch(name);
    let root = dir.join("site");
    for folder in ["app/assets", "docs/guide", "private", "a", "b"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    std::fs::write(root.join("app/index.html"), "<p>app shell</p>").unwrap();
    std::fs::write(root.join("app/assets/app.js"), "console.log(1)").unwrap();
    std::fs::write(root.join("docs/about.html"), "<p>about</p>").unwrap();
    std::fs::write(root.join("docs/guide/index.html"), "<p>guide</p>").unwrap();
    std::fs::write(root.join("private/report.txt"), "secret report").unwrap();
    std::fs::write(root.join("a/index.html"), "site A").unwrap();
    std::fs::write(root.join("b/index.html"), "site B").unwrap();
    write_routes(&dir, routes);
    let server = Server::start(&["--config", dir.join("routes.toml").to_str().unwrap()]);
    (dir, server)
}

/// Polls until `check` holds (a reload takes effect), bounded.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn redirects_keep_the_rest_of_the_path_and_the_query() {
    let routes = "[[route]]\npath = \"/old/\"\nredirect = \"/docs/\"\n\n\
                  [[route]]\npath = \"/gone\"\nredirect = \"https://elsewhere.example/new\"\nstatus = 301\n\n\
                  [[route]]\npath = \"/docs\"\ndir = \"docs\"\n";
    let (_dir, server) = site("rules-redirect", routes);
    let reply = fetch(&server, "GET", "/old/guide/a%20b?x=1&y=2", "");
    assert_eq!(reply.status, 308);
    assert_eq!(reply.header("location"), Some("/docs/guide/a%20b?x=1&y=2"));
    let reply = fetch(&server, "POST", "/old", "Content-Length: 0\r\n");
    assert_eq!(
        (reply.status, reply.header("location")),
        (308, Some("/docs/"))
    );
    let reply = fetch(&server, "GET", "/gone?q", "");
    assert_eq!(reply.status, 301);
    assert_eq!(
        reply.header("location"),
        Some("https://elsewhere.example/new?q")
    );
    // Nothing in a request decides the host it is sent to.
    let reply = one(
        &server,
        b"GET /old//evil.example/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    let location = reply.header("location").unwrap_or("");
    assert!(
        location.starts_with("/docs/"),
        "{} {location}",
        reply.status
    );
}

#[test]
fn clean_urls_and_spa_fallback() {
    let routes = "[[route]]\npath = \"/docs\"\ndir = \"docs\"\nclean_urls = true\n\n\
                  [[route]]\npath = \"/app\"\ndir = \"app\"\nfallback = \"index.html\"\n";
    let (dir, server) = site("rules-clean", routes);
    let about = fetch(&server, "GET", "/docs/about", "");
    assert_eq!((about.status, about.text().as_str()), (200, "<p>about</p>"));
    let moved = fetch(&server, "GET", "/docs/about.html?v=1", "");
    assert_eq!(
        (moved.status, moved.header("location")),
        (308, Some("/docs/about?v=1"))
    );
    assert_eq!(
        fetch(&server, "GET", "/docs/guide/", "").text(),
        "<p>guide</p>"
    );
    assert_eq!(fetch(&server, "GET", "/docs/missing", "").status, 404);
    // The fallback answers client-side routes with its own validators; real files win.
    let shell = fetch(&server, "GET", "/app/users/42", "");
    assert_eq!(
        (shell.status, shell.text().as_str()),
        (200, "<p>app shell</p>")
    );
    assert!(shell.header("etag").is_some());
    assert_eq!(
        fetch(&server, "GET", "/app/assets/app.js", "").text(),
        "console.log(1)"
    );
    assert_eq!(fetch(&server, "HEAD", "/app/deep/link", "").status, 200);
    // Other methods keep their status: the fallback does not hide a 405.
    let post = fetch(&server, "POST", "/app/users/42", "Content-Length: 0\r\n");
    assert_eq!(post.status, 405);
    // A file created where the fallback answered takes over at once.
    assert_eq!(
        fetch(&server, "GET", "/app/late.txt", "").text(),
        "<p>app shell</p>"
    );
    std::fs::write(dir.join("site/app/late.txt"), "late file").unwrap();
    eventually("the new file wins over the fallback", || {
        fetch(&server, "GET", "/app/late.txt", "").text() == "late file"
    });
}

#[test]
fn declared_headers_go_on_every_response_including_errors() {
    let routes = "[headers]\nX-Frame-Options = \"DENY\"\nServer = \"web\"\n\n\
                  [[route]]\npath = \"/docs\"\ndir = \"docs\"\nheaders = { X-Frame-Options = \"SAMEORIGIN\", X-Route = \"docs\" }\n\n\
                  [[route]]\npath = \"/a\"\ndir = \"a\"\n";
    let (_dir, server) = site("rules-headers", routes);
    let a = fetch(&server, "GET", "/a/", "");
    assert_eq!(a.header("x-frame-options"), Some("DENY"));
    assert_eq!(a.header("server"), Some("web"));
    let docs = fetch(&server, "GET", "/docs/about.html", "");
    assert_eq!(docs.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(docs.header("x-route"), Some("docs"));
    // Errors too: a 404 under the route, a 404 no route matched, a 405, a 400.
    let missing = fetch(&server, "GET", "/docs/none", "");
    assert_eq!(
        (missing.status, missing.header("x-route")),
        (404, Some("docs"))
    );
    let nowhere = fetch(&server, "GET", "/nowhere", "");
    assert_eq!(
        (nowhere.status, nowhere.header("x-frame-options")),
        (404, Some("DENY"))
    );
    let bad = one(&server, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        (bad.status, bad.header("x-frame-options")),
        (400, Some("DENY"))
    );
}

#[test]
fn a_header_with_cr_lf_stops_startup_naming_the_key() {
    let dir = scratch("rules-bad-header");
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(
        dir.join("routes.toml"),
        "[server]\nroot = \"site\"\n\n[headers]\nX-A = \"a\\r\\nInjected: 1\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tws"))
        .args([
            "--config",
            dir.join("routes.toml").to_str().unwrap(),
            "--port",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("routes.toml:5: [headers] header X-A: the value holds CR, LF or NUL"),
        "{stderr}"
    );
}

#[test]
fn cors_preflights_and_actual_requests() {
    let routes = "[[route]]\npath = \"/docs\"\ndir = \"docs\"\n\
                  cors = { origins = [\"https://app.example\"], headers = [\"X-Token\"], max_age = 600 }\n";
    let (_dir, server) = site("rules-cors", routes);
    let preflight = |origin: &str| {
        fetch(
            &server,
            "OPTIONS",
            "/docs/about.html",
            &format!("Origin: {origin}\r\nAccess-Control-Request-Method: GET\r\n"),
        )
    };
    let ok = preflight("https://app.example");
    assert_eq!(ok.status, 204);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(ok.header("access-control-allow-headers"), Some("x-token"));
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    let denied = preflight("https://evil.example");
    assert_eq!(denied.header("access-control-allow-origin"), None);
    let get = fetch(
        &server,
        "GET",
        "/docs/about.html",
        "Origin: https://app.example\r\n",
    );
    assert_eq!(
        get.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(get.header("vary"), Some("Origin"));
    let other = fetch(
        &server,
        "GET",
        "/docs/about.html",
        "Origin: https://evil.example\r\n",
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[test]
fn basic_auth_answers_the_same_for_existing_and_missing_paths() {
    let routes = format!(
        "[auth.staff]\nusers = {{ alice = \"{}\" }}\n\n\
         [[route]]\npath = \"/private\"\ndir = \"private\"\nauth = \"staff\"\n",
        hash("right horse")
    );
    let (_dir, server) = site("rules-auth", &routes);
    let existing = fetch(&server, "GET", "/private/report.txt", "");
    let missing = fetch(&server, "GET", "/private/nothing.txt", "");
    assert_eq!(existing.status, 401);
    assert_eq!(
        (existing.status, &existing.body),
        (missing.status, &missing.body)
    );
    assert_eq!(
        existing.header("www-authenticate"),
        Some("Basic realm=\"staff\", charset=\"UTF-8\"")
    );
    let wrong = basic("alice", "wrong");
    for _ in 0..3 {
        assert_eq!(
            fetch(&server, "GET", "/private/report.txt", &wrong).status,
            401
        );
    }
    let right = basic("alice", "right horse");
    let reply = fetch(&server, "GET", "/private/report.txt", &right);
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "secret report")
    );
    // Remembered: the next request is answered without argon2, from the cache.
    let again = fetch(&server, "GET", "/private/report.txt", &right);
    assert_eq!(again.status, 200);
    assert_eq!(
        fetch(&server, "GET", "/private/nothing.txt", &right).status,
        404
    );
    // Ten failures from one address close it for a while, even to the right password.
    for _ in 0..10 {
        fetch(
            &server,
            "GET",
            "/private/report.txt",
            &basic("mallory", "guess"),
        );
    }
    let locked = fetch(&server, "GET", "/private/report.txt", &basic("bob", "x"));
    assert_eq!(locked.status, 429);
    assert!(locked.header("retry-after").is_some());
}

#[test]
fn virtual_hosts_choose_routes_by_host_and_fall_back() {
    let routes = "[[route]]\npath = \"/\"\ndir = \"a\"\nhost = \"a.example\"\n\n\
                  [[route]]\npath = \"/\"\ndir = \"b\"\nhost = [\"b.example\", \"*.b.example\"]\n\n\
                  [[route]]\npath = \"/docs\"\ndir = \"docs\"\n";
    let (dir, server) = site("rules-hosts", routes);
    let get = |host: &str, path: &str| {
        one(
            &server,
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };
    assert_eq!(get("a.example", "/").text(), "site A");
    assert_eq!(get("A.Example:8080", "/").text(), "site A");
    assert_eq!(get("b.example", "/").text(), "site B");
    assert_eq!(get("www.b.example", "/").text(), "site B");
    // A host with no route of its own falls back to the routes without a host.
    assert_eq!(get("a.example", "/docs/about.html").text(), "<p>about</p>");
    assert_eq!(get("other.example", "/").status, 404);
    let out = Command::new(env!("CARGO_BIN_EXE_tws"))
        .args([
            "--check",
            "--config",
            dir.join("routes.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("host a.example:") && table.contains("host *.b.example:"),
        "{table}"
    );
}

#[test]
fn every_rule_is_applied_by_hot_reload() {
    let (dir, server) = site(
        "rules-reload",
        "[[route]]\npath = \"/docs\"\ndir = \"docs\"\n",
    );
    assert_eq!(fetch(&server, "GET", "/old", "").status, 404);
    let routes = format!(
        "[headers]\nX-Reloaded = \"yes\"\n\n[auth.staff]\nusers = {{ alice = \"{}\" }}\n\n\
         [[route]]\npath = \"/docs\"\ndir = \"docs\"\nclean_urls = true\n\
         cors = {{ origins = \"*\" }}\n\n\
         [[route]]\npath = \"/old\"\nredirect = \"/docs/about\"\n\n\
         [[route]]\npath = \"/app\"\ndir = \"app\"\nfallback = \"index.html\"\n\n\
         [[route]]\npath = \"/private\"\ndir = \"private\"\nauth = \"staff\"\n\n\
         [[route]]\npath = \"/\"\ndir = \"a\"\nhost = \"a.example\"\n",
        hash("pw")
    );
    write_routes(&dir, &routes);
    eventually("the reload took", || {
        fetch(&server, "GET", "/old", "").status == 308
    });
    let about = fetch(
        &server,
        "GET",
        "/docs/about",
        "Origin: https://x.example\r\n",
    );
    assert_eq!(about.status, 200);
    assert_eq!(about.header("x-reloaded"), Some("yes"));
    assert_eq!(about.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        fetch(&server, "GET", "/app/route", "").text(),
        "<p>app shell</p>"
    );
    assert_eq!(fetch(&server, "GET", "/private/report.txt", "").status, 401);
    let host_a = one(
        &server,
        b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(host_a.text(), "site A");
}

#[test]
fn folder_mode_takes_headers_cors_and_auth_from_the_command_line() {
    let dir = scratch("rules-flags");
    std::fs::write(dir.join("index.html"), "<p>folder</p>").unwrap();
    let phc = hash("pw");
    let auth = format!("alice:{phc}");
    let server = Server::start(&[
        "--root",
        dir.to_str().unwrap(),
        "--header",
        "X-Flag: on",
        "--cors",
        "--auth",
        &auth,
    ]);
    let denied = fetch(&server, "GET", "/", "Origin: https://x.example\r\n");
    assert_eq!((denied.status, denied.header("x-flag")), (401, Some("on")));
    let ok = fetch(
        &server,
        "GET",
        "/",
        &format!("Origin: https://x.example\r\n{}", basic("alice", "pw")),
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some("*"));
}
