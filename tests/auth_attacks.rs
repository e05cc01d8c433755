//! Authentication attacked the way it is attacked: bursts of guesses sent at once (over many
//! connections, and over one HTTP/2 connection's streams), guesses from many addresses behind
//! a trusted proxy while the site keeps serving, a reload that removes a password, cross-site
//! form posts with the browser's credentials, and hashes that are cut short or too costly.
//! Client addresses come through a trusted proxy's headers or PROXY protocol, and are
//! ignored from anyone else.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::h2raw::*;
use common::{Reply, Server, basic, hash, one, scratch, wait_line};

/// A site with a protected folder and a protected collection; `extra` goes under `[server]`.
fn site(name: &str, phc: &str, extra_args: &[&str]) -> (PathBuf, Server) {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("site/private")).unwrap();
    std::fs::write(dir.join("site/private/report.txt"), "secret report").unwrap();
    write_routes(&dir, phc);
    let routes = dir.join("routes.toml");
    let mut args = vec!["--config", routes.to_str().unwrap()];
    args.extend_from_slice(extra_args);
    let server = Server::start(&args);
    (dir, server)
}

fn write_routes(dir: &Path, phc: &str) {
    let text = format!(
        "[server]\nroot = \"site\"\ndata = \"data\"\n\n\
         [auth.staff]\nusers = {{ alice = \"{phc}\" }}\n\n\
         [[route]]\npath = \"/private\"\ndir = \"private\"\nauth = \"staff\"\n\n\
         [[route]]\npath = \"/healthz\"\naction = \"health\"\n\n\
         [[route]]\npath = \"/metrics\"\naction = \"metrics\"\n\n\
         [[collection]]\nname = \"notes\"\npath = \"/notes\"\nauth = \"staff\"\n\
         fields.text = {{ type = \"string\", required = true }}\n"
    );
    let tmp = dir.join("routes.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, dir.join("routes.toml")).unwrap();
}

fn get(server: &Server, path: &str, fields: &str) -> Reply {
    one(
        server,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{fields}Connection: close\r\n\r\n").as_bytes(),
    )
}

/// Sends `requests` at once, each on its own connection; their statuses.
fn burst(server: &Server, requests: Vec<String>) -> Vec<u16> {
    let gate = Arc::new(Barrier::new(requests.len()));
    let addr = server.addr;
    let threads: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(common::WAIT)).unwrap();
                gate.wait();
                stream.write_all(request.as_bytes()).unwrap();
                common::read_one(&mut stream, false).status
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn guesses_sent_at_once_are_counted_when_they_start() {
    let (_dir, server) = site("auth-burst", &hash("right"), &[]);
    let request = |password: &str| {
        format!(
            "GET /private/report.txt HTTP/1.1\r\nHost: t\r\n{}Connection: close\r\n\r\n",
            basic("alice", password)
        )
    };
    // 300 different passwords at once from one address: a few are checked, the rest refused.
    let statuses = burst(
        &server,
        (0..300).map(|i| request(&format!("guess{i}"))).collect(),
    );
    let checked = count(&statuses, 401);
    assert!(checked <= 10, "{checked} guesses checked: {statuses:?}");
    assert_eq!(checked + count(&statuses, 429), 300, "{statuses:?}");
    // The burst cost its sender its guesses, not the user the password.
    assert_eq!(
        get(&server, "/private/report.txt", &basic("alice", "right")).status,
        200
    );

    // From a fresh address (through a trusted proxy's header), 49 wrong and the right one at
    // once: at most a handful checked, and the protected file is not handed out by chance.
    let (_dir, server) = site(
        "auth-burst-49",
        &hash("right"),
        &["--trusted-proxy", "127.0.0.1"],
    );
    let from = "X-Forwarded-For: 198.51.100.49\r\n";
    let mut requests: Vec<String> = (0..49)
        .map(|i| {
            request(&format!("wrong{i}")).replacen("Host: t\r\n", &format!("Host: t\r\n{from}"), 1)
        })
        .collect();
    requests.push(request("right").replacen("Host: t\r\n", &format!("Host: t\r\n{from}"), 1));
    let statuses = burst(&server, requests);
    assert!(
        count(&statuses, 401) + count(&statuses, 200) <= 10,
        "{statuses:?}"
    );
    assert!(count(&statuses, 429) >= 40, "{statuses:?}");
}

#[test]
fn one_http2_connection_with_a_hundred_streams_gets_few_checks() {
    let (_dir, server) = site("auth-h2", &hash("right"), &[]);
    let mut raw = Raw::connect(server.addr);
    let mut batch = Vec::new();
    for i in 0..100u32 {
        let auth = basic("alice", &format!("guess{i}"));
        let value = auth.trim_end().trim_start_matches("Authorization: ");
        let block = request_block("GET", "/private/report.txt", &[("authorization", value)]);
        batch.extend(frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, &block));
    }
    raw.send(&batch).unwrap();
    let mut statuses = Vec::new();
    while statuses.len() < 100 {
        let f = raw
            .expect(|f| f.kind == HEADERS)
            .expect("an answer per stream");
        statuses.push(f.status().unwrap());
    }
    let checked = count(&statuses, 401);
    assert!(checked <= 10, "{checked} checked: {statuses:?}");
    assert_eq!(checked + count(&statuses, 429), 100, "{statuses:?}");
}

