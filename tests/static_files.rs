//! Static files against the real server: resumable downloads with curl and wget, listings of
//! hostile names, HEAD parity, redirects that stay on the host, and the JSON access log.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, get, one, repo, scratch};

fn bigfile() -> Vec<u8> {
    std::fs::read(repo().join("site/files/bigfile.txt")).unwrap()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Starts a download of `/bigfile` by hand (the first `kept` bytes already on disk), lets the
/// tool resume it, and checks the result byte for byte.
fn resume_with(tool: &str, args: &[&str], kept: usize) {
    assert!(have(tool), "{tool} is needed (installed by .ci/run)");
    let dir = scratch(&format!("static-resume-{tool}"));
    let server = Server::bundled(&dir.join("data"));
    let full = bigfile();
    let out = dir.join("bigfile.txt");
    std::fs::write(&out, &full[..kept]).unwrap();
    let status = Command::new(tool)
        .args(args)
        .arg(&out)
        .arg(server.url("/bigfile"))
        .status()
        .unwrap();
    assert!(status.success(), "{tool} failed");
    assert!(
        std::fs::read(&out).unwrap() == full,
        "the file {tool} resumed differs"
    );
}

#[test]
fn curl_resumes_the_big_download_into_an_identical_file() {
    resume_with(
        "curl",
        &["-sS", "--fail", "--max-time", "10", "-C", "-", "-o"],
        345_678,
    );
}

#[test]
fn wget_resumes_the_big_download_into_an_identical_file() {
    resume_with(
        "wget",
        &["-q", "--timeout=10", "--tries=1", "-c", "-O"],
        1_000_001,
    );
}

fn hostile_folder(dir: &Path) -> Vec<&'static str> {
    let names = vec![
        "test \" ' & < >.csv",
        "a#b?c%d.txt",
        "café ñandú.txt",
        "new\nline.txt",
        "space name.txt",
        "<img src=x onerror=alert(1)>.html",
        "100%.txt",
    ];
    std::fs::create_dir_all(dir.join("evil.example")).unwrap();
    for (i, name) in names.iter().enumerate() {
        std::fs::write(dir.join(name), format!("file {i}")).unwrap();
    }
    names
}

