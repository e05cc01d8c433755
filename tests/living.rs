//! Day-to-day operation: hot reload of routes.toml (by watching and on SIGHUP), the health
//! action, and systemd socket activation.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, WAIT, get, read_one, scratch, write_routes};

const ROUTE_A: &str = "[[route]]\npath = \"/a\"\npage = \"a.html\"\n";
const ROUTE_B: &str = "[[route]]\npath = \"/b\"\npage = \"b.html\"\n";

fn site(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/a.html"), "<p>a</p>").unwrap();
    std::fs::write(dir.join("site/b.html"), "<p>b</p>").unwrap();
    write_routes(&dir, ROUTE_A);
    dir
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let routes = dir.join("routes.toml");
    let mut args = vec!["--config", routes.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Polls `path` until it answers `status`; returns how long that took.
fn wait_status(server: &Server, path: &str, status: u16, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if get(server, path).status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{path} did not answer {status} within {limit:?}; stderr: {:?}",
            server.errors.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_edited_routes_file_is_served_within_a_second_and_a_bad_one_is_refused() {
    let dir = site("living-reload");
    let server = start(&dir, &[]);
    assert_eq!(get(&server, "/b").status, 404);

    write_routes(&dir, &format!("{ROUTE_A}\n{ROUTE_B}"));
    let took = wait_status(&server, "/b", 200, WAIT);
    assert!(took < Duration::from_secs(1), "new route took {took:?}");
    server.wait_error("reloaded");

    // An invalid file is refused with its file, line and key; the previous table keeps serving.
    write_routes(
        &dir,
        &format!("{ROUTE_A}\n{ROUTE_B}\n[[route]]\npath = \"/c\"\npgae = \"c.html\"\n"),
    );
    let line = server.wait_error("refused");
    assert!(
        line.contains("routes.toml:14:1: unknown field `pgae`"),
        "{line}"
    );
    assert_eq!(get(&server, "/a").status, 200);
    assert_eq!(get(&server, "/b").status, 200);

    // A new host needs a restart: the log says so; the rest of the file applies.
    let text = format!("[server]\nroot = \"site\"\nhost = \"127.0.0.2\"\n\n{ROUTE_B}");
    std::fs::write(dir.join("routes.toml.tmp"), text).unwrap();
    std::fs::rename(dir.join("routes.toml.tmp"), dir.join("routes.toml")).unwrap();
    server.wait_error("[server] host needs a restart");
    wait_status(&server, "/a", 404, WAIT);
    assert_eq!(get(&server, "/b").status, 200);
}

#[test]
fn no_request_fails_while_routes_are_reloaded() {
    let dir = site("living-no-failures");
    let server = Arc::new(start(&dir, &[]));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut stream = server.connect();
                let (mut ok, mut failed) = (0usize, 0usize);
                for _ in 0..1_000_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    stream
                        .write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
                        .unwrap();
                    if read_one(&mut stream, false).status == 200 {
                        ok += 1
                    } else {
                        failed += 1
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    for round in 0..10 {
        let routes = if round % 2 == 0 {
            format!("{ROUTE_A}\n{ROUTE_B}")
        } else {
            ROUTE_A.to_owned()
        };
        write_routes(&dir, &routes);
        wait_status(&server, "/b", if round % 2 == 0 { 200 } else { 404 }, WAIT);
    }
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for client in clients {
        let (o, f) = client.join().unwrap();
        ok += o;
        failed += f;
    }
    assert!(ok > 100, "only {ok} requests");
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during reloads",
        ok + failed
    );
}

#[test]
fn sighup_reloads_when_watching_is_off() {
    let dir = site("living-hup");
    let server = start(&dir, &["--no-watch"]);
    write_routes(&dir, &format!("{ROUTE_A}\n{ROUTE_B}"));
    // Not watched: nothing changes until the signal (checked for longer than a watch period).
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(600) {
        assert_eq!(get(&server, "/b").status, 404);
        std::thread::sleep(Duration::from_millis(50));
    }
    server.signal(libc::SIGHUP);
    let took = wait_status(&server, "/b", 200, WAIT);
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[test]
fn health_reports_status_and_uptime_and_no_version() {
    let data = scratch("living-health");
    let server = Server::bundled(&data);
    let reply = get(&server, "/healthz");
    assert_eq!(
        (reply.status, reply.header("content-type")),
        (200, Some("application/json"))
    );
    let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(value["status"], "ok");
    assert!(
        value.get("version").is_none(),
        "the version is for /metrics: {value}"
    );
    assert!(value["uptime_seconds"].as_f64().is_some_and(|u| u >= 0.0));
}

#[test]
fn metrics_count_requests_and_pass_promtool() {
    let data = scratch("living-metrics");
    let server = Server::bundled(&data);
    assert_eq!(get(&server, "/").status, 200);
    assert_eq!(get(&server, "/nowhere").status, 404);
    let created = common::one(
        &server,
        b"POST /users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"Nombre\":\"Mo\"}",
    );
    assert_eq!(created.status, 201);
    let reply = get(&server, "/metrics");
    assert_eq!(
        (reply.status, reply.header("content-type")),
        (200, Some("text/plain; version=0.0.4; charset=utf-8"))
    );
    let text = reply.text();
    for line in [
        "tws_requests_total{route=\"/\",code=\"2xx\"} 1",
        "tws_requests_total{route=\"/users\",code=\"2xx\"} 1",
        "tws_requests_total{route=\"\",code=\"4xx\"} 1",
        "tws_store_commits_total 1",
        "tws_store_rows_total 1",
        "tws_reloads_total{result=\"ok\"} 0",
        "tws_open_connections 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    assert!(
        text.contains("tws_request_duration_seconds_count 3"),
        "{text}"
    );
    assert!(text.contains("tws_build_info{version=\""), "{text}");
    // The exposition format, as Prometheus's own linter reads it.
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => {
            assert!(
                std::env::var_os("TWS_REQUIRE_TOOLS").is_none(),
                "promtool is required (TWS_REQUIRE_TOOLS) but not installed"
            );
            eprintln!(
                "note: promtool is not installed; format not checked (apt-get install prometheus)"
            );
        }
    }
}

#[test]
fn a_listener_passed_by_systemd_is_used() {
    use std::os::fd::AsRawFd;
    let dir = site("living-activation");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fd = listener.as_raw_fd();
    // systemd's protocol: the socket as descriptor 3, LISTEN_FDS=1, LISTEN_PID = the server's
    // own pid, which a shell knows before it execs the server.
    let mut command = Command::new("sh");
    command
        .args(["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_tws"))
        .args([
            "--config",
            dir.join("routes.toml").to_str().unwrap(),
            "--port",
            "1",
        ]);
    // SAFETY: dup2 and fcntl are async-signal-safe, as code between fork and exec must be.
    unsafe {
        command.pre_exec(move || {
            // dup2 gives a copy without close-on-exec; a socket already at 3 needs the flag
            // cleared instead.
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, 3) == 3
            };
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let server = Server::spawn(command);
    drop(listener);
    assert_eq!(server.addr.port(), port);
    assert_eq!(get(&server, "/a").status, 200);
    // The banner says where the socket came from.
    let started = Instant::now();
    while !server
        .log_lines()
        .iter()
        .any(|l| l.contains("socket passed by systemd"))
    {
        assert!(started.elapsed() < WAIT, "{:?}", server.log_lines());
        std::thread::sleep(Duration::from_millis(10));
    }
}
