//! HTTP/2 against the real server: every bundled route through curl over TLS (ALPN h2) and
//! cleartext (prior knowledge), answered as over HTTP/1.1; a reader that never opens its
//! window, idle connections and graceful shutdown. (The attacks are in http2_attacks.rs.)

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::h2raw::*;
use common::tls::test_cert;
use common::{Server, WAIT, scratch};

/// curl's answer: status, protocol, body, and headers (lower-case names).
struct Curl {
    status: u16,
    version: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Curl {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn curl(args: &[&str], url: &str, dir: &std::path::Path) -> Curl {
    let body = dir.join("body");
    let heads = dir.join("heads");
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-o",
            body.to_str().unwrap(),
            "-D",
            heads.to_str().unwrap(),
        ])
        .args(["-w", "%{http_code} %{http_version}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, version) = text.split_once(' ').unwrap_or(("0", ""));
    let heads = std::fs::read_to_string(&heads).unwrap_or_default();
    Curl {
        status: status.parse().unwrap_or(0),
        version: version.to_owned(),
        body: std::fs::read(&body).unwrap_or_default(),
        headers: heads
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
            .collect(),
    }
}

/// (curl arguments, path, expected status)
const ROUTES: &[(&[&str], &str, u16)] = &[
    (&[], "/", 200),
    (&[], "/page_four", 200),
    (&[], "/style.css", 200),
    (&[], "/image_user_one", 200),
    (&[], "/image_user_two", 200),
    (&[], "/bigfile", 200),
    (&["-r", "100-199"], "/bigfile", 206),
    (&["-r", "0-1,5-6"], "/bigfile", 206),
    (&["-H", "Accept-Encoding: br"], "/page_four", 200),
    (&["-H", "Accept-Encoding: zstd"], "/style.css", 200),
    (&["-I"], "/page_one", 200),
    (&[], "/files/", 200),
    (&[], "/files", 301),
    (&[], "/users", 200),
    (&[], "/users/999", 404),
    (&[], "/healthz", 200),
    (&[], "/nothing", 404),
    (&["-X", "DELETE"], "/page_one", 405),
    (&["-X", "OPTIONS"], "/createUser", 204),
    (&[], "/old_page_one", 308),
    (
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            "{\"Nombre\": \"h2\"}",
        ],
        "/users",
        201,
    ),
    (
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            "{\"Nombre\": \"\"}",
        ],
        "/createUser",
        422,
    ),
];

/// `tls`: curl's arguments to trust the server; `h2`: how it is to speak HTTP/2.
fn same_answers(server: &Server, tls: &[&str], h2: &str, dir: &std::path::Path) {
    for (args, path, status) in ROUTES {
        let url = server.url(path);
        let one = curl(&[tls, &["--http1.1"], *args].concat(), &url, dir);
        let two = curl(&[tls, &[h2], *args].concat(), &url, dir);
        assert_eq!(
            (one.status, two.status),
            (*status, *status),
            "{path} {args:?}"
        );
        assert_eq!(two.version, "2", "{path}");
        // JSON bodies differ by what was created; multipart boundaries are made per response.
        // (With -I, curl writes the head where the body goes.)
        if !args.contains(&"-I")
            && one
                .header("content-type")
                .is_some_and(|t| !t.contains("json") && !t.starts_with("multipart"))
        {
            assert_eq!(one.body, two.body, "{path} {args:?}");
        }
        for name in [
            "content-type",
            "content-length",
            "etag",
            "content-encoding",
            "content-range",
            "location",
            "allow",
        ] {
            // (What differs between the two requests: created records, uptimes, boundaries.)
            let created = args.contains(&"-d") && matches!(name, "etag" | "location");
            if created
                || name == "content-length"
                    && (path.starts_with("/users")
                        || *path == "/healthz"
                        || args.contains(&"0-1,5-6"))
            {
                continue;
            }
            let essence =
                |v: Option<&str>| v.map(|v| v.split("; boundary").next().unwrap_or(v).to_owned());
            assert_eq!(
                essence(one.header(name)),
                essence(two.header(name)),
                "{path} {args:?}: {name}"
            );
        }
        assert!(
            two.header("connection").is_none(),
            "{path}: a connection header on HTTP/2"
        );
    }
    // A conditional request gets 304 over both.
    let etag = curl(
        &[tls, &["--http1.1"]].concat(),
        &server.url("/style.css"),
        dir,
    )
    .header("etag")
    .unwrap()
    .to_owned();
    let condition = format!("If-None-Match: {etag}");
    let two = curl(
        &[tls, &[h2, "-H", &condition]].concat(),
        &server.url("/style.css"),
        dir,
    );
    assert_eq!(two.status, 304);
    let file = std::fs::read(common::repo().join("site/files/bigfile.txt")).unwrap();
    assert_eq!(
        curl(&[tls, &[h2]].concat(), &server.url("/bigfile"), dir).body,
        file
    );
}

#[test]
fn every_bundled_route_answers_over_http2_as_over_http1() {
    let dir = scratch("h2-routes");
    let cert = test_cert(&dir, "site", &[]);
    let data = dir.join("data");
    let tls = Server::start_tls(
        &["--config", "routes.toml", "--data", data.to_str().unwrap()],
        &cert,
    );
    same_answers(
        &tls,
        &["--cacert", cert.cert.to_str().unwrap()],
        "--http2",
        &dir,
    );
    let plain = h2c_server("h2-plain", "");
    same_answers(&plain, &[], "--http2-prior-knowledge", &dir);
    // The access log names the protocol.
    common::wait_line(&plain.log, "\"GET /bigfile HTTP/2.0\" 200 1300051");
}

#[test]
fn a_reader_that_never_opens_its_window_is_cut_off() {
    let server = h2c_server("h2-slow-reader", "send = 1");
    let mut raw = Raw::connect(server.addr);
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: no DATA may be sent on new streams.
    raw.send(&frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]))
        .unwrap();
    raw.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("GET", "/bigfile", &[]),
    ))
    .unwrap();
    let started = Instant::now();
    raw.until_closed();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < WAIT,
        "closed after {took:?}"
    );
    alive(&server);
}

#[test]
fn an_idle_connection_gets_goaway_and_shutdown_lets_streams_finish() {
    let server = h2c_server("h2-idle", "idle = 1");
    let mut raw = Raw::connect(server.addr);
    let started = Instant::now();
    let goaway = raw.until_closed().expect("GOAWAY on idle");
    assert_eq!(goaway.error_code(), Some(0));
    assert!(started.elapsed() >= Duration::from_millis(900));

    // A download in flight when SIGTERM arrives: GOAWAY, then the whole body.
    let mut raw = Raw::connect(server.addr);
    raw.send(&frame(SETTINGS, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff]))
        .unwrap();
    raw.send(&frame(WINDOW_UPDATE, 0, 0, &0x7fff_0000u32.to_be_bytes()))
        .unwrap();
    raw.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("GET", "/bigfile", &[]),
    ))
    .unwrap();
    let first = raw.expect(|f| f.kind == DATA).expect("the download starts");
    server.signal(libc::SIGTERM);
    let file = std::fs::read(common::repo().join("site/files/bigfile.txt")).unwrap();
    let mut received = first.payload.len();
    let mut goaway = false;
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < WAIT, "the download did not finish");
        match raw.next() {
            Ok(Some(f)) if f.kind == GOAWAY => goaway = true,
            Ok(Some(f)) if f.kind == DATA => received += f.payload.len(),
            Ok(_) => {}
            Err(()) => break,
        }
    }
    assert!(goaway, "no GOAWAY on shutdown");
    assert_eq!(received, file.len());
}
