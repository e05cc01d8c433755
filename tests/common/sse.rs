//! A server-sent events client for tests: an outside program (curl, nghttp) started with
//! its output piped, read on a thread and cut into events, each wait bounded in time.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A page that lists the users `EventSource('/users/events')` reports as created; once three
/// came, `#result` holds their names, comma-separated (read with `--dump-dom`).
pub const LIVE_PAGE: &str = r#"<!doctype html><html><body><ul id="list"></ul><p id="result">waiting</p>
<script>
const events = new EventSource('/users/events');
const names = [];
events.addEventListener('created', (e) => {
  const user = JSON.parse(e.data);
  names.push(user.name);
  const li = document.createElement('li');
  li.textContent = user.name;
  document.getElementById('list').appendChild(li);
  if (names.length === 3) {
    document.getElementById('result').textContent = names.join(',');
    events.close();
  }
});
</script></body></html>"#;

/// Once `watched` (a server's base URL, with `/metrics`) has a live subscriber, creates the
/// users Ana, Bo and Cy, each through the next of `writers` (base URLs), from a thread.
pub fn write_when_subscribed(watched: String, writers: Vec<String>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let agent = super::client();
        loop {
            let mut r = agent.get(format!("{watched}/metrics")).call().unwrap();
            let text = r.body_mut().read_to_string().unwrap();
            if text.contains("tws_live_subscribers 1") {
                break;
            }
            assert!(
                started.elapsed() < super::WAIT * 3,
                "the page never subscribed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for (i, name) in ["Ana", "Bo", "Cy"].iter().enumerate() {
            let base = &writers[i % writers.len()];
            let created = agent
                .post(format!("{base}/users"))
                .header("Content-Type", "application/json")
                .send(format!("{{\"name\": \"{name}\"}}"))
                .unwrap();
            assert_eq!(created.status(), 201);
        }
    })
}

/// One event, or a block of comments (`kind` "comment", `data` their text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub id: Option<i64>,
    pub data: String,
}

impl Event {
    /// The `data` as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
}

/// A running client; killed when dropped.
pub struct Sse {
    pub child: Child,
    events: Receiver<Event>,
}

impl Sse {
    /// Starts `program` with `args`; its stdout is the event stream.
    pub fn start(program: &str, args: &[&str]) -> Sse {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            let mut block: Vec<String> = Vec::new();
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if !line.is_empty() {
                    block.push(line);
                    continue;
                }
                if block.is_empty() {
                    continue;
                }
                if tx.send(parse(&std::mem::take(&mut block))).is_err() {
                    return;
                }
            }
        });
        Sse { child, events }
    }

    /// `curl -sN` (HTTP/1.1) on `url`, with more arguments before it.
    pub fn curl(url: &str, extra: &[&str]) -> Sse {
        let mut args = vec!["-sN"];
        args.extend(extra);
        args.push(url);
        Sse::start("curl", &args)
    }

    /// The next event (comments included) within `limit`.
    pub fn next(&self, limit: Duration) -> Option<Event> {
        self.events.recv_timeout(limit).ok()
    }

    /// The next real event (comments skipped), within `limit` in all.
    pub fn event(&self, limit: Duration) -> Option<Event> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next(left)?;
            if event.kind != "comment" {
                return Some(event);
            }
        }
    }

    /// Waits for the stream's first block (the retry hint): the subscription is in place.
    pub fn subscribed(&self) {
        let first = self.next(super::WAIT).expect("the stream opens");
        assert_eq!(first.kind, "comment", "{first:?}");
    }

    /// Events until the stream ends (bounded by `limit`).
    pub fn rest(&self, limit: Duration) -> Vec<Event> {
        let deadline = Instant::now() + limit;
        let mut all = Vec::new();
        while let Some(event) = self.next(deadline.saturating_duration_since(Instant::now())) {
            all.push(event);
        }
        all
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(lines: &[String]) -> Event {
    let mut kind = None;
    let mut id = None;
    let mut data: Vec<&str> = Vec::new();
    let mut comments: Vec<&str> = Vec::new();
    for line in lines {
        if let Some(comment) = line.strip_prefix(':') {
            comments.push(comment.trim());
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data.push(v);
        }
    }
    match kind {
        Some(kind) => Event {
            kind,
            id,
            data: data.join("\n"),
        },
        None if data.is_empty() => Event {
            kind: "comment".into(),
            id,
            data: comments.join("\n"),
        },
        None => Event {
            kind: "message".into(),
            id,
            data: data.join("\n"),
        },
    }
}
