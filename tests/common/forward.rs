//! A TCP forwarder for tests: it binds 127.0.0.1:0 at once (so its port is held, never
//! probed), and passes each connection to one of its targets in turn, set once they are known
//! (a connection arriving before waits for one, bounded). It can refuse instead (accept and
//! close at once), and counts the connections each target got.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Shared {
    targets: Mutex<Vec<SocketAddr>>,
    hits: Mutex<Vec<usize>>,
    refuse: AtomicBool,
    next: AtomicUsize,
    stop: AtomicBool,
}

pub struct Forwarder {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Forwarder {
    pub fn start() -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let inner = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if inner.stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = stream else { continue };
                let inner = Arc::clone(&inner);
                std::thread::spawn(move || pass(&inner, client));
            }
        });
        Forwarder { port, shared }
    }

    /// Where connections go from now on (in turn).
    pub fn set_targets(&self, targets: &[SocketAddr]) {
        *self.shared.hits.lock().unwrap() = vec![0; targets.len()];
        *self.shared.targets.lock().unwrap() = targets.to_vec();
    }

    /// Accept and close every connection at once (`true`), or forward again.
    pub fn refuse(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::Release);
    }

    /// Connections each target got.
    pub fn hits(&self) -> Vec<usize> {
        self.shared.hits.lock().unwrap().clone()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pass(shared: &Shared, client: TcpStream) {
    if shared.refuse.load(Ordering::Acquire) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let started = Instant::now();
    let (index, target) = loop {
        let targets = shared.targets.lock().unwrap().clone();
        if !targets.is_empty() {
            let i = shared.next.fetch_add(1, Ordering::AcqRel) % targets.len();
            break (i, targets[i]);
        }
        if started.elapsed() > Duration::from_secs(5) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        return;
    };
    if let Some(n) = shared.hits.lock().unwrap().get_mut(index) {
        *n += 1;
    }
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    }
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || copy(c2, s2));
    copy(server, client);
    let _ = up.join();
}

/// Copies until the end (or an error), then ends the writing side.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
