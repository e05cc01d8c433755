//! HTTPS: the certificate tws serves and the rustls configuration around it. TLS 1.3 and 1.2
//! only, with rustls's ECDHE key exchanges and AEAD suites (it has no others), the server's
//! preference, stateless session tickets rotated every six hours (and TLS 1.3 resumption
//! through them), and ALPN. The crypto provider is aws-lc-rs: the fastest for the ECDSA
//! P-256 and X25519 a handshake spends its time in, and built from C with only a C compiler.
//! The certificate sits behind a resolver, so a renewed pair (SIGHUP, its files changing, or
//! a certificate obtained over ACME) is swapped in for new handshakes while open connections
//! go on. With ACME's TLS-ALPN-01, the resolver answers a ClientHello offering only
//! `acme-tls/1` with the challenge certificate for its SNI name (see `CertStore::resolve`).
//! The bytes of each connection go through its wire (`server::wire`).

pub mod certs;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{DnsName, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub use crate::acme::challenge::ACME_TLS_ALPN;
use crate::config::TlsSettings;
use crate::stamp::FileStamp;

/// The protocols offered with ALPN, most preferred first. Only what is served is offered.
pub const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
/// The stamps of a certificate's and a key's files (none for a self-signed certificate).
pub type PairStamps = Option<(Option<FileStamp>, Option<FileStamp>)>;

/// Where a self-signed certificate is written, inside the data folder.
pub const SELF_SIGNED_FILE: &str = "tls/self-signed.pem";

/// What the server needs for TLS: the configuration every connection starts from, and what
/// a reload needs to swap the certificate.
pub struct Tls {
    pub config: Arc<ServerConfig>,
    pub store: Arc<CertStore>,
    /// The files the pair came from (none for a self-signed certificate).
    pub files: Option<(PathBuf, PathBuf)>,
    /// Where the self-signed certificate was written.
    pub self_signed: Option<PathBuf>,
}

impl Tls {
    /// Loads (or makes) the certificate and builds the configuration; every problem is one
    /// line naming the file.
    pub fn start(settings: &TlsSettings, data: &Path, host: &str) -> Result<Tls> {
        let provider = Arc::new(provider());
        let (pair, files, self_signed) = match settings {
            TlsSettings::Files { cert, key } => {
                let pair = certs::load_pair(cert, key, &provider)?;
                (pair, Some((cert.clone(), key.clone())), None)
            }
            TlsSettings::SelfSigned => {
                let (pair, pem) = certs::self_signed(host, &provider)?;
                let path = data.join(SELF_SIGNED_FILE);
                write_public(&path, &pem)?;
                (pair, None, Some(path))
            }
            // Served until the manager installs a stored or newly issued certificate: a
            // handshake cannot wait for a CA, and the event loop must not block.
            TlsSettings::Acme(acme) => {
                let names = acme.domains.clone();
                let (pair, _) = certs::self_signed_for(names, "tws temporary (ACME)", &provider)?;
                (pair, None, None)
            }
        };
        let acme_tls = settings.acme().is_some_and(|a| a.tls_alpn01());
        let pair = Arc::new(pair);
        warn_if_outside_validity(&pair, files.as_ref().map(|(c, _)| c.as_path()));
        let store = Arc::new(CertStore::new(Arc::clone(&pair)));
        let config = server_config(Arc::clone(&provider), Arc::clone(&store), acme_tls)?;
        Ok(Tls {
            config,
            store,
            files,
            self_signed,
        })
    }

    /// The certificate being served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.store.current()
    }

    /// The stamps of the pair's files, to notice a renewal.
    pub fn stamps(&self) -> PairStamps {
        let (cert, key) = self.files.as_ref()?;
        Some((FileStamp::of_path(cert), FileStamp::of_path(key)))
    }

    /// Loads the pair again from its files and swaps it in for new handshakes. A bad pair is
    /// refused and the old one keeps serving; the error says why.
    pub fn reload(&self) -> Result<String> {
        let Some((cert, key)) = &self.files else {
            return Err(anyhow!("a self-signed certificate is not reloaded"));
        };
        let pair = Arc::new(certs::load_pair(cert, key, &provider())?);
        warn_if_outside_validity(&pair, Some(cert));
        let print = certs::fingerprint(certs::leaf(&pair));
        self.store.replace(pair);
        Ok(print)
    }
}

/// aws-lc-rs with the cipher suites in tws's order of preference: AES-128-GCM first (as strong
/// as needed, and its SHA-256 key schedule is cheaper per handshake than SHA-384's), then
/// ChaCha20-Poly1305 (fast without AES instructions), then AES-256-GCM; ECDSA before RSA in
/// TLS 1.2. rustls offers only ECDHE key exchange with AEAD suites.
fn provider() -> CryptoProvider {
    use rustls::crypto::aws_lc_rs::{cipher_suite::*, default_provider};
    CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        ..default_provider()
    }
}

