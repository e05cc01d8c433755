//! HTTP/1.1 over raw bytes against the real server: framing, persistence, pipelining, limits,
//! error statuses and path traversal.

mod common;

use std::io::{Read, Write};

use common::{Server, get, one, parse_replies, read_one, read_to_close, scratch};

fn server(name: &str) -> Server {
    Server::bundled(&scratch(name))
}

/// The same server over HTTPS, with a certificate made for the test.
fn tls_server(name: &str) -> Server {
    let dir = scratch(name);
    let cert = common::tls::test_cert(&dir, "site", &[]);
    let data = dir.join("data");
    Server::start_tls(
        &["--config", "routes.toml", "--data", data.to_str().unwrap()],
        &cert,
    )
}

/// RFC 9112 framing and syntax: each case's status, and whether the connection then closes.
#[test]
fn framing_and_syntax_table() {
    framing_table(&server("proto-status"));
}

#[test]
fn framing_and_syntax_table_over_tls() {
    framing_table(&tls_server("proto-status-tls"));
}

fn framing_table(server: &Server) {
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(17000)
    );
    let many = format!(
        "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
        "X-A: b\r\n".repeat(101)
    );
    let big_body = "POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n";
    // (request bytes, status, whether the server closes the connection after answering)
    let cases: Vec<(String, u16, bool)> = vec![
        ("GARBAGE\r\n\r\n".into(), 400, true),
        ("GET / HTTP/1.1\r\n\r\n".into(), 400, true),
        ("GET / HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n".into(), 400, true),
        ("GET / HTTP/1.1\r\nBad Header: x\r\nHost: t\r\n\r\n".into(), 400, true),
        ("GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n".into(), 400, true),
        ("GET / HTTP/3.0\r\nHost: t\r\n\r\n".into(), 505, true),
        ("BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n".into(), 501, true),
        ("DELETE / HTTP/1.1\r\nHost: t\r\n\r\n".into(), 405, false),
        ("POST /bigfile HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".into(), 405, false),
        ("POST /bigfile HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".into(), 405, true),
        ("GET /createUser HTTP/1.1\r\nHost: t\r\n\r\n".into(), 405, false),
        ("GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n".into(), 404, false),
        (long_uri, 414, true),
        (big_head, 431, true),
        (many, 431, true),
        (big_body.into(), 413, true),
        ("POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".into(), 400, true),
        ("POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".into(), 400, true),
        ("POST /createUser HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".into(), 501, true),
        ("GET / HTTP/1.1\r\nHost: t\r\nExpect: coffee\r\n\r\n".into(), 417, true),
        // RFC 9112 framing and syntax, case by case.
        ("POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 4\r\n\r\nabcd".into(), 400, true),
        ("POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Length: 15, 15\r\nContent-Type: application/json\r\n\r\n{\"Nombre\":\"Cl\"}".into(), 201, false),
        ("POST /createUser HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n10000000000000000\r\n".into(), 400, true),
        ("POST /createUser HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n3\r\nabcXY0\r\n\r\n".into(), 400, true),
        ("POST /createUser HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n3\nabc\r\n0\r\n\r\n".into(), 400, true),
        ("GET /style.css HTTP/1.1\nHost: t\n\n".into(), 200, false),
        ("GET /style.css HTTP/1.1\rHost: t\r\n\r\n".into(), 400, true),
        ("GET /style.css HTTP/1.1\r\nHost: t\r\nX-A: b\rc\r\n\r\n".into(), 400, true),
        ("GET /style.css HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\tfolded\r\n\r\n".into(), 400, true),
        ("GET /style.css HTTP/1.1\r\nHost\t: t\r\n\r\n".into(), 400, true),
        ("GET /style.css HTTP/1.1\r\nHo(st: t\r\n\r\n".into(), 400, true),
        ("GET /style.css HTTP/1.1\r\nHost: t\r\nX-A: \u{1}\r\n\r\n".into(), 400, true),
        ("GET /style.css HTTP/1.1\r\nHost: t\r\nX-\0: a\r\n\r\n".into(), 400, true),
        ("GET /sty\0le.css HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400, true),
        ("GET http://t/style.css HTTP/1.1\r\nHost: t\r\n\r\n".into(), 200, false),
        ("GET t:80 HTTP/1.1\r\nHost: t\r\n\r\n".into(), 400, true),
        ("CONNECT t:443 HTTP/1.1\r\nHost: t\r\n\r\n".into(), 501, true),
        ("GET /style.css HTTP/1.0\r\n\r\n".into(), 200, true),
    ];
    for (request, status, closes) in cases {
        let mut stream = server.stream();
        stream.write_all(request.as_bytes()).unwrap();
        let reply = read_one(&mut stream, false);
        let shown = &request[..request.len().min(60)];
        assert_eq!(reply.status, status, "{shown:?}: {}", reply.text());
        assert!(
            reply.body.len() > 10,
            "{shown:?} has a reason: {:?}",
            reply.text()
        );
        assert!(reply.header("content-type").is_some() && reply.header("date").is_some());
        assert_eq!(
            reply.header("connection") == Some("close"),
            closes,
            "{shown:?}"
        );
        if closes {
            assert!(read_to_close(&mut stream).is_empty(), "{shown:?}");
        } else {
            stream
                .write_all(b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            assert_eq!(
                read_one(&mut stream, false).status,
                200,
                "{shown:?} then a GET"
            );
        }
    }
}

#[test]
fn framing_errors_close_the_connection() {
    smuggling_is_refused(&server("proto-close"));
}

#[test]
fn framing_errors_close_the_connection_over_tls() {
    smuggling_is_refused(&tls_server("proto-close-tls"));
}

fn smuggling_is_refused(server: &Server) {
    // A smuggling attempt: the second request must never be answered.
    let smuggle = b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /users HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut stream = server.stream();
    stream.write_all(smuggle).unwrap();
    let replies = parse_replies(&read_to_close(&mut stream), &[]);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].status, 400);
    assert_eq!(replies[0].header("connection"), Some("close"));
}

