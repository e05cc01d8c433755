//! Live updates (server-sent events) through the real server and clients we did not write:
//! curl over HTTP/1.1 (chunked) and HTTP/1.0 (close-delimited), curl and nghttp over HTTP/2,
//! and Chromium's `EventSource`. Created, updated and deleted arrive in order; Last-Event-ID
//! resumes, and a client too far behind is told to reload; filters; auth; a client that
//! stops reading is dropped with the server's memory bounded; a closed stream leaves the
//! hub; streams go on across a reload and end cleanly at shutdown.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::sse::{Event, Sse};
use common::{
    Server, WAIT, client, config_site as site, installed, start_config as start, write_routes,
};
use serde_json::{Value, json};

const USERS: &str = r#"
[[route]]
path = "/metrics"
action = "metrics"

[[collection]]
name = "users"
path = "/users"
fields.name = { type = "string", required = true }
fields.team = { type = "string" }
fields.age = { type = "integer" }
events_heartbeat = "1s"
"#;

/// A request with a JSON body (or none); the status and the body as JSON.
fn send(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(server.url(path))
        .header("Content-Type", "application/json");
    let mut response = client()
        .run(
            request
                .body(body.map(|b| b.to_string()).unwrap_or_default())
                .unwrap(),
        )
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A value of `/metrics`.
fn metric(server: &Server, name: &str) -> f64 {
    let mut response = client().get(server.url("/metrics")).call().unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(-1.0)
}

/// Waits (bounded) until `f` holds.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The kinds and record ids of events.
fn seen(events: &[Event]) -> Vec<(String, i64)> {
    events
        .iter()
        .map(|e| (e.kind.clone(), e.json()["id"].as_i64().unwrap_or(-1)))
        .collect()
}

fn events(sse: &Sse, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            sse.event(WAIT)
                .unwrap_or_else(|| panic!("event {i} of {n} did not come"))
        })
        .collect()
}

#[test]
fn curl_and_nghttp_over_http1_and_http2_see_every_change_in_order() {
    let dir = site("live-order", USERS);
    let server = start(&dir);
    let url = server.url("/users/events");
    let mut clients = vec![
        ("curl HTTP/1.1", Sse::curl(&url, &[])),
        ("curl HTTP/1.0", Sse::curl(&url, &["--http1.0"])),
        ("curl HTTP/2", Sse::curl(&url, &["--http2-prior-knowledge"])),
    ];
    if installed("nghttp") {
        let nghttp = Sse::start("stdbuf", &["-o0", "nghttp", &url]);
        clients.push(("nghttp", nghttp));
    }
    for (_, sse) in &clients {
        sse.subscribed();
    }
    assert_eq!(
        metric(&server, "tws_live_subscribers"),
        clients.len() as f64
    );
    let (status, made) = send(&server, "POST", "/users", Some(json!({"name": "Ana"})));
    assert_eq!(status, 201);
    send(&server, "POST", "/users", Some(json!({"name": "Bo"})));
    let patch = Some(json!({"team": "red"}));
    assert_eq!(send(&server, "PATCH", "/users/1", patch).0, 200);
    assert_eq!(send(&server, "DELETE", "/users/2", None).0, 204);
    let want = [
        ("created", 1),
        ("created", 2),
        ("updated", 1),
        ("deleted", 2),
    ];
    let want: Vec<(String, i64)> = want.iter().map(|(k, i)| (k.to_string(), *i)).collect();
    for (name, sse) in &clients {
        let got = events(sse, 4);
        assert_eq!(seen(&got), want, "{name}");
        let numbers: Vec<i64> = got.iter().map(|e| e.id.unwrap()).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "{name}: {numbers:?}"
        );
        assert_eq!(got[0].json(), made, "{name}: the record as created");
        assert_eq!(got[2].json()["team"], "red", "{name}");
        assert!(got[2].json()["updated"].is_string(), "{name}");
        // A quiet stream gets heartbeats (every second here).
        let ping = sse.next(WAIT).expect("a heartbeat");
        assert_eq!(
            (ping.kind.as_str(), ping.data.as_str()),
            ("comment", "ping")
        );
    }
    // Over HTTP/1.1 the stream is chunked; its type says what it is.
    let mut raw = server.connect();
    raw.write_all(b"GET /users/events HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_head(&mut raw);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for line in [
        "Transfer-Encoding: chunked",
        "Content-Type: text/event-stream",
        "Cache-Control: no-cache",
    ] {
        assert!(head.contains(line), "{line} in {head}");
    }
}