#[test]
fn guessing_from_many_addresses_never_starves_the_site() {
    let (_dir, server) = site(
        "auth-starve",
        &hash("right"),
        &["--trusted-proxy", "127.0.0.1"],
    );
    // 200 guesses from 200 addresses, each for another user: no per-address or per-user
    // bound holds them back, but argon2 runs on its own bounded threads, so the workers that
    // answer files stay free.
    let requests: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "GET /private/report.txt HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.9.{}.{}\r\n{}Connection: close\r\n\r\n",
                i / 250,
                i % 250 + 1,
                basic(&format!("user{i}"), &format!("guess{i}"))
            )
        })
        .collect();
    let probe = {
        let addr = server.addr;
        std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            for _ in 0..10 {
                let started = Instant::now();
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(common::WAIT)).unwrap();
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .unwrap();
                assert_eq!(common::read_one(&mut stream, false).status, 200);
                slowest = slowest.max(started.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            slowest
        })
    };
    let statuses = burst(&server, requests);
    let slowest = probe.join().unwrap();
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz waited {slowest:?} behind the guesses"
    );
    // Each was either checked (401) or refused at once while the login threads were full
    // (503), never left hanging.
    assert_eq!(
        count(&statuses, 401) + count(&statuses, 503),
        200,
        "{statuses:?}"
    );
}

#[test]
fn a_reload_that_changes_a_password_ends_the_old_one_at_once() {
    let (dir, server) = site("auth-reload", &hash("first"), &[]);
    let old = basic("alice", "first");
    assert_eq!(get(&server, "/private/report.txt", &old).status, 200);
    assert_eq!(
        get(&server, "/private/report.txt", &old).status,
        200,
        "remembered"
    );
    write_routes(&dir, &hash("second"));
    wait_line(&server.errors, "reloaded");
    assert_eq!(get(&server, "/private/report.txt", &old).status, 401);
    let new = basic("alice", "second");
    assert_eq!(get(&server, "/private/report.txt", &new).status, 200);
}

