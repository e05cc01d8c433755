//! TLS for the test harness: a certificate made at test time (never a committed key), a
//! rustls client trusting it, and a stream that is plain or TLS behind one type.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tws::tls::certs::pem_encode;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};

/// A certificate and key written as PEM files for one test, and the certificate's DER.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

/// Makes an ECDSA P-256 certificate for `localhost` and 127.0.0.1 (and `names`) in `dir`,
/// as `name.pem` and `name.key`.
pub fn test_cert(dir: &Path, name: &str, extra: &[&str]) -> TestCert {
    let now = time::OffsetDateTime::now_utc();
    let valid = (
        now - time::Duration::hours(1),
        now + time::Duration::days(30),
    );
    test_cert_valid(dir, name, extra, valid)
}

/// Like `test_cert`, valid from `valid.0` until `valid.1`.
pub fn test_cert_valid(
    dir: &Path,
    name: &str,
    extra: &[&str],
    valid: (time::OffsetDateTime, time::OffsetDateTime),
) -> TestCert {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    names.extend(extra.iter().map(|n| (*n).to_owned()));
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    (params.not_before, params.not_after) = valid;
    let cert = params.self_signed(&key).unwrap();
    let paths = TestCert {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
        der: cert.der().clone(),
    };
    std::fs::write(&paths.cert, pem_encode("CERTIFICATE", cert.der())).unwrap();
    std::fs::write(&paths.key, pem_encode("PRIVATE KEY", &key.serialize_der())).unwrap();
    paths
}

/// A client that trusts `roots` only (the chain is verified), offering `versions` and ALPN
/// `alpn`.
pub fn client(
    roots: &[&CertificateDer<'static>],
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A connection to the server under test, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// Opens TLS over `tcp` with `config`, for `localhost`, and completes the handshake.
    pub fn tls(tcp: TcpStream, config: Arc<ClientConfig>) -> io::Result<Stream> {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Stream::Tls(Box::new(stream)))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// The TLS session, on a TLS stream.
    pub fn session(&self) -> Option<&ClientConnection> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => Some(&s.conn),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
