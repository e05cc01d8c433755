//! Stopping the server: SIGTERM lets requests in flight finish, closes idle connections, refuses
//! new ones and exits 0; a second SIGINT exits at once.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{Server, WAIT, read_one, scratch};

const HUGE: usize = 64 << 20;

fn site_with_huge_file(name: &str) -> Server {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "<p>hello</p>").unwrap();
    std::fs::File::create(dir.join("site/huge.bin"))
        .unwrap()
        .set_len(HUGE as u64)
        .unwrap();
    Server::start(&["--root", dir.join("site").to_str().unwrap()])
}

/// Waits (bounded) for the server process to end; returns its exit code.
fn wait_exit(server: &mut Server, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status.code();
        }
        assert!(started.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_finishes_downloads_closes_idle_connections_and_exits_0() {
    let mut server = site_with_huge_file("shutdown-term");
    let mut idle = server.connect();
    idle.write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_one(&mut idle, false).status, 200);

    let mut download = server.connect();
    download
        .write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0;
    while received < 1 << 20 {
        received += download.read(&mut buf).unwrap();
    }

    server.signal(libc::SIGTERM);
    // The idle connection is closed at once.
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
    // New connections are refused once the loops have let go of the listener.
    let started = Instant::now();
    while std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).is_ok() {
        assert!(started.elapsed() < WAIT, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The download in flight runs to its end.
    loop {
        match download.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(e) => panic!("download broken after {received} bytes: {e}"),
        }
    }
    // Everything arrived: the body and its head (well under 1 KiB).
    assert!(
        received > HUGE && received < HUGE + 1024,
        "{received} bytes"
    );
    assert_eq!(wait_exit(&mut server, WAIT), Some(0));
}

#[test]
fn a_second_sigint_exits_at_once() {
    let mut server = site_with_huge_file("shutdown-twice");
    let mut download = server.connect();
    download
        .write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    assert!(download.read(&mut buf).unwrap() > 0);
    // The reader stalls: a graceful stop would wait for it (up to the 30 s grace).
    server.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited before the second signal"
    );
    server.signal(libc::SIGINT);
    let code = wait_exit(&mut server, Duration::from_secs(3));
    assert_ne!(code, Some(0));
}