fn read_head(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the head ends");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[test]
fn last_event_id_resumes_and_a_client_too_far_behind_is_told_to_reload() {
    let dir = site(
        "live-resume",
        &USERS.replace("events_heartbeat", "events_keep = 3\nevents_heartbeat"),
    );
    let server = start(&dir);
    for name in ["a", "b", "c", "d", "e", "f"] {
        assert_eq!(
            send(&server, "POST", "/users", Some(json!({"name": name}))).0,
            201
        );
    }
    let url = server.url("/users/events");
    // The log keeps 3 changes (pruned within a second or two): 4, 5 and 6.
    until("the log to be pruned", || {
        let sse = Sse::curl(&url, &["-H", "Last-Event-ID: 1"]);
        sse.event(WAIT).is_some_and(|e| e.kind == "reset")
    });
    let resumed = Sse::curl(&url, &["-H", "Last-Event-ID: 4"]);
    let got = events(&resumed, 2);
    assert_eq!(
        got.iter().map(|e| e.id.unwrap()).collect::<Vec<_>>(),
        [5, 6]
    );
    let also = Sse::curl(&format!("{url}?last_event_id=5"), &[]);
    assert_eq!(also.event(WAIT).unwrap().id, Some(6));
    let behind = Sse::curl(&url, &["-H", "Last-Event-ID: 2"]);
    let reset = behind.event(WAIT).unwrap();
    assert_eq!((reset.kind.as_str(), reset.id), ("reset", Some(6)));
    assert!(reset.data.contains("reload"), "{reset:?}");
    let unknown = Sse::curl(&url, &["-H", "Last-Event-ID: 99"]);
    assert_eq!(unknown.event(WAIT).unwrap().kind, "reset");
    // Every stream goes on from now, nothing repeated.
    send(&server, "POST", "/users", Some(json!({"name": "g"})));
    for sse in [&resumed, &also, &behind, &unknown] {
        assert_eq!(sse.event(WAIT).unwrap().id, Some(7));
    }
    let (status, body) = send(&server, "GET", "/users/events?last_event_id=x", None);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn filters_are_typed_by_the_declared_fields() {
    let dir = site("live-filters", USERS);
    let server = start(&dir);
    let url = server.url("/users/events");
    let red = Sse::curl(&format!("{url}?team=red"), &[]);
    let red_42 = Sse::curl(
        &format!("{url}?team=red&age=42"),
        &["--http2-prior-knowledge"],
    );
    red.subscribed();
    red_42.subscribed();
    for (name, team, age) in [("a", "red", 1), ("b", "blue", 42), ("c", "red", 42)] {
        let record = json!({"name": name, "team": team, "age": age});
        send(&server, "POST", "/users", Some(record));
    }
    assert_eq!(
        seen(&events(&red, 2)),
        [("created".into(), 1), ("created".into(), 3)]
    );
    assert_eq!(seen(&events(&red_42, 1)), [("created".into(), 3)]);
    for (query, word) in [("nope=1", "nope"), ("age=x", "age"), ("age=1.5", "age")] {
        let (status, body) = send(&server, "GET", &format!("/users/events?{query}"), None);
        assert_eq!(status, 400, "{query}");
        assert!(body["error"].as_str().unwrap().contains(word), "{body}");
    }
}

#[test]
fn a_batch_create_sends_one_created_event_per_record() {
    let dir = site("live-batch", USERS);
    let server = start(&dir);
    let sse = Sse::curl(&server.url("/users/events?team=red"), &[]);
    sse.subscribed();
    let batch = json!([
        {"name": "a", "team": "red"},
        {"name": "b", "team": "blue"},
        {"name": "c", "team": "red"}
    ]);
    let (status, body) = send(&server, "POST", "/users", Some(batch));
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        seen(&events(&sse, 2)),
        [("created".into(), 1), ("created".into(), 3)]
    );
    // A refused batch writes nothing, so it sends nothing: the next event is the next create.
    let (status, _) = send(
        &server,
        "POST",
        "/users",
        Some(json!([{"name": "d", "team": "red"}, {"team": "red"}])),
    );
    assert_eq!(status, 422);
    send(
        &server,
        "POST",
        "/users",
        Some(json!({"name": "e", "team": "red"})),
    );
    let next = events(&sse, 1);
    assert_eq!(next[0].json()["name"], "e", "{:?}", seen(&next));
}

#[test]
fn events_ask_for_the_same_login_as_reads() {
    let phc = common::hash("secret");
    let routes = format!(
        "[auth.staff]\nusers = {{ alice = \"{phc}\" }}\n{}\nauth = \"staff\"\n",
        USERS
    );
    let dir = site("live-auth", &routes);
    let server = start(&dir);
    let (status, _) = send(&server, "GET", "/users/events", None);
    assert_eq!(status, 401);
    let login = common::basic("alice", "secret").trim_end().to_owned();
    let sse = Sse::curl(&server.url("/users/events"), &["-H", &login]);
    sse.subscribed();
    let (_, value) = login.split_once(": ").unwrap();
    let created = client()
        .post(server.url("/users"))
        .header("Authorization", value)
        .header("Content-Type", "application/json")
        .send(json!({"name": "Ana"}).to_string())
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(sse.event(WAIT).unwrap().kind, "created");
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_memory_stays_bounded() {
    let routes = USERS.replace(
        "events_heartbeat",
        "max_event_bytes = 1048576\nevents_heartbeat",
    );
    let dir = site("live-slow", &routes);
    let server = start(&dir);
    // A subscriber that never reads, with a small receive buffer.
    let mut stuck = server.connect();
    set_receive_buffer(&stuck, 4096);
    stuck
        .write_all(b"GET /users/events HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    until("the subscription", || {
        metric(&server, "tws_live_subscribers") == 1.0
    });
    let reader = Sse::curl(&server.url("/users/events"), &[]);
    reader.subscribed();
    let pid = server.child.id();
    let before = common::memory_kib(pid, "VmRSS");
    let big = "x".repeat(100_000);
    let writes = 400;
    for i in 0..writes {
        let (status, _) = send(
            &server,
            "POST",
            "/users",
            Some(json!({"name": big, "age": i})),
        );
        assert_eq!(status, 201);
    }
    until("the stuck subscriber to be dropped", || {
        metric(&server, "tws_live_dropped_total") >= 1.0
    });
    // The one that reads got everything, in order.
    let got = events(&reader, writes);
    assert!(got.iter().enumerate().all(|(i, e)| e.json()["age"] == i));
    let after = common::memory_kib(pid, "VmRSS");
    // 40 MB of events went out; the stuck client holds at most its small queue.
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    drop(stuck);
    drop(reader);
    until("every subscriber to leave", || {
        metric(&server, "tws_live_subscribers") == 0.0
    });
    // 40 MB of records: not left behind.
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn set_receive_buffer(stream: &std::net::TcpStream, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt reads one int from a valid pointer.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

#[test]
fn closed_streams_leave_the_hub() {
    // No heartbeat in the test's time: a stream leaves when its client hangs up, not when a
    // write to it fails.
    let quiet = USERS.replace("events_heartbeat = \"1s\"", "events_heartbeat = \"1h\"");
    let dir = site("live-leave", &quiet);
    let server = start(&dir);
    let url = server.url("/users/events");
    let streams: Vec<Sse> = (0..20)
        .map(|i| match i % 2 {
            0 => Sse::curl(&url, &[]),
            _ => Sse::curl(&url, &["--http2-prior-knowledge"]),
        })
        .collect();
    for sse in &streams {
        sse.subscribed();
    }
    assert_eq!(metric(&server, "tws_live_subscribers"), 20.0);
    drop(streams);
    until("the subscribers to leave", || {
        metric(&server, "tws_live_subscribers") == 0.0
    });
    // Two streams of one HTTP/2 connection: one reset (RST_STREAM) leaves alone, the other
    // with the connection.
    use common::h2raw::{END_HEADERS, END_STREAM, HEADERS, RST_STREAM, Raw, frame, request_block};
    let mut raw = Raw::connect(server.addr);
    for stream in [1, 3] {
        let block = request_block("GET", "/users/events", &[]);
        raw.send(&frame(HEADERS, END_HEADERS | END_STREAM, stream, &block))
            .unwrap();
    }
    until("two streams", || {
        metric(&server, "tws_live_subscribers") == 2.0
    });
    raw.send(&frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()))
        .unwrap();
    until("one stream", || {
        metric(&server, "tws_live_subscribers") == 1.0
    });
    drop(raw);
    until("none", || metric(&server, "tws_live_subscribers") == 0.0);
}

#[test]
fn streams_go_on_across_a_reload_and_end_cleanly_at_shutdown() {
    let dir = site("live-reload", USERS);
    let server = start(&dir);
    let h1 = Sse::curl(&server.url("/users/events"), &[]);
    let h2 = Sse::curl(&server.url("/users/events"), &["--http2-prior-knowledge"]);
    h1.subscribed();
    h2.subscribed();
    let more = USERS.replace(
        "fields.age = { type = \"integer\" }",
        "fields.age = { type = \"integer\" }\nfields.city = { type = \"string\" }",
    );
    write_routes(&dir, &more);
    server.wait_error("reloaded");
    let record = json!({"name": "Ana", "city": "Lima"});
    assert_eq!(send(&server, "POST", "/users", Some(record)).0, 201);
    for sse in [&h1, &h2] {
        assert_eq!(sse.event(WAIT).unwrap().json()["city"], "Lima");
    }
    server.signal(libc::SIGTERM);
    for (name, mut sse) in [("h1", h1), ("h2", h2)] {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = sse.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < WAIT, "{name}: the stream did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        // curl exits 0 only when the stream ended well (the last chunk, END_STREAM).
        assert!(status.success(), "{name}: curl {status}");
    }
}

#[test]
fn a_browser_page_shows_a_live_list_as_another_client_writes() {
    let dir = site("live-browser", USERS);
    std::fs::write(dir.join("site/live.html"), common::sse::LIVE_PAGE).unwrap();
    let routes = format!("{USERS}\n[[route]]\npath = \"/live\"\npage = \"live.html\"\n");
    write_routes(&dir, &routes);
    let server = start(&dir);
    // Another client writes once the page has subscribed.
    let writer = common::sse::write_when_subscribed(server.url(""), vec![server.url("")]);
    let profile = dir.join("profile");
    let Some(dom) = common::browser::dump_dom(&server.url("/live"), &profile, &[]) else {
        return;
    };
    writer.join().unwrap();
    assert_eq!(
        common::browser::text_of(&dom, "result"),
        "Ana,Bo,Cy",
        "{dom}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
