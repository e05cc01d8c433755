//! Faults of automatic HTTPS, each against a CA on this machine: Pebble stopped once tws has
//! its certificate, a challenge Pebble cannot complete, and a CA answering `rateLimited` with
//! Retry-After. tws keeps serving what it has, says why in one line per attempt and in
//! /healthz (a few words, no internals), and retries later, never sooner than the CA asked,
//! even across a restart. Last, a CA steering renewal with ACME Renewal Information (RFC
//! 9773), which Pebble 2.4 does not offer.

mod common;

use std::time::Duration;

use common::acme::{
    COLD_START, DOMAIN, acme_table, client, configure, count, curl_insecure, fetch, health, node,
    redirect_addr, site, within,
};
use common::fakeca::FakeCa;
use common::installed;
use common::pebble::{Options, Pebble, curl};

/// Pebble stopped once tws has its certificate: the renewal fails, one line per attempt and
/// /healthz say why, the certificate keeps being served, and tws retries; Pebble back (a new
/// CA that forgot the account) gives a new certificate.
#[test]
fn with_the_ca_unreachable_tws_keeps_serving_and_retries() {
    let dir = site("acme-unreachable");
    let options = Options {
        validity: Some(3600),
        ..Options::default()
    };
    let Some(mut pebble) = Pebble::start(&dir, options) else {
        return;
    };
    if !installed("curl") {
        return;
    }
    // Renewal due four seconds after issue.
    let more =
        format!("domains = [\"{DOMAIN}\"]\nchallenges = [\"tls-alpn-01\"]\nrenew_before = 3596\n");
    configure(&dir, &acme_table(&pebble, &more));
    let server = node(&dir, "data", &[]);
    pebble.tls.set_targets(&[server.addr]);
    let root = pebble.issuing_root(&dir.join("issuing-root.pem"));
    let tls = client(&root, &[b"http/1.1"]);
    let first = within(COLD_START, "the first certificate", || {
        fetch(&tls, server.addr).ok()
    });
    pebble.stop();
    server.wait_error("(failure 2)");
    let line = server.wait_error("(failure 1)");
    assert!(line.contains("the CA cannot be reached"), "{line}");
    assert!(
        line.contains("still serving the certificate valid until"),
        "{line}"
    );
    assert_eq!(count(&server, "(failure 1)"), 1, "one line per failure");
    let state = health(&root, server.addr);
    assert_eq!(state["status"], "ok");
    assert_eq!(state["certificate"]["state"], "retrying");
    assert_eq!(state["certificate"]["failure"], "CA unreachable");
    assert!(state["certificate"]["retry_in_seconds"].as_i64().unwrap() <= 30);
    assert!(
        !state.to_string().contains("127.0.0.1"),
        "no internals: {state}"
    );
    assert_eq!(fetch(&tls, server.addr).unwrap(), first);
    // The CA is back, with nothing of the old one.
    pebble.start_again();
    let root = pebble.issuing_root(&dir.join("issuing-root-2.pem"));
    let tls = client(&root, &[b"http/1.1"]);
    let renewed = within(
        Duration::from_secs(20),
        "a certificate from the new CA",
        || fetch(&tls, server.addr).ok(),
    );
    assert_ne!(renewed, first);
    assert_eq!(health(&root, server.addr)["certificate"]["state"], "valid");
}

/// A challenge the CA cannot complete (its connection to port 80 is cut): one line naming
/// the challenge and the CA's error, /healthz says so, the temporary certificate is served
/// meanwhile, and once port 80 answers the next attempt succeeds.
#[test]
fn a_failing_challenge_is_reported_and_retried() {
    let dir = site("acme-challenge");
    let Some(pebble) = Pebble::start(&dir, Options::default()) else {
        return;
    };
    if !installed("curl") {
        return;
    }
    let more = format!("domains = [\"{DOMAIN}\"]\nchallenges = [\"http-01\"]\n");
    configure(&dir, &acme_table(&pebble, &more));
    pebble.http.refuse(true);
    let server = node(&dir, "data", &["--redirect-http", "0"]);
    pebble.http.set_targets(&[redirect_addr(&server)]);
    let line = server.wait_error("(failure 1)");
    assert!(
        line.contains(&format!("the challenge for {DOMAIN} failed")),
        "{line}"
    );
    assert!(
        line.contains("still serving the temporary self-signed certificate"),
        "{line}"
    );
    let root = pebble.issuing_root(&dir.join("issuing-root.pem"));
    // The temporary certificate does not verify, but it is served.
    let err = curl(&root, DOMAIN, server.addr, "/").unwrap_err();
    assert!(err.contains("certificate"), "{err}");
    let health = curl_insecure(server.addr, "/healthz");
    assert!(
        health.contains("\"failure\":\"challenge failed\""),
        "{health}"
    );
    pebble.http.refuse(false);
    within(
        Duration::from_secs(15),
        "a certificate after the retry",
        || curl(&root, DOMAIN, server.addr, "/").ok(),
    );
}

