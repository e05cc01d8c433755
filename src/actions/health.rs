//! The `health` action: whether this node should get traffic (503 while it drains before
//! stopping, or while its database does not answer), with its uptime. It answers anyone (a
//! load balancer asks it), so it says nothing more: no version, no database error (that goes
//! to stderr, and the version to `/metrics`). With ACME it adds the certificate's state in a
//! few words (`acme::status`); the CA's own text goes to stderr.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::api::store::Store;
use crate::http::Response;

static STARTED: OnceLock<Instant> = OnceLock::new();
static DRAINING: AtomicBool = AtomicBool::new(false);

/// From now on the node says it is draining: a load balancer stops sending it requests.
pub fn set_draining() {
    DRAINING.store(true, Ordering::Release);
}

/// Records the moment the server started; later calls keep the first.
pub fn mark_start() {
    STARTED.get_or_init(Instant::now);
}

/// Time since the server started.
pub fn uptime() -> std::time::Duration {
    STARTED.get_or_init(Instant::now).elapsed()
}

/// `200 {"status": "ok", "uptime_seconds": N}` (with `"store": "ok"` when collections use a
/// database); 503 with `"status": "draining"`, or `"unavailable"` (and `"store":
/// "unavailable"`).
pub fn report(store: Option<&dyn Store>) -> Response {
    let uptime = uptime();
    let mut body = serde_json::json!({
        "status": "ok",
        "uptime_seconds": uptime.as_secs_f64(),
    });
    let mut status = 200;
    if let Some(store) = store {
        body["store"] = match store.health() {
            Ok(()) => "ok".into(),
            Err(_) => {
                status = 503;
                body["status"] = "unavailable".into();
                "unavailable".into()
            }
        };
    }
    // Over ACME: the certificate's domains, days left, and a failing renewal's few words.
    if let Some(certificate) = crate::acme::status::health() {
        body["certificate"] = certificate;
    }
    if DRAINING.load(Ordering::Acquire) {
        status = 503;
        body["status"] = "draining".into();
    }
    Response::json(status, &body).header("Cache-Control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_status_and_a_growing_uptime_but_no_version() {
        mark_start();
        let first = report(None);
        assert_eq!(first.status, 200);
        let crate::http::Body::Bytes(body) = first.body else {
            panic!()
        };
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["status"], "ok");
        assert!(value.get("version").is_none());
        assert!(value["uptime_seconds"].as_f64().unwrap() >= 0.0);
    }
}