/// The rustls configuration: protocol versions, server preference, tickets, ALPN (with
/// `acme_tls`, `acme-tls/1` last: rustls picks the first of its list the client offers, so only
/// a client offering nothing else, as the TLS-ALPN-01 validator does, gets it).
fn server_config(
    provider: Arc<CryptoProvider>,
    store: Arc<CertStore>,
    acme_tls: bool,
) -> Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("cannot configure TLS")?
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.ignore_client_order = true;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    if acme_tls {
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    config.ticketer =
        rustls::crypto::aws_lc_rs::Ticketer::new().context("cannot start TLS session tickets")?;
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// Writes the self-signed certificate (public) where browsers and curl can be pointed at it.
fn write_public(path: &Path, pem: &str) -> Result<()> {
    if let Some(folder) = path.parent() {
        crate::private::folder(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    std::fs::write(path, pem).map_err(|e| {
        anyhow!(
            "cannot write the self-signed certificate to {}: {}",
            path.display(),
            crate::log::io_reason(&e)
        )
    })
}

/// Warns (it is not an error) when the certificate is expired or not yet valid.
fn warn_if_outside_validity(pair: &Arc<CertifiedKey>, file: Option<&Path>) {
    let Some((from, until)) = certs::validity(certs::leaf(pair)) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let date = |t: i64| crate::time::rfc3339_unix(t);
    let name = file.map_or_else(|| "the certificate".to_owned(), |p| p.display().to_string());
    if now > until {
        crate::report!(
            "tws: warning: TLS certificate {name} expired on {}; clients will refuse it",
            date(until)
        );
    } else if now < from {
        crate::report!(
            "tws: warning: TLS certificate {name} is not valid before {}; clients will refuse it",
            date(from)
        );
    }
}

/// The certificate for new handshakes, swapped on reload. Also notes (in the log, at most
/// once a minute) clients asking by SNI for a name the certificate does not carry.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    /// The last SNI name found to match, so the common case costs no certificate parse.
    matched: Mutex<String>,
    last_warning: AtomicU64,
}

/// How often a mismatched SNI name may be logged, in seconds.
const SNI_WARN_EVERY: u64 = 60;

impl CertStore {
    fn new(pair: Arc<CertifiedKey>) -> CertStore {
        CertStore {
            current: RwLock::new(pair),
            matched: Mutex::new(String::new()),
            last_warning: AtomicU64::new(0),
        }
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Serves `pair` to new handshakes from now on (open connections go on with theirs).
    pub fn replace(&self, pair: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = pair;
        crate::sync::lock(&self.matched).clear();
    }

    fn check_sni(&self, pair: &CertifiedKey, sni: &str) {
        let mut matched = crate::sync::lock(&self.matched);
        if *matched == sni {
            return;
        }
        let fits = DnsName::try_from(sni).ok().is_some_and(|name| {
            pair.end_entity_cert().ok().is_some_and(|der| {
                webpki::EndEntityCert::try_from(der).is_ok_and(|cert| {
                    cert.verify_is_valid_for_subject_name(&ServerName::DnsName(name))
                        .is_ok()
                })
            })
        });
        if fits {
            sni.clone_into(&mut matched);
            return;
        }
        drop(matched);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + SNI_WARN_EVERY
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let shown: String = sni
                .chars()
                .take(100)
                .map(|c| if c.is_ascii_graphic() { c } else { '?' })
                .collect();
            crate::report!(
                "tws: TLS: a client asked for {shown:?} (SNI), which the certificate does not name; serving it anyway"
            );
        }
    }
}

impl ResolvesServerCert for CertStore {
    /// The certificate in force; to a TLS-ALPN-01 validation (ALPN `acme-tls/1` offered alone,
    /// as RFC 8737 §3 has the validator do), the challenge certificate for the SNI name, or
    /// none (the handshake fails) when that name is not being validated. rustls then
    /// negotiates `acme-tls/1` (listed last, see `server_config`), and the wire closes the
    /// connection once the handshake is done.
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if hello.alpn().is_some_and(|mut offered| {
            offered.next() == Some(ACME_TLS_ALPN) && offered.next().is_none()
        }) {
            return crate::acme::challenge::tls_alpn01(hello.server_name());
        }
        let pair = self.current();
        if let Some(sni) = hello.server_name() {
            self.check_sni(&pair, sni);
        }
        Some(pair)
    }
}