/// A CA that answers every new account `rateLimited` with Retry-After: 3. tws waits those
/// three seconds (not its one-second first retry), says so, and a restart meanwhile does not
/// ask again before then: the backoff is kept.
#[test]
fn rate_limited_waits_as_the_ca_asks_even_across_a_restart() {
    let dir = site("acme-ratelimited");
    let ca = FakeCa::start(&dir, None);
    let more = format!(
        "domains = [\"{DOMAIN}\"]\ndirectory = \"https://127.0.0.1:{}/dir\"\nca_root = \"{}\"\nfirst_retry = 0.5\n",
        ca.port,
        dir.join("fake-ca-root.pem").display()
    );
    configure(&dir, &more);
    let server = node(&dir, "data", &["--redirect-http", "0"]);
    let line = server.wait_error("(failure 1)");
    assert!(
        line.contains("rateLimited (429: too many new accounts)"),
        "{line}"
    );
    assert!(line.contains("next attempt in 3s"), "{line}");
    let first = ca.accounts()[0];
    let health = curl_insecure(server.addr, "/healthz");
    assert!(
        health.contains("\"failure\":\"rate limited by the CA\""),
        "{health}"
    );
    drop(server);
    let again = node(&dir, "data", &["--redirect-http", "0"]);
    let second = within(
        Duration::from_secs(10),
        "a second request to the CA",
        || ca.accounts().get(1).copied(),
    );
    let waited = second - first;
    println!(
        "rate limited: asked again after {:.2}s (Retry-After: 3)",
        waited.as_secs_f64()
    );
    assert!(waited >= Duration::from_millis(2900), "{waited:?}");
    again.wait_error("(failure 2)");
}

/// A stored certificate with 90 days left, which two thirds of its life would keep for weeks,
/// but whose CA suggests, through ACME Renewal Information, a window already open: tws asks
/// for it by the certificate's identifier (its AKI key id and serial) and orders at once.
#[test]
fn a_renewal_window_from_the_ca_renews_at_once() {
    let dir = site("acme-ari");
    let now = time::OffsetDateTime::now_utc();
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let window = (
        rfc3339(now - time::Duration::hours(2)),
        rfc3339(now - time::Duration::hours(1)),
    );
    let ca = FakeCa::start(&dir, Some(window));
    let directory = format!("https://127.0.0.1:{}/dir", ca.port);
    let more = format!(
        "domains = [\"{DOMAIN}\"]\ndirectory = \"{directory}\"\nca_root = \"{}\"\nchallenges = [\"tls-alpn-01\"]\n",
        dir.join("fake-ca-root.pem").display()
    );
    configure(&dir, &more);
    // What an earlier run would have stored: a certificate from this CA, 90 days left.
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut issuer = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    issuer.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    issuer.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![0x5A; 20]);
    let issuer = rcgen::Issuer::new(issuer, ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec![DOMAIN.to_owned()]).unwrap();
    leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0C, 0xA1, 0xF0]));
    leaf.use_authority_key_identifier_extension = true;
    (leaf.not_before, leaf.not_after) = (
        now - time::Duration::days(1),
        now + time::Duration::days(90),
    );
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let pem = tws::tls::certs::pem_encode;
    let stored = serde_json::json!({
        "directory": directory,
        "domains": [DOMAIN],
        "chain": pem("CERTIFICATE", cert.der()),
        "key": pem("PRIVATE KEY", &key.serialize_der()),
        "version": 1,
    });
    std::fs::create_dir_all(dir.join("data/acme")).unwrap();
    std::fs::write(
        dir.join(format!("data/acme/{DOMAIN}.json")),
        stored.to_string(),
    )
    .unwrap();
    let server = node(&dir, "data", &[]);
    assert!(common::wait_line(&server.log, "TLS certificate").contains("(stored, valid until"));
    server.wait_error("ordering a certificate");
    let id = format!("{}.DKHw", tws::acme::jws::b64(&[0x5A; 20]));
    assert_eq!(ca.renewal_info(), [id]);
}
