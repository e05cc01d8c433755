//! A CA over HTTPS for what Pebble 2.4 cannot show: every new-account request gets 429
//! `rateLimited` with `Retry-After: 3`, and, when given a window, the directory offers ACME
//! Renewal Information (RFC 9773) suggesting it for every certificate. Its certificate is made
//! at test time (see `pebble::https_certificate`); it answers one request per connection and
//! records when each new-account request came and which renewal information was asked for.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Default)]
struct State {
    /// The suggested renewal window (RFC 3339 start and end), if the CA offers ARI.
    window: Option<(String, String)>,
    accounts: Vec<Instant>,
    /// The certificate identifiers renewal information was asked for.
    renewal_info: Vec<String>,
}

pub struct FakeCa {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeCa {
    /// Starts it, its root written to `dir/fake-ca-root.pem`; with `window`, it offers ARI.
    pub fn start(dir: &Path, window: Option<(String, String)>) -> FakeCa {
        super::pebble::https_certificate(dir, "fake-ca");
        let chain = vec![CertificateDer::from_pem_file(dir.join("fake-ca.pem")).unwrap()];
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("fake-ca.key")).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            window,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for tcp in listener.incoming().map_while(Result::ok) {
                let (config, state) = (Arc::clone(&config), Arc::clone(&shared));
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    let _ = answer(&mut tls, port, &state);
                });
            }
        });
        FakeCa { port, state }
    }

    /// When each new-account request arrived.
    pub fn accounts(&self) -> Vec<Instant> {
        self.state.lock().unwrap().accounts.clone()
    }

    /// The certificate identifiers renewal information was asked for.
    pub fn renewal_info(&self) -> Vec<String> {
        self.state.lock().unwrap().renewal_info.clone()
    }
}

/// Reads one request and answers it, closing the connection.
fn answer(tls: &mut impl ReadWrite, port: u16, state: &Mutex<State>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tls.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tls.read_exact(&mut body)?;
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let base = format!("https://127.0.0.1:{port}");
    let mut state = state.lock().unwrap();
    let (status, kind, extra, text) = match (method, path) {
        ("GET", "/dir") => {
            let ari = match state.window {
                Some(_) => format!(r#", "renewalInfo": "{base}/renewal-info""#),
                None => String::new(),
            };
            let dir = format!(
                r#"{{"newNonce": "{base}/nonce", "newAccount": "{base}/account", "newOrder": "{base}/order"{ari}}}"#
            );
            ("200 OK", "application/json", "", dir)
        }
        ("HEAD", "/nonce") => ("200 OK", "text/plain", "", String::new()),
        ("POST", "/account") => {
            state.accounts.push(Instant::now());
            let problem = r#"{"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many new accounts", "status": 429}"#;
            (
                "429 Too Many Requests",
                "application/problem+json",
                "Retry-After: 3\r\n",
                problem.to_owned(),
            )
        }
        ("GET", path) if path.starts_with("/renewal-info/") && state.window.is_some() => {
            let id = path.trim_start_matches("/renewal-info/").to_owned();
            state.renewal_info.push(id);
            let (start, end) = state.window.clone().unwrap_or_default();
            let info = format!(r#"{{"suggestedWindow": {{"start": "{start}", "end": "{end}"}}}}"#);
            ("200 OK", "application/json", "Retry-After: 21600\r\n", info)
        }
        _ => ("404 Not Found", "text/plain", "", String::new()),
    };
    let nonce = state.accounts.len();
    drop(state);
    let length = if method == "HEAD" { 0 } else { text.len() };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\nReplay-Nonce: n{nonce}\r\n{extra}Connection: close\r\n\r\n{}",
        if length == 0 { "" } else { text.as_str() }
    );
    tls.write_all(reply.as_bytes())?;
    tls.flush()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
