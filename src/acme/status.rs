//! What the certificate manager tells operators: the state `/healthz` shows (the domains,
//! days to expiry, and a failing renewal's short reason and next attempt; never a secret, a
//! URL or the CA's full text, which go to stderr) and the `tws_certificate_expiry_seconds`
//! gauge of `/metrics`. Process-wide, written by the manager, read by those two actions.

use std::sync::Mutex;

use serde_json::{Value, json};

use crate::sync::lock;

#[derive(Debug, Clone, Default)]
struct Status {
    domains: Vec<String>,
    /// notAfter of the certificate served (none while the temporary one is).
    expires: Option<i64>,
    /// The last attempt failed: why, in a few words, and when the next one is due.
    failure: Option<(String, i64)>,
}

static STATUS: Mutex<Option<Status>> = Mutex::new(None);

fn now() -> i64 {
    crate::acme::schedule::unix_now()
}

/// The manager looks after these domains (and has no certificate for them yet).
pub fn start(domains: &[String]) {
    *lock(&STATUS) = Some(Status {
        domains: domains.to_vec(),
        ..Status::default()
    });
}

/// A certificate valid until `not_after` (seconds since 1970) is served.
pub fn certificate(not_after: i64) {
    if let Some(status) = lock(&STATUS).as_mut() {
        status.expires = Some(not_after);
    }
}

/// The last attempt failed (`reason`: a few words); the next is at `retry_at`.
pub fn failing(reason: &str, retry_at: i64) {
    if let Some(status) = lock(&STATUS).as_mut() {
        status.failure = Some((reason.to_owned(), retry_at));
    }
}

/// The last attempt succeeded (or another node's did).
pub fn succeeded() {
    if let Some(status) = lock(&STATUS).as_mut() {
        status.failure = None;
    }
}

/// The `certificate` member of `/healthz`, when tws manages its certificate.
pub fn health() -> Option<Value> {
    let status = lock(&STATUS).clone()?;
    let now = now();
    let mut value = json!({
        "domains": status.domains,
        "state": match (&status.expires, &status.failure) {
            (_, Some(_)) => "retrying",
            (None, None) => "ordering",
            (Some(_), None) => "valid",
        },
    });
    if let Some(expires) = status.expires {
        value["expires_in_days"] = ((expires - now) / 86_400).into();
    }
    if let Some((reason, at)) = &status.failure {
        value["failure"] = reason.as_str().into();
        value["retry_in_seconds"] = (at - now).max(0).into();
    }
    Some(value)
}

/// Seconds until the served certificate expires, by domain (nothing while the temporary
/// certificate is served).
pub fn expiry() -> Vec<(String, i64)> {
    let Some(status) = lock(&STATUS).clone() else {
        return Vec::new();
    };
    let Some(expires) = status.expires else {
        return Vec::new();
    };
    let left = expires - now();
    status.domains.into_iter().map(|d| (d, left)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One process-wide status: one test walks through its states.
    #[test]
    fn health_and_expiry_follow_the_manager() {
        assert!(health().is_none() || lock(&STATUS).is_some());
        start(&["a.test".to_owned(), "www.a.test".to_owned()]);
        assert_eq!(health().unwrap()["state"], "ordering");
        assert!(expiry().is_empty());
        failing("CA unreachable", now() + 30);
        let h = health().unwrap();
        assert_eq!(h["state"], "retrying");
        assert_eq!(h["failure"], "CA unreachable");
        assert!((29..=30).contains(&h["retry_in_seconds"].as_i64().unwrap()));
        assert!(h.get("expires_in_days").is_none());
        certificate(now() + 90 * 86_400 + 60);
        succeeded();
        let h = health().unwrap();
        assert_eq!(h["state"], "valid");
        assert_eq!(h["expires_in_days"], 90);
        assert_eq!(h["domains"], json!(["a.test", "www.a.test"]));
        let e = expiry();
        assert_eq!(e.len(), 2);
        assert!(
            e.iter()
                .all(|(_, left)| (90 * 86_400..=90 * 86_400 + 60).contains(left))
        );
    }
}
