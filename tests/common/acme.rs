//! What the ACME tests share on the tws side: a site and its routes.toml with a
//! `[server.tls.acme]` table, a node started on any port, the plain listener's address from
//! the banner, bounded polling, and a TLS client that checks which certificate is served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

use super::pebble::{Pebble, curl};
use super::{Server, scratch};

pub const DOMAIN: &str = "a.tws.test";
/// From a cold start, `https://DOMAIN/` must verify within this (the bound).
pub const COLD_START: Duration = Duration::from_secs(10);

/// A scratch folder with a page to serve (routes.toml comes with `configure`).
pub fn site(name: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "<p>tws over ACME</p>").unwrap();
    dir
}

/// Writes routes.toml in `dir`: `acme` is the body of `[server.tls.acme]`.
pub fn configure(dir: &Path, acme: &str) {
    let routes = format!(
        "[server]\nroot = \"site\"\n\n[server.tls.acme]\n{acme}\n\n\
         [[route]]\npath = \"/\"\npage = \"index.html\"\n\n\
         [[route]]\npath = \"/healthz\"\naction = \"health\"\n\n\
         [[route]]\npath = \"/metrics\"\naction = \"metrics\"\n"
    );
    std::fs::write(dir.join("routes.toml"), routes).unwrap();
}

/// `[server.tls.acme]` for Pebble: its directory and root, quick retries, and `more`.
pub fn acme_table(pebble: &Pebble, more: &str) -> String {
    format!(
        "directory = \"{}\"\nca_root = \"{}\"\nemail = \"ops@tws.test\"\nfirst_retry = 1\n{more}",
        pebble.directory,
        pebble.ca_root.display()
    )
}

/// tws on `dir`'s routes.toml, its data in `data`, on 127.0.0.1 (any port), plus `args`.
pub fn node(dir: &Path, data: &str, args: &[&str]) -> Server {
    let mut command = super::tws();
    command
        .args(["--config", dir.join("routes.toml").to_str().unwrap()])
        .args(["--data", dir.join(data).to_str().unwrap()])
        .args(["--host", "127.0.0.1", "--port", "0", "--log-format", "off"])
        .args(args);
    Server::spawn(command)
}

/// The plain listener's address, from the banner.
pub fn redirect_addr(server: &Server) -> SocketAddr {
    let line = super::wait_line(&server.log, "redirects to HTTPS");
    let start = line.find("http://").unwrap() + "http://".len();
    let rest = &line[start..];
    rest[..rest.find('/').unwrap()].parse().unwrap()
}

/// Polls `f` every 50 ms until it gives a value, at most `limit`.
pub fn within<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TLS client trusting `root` (a PEM file) alone, offering `alpn`; every handshake is a
/// full one (a resumed session would not show the certificate served now).
pub fn client(root: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let der = CertificateDer::from_pem_file(root).unwrap();
    let config = super::tls::client(&[&der], rustls::DEFAULT_VERSIONS, alpn);
    let mut config = Arc::unwrap_or_clone(config);
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// One HTTPS GET of `/` on a new connection, for `DOMAIN` (SNI): the leaf certificate served,
/// if the handshake verified and the answer was a 200.
pub fn fetch(config: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> Result<Vec<u8>, String> {
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = ServerName::try_from(DOMAIN).unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(
        format!("GET / HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    if !answer.starts_with(b"HTTP/1.1 200") {
        return Err(String::from_utf8_lossy(&answer).into_owned());
    }
    let leaf = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate")?;
    Ok(leaf.to_vec())
}

/// /healthz as JSON, through curl trusting `root`.
pub fn health(root: &Path, addr: SocketAddr) -> Value {
    serde_json::from_str(&curl(root, DOMAIN, addr, "/healthz").unwrap()).unwrap()
}

/// Lines on tws's stderr containing `text`.
pub fn count(server: &Server, text: &str) -> usize {
    server
        .errors
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(text))
        .count()
}

/// A GET through curl that does not verify the certificate (the temporary one).
pub fn curl_insecure(addr: SocketAddr, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--insecure", "--max-time", "5"])
        .args(["--resolve", &format!("{DOMAIN}:{}:127.0.0.1", addr.port())])
        .arg(format!("https://{DOMAIN}:{}{path}", addr.port()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
