//! Prometheus metrics (`action = "metrics"`, text exposition format 0.0.4). Each event loop
//! counts its own requests, bytes, durations, timeouts and refusals under a lock only it and a
//! scrape take, so counting shares no cache line between loops; a scrape sums the loops and
//! adds what the process and the store count.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::api::store::Store;
use crate::sync::lock;

/// Upper bounds of the duration histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Status classes 1xx to 5xx.
type Classes = [u64; 5];

/// Why a connection timed out.
#[derive(Debug, Clone, Copy)]
pub enum Timeout {
    Header = 0,
    Body = 1,
    Idle = 2,
    Send = 3,
}
const TIMEOUT_KINDS: [&str; 4] = ["header", "body", "idle", "send"];

/// What one event loop counts.
#[derive(Default)]
pub struct LoopCounts {
    /// Route paths of the table in force, by route index.
    labels: Vec<Arc<str>>,
    by_route: Vec<Classes>,
    /// Counts of earlier route tables (before a reload), by path.
    earlier: BTreeMap<Arc<str>, Classes>,
    /// Answers no route made (404s, malformed requests, timeouts).
    unrouted: Classes,
    bytes: u64,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds: f64,
    timeouts: [u64; 4],
    refused: u64,
}

impl LoopCounts {
    /// A response: its route (in the table in force), status, body bytes, and how long since
    /// the request's first byte.
    pub fn response(&mut self, route: Option<usize>, status: u16, bytes: u64, took: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        match route.and_then(|i| self.by_route.get_mut(i)) {
            Some(classes) => classes[class] += 1,
            None => self.unrouted[class] += 1,
        }
        self.bytes += bytes;
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.seconds += secs;
    }

    pub fn timeout(&mut self, kind: Timeout) {
        self.timeouts[kind as usize] += 1;
    }

    pub fn refused(&mut self) {
        self.refused += 1;
    }

    /// A new route table: counts so far are kept by path.
    pub fn routes(&mut self, paths: impl Iterator<Item = String>) {
        for (label, classes) in self.labels.drain(..).zip(self.by_route.drain(..)) {
            let kept = self.earlier.entry(label).or_default();
            for (k, c) in kept.iter_mut().zip(classes) {
                *k += c;
            }
        }
        self.labels = paths.map(Arc::from).collect();
        self.by_route = vec![Classes::default(); self.labels.len()];
    }
}

/// The process-wide parts: every loop's counts, and what no loop owns.
#[derive(Default)]
pub struct Registry {
    loops: Mutex<Vec<Arc<Mutex<LoopCounts>>>>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Connections open across all loops (kept by the server).
    pub open_connections: AtomicUsize,
}

