//! HTTPS against the real server, with a certificate made at test time and clients that
//! verify it: every bundled route, protocol versions and ALPN, plain HTTP on the TLS port,
//! slow and silent handshakes, the redirect listener, certificate renewal under a running
//! server, graceful shutdown during a download, and startup errors.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tls::{Stream, TestCert, client, test_cert};
use common::{Server, WAIT, get, one, read_one, read_to_close, scratch, tws};

fn https_server(name: &str, extra: &[&str]) -> (Server, TestCert, std::path::PathBuf) {
    let dir = scratch(name);
    let cert = test_cert(&dir, "site", &[]);
    let data = dir.join("data");
    let mut args = vec![
        "--config",
        "routes.toml",
        "--data",
        data.to_str().unwrap(),
        "--log-format",
        "json",
    ];
    args.extend_from_slice(extra);
    (Server::start_tls(&args, &cert), cert, dir)
}

/// Every route of the bundled site answers over HTTPS as it does over HTTP, through a client
/// that verifies the chain; the URL line says https and the JSON log names the TLS version.
#[test]
fn every_bundled_route_is_served_over_https() {
    let (server, _cert, _dir) = https_server("tls-site", &[]);
    common::wait_line(&server.log, &format!("https://{}/", server.addr));
    common::wait_line(&server.log, "SHA-256 fingerprint");
    for (path, status, kind) in [
        ("/", 200, "text/html"),
        ("/page_one", 200, "text/html"),
        ("/page_two", 200, "text/html"),
        ("/page_three", 200, "text/html"),
        ("/page_four", 200, "text/html"),
        ("/style.css", 200, "text/css"),
        ("/image_user_one", 200, "image/png"),
        ("/image_user_two", 200, "image/jpeg"),
        ("/bigfile", 200, "text/plain"),
        ("/files/", 200, "text/html"),
        ("/users", 200, "application/json"),
        ("/users/1", 404, "application/json"),
        ("/healthz", 200, "application/json"),
        ("/nothing", 404, "text/plain"),
    ] {
        let reply = get(&server, path);
        assert_eq!(reply.status, status, "{path}");
        let content_type = reply.header("content-type").unwrap_or("");
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let length: usize = reply.header("content-length").unwrap().parse().unwrap();
        assert_eq!(reply.body.len(), length, "{path}");
    }
    // The large download arrives whole and equal to the file.
    let file = std::fs::read(common::repo().join("site/files/bigfile.txt")).unwrap();
    assert_eq!(get(&server, "/bigfile").body, file);
    // A create with a body, then the record.
    let body = r#"{"Nombre": "Ana"}"#;
    let request = format!(
        "POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(one(&server, request.as_bytes()).status, 201);
    assert_eq!(get(&server, "/users/1").status, 200);
    let log = common::wait_line(&server.log, "\"/users/1\"");
    let entry: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(entry["tls"], "TLSv1.3");
}

/// Pipelined requests, ranges and keep-alive behave as over plain HTTP.
#[test]
fn pipelining_and_ranges_work_over_tls() {
    let (server, _cert, _dir) = https_server("tls-pipeline", &[]);
    let mut stream = server.stream();
    stream
        .write_all(
            b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /bigfile HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\n\r\n\
              GET /bigfile HTTP/1.1\r\nHost: t\r\nRange: bytes=-5\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let bytes = read_to_close(&mut stream);
    let replies = common::parse_replies(&bytes, &[]);
    assert_eq!(
        replies.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 206, 206]
    );
    let file = std::fs::read(common::repo().join("site/files/bigfile.txt")).unwrap();
    assert_eq!(replies[1].body, file[..10]);
    assert_eq!(replies[2].body, file[file.len() - 5..]);
}

/// TLS 1.3 and 1.2 both work; ALPN prefers h2 and keeps http/1.1 for clients without it;
/// TLS 1.1 and 1.0 are refused.
#[test]
fn versions_and_alpn() {
    let (server, cert, _dir) = https_server("tls-versions", &[]);
    for (version, name) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let config = client(&[&cert.der], &[version], &[b"h2", b"http/1.1"]);
        let stream = Stream::tls(server.connect(), config).unwrap();
        let session = stream.session().unwrap();
        assert_eq!(session.protocol_version(), Some(name));
        assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
        let config = client(&[&cert.der], &[version], &[b"http/1.1"]);
        let mut stream = Stream::tls(server.connect(), config).unwrap();
        let session = stream.session().unwrap();
        assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
        stream
            .write_all(b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_one(&mut stream, false).status, 200);
    }
    // Old protocols, with OpenSSL as the client.
    for flag in ["-tls1_1", "-tls1"] {
        let out = Command::new("openssl")
            .args(["s_client", flag, "-connect", &server.addr.to_string()])
            .arg("-servername")
            .arg("localhost")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() || text.contains("Cipher is (NONE)"),
            "{flag} was accepted: {text}"
        );
    }
}

