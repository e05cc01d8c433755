//! The `health` action: a liveness answer with the process's uptime and version.

use std::sync::OnceLock;
use std::time::Instant;

use crate::http::Response;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Records the moment the server started; later calls keep the first.
pub fn mark_start() {
    STARTED.get_or_init(Instant::now);
}

/// `200 {"status": "ok", "version": "...", "uptime_seconds": N}`
pub fn report() -> Response {
    let uptime = STARTED.get_or_init(Instant::now).elapsed();
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": uptime.as_secs_f64(),
    });
    Response::json(200, &body).header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_status_version_and_a_growing_uptime() {
        mark_start();
        let first = report();
        assert_eq!(first.status, 200);
        let crate::http::Body::Bytes(body) = first.body else {
            panic!()
        };
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["status"], "ok");
        assert_eq!(value["version"], env!("CARGO_PKG_VERSION"));
        assert!(value["uptime_seconds"].as_f64().unwrap() >= 0.0);
    }
}
