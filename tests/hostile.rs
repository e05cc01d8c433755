//! Slow and greedy clients against the real server, with short timeouts from a routes file:
//! slowloris heads, unfinished bodies, idle connections, slow readers and the connection cap.
//! Every wait is bounded; none is used to synchronise.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, established, get, read_one, read_to_close, scratch};

/// A site with a 64 MiB sparse file and a server with one-second timeouts.
fn strict_server(name: &str, extra_limits: &str) -> Server {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "<p>hello</p>").unwrap();
    let huge = std::fs::File::create(dir.join("site/huge.bin")).unwrap();
    huge.set_len(64 << 20).unwrap();
    let routes = format!(
        "[server]\nroot = \"site\"\n\n[server.limits]\n{extra_limits}\n\n\
         [server.timeouts]\nheader = 1\nbody = 1\nidle = 1\nsend = 1\n\n\
         [[route]]\npath = \"/\"\ndir = \".\"\n\n[[route]]\npath = \"/createUser\"\naction = \"create_user\"\n"
    );
    write(&dir, "routes.toml", &routes);
    let data = dir.join("data");
    Server::start(&[
        "--config",
        dir.join("routes.toml").to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ])
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Reads until the server closes, returning what arrived and how long it took.
fn until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    (read_to_close(stream), started.elapsed())
}

/// A timeout of one second fired: not early, and not much later.
fn assert_one_second(waited: Duration) {
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

/// A normal request still gets a quick answer.
fn assert_responsive(server: &Server) {
    let started = Instant::now();
    assert_eq!(get(server, "/index.html").status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_cut_off_with_408() {
    let server = strict_server("hostile-slowloris", "");
    let mut stream = server.connect();
    stream.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    // Keep trickling header bytes; the server must cut us off anyway.
    let mut cut = false;
    for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        .iter()
        .cycle()
        .take(60)
    {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            cut = true;
            break;
        }
        assert_responsive(&server);
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let (answer, _) = until_closed(&mut stream);
    let text = String::from_utf8_lossy(&answer);
    assert!(cut || text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not cut off: {:?}",
        started.elapsed()
    );
}

/// (The kernel hands it over after a second of silence, TCP_DEFER_ACCEPT; the header timeout
/// of one second runs from then: closed after about two.)
#[test]
fn a_connection_that_never_speaks_is_closed_after_the_header_timeout() {
    let server = strict_server("hostile-silent", "");
    let mut stream = server.connect();
    let (answer, waited) = until_closed(&mut stream);
    assert!(answer.is_empty());
    assert_one_second(waited);
}

#[test]
fn an_unfinished_body_is_cut_off_with_408() {
    let server = strict_server("hostile-body", "");
    let mut stream = server.connect();
    stream
        .write_all(b"POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Nombre\"")
        .unwrap();
    let (answer, waited) = until_closed(&mut stream);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408 "));
    assert_one_second(waited);
    assert_responsive(&server);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = strict_server("hostile-idle", "");
    let mut stream = server.connect();
    stream
        .write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut stream, false).status, 200);
    let (rest, waited) = until_closed(&mut stream);
    assert!(rest.is_empty());
    assert_one_second(waited);
}

#[test]
fn a_reader_too_slow_for_the_minimum_rate_is_cut_off_without_slowing_others() {
    let server = strict_server("hostile-slow-reader", "min_send_rate = 1048576");
    let mut stream = server.connect();
    stream
        .write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // Read a trickle, far below 1 MiB/s, until the server resets the connection.
    let started = Instant::now();
    let mut received = 0usize;
    let mut buf = [0u8; 1024];
    while established(&stream) {
        assert_responsive(&server);
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "not cut off after 8 s"
        );
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(received < 64 << 20, "received all {received} bytes");
}

#[test]
fn connections_past_the_cap_are_refused_and_the_others_keep_working() {
    let server = strict_server("hostile-cap", "max_connections = 4");
    let mut held: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    // Make sure all four are accepted before the fifth arrives.
    for stream in &mut held {
        stream
            .write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_one(stream, false).status, 200);
    }
    // It speaks at once (a silent one is only handed to the server when it speaks, or after
    // a second: TCP_DEFER_ACCEPT), and is refused at once.
    let mut extra = server.connect();
    extra
        .write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (answer, waited) = until_closed(&mut extra);
    assert!(waited < Duration::from_millis(500), "{waited:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 503 "),
        "{text}"
    );
    for stream in &mut held {
        stream
            .write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(read_one(stream, false).status, 200);
    }
    // Once one closes, a new client gets in.
    drop(held.pop());
    let started = Instant::now();
    loop {
        let mut stream = server.connect();
        stream
            .write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        if String::from_utf8_lossy(&read_to_close(&mut stream)).starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the freed slot was never reused"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