/// curl, verifying the chain with the certificate file, gets the page (over HTTP/2, which
/// ALPN prefers).
#[test]
fn curl_with_the_ca_file_fetches_a_page() {
    let (server, cert, _dir) = https_server("tls-curl", &[]);
    let out = Command::new("curl")
        .args(["-s", "--cacert", cert.cert.to_str().unwrap()])
        .args(["-o", "/dev/null", "-w", "%{http_code} %{http_version}"])
        .arg(format!("https://localhost:{}/page_one", server.addr.port()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200 2");
}

/// Plain HTTP on the TLS port gets a plain 400 saying so; garbage is closed quietly; neither
/// disturbs other connections.
#[test]
fn plain_http_on_the_tls_port_is_told_to_use_https() {
    let (server, _cert, _dir) = https_server("tls-plain", &[]);
    let mut tcp = server.connect();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let answer = read_to_close(&mut tcp);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("this port speaks HTTPS"), "{text}");
    let mut tcp = server.connect();
    tcp.write_all(b"\x00\x01garbage garbage garbage\r\n\r\n")
        .unwrap();
    assert!(read_to_close(&mut tcp).is_empty(), "garbage gets no answer");
    assert_eq!(get(&server, "/style.css").status, 200);
}

/// A client that connects and says nothing, or half a ClientHello, is cut at the header
/// timeout, like a slowloris; others are served meanwhile.
#[test]
fn silent_and_half_handshakes_are_cut_at_the_header_timeout() {
    let dir = scratch("tls-slow");
    let cert = test_cert(&dir, "site", &[]);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "<p>hi</p>").unwrap();
    std::fs::write(
        dir.join("routes.toml"),
        "[server]\nroot = \"site\"\n\n[server.timeouts]\nheader = 1\n\n\
         [[route]]\npath = \"/\"\ndir = \".\"\n",
    )
    .unwrap();
    let routes = dir.join("routes.toml");
    let server = Server::start_tls(&["--config", routes.to_str().unwrap()], &cert);
    let mut silent = server.connect();
    let mut half = server.connect();
    // The first 40 bytes of a ClientHello record: a handshake that never completes.
    half.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .unwrap();
    half.write_all(&[7u8; 29]).unwrap();
    let started = Instant::now();
    assert_eq!(get(&server, "/index.html").status, 200);
    for stream in [&mut silent, &mut half] {
        let _ = read_to_close(stream);
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

/// The redirect listener answers 308 to the same host on the TLS port; a bad Host gets 400.
#[test]
fn the_redirect_listener_sends_clients_to_https() {
    let dir = scratch("tls-redirect");
    let cert = test_cert(&dir, "site", &[]);
    let data = dir.join("data");
    let args = [
        "--config",
        "routes.toml",
        "--data",
        data.to_str().unwrap(),
        "--redirect-http",
        "0",
    ];
    let server = Server::start_tls(&args, &cert);
    // The banner names the redirect listener's address: `  http://HOST:PORT/ redirects ...`.
    let line = common::wait_line(&server.log, "redirects to HTTPS");
    let redirect: std::net::SocketAddr = line
        .trim()
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ask = |request: &str| {
        let mut tcp = std::net::TcpStream::connect(redirect).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        tcp.write_all(request.as_bytes()).unwrap();
        read_one(&mut tcp, false)
    };
    let reply = ask("GET /page_one?x=1 HTTP/1.1\r\nHost: Example.org:80\r\n\r\n");
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some(format!("https://example.org:{}/page_one?x=1", server.addr.port()).as_str())
    );
    let reply = ask("GET / HTTP/1.1\r\nHost: evil.com/path\r\n\r\n");
    assert_eq!(reply.status, 400);
    let reply = ask("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(reply.status, 400);
}

/// A renewed certificate is used by new handshakes at once (SIGHUP, or just the files
/// changing); a connection opened before keeps working; a bad pair is refused.
#[test]
fn a_renewed_certificate_is_swapped_under_a_running_server() {
    let (server, first, dir) = https_server("tls-renew", &[]);
    let mut old = server.stream();
    let fingerprint = |stream: &Stream| {
        let certs = stream.session().unwrap().peer_certificates().unwrap();
        certs[0].as_ref().to_vec()
    };
    assert_eq!(fingerprint(&old), first.der.as_ref());
    // certbot writes new files in place; the watcher picks them up.
    let second = test_cert(&dir, "renewed", &[]);
    std::fs::copy(&second.key, &first.key).unwrap();
    std::fs::copy(&second.cert, &first.cert).unwrap();
    server.wait_error("reloaded the TLS certificate");
    let trusting_both = client(
        &[&first.der, &second.der],
        rustls::DEFAULT_VERSIONS,
        &[b"http/1.1"],
    );
    let new = Stream::tls(server.connect(), Arc::clone(&trusting_both)).unwrap();
    assert_eq!(fingerprint(&new), second.der.as_ref());
    // The connection from before the swap goes on.
    old.write_all(b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut old, false).status, 200);
    // A key that does not match the certificate is refused; the renewed pair keeps serving.
    let third = test_cert(&dir, "third", &[]);
    std::fs::copy(&third.cert, &first.cert).unwrap();
    server.signal(libc::SIGHUP);
    let line = server.wait_error("TLS certificate reload refused");
    assert!(line.contains("does not match"), "{line}");
    let again = Stream::tls(server.connect(), trusting_both).unwrap();
    assert_eq!(fingerprint(&again), second.der.as_ref());
}

/// SIGTERM during an HTTPS download: the download completes, then tws exits 0.
#[test]
fn a_download_in_flight_completes_after_sigterm() {
    let (mut server, _cert, _dir) = https_server("tls-stop", &[]);
    let mut stream = server.stream();
    stream
        .write_all(b"GET /bigfile HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 100];
    stream.read_exact(&mut first).unwrap();
    server.signal(libc::SIGTERM);
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let mut all = first.to_vec();
    all.extend(rest);
    let reply = &common::parse_replies(&all, &[])[0];
    let file = std::fs::read(common::repo().join("site/files/bigfile.txt")).unwrap();
    assert_eq!(reply.body, file);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Downloads over TLS arrive whole while clients read as fast as they can. The socket fills
/// and drains over and over; a write that found it full is a wait even when the reader has
/// emptied it a moment later (before the fix, that case cut about one large response in
/// 300 short).
#[test]
fn large_downloads_over_tls_arrive_whole_while_clients_keep_up() {
    let (server, _cert, _dir) = https_server("tls-whole", &[]);
    let file = std::fs::read(common::repo().join("site/files/bigfile.txt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let whole = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let mut stream = server.stream();
                for _ in 0..150 {
                    if Instant::now() > deadline {
                        break;
                    }
                    stream
                        .write_all(b"GET /bigfile HTTP/1.1\r\nHost: t\r\n\r\n")
                        .unwrap();
                    let reply = read_one(&mut stream, false);
                    assert_eq!(reply.status, 200);
                    assert!(reply.body == file, "a download arrived short or wrong");
                    whole.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    assert!(whole.into_inner() >= 20, "too few downloads to tell");
}

/// The self-signed mode writes its certificate (never the key) and curl trusts it through it.
#[test]
fn self_signed_mode_writes_a_certificate_clients_can_trust() {
    let dir = scratch("tls-self");
    std::fs::write(dir.join("index.html"), "<p>self</p>").unwrap();
    let data = dir.join("data");
    let server = Server::start(&[
        "--root",
        dir.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--tls-self-signed",
    ]);
    let written = data.join("tls/self-signed.pem");
    common::wait_line(&server.log, &written.display().to_string());
    let pem = std::fs::read_to_string(&written).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE") && !pem.contains("PRIVATE KEY"));
    let out = Command::new("curl")
        .args(["-s", "--cacert", written.to_str().unwrap()])
        .arg(format!(
            "https://localhost:{}/index.html",
            server.addr.port()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "<p>self</p>");
}

/// Startup errors: one line each, exit status 1.
#[test]
fn certificate_problems_stop_startup_with_one_line() {
    let dir = scratch("tls-errors");
    let good = test_cert(&dir, "good", &[]);
    let other = test_cert(&dir, "other", &[]);
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    let missing = dir.join("missing.pem");
    let cases: Vec<(&std::path::Path, &std::path::Path, &str)> = vec![
        (&missing, &good.key, "cannot read TLS certificate"),
        (&empty, &good.key, "no CERTIFICATE block"),
        (&good.cert, &good.cert, "no private key in the file"),
        (&good.cert, &other.key, "does not match the certificate"),
    ];
    for (cert, key, want) in cases {
        let out = tws()
            .args(["--root", dir.to_str().unwrap(), "--port", "0"])
            .args(["--tls-cert", cert.to_str().unwrap()])
            .args(["--tls-key", key.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{want}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "wanted {want:?} in {stderr}");
    }
}

/// An expired certificate still starts the server, with a warning naming the date.
#[test]
fn an_expired_certificate_starts_with_a_warning() {
    let dir = scratch("tls-expired");
    let now = time::OffsetDateTime::now_utc();
    let old = common::tls::test_cert_valid(
        &dir,
        "old",
        &[],
        (
            now - time::Duration::days(60),
            now - time::Duration::days(30),
        ),
    );
    std::fs::write(dir.join("index.html"), "<p>old</p>").unwrap();
    let server = Server::start(&[
        "--root",
        dir.to_str().unwrap(),
        "--tls-cert",
        old.cert.to_str().unwrap(),
        "--tls-key",
        old.key.to_str().unwrap(),
    ]);
    let line = server.wait_error("expired on");
    let date = (now - time::Duration::days(30)).date().to_string();
    assert!(line.contains(&date), "{line} should name {date}");
}