#[test]
fn traversal_attempts_never_leave_the_root() {
    traversal_table(&server("proto-traversal"));
}

#[test]
fn traversal_attempts_never_leave_the_root_over_tls() {
    traversal_table(&tls_server("proto-traversal-tls"));
}

fn traversal_table(server: &Server) {
    let targets = [
        "/../routes.toml",
        "/files/../../routes.toml",
        "/files/%2e%2e/%2e%2e/routes.toml",
        "/files/%2E%2E%2Froutes.toml",
        "/files/..%2f..%2froutes.toml",
        "/files/..%5c..%5croutes.toml",
        "/files/..\\..\\routes.toml",
        "/files/%00",
        "/files/bigfile.txt%00.png",
        "/files//etc/passwd",
        "/files/.git/config",
        "/%2e%2e/Cargo.toml",
        "/files/%252e%252e/routes.toml",
    ];
    for target in targets {
        let reply = get(server, target);
        assert!(
            matches!(reply.status, 400 | 404),
            "{target}: {}",
            reply.status
        );
        assert!(
            !reply.text().contains("[[route]]"),
            "{target} leaked routes.toml"
        );
    }
}

#[test]
fn keep_alive_is_the_default_and_close_is_honoured() {
    let server = server("proto-keepalive");
    let mut stream = server.connect();
    for _ in 0..3 {
        stream
            .write_all(b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let reply = read_one(&mut stream, false);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), None);
    }
    stream
        .write_all(b"GET /style.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let rest = parse_replies(&read_to_close(&mut stream), &[]);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].header("connection"), Some("close"));
}

#[test]
fn http_10_closes_unless_it_asks_for_keep_alive() {
    let server = server("proto-http10");
    let replies = parse_replies(&server.raw(b"GET /style.css HTTP/1.0\r\n\r\n"), &[]);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].header("connection"), Some("close"));
    let mut stream = server.connect();
    stream
        .write_all(b"GET /style.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let reply = read_one(&mut stream, false);
    assert_eq!(reply.header("connection"), Some("keep-alive"));
    stream
        .write_all(b"GET /style.css HTTP/1.0\r\n\r\n")
        .unwrap();
    assert_eq!(parse_replies(&read_to_close(&mut stream), &[]).len(), 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = server("proto-pipeline");
    let mut batch = Vec::new();
    let paths = [
        "/style.css",
        "/nothing",
        "/image_user_one",
        "/users",
        "/page_one",
    ];
    for path in paths {
        batch.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"HEAD /bigfile HTTP/1.1\r\nHost: t\r\n\r\n");
    batch.extend_from_slice(b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"Nombre\":\"Pi\"}");
    batch.extend_from_slice(b"GET /users/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let heads = [false, false, false, false, false, true, false, false];
    let replies = parse_replies(&server.raw(&batch), &heads);
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 404, 200, 200, 200, 200, 201, 200]);
    assert_eq!(
        replies[0].header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(replies[2].header("content-type"), Some("image/png"));
    assert_eq!(replies[3].text(), "[]\n");
    assert_eq!(replies[5].header("content-length"), Some("1300051"));
    assert!(replies[7].text().contains("\"Nombre\":\"Pi\""));
}

#[test]
fn pipelining_survives_requests_split_at_every_byte() {
    let server = server("proto-split");
    let request = b"GET /style.css HTTP/1.1\r\nHost: t\r\n\r\nGET /page_one HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    for byte in request {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
    }
    let replies = parse_replies(&read_to_close(&mut stream), &[]);
    assert_eq!(
        replies.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200]
    );
}

#[test]
fn options_and_expect_continue_are_handled() {
    let server = server("proto-options");
    let reply = one(
        &server,
        b"OPTIONS /createUser HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (reply.status, reply.header("allow")),
        (204, Some("POST, OPTIONS"))
    );
    let reply = one(
        &server,
        b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(reply.status, 204);
    assert!(reply.header("allow").unwrap().contains("GET"));

    // The client waits for 100 Continue before sending its body.
    let mut stream = server.connect();
    stream
        .write_all(b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 15\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"{\"Nombre\":\"Ex\"}").unwrap();
    let replies = parse_replies(&read_to_close(&mut stream), &[]);
    assert_eq!(replies[0].status, 201);

    // Too large: refused at once, without asking for the body.
    let reply = one(&server, b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(reply.status, 413);
}

#[test]
fn chunked_bodies_are_decoded() {
    let server = server("proto-chunked");
    let reply = one(
        &server,
        b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;x=y\r\n{\"Nom\r\nB\r\nbre\":\"Chu\"}\r\n0\r\nX-Trailer: 1\r\n\r\n",
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert!(reply.text().contains("\"Nombre\":\"Chu\""));
    let reply = one(&server, b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[test]
fn the_access_log_has_one_line_per_response() {
    let server = server("proto-log");
    get(&server, "/page_one");
    get(&server, "/nothing");
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let lines = server.log_lines();
        let found = lines.iter().filter(|l| l.contains("\"GET /")).count();
        if found >= 2 {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("\"GET /page_one HTTP/1.1\" 200 "))
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains("\"GET /nothing HTTP/1.1\" 404 "))
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "log lines missing: {lines:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
