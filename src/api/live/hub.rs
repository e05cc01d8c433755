//! The subscribers of one store's changes. Each has a small bounded queue; a committed change
//! is encoded once and its bytes (shared, reference-counted) pushed to every subscriber of
//! its collection whose filters it meets, and the subscriber's connection is woken once per
//! burst (through its loop's channel: a subscription costs no thread). A subscriber whose
//! queue is full (a client that stopped reading) gets `event: dropped` in place of what it
//! missed and its stream ends, so that memory stays bounded. A thread wakes twice a second to
//! send heartbeats on quiet streams. A subscription leaves the hub when its connection drops
//! it (closed, reset, finished).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use slab::Slab;

use super::{Change, event, filter};
use crate::http::response::{Feed, Flow, Wake};
use crate::sync::lock;

/// Events a subscriber may have waiting before it is dropped...
pub const QUEUE_EVENTS: usize = 256;
/// ... and bytes.
pub const QUEUE_BYTES: usize = 256 * 1024;
/// How often quiet streams are looked at for a heartbeat.
const TICK: Duration = Duration::from_millis(500);

pub struct Hub {
    subs: Mutex<Slab<Arc<Sub>>>,
    /// The server is stopping: streams end, new ones end at once.
    closed: AtomicBool,
    /// Subscribers dropped for reading too slowly, and events queued, so far.
    dropped: AtomicU64,
    queued: AtomicU64,
}

/// One subscriber, shared by the hub (which fills its queue) and its connection.
struct Sub {
    collection: String,
    filters: Vec<(String, Value)>,
    heartbeat: Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    /// What is sent first (the hello, a backlog or a reset), outside the queue's bound.
    initial: VecDeque<Bytes>,
    /// Events waiting, with their change numbers (0: not a change).
    queue: VecDeque<(i64, Bytes)>,
    bytes: usize,
    /// Changes up to this number were sent from the log already.
    after: i64,
    /// The connection found nothing and waits to be woken.
    armed: bool,
    wake: Option<Wake>,
    ended: bool,
    /// When something was last queued.
    last: Instant,
}

impl Inner {
    fn wake(&mut self) {
        if std::mem::take(&mut self.armed)
            && let Some(wake) = &self.wake
        {
            wake();
        }
    }

    /// Queues an event; false when the queue is full (the subscriber is then dropped).
    fn push(&mut self, number: i64, bytes: &Bytes, now: Instant) -> bool {
        if self.queue.len() >= QUEUE_EVENTS || self.bytes + bytes.len() > QUEUE_BYTES {
            self.queue.clear();
            self.bytes = 0;
            self.queue
                .push_back((0, Bytes::from_static(event::DROPPED)));
            self.ended = true;
            self.wake();
            return false;
        }
        self.bytes += bytes.len();
        self.queue.push_back((number, bytes.clone()));
        self.last = now;
        self.wake();
        true
    }
}

