//! The request-body memory budget against the real server: 300 connections each holding an
//! unfinished 1 MiB body cannot take more than the budget, normal requests keep being answered
//! quickly meanwhile, and the memory comes back once the attackers leave.

mod common;

use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, WAIT, get, one, scratch};

const ATTACKERS: usize = 300;
const DECLARED: usize = 1 << 20;
const SENT: usize = 1_000_000;

fn rss_kib(server: &Server, field: &str) -> u64 {
    common::memory_kib(server.child.id(), field)
}

/// Opens the attackers' connections and pushes as much of their bodies as the server (and
/// the kernel's buffers) take within a few seconds, without ever blocking.
fn attack(server: &Server) -> Vec<TcpStream> {
    let head = format!(
        "POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {DECLARED}\r\n\r\n"
    );
    let mut streams: Vec<(TcpStream, usize)> = (0..ATTACKERS)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(head.as_bytes()).unwrap();
            s.set_nonblocking(true).unwrap();
            (s, 0)
        })
        .collect();
    let chunk = vec![b' '; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline && streams.iter().any(|(_, sent)| *sent < SENT) {
        let mut progress = false;
        for (s, sent) in &mut streams {
            let want = (SENT - *sent).min(chunk.len());
            if want == 0 {
                continue;
            }
            match s.write(&chunk[..want]) {
                Ok(n) => {
                    *sent += n;
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("an attacker's connection failed early: {e}"),
            }
        }
        if !progress {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    streams.into_iter().map(|(s, _)| s).collect()
}

fn p99(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[(values.len() * 99 / 100).min(values.len() - 1)]
}

#[test]
fn unfinished_bodies_cannot_take_more_than_the_budget() {
    let data = scratch("budget-data");
    // The bundled routes: the default budget of 64 MiB, 1 MiB bodies, a 30 s body timeout.
    let server = Server::bundled(&data);
    let idle = rss_kib(&server, "VmRSS");
    let attackers = attack(&server);
    // Normal clients meanwhile: small creates and pages.
    let mut creates = Vec::new();
    let mut pages = Vec::new();
    for i in 0..50 {
        let body = format!("{{\"Nombre\": \"user {i}\"}}");
        let request = format!(
            "POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let started = Instant::now();
        assert_eq!(one(&server, request.as_bytes()).status, 201);
        creates.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(get(&server, "/").status, 200);
        pages.push(started.elapsed());
    }
    let peak = rss_kib(&server, "VmHWM");
    let limit = Duration::from_millis(100);
    assert!(
        p99(creates.clone()) < limit,
        "create p99 {:?}",
        p99(creates)
    );
    assert!(p99(pages.clone()) < limit, "GET / p99 {:?}", p99(pages));
    let budget_kib = 64 * 1024;
    assert!(
        peak < idle + budget_kib + 32 * 1024,
        "peak RSS {peak} KiB (idle {idle} KiB) with {ATTACKERS} unfinished 1 MiB bodies"
    );
    // The attackers leave abruptly (a reset: a FIN would wait behind the bytes the server has
    // not read); the memory their bodies held is given back.
    for s in attackers {
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    let started = Instant::now();
    loop {
        let now = rss_kib(&server, "VmRSS");
        if now < idle + 16 * 1024 {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "RSS still {now} KiB (idle {idle} KiB, peak {peak} KiB) after the attackers left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