/// The process's registry.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    /// Counts for a new event loop.
    pub fn add_loop(&self) -> Arc<Mutex<LoopCounts>> {
        let counts = Arc::new(Mutex::new(LoopCounts::default()));
        lock(&self.loops).push(Arc::clone(&counts));
        counts
    }

    /// The text exposition of every metric.
    pub fn render(&self, store: Option<&dyn Store>, uptime: Duration) -> String {
        let mut total = LoopCounts::default();
        let mut routes: BTreeMap<Arc<str>, Classes> = BTreeMap::new();
        for counts in lock(&self.loops).iter() {
            let c = lock(counts);
            let current = c.labels.iter().cloned().zip(c.by_route.iter().copied());
            for (label, classes) in c
                .earlier
                .iter()
                .map(|(l, k)| (Arc::clone(l), *k))
                .chain(current)
            {
                let sum = routes.entry(label).or_default();
                for (s, n) in sum.iter_mut().zip(classes) {
                    *s += n;
                }
            }
            for (s, n) in total.unrouted.iter_mut().zip(c.unrouted) {
                *s += n;
            }
            total.bytes += c.bytes;
            for (s, n) in total.buckets.iter_mut().zip(c.buckets) {
                *s += n;
            }
            total.count += c.count;
            total.seconds += c.seconds;
            for (s, n) in total.timeouts.iter_mut().zip(c.timeouts) {
                *s += n;
            }
            total.refused += c.refused;
        }
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        family(
            o,
            "tws_requests_total",
            "counter",
            "Responses sent, by route and status class.",
        );
        for (route, classes) in routes
            .iter()
            .map(|(r, k)| (&**r, k))
            .chain([("", &total.unrouted)])
        {
            for (i, n) in classes.iter().enumerate() {
                // Every declared route shows; answers no route made only once they happen.
                if *n > 0 || !route.is_empty() {
                    let route = escape(route);
                    let _ = writeln!(
                        o,
                        "tws_requests_total{{route=\"{route}\",code=\"{}xx\"}} {n}",
                        i + 1
                    );
                }
            }
        }
        family(
            o,
            "tws_response_bytes_total",
            "counter",
            "Body bytes of responses sent.",
        );
        let _ = writeln!(o, "tws_response_bytes_total {}", total.bytes);
        family(
            o,
            "tws_request_duration_seconds",
            "histogram",
            "From a request's first byte to its response being ready.",
        );
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(total.buckets) {
            cumulative += n;
            let _ = writeln!(
                o,
                "tws_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            o,
            "tws_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            total.count
        );
        let _ = writeln!(o, "tws_request_duration_seconds_sum {}", total.seconds);
        let _ = writeln!(o, "tws_request_duration_seconds_count {}", total.count);
        let open = self.open_connections.load(Ordering::Relaxed);
        gauge(
            o,
            "tws_open_connections",
            "Client connections open now.",
            open as f64,
        );
        family(
            o,
            "tws_refused_connections_total",
            "counter",
            "Connections answered 503 because max_connections were open.",
        );
        let _ = writeln!(o, "tws_refused_connections_total {}", total.refused);
        family(
            o,
            "tws_timeouts_total",
            "counter",
            "Connections timed out, by kind.",
        );
        for (kind, n) in TIMEOUT_KINDS.iter().zip(total.timeouts) {
            let _ = writeln!(o, "tws_timeouts_total{{kind=\"{kind}\"}} {n}");
        }
        family(
            o,
            "tws_reloads_total",
            "counter",
            "Reloads of the routes file, by result.",
        );
        for (result, n) in [("ok", &self.reloads_ok), ("failed", &self.reloads_failed)] {
            let _ = writeln!(
                o,
                "tws_reloads_total{{result=\"{result}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        if let Some(store) = store {
            let c = store.counters();
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
            counter(
                o,
                "tws_store_commits_total",
                "Database transactions committed.",
                load(&c.commits),
            );
            counter(
                o,
                "tws_store_rows_total",
                "Writes carried by those commits.",
                load(&c.rows),
            );
            counter(
                o,
                "tws_store_errors_total",
                "Failed commits, reads and connections.",
                load(&c.errors),
            );
            if let Some(hub) = store.hub() {
                gauge(
                    o,
                    "tws_live_subscribers",
                    "Live-update streams open now.",
                    hub.subscribers() as f64,
                );
                counter(
                    o,
                    "tws_live_events_total",
                    "Events queued for live-update streams.",
                    hub.queued(),
                );
                counter(
                    o,
                    "tws_live_dropped_total",
                    "Live-update streams ended because their client read too slowly.",
                    hub.dropped(),
                );
            }
        }
        let expiry = crate::acme::status::expiry();
        if !expiry.is_empty() {
            family(
                o,
                "tws_certificate_expiry_seconds",
                "gauge",
                "Seconds until the certificate served for the domain (obtained over ACME) expires.",
            );
            for (domain, left) in expiry {
                let domain = escape(&domain);
                let _ = writeln!(
                    o,
                    "tws_certificate_expiry_seconds{{domain=\"{domain}\"}} {left}"
                );
            }
        }
        gauge(
            o,
            "tws_uptime_seconds",
            "Seconds since the server started.",
            uptime.as_secs_f64(),
        );
        family(
            o,
            "tws_build_info",
            "gauge",
            "The version serving (always 1).",
        );
        let _ = writeln!(
            o,
            "tws_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value as the exposition format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_summed_and_reloads_keep_counts_by_path() {
        let registry = Registry::default();
        let (a, b) = (registry.add_loop(), registry.add_loop());
        lock(&a).routes(["/", "/users"].into_iter().map(String::from));
        lock(&b).routes(["/", "/users"].into_iter().map(String::from));
        lock(&a).response(Some(1), 201, 10, Duration::from_micros(300));
        lock(&b).response(Some(1), 200, 5, Duration::from_millis(3));
        lock(&b).response(None, 404, 1, Duration::from_millis(30));
        // A reload that drops "/": its counts stay.
        lock(&a).response(Some(0), 500, 0, Duration::from_secs(20));
        lock(&a).routes(["/users", "/q\"x"].into_iter().map(String::from));
        lock(&a).response(Some(0), 200, 0, Duration::ZERO);
        lock(&a).timeout(Timeout::Send);
        registry.reloads_ok.fetch_add(1, Ordering::Relaxed);
        let text = registry.render(None, Duration::from_secs(2));
        for line in [
            "tws_requests_total{route=\"/users\",code=\"2xx\"} 3",
            "tws_requests_total{route=\"/\",code=\"5xx\"} 1",
            "tws_requests_total{route=\"/q\\\"x\",code=\"2xx\"} 0",
            "tws_requests_total{route=\"\",code=\"4xx\"} 1",
            "tws_response_bytes_total 16",
            "tws_request_duration_seconds_bucket{le=\"0.0005\"} 2",
            "tws_request_duration_seconds_bucket{le=\"0.005\"} 3",
            "tws_request_duration_seconds_bucket{le=\"10\"} 4",
            "tws_request_duration_seconds_bucket{le=\"+Inf\"} 5",
            "tws_request_duration_seconds_count 5",
            "tws_timeouts_total{kind=\"send\"} 1",
            "tws_reloads_total{result=\"ok\"} 1",
            "tws_uptime_seconds 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