#[test]
fn the_auth_flag_with_a_routes_file_says_what_it_does() {
    let dir = scratch("auth-flag");
    let phc = hash("pw");
    let flag = format!("alice:{phc}");
    let run = |routes: &str| {
        std::fs::write(dir.join("routes.toml"), routes).unwrap();
        let out = common::tws()
            .args(["--config", dir.join("routes.toml").to_str().unwrap()])
            .args(["--auth", &flag, "--check"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    std::fs::create_dir_all(dir.join("site")).unwrap();
    let plain = "[server]\nroot = \"site\"\n\n[[route]]\npath = \"/\"\ndir = \".\"\n";
    let (ok, err) = run(plain);
    assert!(
        !ok && err.contains("--auth") && err.contains("auth = \"tws\""),
        "{err}"
    );
    let (ok, err) = run(&format!("{plain}auth = \"tws\"\n"));
    assert!(ok, "{err}");
    let declared = format!("[auth.tws]\nusers = {{ bob = \"{phc}\" }}\n\n{plain}auth = \"tws\"\n");
    let (ok, err) = run(&declared);
    assert!(!ok && err.contains("[auth.tws]"), "{err}");
}

#[test]
fn hashes_cut_short_are_refused_and_costly_ones_warned_about() {
    let dir = scratch("auth-phc");
    std::fs::create_dir_all(dir.join("site")).unwrap();
    let phc = hash("pw");
    let cut = phc.rsplit_once('$').unwrap().0.to_owned();
    let routes = |h: &str| {
        format!(
            "[server]\nroot = \"site\"\n\n[auth.staff]\nusers = {{ alice = \"{h}\" }}\n\n[[route]]\npath = \"/\"\ndir = \".\"\nauth = \"staff\"\n"
        )
    };
    std::fs::write(dir.join("routes.toml"), routes(&cut)).unwrap();
    let out = common::tws()
        .args([
            "--config",
            dir.join("routes.toml").to_str().unwrap(),
            "--check",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("routes.toml:") && err.contains("[auth.staff]") && err.contains("cut short"),
        "{err}"
    );
    let heavy = phc.replacen("m=19456,t=2", "m=262144,t=3", 1);
    std::fs::write(dir.join("routes.toml"), routes(&heavy)).unwrap();
    let server = Server::start(&[
        "--config",
        dir.join("routes.toml").to_str().unwrap(),
        "--data",
        dir.join("data").to_str().unwrap(),
    ]);
    server.wait_error("costs 20x");
}

#[test]
fn cross_site_form_posts_to_a_protected_collection_are_refused() {
    let (_dir, server) = site("auth-csrf", &hash("pw"), &[]);
    let post = |fields: &str| {
        one(
            &server,
            format!(
                "POST /notes HTTP/1.1\r\nHost: 127.0.0.1\r\n{}{fields}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\nConnection: close\r\n\r\ntext=x",
                basic("alice", "pw")
            )
            .as_bytes(),
        )
    };
    let evil = post("Origin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\n");
    assert_eq!(evil.status, 403, "{}", evil.text());
    assert!(evil.text().contains("cross-site"));
    assert_eq!(post("Sec-Fetch-Site: cross-site\r\n").status, 403);
    // The site's own page, and a client that is not a browser, may write.
    let own = post("Origin: http://127.0.0.1\r\nSec-Fetch-Site: same-origin\r\n");
    assert!(matches!(own.status, 201 | 303), "{}", own.text());
    assert!(matches!(post("").status, 201 | 303));
    let listed = get(&server, "/notes", &basic("alice", "pw"));
    let notes: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    assert_eq!(
        notes.as_array().unwrap().len(),
        2,
        "only the two allowed posts"
    );
}

#[test]
fn the_client_behind_a_trusted_proxy_is_the_one_locked_out_and_logged() {
    let (_dir, server) = site(
        "auth-proxy",
        &hash("right"),
        &["--trusted-proxy", "127.0.0.1"],
    );
    let from = |ip: &str| format!("X-Forwarded-For: 1.1.1.1, {ip}\r\n");
    for _ in 0..10 {
        let fields = format!("{}{}", from("203.0.113.1"), basic("alice", "wrong"));
        get(&server, "/private/report.txt", &fields);
    }
    let locked = format!("{}{}", from("203.0.113.1"), basic("alice", "right"));
    assert_eq!(get(&server, "/private/report.txt", &locked).status, 429);
    // Another client behind the same proxy is not locked out.
    let other = format!("{}{}", from("203.0.113.2"), basic("alice", "right"));
    assert_eq!(get(&server, "/private/report.txt", &other).status, 200);
    wait_line(&server.log, "203.0.113.2 - - [");
    // Metrics answer only loopback clients unless the route says otherwise.
    assert_eq!(get(&server, "/metrics", "").status, 200);
    assert_eq!(get(&server, "/metrics", &from("203.0.113.3")).status, 403);
    // A PROXY v2 header names the client of a connection.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend([
        0x21, 0x11, 0, 12, 198, 51, 100, 7, 127, 0, 0, 1, 0x9c, 0x40, 0, 80,
    ]);
    v2.extend(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(one(&server, &v2).status, 200);
    wait_line(&server.log, "198.51.100.7 - - [");

    // From a peer that is not trusted, the headers mean nothing and PROXY is refused.
    let (_dir, server) = site(
        "auth-untrusted",
        &hash("right"),
        &["--trusted-proxy", "10.0.0.0/8"],
    );
    get(&server, "/healthz", &from("203.0.113.9"));
    let line = wait_line(&server.log, "/healthz");
    assert!(line.starts_with("127.0.0.1 "), "{line}");
    assert_eq!(get(&server, "/metrics", &from("203.0.113.9")).status, 200);
    let reply = server.raw(&v2);
    assert!(
        reply.is_empty() || reply.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}
