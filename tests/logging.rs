//! The access log never stops the server: a stdout nobody reads, a slow reader, a log file
//! rotated under load (SIGUSR1), and a log file that cannot be opened.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Server, WAIT, scratch, tws};

/// Requests per client, sent in pipelined batches over one keep-alive connection.
const CLIENTS: usize = 4;
const PER_CLIENT: usize = 25_000;
const BATCH: usize = 100;
const REQUEST: &[u8] = b"GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n";
const STATUS_LINE: &[u8] = b"HTTP/1.1 200 OK\r\n";

fn folder(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::write(dir.join("small.txt"), "x".repeat(99) + "\n").unwrap();
    dir
}

/// Sends `per_client` requests from each of `CLIENTS` connections; returns how long it took.
/// Every response must be a 200.
fn load(addr: SocketAddr, per_client: usize) -> Duration {
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| std::thread::spawn(move || client(addr, per_client)))
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    started.elapsed()
}

fn client(addr: SocketAddr, requests: usize) {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let batch = REQUEST.repeat(BATCH);
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < requests {
        stream.write_all(&batch).unwrap();
        sent += BATCH;
        // Count status lines until the batch is answered (responses to a 100 B file are small
        // and never contain a status line in their body).
        let mut seen = 0;
        let mut tail: Vec<u8> = Vec::new();
        while seen < BATCH {
            let n = stream
                .read(&mut buf)
                .expect("a response within the timeout");
            assert!(n > 0, "server closed after {sent} requests");
            tail.extend_from_slice(&buf[..n]);
            seen += tail
                .windows(STATUS_LINE.len())
                .filter(|w| *w == STATUS_LINE)
                .count();
            let keep = tail.len().min(STATUS_LINE.len() - 1);
            tail.drain(..tail.len() - keep);
        }
    }
}

/// Starts tws on `dir` with stdout left to the caller; returns the child, its address, the
/// unread stdout, and stderr lines as they come.
fn start_piped(dir: &Path, extra: &[&str]) -> (Child, SocketAddr, ChildStdout, Errors) {
    let mut child = tws()
        .args(["--root", dir.to_str().unwrap(), "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read the banner's first line one byte at a time, so nothing past it is consumed.
    let mut line = Vec::new();
    let mut byte = [0u8];
    while !line.ends_with(b"\n") {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "no URL line");
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let at = line.find("http://").unwrap() + 7;
    let addr: SocketAddr = line[at..].split('/').next().unwrap().parse().unwrap();
    let errors = common::drain(child.stderr.take().unwrap(), None);
    (child, addr, stdout, errors)
}

type Errors = Arc<std::sync::Mutex<Vec<String>>>;

/// The time the same load takes with the access log off: the reference rate.
fn reference(dir: &Path) -> Duration {
    let server = Server::start(&["--root", dir.to_str().unwrap(), "--log-format", "off"]);
    load(server.addr, PER_CLIENT)
}

#[test]
fn a_stdout_nobody_reads_never_stops_serving() {
    let dir = folder("log-unread");
    let off = reference(&dir);
    let (mut child, addr, stdout, errors) = start_piped(&dir, &[]);
    let took = load(addr, PER_CLIENT);
    let rss = common::memory_kib(child.id(), "VmRSS");
    let line = common::wait_line(&errors, "access log is not keeping up");
    let _ = child.kill();
    let _ = child.wait();
    drop(stdout);
    // The blocked pipe costs at most a small factor, never a stall (which the read timeout
    // of the clients would have turned into a failure).
    assert!(
        took < off * 10,
        "{} requests took {took:?} with an unread stdout, {off:?} with the log off",
        CLIENTS * PER_CLIENT
    );
    assert!(
        rss < 64 * 1024,
        "RSS {rss} KiB: the log queue is not bounded"
    );
    let dropped: u64 = line
        .rsplit(": ")
        .next()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(dropped > 0, "{line}");
}

#[test]
fn a_slow_reader_loses_lines_but_not_the_rate() {
    let dir = folder("log-slow");
    let off = reference(&dir);
    let (mut child, addr, mut stdout, errors) = start_piped(&dir, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, read) = (Arc::clone(&stop), Arc::clone(&read));
        std::thread::spawn(move || {
            // About 400 KB/s: far less than the log of the load below.
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n @ 1..) = stdout.read(&mut buf) {
                    read.fetch_add(n as u64, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let took = load(addr, PER_CLIENT);
    common::wait_line(&errors, "access log is not keeping up");
    stop.store(true, Ordering::Relaxed);
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    assert!(
        took < off * 10,
        "took {took:?} with a slow reader, {off:?} with the log off"
    );
    assert!(read.load(Ordering::Relaxed) > 0, "the reader got no lines");
}

#[test]
fn a_log_file_rotated_under_load_loses_and_splits_no_line() {
    let dir = folder("log-rotate");
    let log = dir.join("access.log");
    let server = Server::start(&[
        "--root",
        dir.to_str().unwrap(),
        "--access-log",
        log.to_str().unwrap(),
    ]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "a new log file is created with mode 0640");
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr;
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) && sent < 200_000 {
                    client(addr, BATCH);
                    sent += BATCH;
                }
                sent
            })
        })
        .collect();
    // Rotate three times while the clients run: rename, then signal, as logrotate does.
    for i in 1..=3 {
        std::thread::sleep(Duration::from_millis(150));
        std::fs::rename(&log, dir.join(format!("access.log.{i}"))).unwrap();
        server.signal(libc::SIGUSR1);
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Ordering::Relaxed);
    let sent: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| dir.join(format!("access.log.{i}")))
        .chain([log.clone()])
        .collect();
    let started = Instant::now();
    let lines = loop {
        let lines: Vec<String> = files
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                assert!(
                    text.is_empty() || text.ends_with('\n'),
                    "{f:?} ends mid-line"
                );
                text.lines().map(str::to_owned).collect::<Vec<_>>()
            })
            .collect();
        if lines.len() >= sent || started.elapsed() > WAIT {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(lines.len(), sent, "every request has exactly one line");
    for line in &lines {
        assert!(
            line.starts_with("127.0.0.1 - - [") && line.ends_with("\"-\" \"-\""),
            "a broken line: {line:?}"
        );
    }
    for f in &files {
        assert!(
            !std::fs::read_to_string(f).unwrap().is_empty(),
            "{f:?} got no lines: the reopen did not happen"
        );
    }
}

#[test]
fn a_log_file_that_cannot_be_opened_stops_startup_with_one_line() {
    let dir = folder("log-bad");
    let out = Command::new(env!("CARGO_BIN_EXE_tws"))
        .args(["--root", dir.to_str().unwrap(), "--port", "0"])
        .args(["--access-log", "/nonexistent-tws-folder/access.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "tws: error: cannot open access log /nonexistent-tws-folder/access.log: no such file or directory\n"
    );
}

#[test]
fn a_full_disk_is_reported_and_serving_goes_on() {
    let dir = folder("log-full");
    // /dev/full takes the open and fails every write with ENOSPC, as a full disk does.
    let server = Server::start(&["--root", dir.to_str().unwrap(), "--access-log", "/dev/full"]);
    load(server.addr, 1_000);
    let line = server.wait_error("cannot write the access log to /dev/full");
    assert!(
        line.contains("no space left on device") || line.contains("No space left"),
        "{line}"
    );
    load(server.addr, 1_000);
    let reports = server
        .errors
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("cannot write the access log"))
        .count();
    assert_eq!(
        reports, 1,
        "a write error is reported at most once a minute"
    );
}
