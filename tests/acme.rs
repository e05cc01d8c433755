//! Automatic HTTPS against Pebble (the Let's Encrypt project's test CA), on this machine alone:
//! HTTP-01 and TLS-ALPN-01 each give, from a cold start, a certificate curl verifies against
//! Pebble's root (the time is printed), and a restart reuses it without a new order; renewal
//! of short-lived certificates swaps them under load without a failed request; two nodes on
//! one PostgreSQL order once and either answers the challenge; a bad `[server.tls.acme]`
//! names its file, line and key. Pebble refuses 5% of nonces throughout (half of them in one
//! test), so badNonce is retried in every order. The faults are in `acme_faults.rs`.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::acme::{
    COLD_START, DOMAIN, acme_table, client, configure, count, fetch, health, node, redirect_addr,
    site, within,
};
use common::pebble::{Options, Pebble, curl};
use common::{installed, scratch};
use rustls::pki_types::ServerName;

/// HTTP-01: a certificate curl verifies within the bound, with the plain listener answering
/// the challenge and redirecting everything else; /healthz and /metrics report it; a restart
/// serves it again at once and orders nothing.
#[test]
fn http01_gives_a_certificate_from_a_cold_start_and_a_restart_reuses_it() {
    let dir = site("acme-http01");
    let Some(pebble) = Pebble::start(&dir, Options::default()) else {
        return;
    };
    if !installed("curl") {
        return;
    }
    let routes =
        format!("domains = [\"{DOMAIN}\", \"www.{DOMAIN}\"]\nchallenges = [\"http-01\"]\n");
    configure(&dir, &acme_table(&pebble, &routes));
    let started = Instant::now();
    let server = node(&dir, "data", &["--redirect-http", "0"]);
    let plain = redirect_addr(&server);
    pebble.http.set_targets(&[plain]);
    pebble.tls.set_targets(&[server.addr]);
    assert!(common::wait_line(&server.log, "TLS certificate").contains("temporary self-signed"));
    let root = pebble.issuing_root(&dir.join("issuing-root.pem"));
    let body = within(COLD_START, "a verified certificate", || {
        curl(&root, DOMAIN, server.addr, "/").ok()
    });
    let took = started.elapsed();
    println!(
        "HTTP-01: cold start to a certificate curl verifies: {:.2}s",
        took.as_secs_f64()
    );
    assert!(body.contains("tws over ACME"));
    assert!(took < COLD_START);
    assert_eq!(pebble.orders(), 1);
    server.wait_error("tws: ACME: certificate for a.tws.test, www.a.tws.test installed after");
    // What operators see.
    let state = health(&root, server.addr);
    assert_eq!(state["status"], "ok");
    assert_eq!(state["certificate"]["state"], "valid");
    assert!(state["certificate"]["expires_in_days"].as_i64().unwrap() > 300);
    let metrics = curl(&root, DOMAIN, server.addr, "/metrics").unwrap();
    let gauge = format!("tws_certificate_expiry_seconds{{domain=\"www.{DOMAIN}\"}} ");
    assert!(metrics.lines().any(|l| l.starts_with(&gauge)), "{metrics}");
    if installed("promtool") {
        let mut check = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        check
            .stdin
            .take()
            .unwrap()
            .write_all(metrics.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(out.status.success(), "promtool: {out:?}");
    }
    // The plain listener redirects what is not a challenge.
    let mut tcp = TcpStream::connect(plain).unwrap();
    tcp.write_all(
        format!("GET /page?x=1 HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let answer = String::from_utf8(common::read_to_close(&mut tcp)).unwrap();
    let location = format!("location: https://{DOMAIN}:{}/page?x=1", server.addr.port());
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains(&location), "{answer}");
    let tls = client(&root, &[b"http/1.1"]);
    let first = fetch(&tls, server.addr).unwrap();
    // A restart: the stored certificate from the first handshake, and no order.
    drop(server);
    let again = node(&dir, "data", &["--redirect-http", "0"]);
    assert!(common::wait_line(&again.log, "TLS certificate").contains("(stored, valid until"));
    assert_eq!(fetch(&tls, again.addr).unwrap(), first);
    assert_eq!(health(&root, again.addr)["certificate"]["state"], "valid");
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(1) {
        assert_eq!(count(&again, "ordering"), 0);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pebble.orders(), 1, "a restart ordered again");
}

/// TLS-ALPN-01 on the HTTPS port alone, set up with the flags of the common case, with half
/// of Pebble's nonces refused: a certificate within the bound. A client offering only
/// `acme-tls/1` when nothing is validated gets no handshake; others are served as usual.
#[test]
fn tls_alpn01_gives_a_certificate_from_a_cold_start() {
    let dir = site("acme-alpn");
    let options = Options {
        nonce_reject: Some(50),
        ..Options::default()
    };
    let Some(pebble) = Pebble::start(&dir, options) else {
        return;
    };
    if !installed("curl") {
        return;
    }
    configure(
        &dir,
        &acme_table(&pebble, "challenges = [\"tls-alpn-01\"]\n"),
    );
    let started = Instant::now();
    let server = node(
        &dir,
        "data",
        &["--domain", DOMAIN, "--acme-email", "me@tws.test"],
    );
    pebble.tls.set_targets(&[server.addr]);
    assert!(
        !server
            .log_lines()
            .iter()
            .any(|l| l.contains("redirects to HTTPS"))
    );
    let root = pebble.issuing_root(&dir.join("issuing-root.pem"));
    within(COLD_START, "a verified certificate", || {
        curl(&root, DOMAIN, server.addr, "/").ok()
    });
    let took = started.elapsed();
    println!(
        "TLS-ALPN-01: cold start to a certificate curl verifies: {:.2}s",
        took.as_secs_f64()
    );
    assert!(took < COLD_START);
    assert_eq!(pebble.orders(), 1);
    // Pebble does not log its refusals; about half of these signed requests were refused.
    println!(
        "TLS-ALPN-01 with half the nonces refused: {} signed requests for one order",
        pebble.lines("POST /")
    );
    // Nothing is being validated now: acme-tls/1 alone gets no certificate.
    let validator = client(&root, &[b"acme-tls/1"]);
    assert!(fetch(&validator, server.addr).is_err());
    let h2 = client(&root, &[b"h2", b"acme-tls/1", b"http/1.1"]);
    let tcp = TcpStream::connect(server.addr).unwrap();
    let name = ServerName::try_from(DOMAIN).unwrap();
    let mut conn = rustls::ClientConnection::new(h2, name).unwrap();
    let mut tcp_ref = &tcp;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp_ref).unwrap();
    }
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
}