impl Hub {
    /// A hub, and the thread that sends its heartbeats (it ends with the hub).
    pub fn new() -> Arc<Hub> {
        let hub = Arc::new(Hub {
            subs: Mutex::new(Slab::new()),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&hub);
        let started = std::thread::Builder::new()
            .name("tws-live".into())
            .spawn(move || heartbeats(&weak));
        if let Err(e) = started {
            crate::report!("tws: warning: no heartbeats on live streams: {e}");
        }
        hub
    }

    /// A new subscriber to `collection`'s changes that meet `filters`; what it is sent first
    /// is set with `Subscription::begin`.
    pub fn subscribe(
        self: &Arc<Hub>,
        collection: &str,
        filters: Vec<(String, Value)>,
        heartbeat: Duration,
    ) -> Subscription {
        let sub = Arc::new(Sub {
            collection: collection.to_owned(),
            filters,
            heartbeat,
            inner: Mutex::new(Inner {
                initial: VecDeque::new(),
                queue: VecDeque::new(),
                bytes: 0,
                after: 0,
                armed: false,
                wake: None,
                ended: self.closed.load(Ordering::Acquire),
                last: Instant::now(),
            }),
        });
        let key = lock(&self.subs).insert(Arc::clone(&sub));
        Subscription {
            hub: Arc::clone(self),
            key,
            sub,
        }
    }

    /// Hands committed changes, in commit order, to their subscribers.
    pub fn publish(&self, changes: &[Change]) {
        let subs = lock(&self.subs);
        if subs.is_empty() {
            return;
        }
        let now = Instant::now();
        let (mut queued, mut dropped) = (0, 0);
        for change in changes {
            let bytes = event::encode(change);
            let mut fields = None;
            for (_, sub) in subs.iter() {
                if sub.collection != change.collection
                    || !filter::matches(&sub.filters, change, &mut fields)
                {
                    continue;
                }
                let mut inner = lock(&sub.inner);
                if inner.ended || change.number <= inner.after {
                    continue;
                }
                if inner.push(change.number, &bytes, now) {
                    queued += 1;
                } else {
                    dropped += 1;
                }
            }
        }
        self.queued.fetch_add(queued, Ordering::Relaxed);
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// Ends every stream (the server is stopping): each sends what it has, then ends.
    pub fn close_all(&self) {
        self.closed.store(true, Ordering::Release);
        for (_, sub) in lock(&self.subs).iter() {
            let mut inner = lock(&sub.inner);
            inner.ended = true;
            inner.wake();
        }
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        lock(&self.subs).len()
    }

    /// Subscribers dropped for reading too slowly so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events queued for subscribers so far.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Sends a heartbeat on every stream quiet for its interval.
    fn beat(&self, now: Instant) {
        let ping = Bytes::from_static(event::PING);
        for (_, sub) in lock(&self.subs).iter() {
            let mut inner = lock(&sub.inner);
            if !inner.ended
                && now.duration_since(inner.last) >= sub.heartbeat
                && !inner.push(0, &ping, now)
            {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The heartbeat thread: runs while the hub lives.
fn heartbeats(hub: &Weak<Hub>) {
    loop {
        std::thread::sleep(TICK);
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.beat(Instant::now());
    }
}

/// A subscriber's end of its queue: the body of its stream. Dropped, it leaves the hub.
pub struct Subscription {
    hub: Arc<Hub>,
    key: usize,
    sub: Arc<Sub>,
}

impl Subscription {
    /// Sets what the stream sends first (`initial`: the hello, then a backlog or a reset)
    /// and the last change number it covers: queued changes up to it are not sent twice.
    pub fn begin(&self, initial: Vec<Bytes>, after: i64) {
        let mut inner = lock(&self.sub.inner);
        inner.initial.extend(initial);
        inner.after = after;
        inner
            .queue
            .retain(|(number, _)| *number == 0 || *number > after);
        inner.bytes = inner.queue.iter().map(|(_, b)| b.len()).sum();
        inner.wake();
    }
}

impl Feed for Subscription {
    fn attach(&mut self, wake: Wake) {
        lock(&self.sub.inner).wake = Some(wake);
    }

    fn take(&mut self, out: &mut Vec<Bytes>) -> Flow {
        let mut inner = lock(&self.sub.inner);
        let before = out.len();
        out.extend(inner.initial.drain(..));
        out.extend(inner.queue.drain(..).map(|(_, bytes)| bytes));
        inner.bytes = 0;
        if inner.ended {
            return Flow::Ended;
        }
        if out.len() == before {
            inner.armed = true;
        }
        Flow::Open
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.hub.subs).try_remove(self.key);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subscription({})", self.sub.collection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::live::Kind;
    use serde_json::json;
    use std::sync::atomic::AtomicUsize;

    fn change(number: i64, collection: &str, team: &str) -> Change {
        Change {
            number,
            collection: collection.into(),
            kind: Kind::Created,
            id: number,
            version: 1,
            data: Some(format!(r#"{{"id":{number},"team":"{team}"}}"#)),
        }
    }

    fn taken(sub: &mut Subscription) -> (Vec<String>, Flow) {
        let mut out = Vec::new();
        let flow = sub.take(&mut out);
        let text = out
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect();
        (text, flow)
    }

    fn ids(texts: &[String]) -> Vec<i64> {
        texts
            .iter()
            .filter_map(|t| t.strip_prefix("id: ")?.split('\n').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn fans_out_by_collection_and_filter_and_wakes_once_per_burst() {
        let hub = Hub::new();
        let beat = Duration::from_secs(60);
        let mut all = hub.subscribe("users", vec![], beat);
        let mut red = hub.subscribe("users", vec![("team".into(), json!("red"))], beat);
        let mut other = hub.subscribe("books", vec![], beat);
        let woken = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&woken);
        all.attach(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        for sub in [&all, &red, &other] {
            sub.begin(vec![], 0);
        }
        assert_eq!(taken(&mut all), (vec![], Flow::Open));
        hub.publish(&[change(1, "users", "red"), change(2, "users", "blue")]);
        hub.publish(&[change(3, "users", "red")]);
        assert_eq!(woken.load(Ordering::SeqCst), 1, "one wake-up per burst");
        assert_eq!(ids(&taken(&mut all).0), vec![1, 2, 3]);
        assert_eq!(ids(&taken(&mut red).0), vec![1, 3]);
        assert_eq!(ids(&taken(&mut other).0), Vec::<i64>::new());
        assert_eq!(hub.subscribers(), 3);
        drop((all, red, other));
        assert_eq!(
            hub.subscribers(),
            0,
            "a dropped subscription leaves the hub"
        );
    }

    #[test]
    fn a_backlog_and_the_queue_never_repeat_a_change() {
        let hub = Hub::new();
        let mut sub = hub.subscribe("users", vec![], Duration::from_secs(60));
        // Committed while the backlog was read: in both.
        hub.publish(&[change(5, "users", "red"), change(6, "users", "red")]);
        let backlog = vec![Bytes::from_static(b"id: 5\n\n")];
        sub.begin(backlog, 5);
        hub.publish(&[change(7, "users", "red")]);
        assert_eq!(ids(&taken(&mut sub).0), vec![5, 6, 7]);
    }

    #[test]
    fn a_subscriber_that_does_not_read_is_dropped_with_a_last_event() {
        let hub = Hub::new();
        let mut sub = hub.subscribe("users", vec![], Duration::from_secs(60));
        sub.begin(vec![], 0);
        for n in 1..=(QUEUE_EVENTS as i64 + 1) {
            hub.publish(&[change(n, "users", "red")]);
        }
        let (texts, flow) = taken(&mut sub);
        assert_eq!(flow, Flow::Ended);
        assert_eq!(texts.concat().as_bytes(), event::DROPPED);
        assert_eq!(hub.dropped(), 1);
        hub.publish(&[change(999, "users", "red")]);
        assert_eq!(taken(&mut sub), (vec![], Flow::Ended));
    }

    #[test]
    fn quiet_streams_get_heartbeats_and_stopping_ends_them() {
        let hub = Hub::new();
        let mut sub = hub.subscribe("users", vec![], Duration::from_millis(10));
        sub.begin(vec![], 0);
        hub.beat(Instant::now() + Duration::from_secs(1));
        assert_eq!(taken(&mut sub).0.concat().as_bytes(), event::PING);
        hub.close_all();
        assert_eq!(taken(&mut sub).1, Flow::Ended);
        let mut late = hub.subscribe("users", vec![], Duration::from_secs(1));
        assert_eq!(
            taken(&mut late).1,
            Flow::Ended,
            "no new streams while stopping"
        );
    }
}
