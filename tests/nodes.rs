//! Several nodes: three tws sharing one PostgreSQL behind HAProxy (health checks on
//! /healthz). Creates spread over the nodes and every user is visible through each; a node
//! killed under load loses no acknowledged create; a rolling restart fails no request; and a
//! database restart gives errors only while it is down. One node alone shows the faults:
//! 503s within bounded time while the database is away, static files still served.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pg::Postgres;
use common::{Server, WAIT, client, scratch};
use serde_json::Value;

const ROUTES: &str = r#"
[server]
root = "site"

[server.timeouts]
drain = 0.6

[[route]]
path = "/"
page = "index.html"

[[route]]
path = "/healthz"
action = "health"

[[collection]]
name = "users"
path = "/users"
fields.Nombre = { type = "string", required = true, min_length = 1, max_length = 100 }
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn site(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "<p>node</p>").unwrap();
    std::fs::write(dir.join("routes.toml"), ROUTES).unwrap();
    dir
}

fn node(dir: &Path, url: &str, port: u16) -> Server {
    let mut command = common::tws();
    command.args([
        "--config",
        dir.join("routes.toml").to_str().unwrap(),
        "--store",
        url,
        "--port",
        &port.to_string(),
        "--log-format",
        "combined",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    Server::spawn(command)
}

/// HAProxy in front of `ports`, checking /healthz every 100 ms; its stats as CSV on `stats`.
struct Haproxy {
    child: Child,
    port: u16,
    stats: u16,
}

impl Haproxy {
    fn start(dir: &Path, ports: &[u16]) -> Haproxy {
        let (port, stats) = (free_port(), free_port());
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "  server n{} 127.0.0.1:{p} check send-proxy-v2 check-send-proxy\n",
                    i + 1
                )
            })
            .collect();
        let config = format!(
            "global\n  maxconn 2000\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n  \
             retries 3\n  option redispatch\n  option http-server-close\n\
             frontend api\n  bind 127.0.0.1:{port}\n  default_backend nodes\n\
             frontend stats\n  bind 127.0.0.1:{stats}\n  stats enable\n  stats uri /stats\n\
             backend nodes\n  balance roundrobin\n  option httpchk GET /healthz\n  \
             default-server inter 100ms fall 1 rise 2\n{servers}"
        );
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f", file.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let haproxy = Haproxy { child, port, stats };
        haproxy.wait_up(ports.len());
        haproxy
    }

    /// The state HAProxy gives each node (UP, DOWN, ...).
    fn states(&self) -> Vec<String> {
        let Ok(mut response) = client()
            .get(format!("http://127.0.0.1:{}/stats;csv", self.stats))
            .call()
        else {
            return Vec::new();
        };
        let text = response.body_mut().read_to_string().unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with("nodes,n"))
            .map(|l| l.split(',').nth(17).unwrap_or("").to_owned())
            .collect()
    }

    /// Waits (bounded) until `n` nodes are up.
    fn wait_up(&self, n: usize) {
        let started = Instant::now();
        while self.states().iter().filter(|s| s.starts_with("UP")).count() < n {
            assert!(
                started.elapsed() < WAIT,
                "nodes not up in HAProxy: {:?}",
                self.states()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates one user; its id, or what went wrong.
fn create(url: &str, name: &str) -> Result<i64, String> {
    let mut response = client()
        .post(url)
        .header("Content-Type", "application/json")
        .send(serde_json::json!({ "Nombre": name }).to_string())
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    if status != 201 {
        return Err(format!("{status} {}", String::from_utf8_lossy(&body)));
    }
    let user: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(user["id"].as_i64().unwrap())
}

/// When a request was answered, and the id it created or what went wrong.
type Outcome = (Instant, Result<i64, String>);

/// Clients creating users through `url` until stopped: the outcome of every request.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
}

impl Load {
    fn start(url: String, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|c| {
                let (url, stop, outcomes) = (url.clone(), Arc::clone(&stop), Arc::clone(&outcomes));
                std::thread::spawn(move || {
                    for i in 0..100_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let outcome = create(&url, &format!("load {c}-{i}"));
                        let failed = outcome.is_err();
                        outcomes.lock().unwrap().push((Instant::now(), outcome));
                        if failed {
                            // HAProxy answers at once while every node is out: do not spin.
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            threads,
            outcomes,
        }
    }

    fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::into_inner(self.outcomes)
            .unwrap()
            .into_inner()
            .unwrap()
    }

    fn count(&self) -> usize {
        self.outcomes.lock().unwrap().len()
    }

    /// Waits (bounded) until `n` more requests have been answered.
    fn wait_for(&self, n: usize) {
        let (start, started) = (self.count(), Instant::now());
        while self.count() < start + n {
            assert!(started.elapsed() < WAIT, "the load is not being served");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Every user id stored, read page by page through `base` (a node or HAProxy).
fn stored_ids(base: &str) -> HashSet<i64> {
    let mut ids = HashSet::new();
    let mut next = Some("/users?limit=1000".to_owned());
    for _ in 0..1000 {
        let Some(path) = next.take() else {
            return ids;
        };
        let mut response = client().get(format!("{base}{path}")).call().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned())
            .map(|l| l[1..l.find('>').unwrap()].to_owned());
        let page: Vec<Value> =
            serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
        ids.extend(page.iter().map(|u| u["id"].as_i64().unwrap()));
    }
    panic!("pages do not end");
}

fn acknowledged(outcomes: &[Outcome]) -> Vec<i64> {
    outcomes
        .iter()
        .filter_map(|(_, o)| o.as_ref().ok().copied())
        .collect()
}

fn failures(outcomes: &[Outcome]) -> Vec<&String> {
    outcomes
        .iter()
        .filter_map(|(_, o)| o.as_ref().err())
        .collect()
}

#[test]
fn three_nodes_behind_haproxy_share_one_database() {
    let Some(pg) = Postgres::start("nodes") else {
        return;
    };
    let url = pg.database("tws");
    let dir = site("nodes");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<Server> = ports.iter().map(|p| node(&dir, &url, *p)).collect();
    let haproxy = Haproxy::start(&dir, &ports);
    let front = haproxy.url("/users");

    // Creates spread over the nodes, and each is visible through every node at once.
    let ids: Vec<i64> = (0..30)
        .map(|i| create(&front, &format!("spread {i}")).unwrap())
        .collect();
    for node in &nodes {
        let served = node
            .log_lines()
            .iter()
            .filter(|l| l.contains("\"POST /users "))
            .count();
        assert!(served >= 5, "a node served only {served} of 30 creates");
        let seen = stored_ids(&format!("http://{}", node.addr));
        assert!(
            ids.iter().all(|id| seen.contains(id)),
            "node {} misses users",
            node.addr
        );
    }

    // The client's own address reaches the nodes in HAProxy's PROXY header: a client on
    // 127.0.0.2 is logged as 127.0.0.2, not as HAProxy's 127.0.0.1.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let source: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    sock.bind(&source.into()).unwrap();
    let front_addr: std::net::SocketAddr = format!("127.0.0.1:{}", haproxy.port).parse().unwrap();
    sock.connect(&front_addr.into()).unwrap();
    let mut stream: std::net::TcpStream = sock.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    use std::io::Write as _;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(common::read_one(&mut stream, false).status, 200);
    let started = Instant::now();
    while !nodes.iter().any(|n| {
        n.log_lines()
            .iter()
            .any(|l| l.starts_with("127.0.0.2 - - [") && l.contains("/healthz"))
    }) {
        assert!(
            started.elapsed() < WAIT,
            "no node logged the client's address"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A node killed under load: nothing acknowledged is lost, only requests in flight fail.
    let load = Load::start(front.clone(), 4);
    load.wait_for(100);
    let killed = nodes.remove(1);
    killed.kill();
    load.wait_for(200);
    let outcomes = load.finish();
    let failed = failures(&outcomes);
    eprintln!(
        "kill: {} requests, {} failed: {failed:?}",
        outcomes.len(),
        failed.len()
    );
    assert!(failed.len() <= 4, "{} failed: {failed:?}", failed.len());
    let stored = stored_ids(&format!("http://{}", nodes[0].addr));
    let lost: Vec<i64> = acknowledged(&outcomes)
        .into_iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged creates lost: {lost:?}");
    nodes.insert(1, node(&dir, &url, ports[1]));
    haproxy.wait_up(3);

    // A rolling restart under load: SIGTERM (the node drains, HAProxy takes it out), start
    // again, next node. No request fails.
    let load = Load::start(front.clone(), 4);
    load.wait_for(50);
    for (i, port) in ports.iter().enumerate() {
        let mut old = nodes.remove(i);
        old.signal(libc::SIGTERM);
        let exited = old.child.wait().unwrap();
        assert!(exited.success(), "node {i} exited with {exited:?}");
        nodes.insert(i, node(&dir, &url, *port));
        haproxy.wait_up(3);
        load.wait_for(50);
    }
    let outcomes = load.finish();
    eprintln!("rolling restart: {} requests", outcomes.len());
    assert_eq!(
        failures(&outcomes),
        Vec::<&String>::new(),
        "requests failed during the rolling restart"
    );
    let stored = stored_ids(&haproxy.url(""));
    assert!(acknowledged(&outcomes).iter().all(|id| stored.contains(id)));

    // The database restarted under load: errors only while it is down, then recovery without
    // restarting tws.
    let load = Load::start(front.clone(), 4);
    load.wait_for(50);
    let down = Instant::now();
    pg.stop();
    std::thread::sleep(Duration::from_millis(500));
    pg.start_again();
    pg.wait_ready();
    let up = Instant::now();
    haproxy.wait_up(3);
    load.wait_for(100);
    let outcomes = load.finish();
    // Allowed to fail: from the stop until the nodes' health checks see the database again.
    let recovered = up + Duration::from_secs(2);
    let late: Vec<_> = outcomes
        .iter()
        .filter(|(at, o)| o.is_err() && (*at < down || *at > recovered))
        .collect();
    assert!(late.is_empty(), "failures outside the outage: {late:?}");
    eprintln!(
        "database restart: {} requests, {} failed, outage {:?}",
        outcomes.len(),
        failures(&outcomes).len(),
        up - down
    );
    assert!(acknowledged(&outcomes).len() > 50);
    let stored = stored_ids(&haproxy.url(""));
    assert!(acknowledged(&outcomes).iter().all(|id| stored.contains(id)));
}

#[test]
fn a_node_without_its_database_answers_503_quickly_and_serves_files() {
    let Some(pg) = Postgres::start("fault") else {
        return;
    };
    let url = pg.database("tws");
    let dir = site("fault");
    let server = node(&dir, &url, free_port());
    let users = server.url("/users");
    assert!(create(&users, "before").is_ok());
    pg.stop();
    let started = Instant::now();
    let err = create(&users, "during").unwrap_err();
    assert!(err.starts_with("503 "), "{err}");
    assert!(err.contains("\"error\""), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let reply = common::get(&server, "/users/1");
    assert_eq!(reply.status, 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        common::get(&server, "/").status,
        200,
        "static files are still served"
    );
    let health = common::get(&server, "/healthz");
    assert_eq!(health.status, 503);
    let value: Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(value["status"], "unavailable");
    // Anyone may ask /healthz: it says no more than that (the reason goes to stderr, once).
    assert_eq!(value["store"], "unavailable");
    let said = server.wait_error("is unavailable");
    assert!(said.contains("postgres://tws@127.0.0.1"), "{said}");
    assert!(!said.contains("password"), "{said}");
    pg.start_again();
    pg.wait_ready();
    // Back without a restart of tws.
    let started = Instant::now();
    while create(&users, "after").is_err() {
        assert!(started.elapsed() < WAIT, "tws did not reconnect");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The health answer is reused for half a second.
    while common::get(&server, "/healthz").status != 200 {
        assert!(started.elapsed() < WAIT, "/healthz does not recover");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(common::get(&server, "/users/1").status, 200);
    server.wait_error("is available again");
    let errors = server.errors.lock().unwrap().clone();
    let count = |text: &str| errors.iter().filter(|l| l.contains(text)).count();
    assert_eq!(
        (count("is unavailable"), count("is available again")),
        (1, 1),
        "one line when it went, one when it came back: {errors:?}"
    );
}

#[test]
fn an_unreachable_database_stops_startup_with_one_line() {
    let dir = site("unreachable");
    let port = free_port();
    let out = common::tws()
        .args([
            "--config",
            dir.join("routes.toml").to_str().unwrap(),
            "--port",
            "0",
        ])
        .args([
            "--store",
            &format!("postgres://tws:secret@127.0.0.1:{port}/tws"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot connect to PostgreSQL at postgres://tws@127.0.0.1:{port}/tws"
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("secret"),
        "the password was printed: {stderr}"
    );
}