/// A CA that requires external account binding: without `eab_kid` and `eab_hmac_key` tws
/// says what is missing; with them, a certificate.
#[test]
fn external_account_binding_is_given_when_the_ca_requires_it() {
    let dir = site("acme-eab");
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let key = &tws::acme::jws::b64(&bytes);
    let options = Options {
        eab: Some(("kid-1".to_owned(), key.to_owned())),
        ..Options::default()
    };
    let Some(pebble) = Pebble::start(&dir, options) else {
        return;
    };
    let alpn = format!("domains = [\"{DOMAIN}\"]\nchallenges = [\"tls-alpn-01\"]\n");
    configure(&dir, &acme_table(&pebble, &alpn));
    let without = node(&dir, "data", &[]);
    let line = without.wait_error("(failure 1)");
    assert!(
        line.contains("requires external account binding: set eab_kid and eab_hmac_key"),
        "{line}"
    );
    drop(without);
    let eab = format!("{alpn}eab_kid = \"kid-1\"\neab_hmac_key = \"{key}\"\n");
    configure(&dir, &acme_table(&pebble, &eab));
    // A fresh data folder: no backoff left from the failure above.
    let server = node(&dir, "data-eab", &[]);
    pebble.tls.set_targets(&[server.addr]);
    let root = pebble.issuing_root(&dir.join("issuing-root.pem"));
    let tls = client(&root, &[b"http/1.1"]);
    within(COLD_START, "a certificate with EAB", || {
        fetch(&tls, server.addr).ok()
    });
    assert!(
        !server
            .errors
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(key)),
        "the MAC key is never shown"
    );
}