#[test]
fn listings_escape_hostile_names_and_their_links_work() {
    let dir = scratch("static-hostile");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let names = hostile_folder(&root);
    let server = Server::start(&["--root", root.to_str().unwrap()]);
    let listing = get(&server, "/").text();
    assert!(!listing.contains("<img"), "unescaped name in {listing}");
    assert!(listing.contains("test &quot; &#39; &amp; &lt; &gt;.csv"));
    let hrefs: Vec<&str> = listing
        .split("href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .filter(|h| h.starts_with("./") && !h.ends_with('/'))
        .collect();
    assert_eq!(hrefs.len(), names.len(), "{hrefs:?}");
    for href in hrefs {
        assert!(
            !href.contains(['"', '<', '>', ' ', '#', '?', '\n']),
            "raw character in {href:?}"
        );
        let reply = get(&server, &href[1..]);
        assert_eq!(reply.status, 200, "{href}");
        assert!(reply.text().starts_with("file "), "{href}");
    }
}

#[test]
fn folder_redirects_never_leave_the_host() {
    let dir = scratch("static-redirect");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    hostile_folder(&root);
    let server = Server::start(&["--root", root.to_str().unwrap()]);
    for target in [
        "//evil.example",
        "///evil.example",
        "/./evil.example",
        "/%2Fevil.example",
    ] {
        let reply = get(&server, target);
        if reply.status == 301 {
            let location = reply.header("location").unwrap();
            assert_eq!(location, "/evil.example/", "{target}");
        } else {
            assert_eq!(reply.status, 400, "{target}");
        }
    }
}

#[test]
fn head_matches_get_for_every_status() {
    let dir = scratch("static-head");
    let server = Server::bundled(&dir.join("data"));
    let etag = get(&server, "/bigfile").header("etag").unwrap().to_owned();
    let cases = [
        ("/bigfile", String::new()),
        ("/bigfile", "Range: bytes=0-99\r\n".to_owned()),
        ("/bigfile", "Range: bytes=0-1,5-6\r\n".to_owned()),
        ("/bigfile", "Range: bytes=9999999-\r\n".to_owned()),
        ("/bigfile", format!("If-None-Match: {etag}\r\n")),
        ("/bigfile", "If-Match: \"other\"\r\n".to_owned()),
        ("/nothing", String::new()),
        ("/files/", String::new()),
        ("/files", String::new()),
    ];
    for (path, headers) in cases {
        let request = |method: &str| {
            format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
        };
        let got = one(&server, request("GET").as_bytes());
        let head = one(&server, request("HEAD").as_bytes());
        assert_eq!(head.status, got.status, "{path} {headers}");
        assert!(head.body.is_empty());
        for name in [
            "content-length",
            "content-type",
            "etag",
            "last-modified",
            "content-range",
            "accept-ranges",
            "location",
            "vary",
        ] {
            let (g, h) = (got.header(name), head.header(name));
            if name == "content-type"
                && got.status == 206
                && g.is_some_and(|t| t.starts_with("multipart/"))
            {
                // Each response picks its own boundary.
                assert!(h.unwrap().starts_with("multipart/byteranges; boundary="));
                continue;
            }
            assert_eq!(h, g, "{path} {headers} {name}");
        }
    }
}

#[test]
fn the_json_access_log_is_one_object_per_line() {
    let dir = scratch("static-jsonlog");
    let data = dir.join("data");
    let server = Server::start(&[
        "--config",
        "routes.toml",
        "--data",
        data.to_str().unwrap(),
        "--log-format",
        "json",
    ]);
    one(&server, b"GET /page_one HTTP/1.1\r\nHost: t\r\nUser-Agent: evil\" \xc3\xa9 \\ agent\r\nConnection: close\r\n\r\n");
    let deadline = std::time::Instant::now() + common::WAIT;
    let line = loop {
        let lines = server.log_lines();
        if let Some(line) = lines.iter().find(|l| l.contains("/page_one")) {
            break line.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line in {lines:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["status"], 200);
    assert_eq!(value["method"], "GET");
    assert_eq!(value["user_agent"], "evil\" é \\ agent");
}

#[test]
fn a_changed_file_is_served_fresh_within_seconds() {
    let dir = scratch("static-fresh");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("note.txt"), "first version").unwrap();
    let server = Server::start(&["--root", root.to_str().unwrap()]);
    // Several requests: the later ones come from the loop's cache.
    for _ in 0..3 {
        assert_eq!(get(&server, "/note.txt").text(), "first version");
    }
    std::fs::write(root.join("note.txt"), "second, longer version").unwrap();
    let started = std::time::Instant::now();
    loop {
        let text = get(&server, "/note.txt").text();
        if text == "second, longer version" {
            break;
        }
        assert_eq!(text, "first version", "never a mix of the two");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "still stale after 3 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::remove_file(root.join("note.txt")).unwrap();
    let started = std::time::Instant::now();
    while get(&server, "/note.txt").status != 404 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "deleted file still served"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_listing_shows_a_new_file_at_once() {
    let dir = scratch("static-listing-fresh");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("first.txt"), "1").unwrap();
    let server = Server::start(&["--root", root.to_str().unwrap()]);
    for _ in 0..3 {
        let listing = get(&server, "/").text();
        assert!(listing.contains("first.txt") && !listing.contains("second.txt"));
    }
    std::fs::write(root.join("second.txt"), "2").unwrap();
    assert!(get(&server, "/").text().contains("second.txt"));
    std::fs::remove_file(root.join("first.txt")).unwrap();
    assert!(!get(&server, "/").text().contains("first.txt"));
}

#[test]
fn concurrent_first_requests_for_one_path_all_get_the_answer() {
    let dir = scratch("static-coalesce");
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("many")).unwrap();
    for i in 0..200 {
        std::fs::write(root.join(format!("many/f{i:03}.txt")), "x").unwrap();
    }
    std::fs::write(root.join("one.txt"), "the one file").unwrap();
    let server = std::sync::Arc::new(Server::start(&["--root", root.to_str().unwrap()]));
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let server = std::sync::Arc::clone(&server);
            std::thread::spawn(move || {
                let path = if i % 2 == 0 { "/many/" } else { "/one.txt" };
                let reply = get(&server, path);
                (path, reply.status, reply.text())
            })
        })
        .collect();
    for client in clients {
        let (path, status, text) = client.join().unwrap();
        assert_eq!(status, 200, "{path}");
        match path {
            "/many/" => assert_eq!(text.matches("href=\"./f").count(), 200),
            _ => assert_eq!(text, "the one file"),
        }
    }
}