/// Certificates valid 9 seconds are renewed at two thirds of their life; clients looping over
/// new connections (and one kept alive) through the swaps lose no request.
#[test]
fn renewal_swaps_the_certificate_under_load_without_a_failed_request() {
    let dir = site("acme-renewal");
    let options = Options {
        validity: Some(9),
        ..Options::default()
    };
    let Some(pebble) = Pebble::start(&dir, options) else {
        return;
    };
    let table = acme_table(
        &pebble,
        &format!("domains = [\"{DOMAIN}\"]\nchallenges = [\"tls-alpn-01\"]\n"),
    );
    configure(&dir, &table);
    let server = node(&dir, "data", &[]);
    pebble.tls.set_targets(&[server.addr]);
    let root = pebble.issuing_root(&dir.join("issuing-root.pem"));
    let tls = client(&root, &[b"http/1.1"]);
    let first = within(COLD_START, "the first certificate", || {
        fetch(&tls, server.addr).ok()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(vec![first.clone()]));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (stop, requests, failures, seen, tls) = (
            stop.clone(),
            requests.clone(),
            failures.clone(),
            seen.clone(),
            tls.clone(),
        );
        let addr = server.addr;
        clients.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                requests.fetch_add(1, Ordering::Relaxed);
                match fetch(&tls, addr) {
                    Ok(leaf) => {
                        let mut seen = seen.lock().unwrap();
                        if seen.last() != Some(&leaf) && !seen.contains(&leaf) {
                            seen.push(leaf);
                        }
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }
    // One connection kept alive across the swaps.
    let kept = {
        let (stop, requests, failures, tls) = (
            stop.clone(),
            requests.clone(),
            failures.clone(),
            tls.clone(),
        );
        let addr = server.addr;
        std::thread::spawn(move || {
            let tcp = TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let name = ServerName::try_from(DOMAIN).unwrap();
            let conn = rustls::ClientConnection::new(tls, name).unwrap();
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            while !stop.load(Ordering::Acquire) {
                requests.fetch_add(1, Ordering::Relaxed);
                let sent = stream
                    .write_all(format!("GET / HTTP/1.1\r\nHost: {DOMAIN}\r\n\r\n").as_bytes());
                let reply = sent.map(|()| common::read_one(&mut stream, false));
                match reply {
                    Ok(r) if r.status == 200 => {}
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("kept-alive: {}", r.status)),
                    Err(e) => failures.lock().unwrap().push(format!("kept-alive: {e}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Two renewals: the first certificate was issued at most a moment ago, each lives 9 s.
    within(Duration::from_secs(25), "two renewals", || {
        (seen.lock().unwrap().len() >= 3).then_some(())
    });
    stop.store(true, Ordering::Release);
    for client in clients {
        client.join().unwrap();
    }
    kept.join().unwrap();
    let failures = failures.lock().unwrap().clone();
    let requests = requests.load(Ordering::Relaxed);
    println!(
        "renewal under load: {requests} requests, {} failed, {} certificates served",
        failures.len(),
        seen.lock().unwrap().len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(requests > 100, "{requests}");
    assert_eq!(count(&server, "no certificate for"), 0);
}

/// Two nodes sharing one PostgreSQL, for each challenge type: one order for both, the
/// validations (Pebble makes several per name) spread over the two nodes in turn so each
/// answers some, whichever ordered, and both serve the one certificate.
#[test]
fn two_nodes_on_postgresql_share_one_certificate_from_one_order() {
    let dir = site("acme-nodes");
    let Some(pg) = common::pg::Postgres::start("acme-nodes") else {
        return;
    };
    let Some(pebble) = Pebble::start(&dir, Options::default()) else {
        return;
    };
    for (pass, challenge) in ["http-01", "tls-alpn-01"].into_iter().enumerate() {
        let url = pg.database(&format!("acme{pass}"));
        let here = dir.join(challenge);
        std::fs::create_dir_all(here.join("site")).unwrap();
        std::fs::write(here.join("site/index.html"), "<p>a node</p>").unwrap();
        let more =
            format!("domains = [\"{DOMAIN}\", \"www.{DOMAIN}\"]\nchallenges = [\"{challenge}\"]\n");
        configure(&here, &acme_table(&pebble, &more));
        let args = ["--store", url.as_str(), "--redirect-http", "0"];
        let one = node(&here, "data1", &args);
        let two = node(&here, "data2", &args);
        let forwarder = match challenge {
            "http-01" => {
                pebble
                    .http
                    .set_targets(&[redirect_addr(&one), redirect_addr(&two)]);
                &pebble.http
            }
            _ => {
                pebble.tls.set_targets(&[one.addr, two.addr]);
                &pebble.tls
            }
        };
        let root = pebble.issuing_root(&here.join("issuing-root.pem"));
        let tls = client(&root, &[b"http/1.1"]);
        let leaves = within(
            Duration::from_secs(15),
            "both nodes serve a verified certificate",
            || Some((fetch(&tls, one.addr).ok()?, fetch(&tls, two.addr).ok()?)),
        );
        assert_eq!(
            leaves.0, leaves.1,
            "{challenge}: one certificate for both nodes"
        );
        assert_eq!(pebble.orders(), pass + 1, "{challenge}: one order");
        let ordering =
            count(&one, "ordering a certificate") + count(&two, "ordering a certificate");
        assert_eq!(ordering, 1, "{challenge}");
        let hits = forwarder.hits();
        println!("{challenge}: validations answered by each node: {hits:?}");
        assert!(hits.iter().all(|n| *n > 0), "{challenge}: {hits:?}");
        let installed = count(&one, "another node obtained") + count(&two, "another node obtained");
        assert_eq!(installed, 1, "{challenge}");
    }
}

/// Every mistake in `[server.tls.acme]` (and in the flags) is one line naming the file, the
/// line and the key; nothing starts.
#[test]
fn a_bad_acme_table_names_its_file_line_and_key() {
    let dir = scratch("acme-config");
    std::fs::write(dir.join("root.pem"), "not a certificate\n").unwrap();
    // (the table's body from line 3, the line named and the words expected)
    let table: &[(&str, usize, &str)] = &[
        (
            "domains = [\"*.example.com\"]",
            3,
            "[server.tls.acme] domains: \"*.example.com\" is a wildcard",
        ),
        (
            "domains = [\"localhost\"]",
            3,
            "domains: \"localhost\" is not a domain name",
        ),
        (
            "domains = [\"a.example\"]\nemail = \"nobody\"",
            4,
            "[server.tls.acme] email:",
        ),
        (
            "domains = [\"a.example\"]\ndirectory = \"http://ca.example/dir\"",
            4,
            "directory must be an https:// URL",
        ),
        (
            "domains = [\"a.example\"]\ndirectory = \"https://ca.example/dir\"\nstaging = true",
            5,
            "choose one",
        ),
        (
            "domains = [\"a.example\"]\nchallenges = [\"dns-01\"]",
            4,
            "challenges: unknown challenge \"dns-01\"",
        ),
        (
            "domains = [\"a.example\"]\neab_kid = \"kid-1\"",
            4,
            "eab_kid needs eab_hmac_key",
        ),
        (
            "domains = [\"a.example\"]\neab_kid = \"k\"\neab_hmac_key = \"not base64!\"",
            5,
            "eab_hmac_key must be the base64url key",
        ),
        (
            "domains = [\"a.example\"]\nca_root = \"root.pem\"",
            4,
            "ca_root: ",
        ),
        (
            "domains = [\"a.example\"]\nca_root = \"missing.pem\"",
            4,
            "ca_root: cannot read",
        ),
        (
            "domains = [\"a.example\"]\nrenew_before = \"2w\"",
            4,
            "renew_before: \"2w\"",
        ),
        (
            "domains = [\"a.example\"]\nfirst_retry = 0",
            4,
            "first_retry: must be more than 0",
        ),
        (
            "domains = [\"a.example\"]\nemial = \"a@b.example\"",
            4,
            "unknown field `emial`",
        ),
        (
            "email = \"ops@a.example\"",
            1,
            "[server.tls.acme] needs domains",
        ),
    ];
    for (body, line, words) in table {
        let file = dir.join("routes.toml");
        std::fs::write(
            &file,
            format!(
                "[server.tls.acme]\n\n{body}\n\n[[route]]\npath = \"/\"\nfile = \"routes.toml\"\n"
            ),
        )
        .unwrap();
        let out = common::tws()
            .args(["--check", "--config", file.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{body}: accepted");
        let at = format!("{}:{line}", file.display());
        assert!(stderr.contains(&at), "{body}: {stderr}");
        assert!(stderr.contains(words), "{body}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{body}: {stderr}");
    }
    // Flags name themselves.
    let flags: &[(&[&str], &str)] = &[
        (
            &["--domain", "*.a.example"],
            "--domain: \"*.a.example\" is a wildcard",
        ),
        (
            &["--acme-email", "ops@a.example"],
            "--acme-email needs --domain",
        ),
        (
            &["--domain", "a.example", "--acme-email", "ops"],
            "--acme-email: \"ops\" is not an address",
        ),
        (
            &["--domain", "a.example", "--tls-self-signed"],
            "cannot go with --tls-cert, --tls-key or --tls-self-signed",
        ),
    ];
    for (args, words) in flags {
        let out = common::tws()
            .args(["--check", "--root", dir.to_str().unwrap()])
            .args(*args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(words),
            "{args:?}: {stderr}"
        );
    }
}
