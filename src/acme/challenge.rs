//! The challenge answers this process gives while a CA validates a domain: HTTP-01 key
//! authorizations (RFC 8555 §8.3), answered at `/.well-known/acme-challenge/{token}` ahead of
//! every route on every listener, and TLS-ALPN-01 certificates (RFC 8737), returned by the TLS
//! layer to a ClientHello that offers only `acme-tls/1`. One process-wide registry, so neither
//! the event loops nor the TLS configuration hold any state for it: the node ordering a
//! certificate adds its own answers, and with a shared store the answers other nodes published
//! arrive through `set_shared`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use rustls::pki_types::PrivateKeyDer;
use rustls::sign::CertifiedKey;

use crate::http::response::{Body, TEXT_PLAIN};
use crate::http::{Method, Request, Response};

/// Where HTTP-01 answers live (RFC 8555 §8.3).
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";
/// The ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// A challenge type tws answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Http01,
    TlsAlpn01,
}

impl Kind {
    /// The name ACME and routes.toml give it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http01 => "http-01",
            Kind::TlsAlpn01 => "tls-alpn-01",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        match name {
            "http-01" => Some(Kind::Http01),
            "tls-alpn-01" => Some(Kind::TlsAlpn01),
            _ => None,
        }
    }
}

/// One challenge being answered: what a CA asks for, and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub kind: Kind,
    pub domain: String,
    pub token: String,
    pub key_authorization: String,
}

/// The answers of one source (this node's orders, or what the shared store holds).
#[derive(Default)]
struct Answers {
    /// Token → key authorization.
    http: HashMap<String, String>,
    /// Domain → (key authorization, challenge certificate).
    tls: HashMap<String, (String, Arc<CertifiedKey>)>,
}

impl Answers {
    fn http(&self, token: &str) -> Option<&String> {
        self.http.get(token)
    }

    fn tls(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        self.tls.get(domain).map(|(_, cert)| Arc::clone(cert))
    }
}

#[derive(Default)]
struct Registry {
    own: Answers,
    shared: Answers,
}

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(Default::default);
/// Any answer at all: requests and handshakes skip the lock while there is none (always,
/// outside the minute or so an order takes).
static ANY: AtomicBool = AtomicBool::new(false);

fn update(f: impl FnOnce(&mut Registry)) {
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    f(&mut registry);
    let any = [&registry.own, &registry.shared]
        .iter()
        .any(|a| !a.http.is_empty() || !a.tls.is_empty());
    ANY.store(any, Ordering::Release);
}

fn read<T>(f: impl FnOnce(&Registry) -> Option<T>) -> Option<T> {
    if !ANY.load(Ordering::Acquire) {
        return None;
    }
    f(&REGISTRY.read().unwrap_or_else(PoisonError::into_inner))
}

/// The answer to an HTTP-01 validation request, if `req` is one for a token being answered.
/// Anything else under the prefix goes on to the routes (a site may serve its own).
pub fn http01(req: &Request) -> Option<Response> {
    let token = req.path().strip_prefix(HTTP01_PREFIX)?;
    if !matches!(req.method, Method::Get | Method::Head) {
        return None;
    }
    let answer = read(|r| r.own.http(token).or_else(|| r.shared.http(token)).cloned())?;
    Some(
        Response::new(200, TEXT_PLAIN, Body::Bytes(answer.into_bytes()))
            .header("Cache-Control", "no-store"),
    )
}

/// The TLS-ALPN-01 certificate for `server_name`, when it is being validated.
pub fn tls_alpn01(server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
    let name = server_name?.trim_end_matches('.').to_ascii_lowercase();
    read(|r| r.own.tls(&name).or_else(|| r.shared.tls(&name)))
}

/// Starts answering a challenge of this node's order.
pub fn add_own(pending: &Pending) -> Result<(), String> {
    let cert = match pending.kind {
        Kind::TlsAlpn01 => Some(tls_alpn_certificate(
            &pending.domain,
            &pending.key_authorization,
        )?),
        Kind::Http01 => None,
    };
    update(|r| insert(&mut r.own, pending, cert));
    Ok(())
}

/// Stops answering a challenge of this node's order.
pub fn remove_own(pending: &Pending) {
    update(|r| match pending.kind {
        Kind::Http01 => {
            r.own.http.remove(&pending.token);
        }
        Kind::TlsAlpn01 => {
            r.own.tls.remove(&pending.domain);
        }
    });
}

/// Answers what the shared store holds from now on (every node's challenges), and nothing
/// else of it. Certificates already made for an unchanged answer are kept.
pub fn set_shared(list: &[Pending]) {
    let mut made: Vec<(String, String, Arc<CertifiedKey>)> = Vec::new();
    for p in list.iter().filter(|p| p.kind == Kind::TlsAlpn01) {
        let known = read(|r| {
            r.shared
                .tls
                .get(&p.domain)
                .filter(|(auth, _)| *auth == p.key_authorization)
                .map(|(_, cert)| Arc::clone(cert))
        });
        let cert = match known {
            Some(cert) => cert,
            None => match tls_alpn_certificate(&p.domain, &p.key_authorization) {
                Ok(cert) => cert,
                Err(e) => {
                    crate::report!("tws: ACME: {e}");
                    continue;
                }
            },
        };
        made.push((p.domain.clone(), p.key_authorization.clone(), cert));
    }
    update(|r| {
        r.shared = Answers::default();
        for p in list.iter().filter(|p| p.kind == Kind::Http01) {
            r.shared
                .http
                .insert(p.token.clone(), p.key_authorization.clone());
        }
        for (domain, auth, cert) in made {
            r.shared.tls.insert(domain, (auth, cert));
        }
    });
}

fn insert(answers: &mut Answers, pending: &Pending, cert: Option<Arc<CertifiedKey>>) {
    match cert {
        None => {
            answers
                .http
                .insert(pending.token.clone(), pending.key_authorization.clone());
        }
        Some(cert) => {
            answers.tls.insert(
                pending.domain.clone(),
                (pending.key_authorization.clone(), cert),
            );
        }
    }
}

/// The self-signed certificate TLS-ALPN-01 asks for (RFC 8737 §3): the domain as its only
/// name, and the critical acmeIdentifier extension holding the SHA-256 of the key
/// authorization.
pub fn tls_alpn_certificate(
    domain: &str,
    key_authorization: &str,
) -> Result<Arc<CertifiedKey>, String> {
    let fail = |e: &dyn std::fmt::Display| {
        format!("cannot make the TLS-ALPN-01 certificate for {domain}: {e}")
    };
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| fail(&e))?;
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(|e| fail(&e))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
    let cert = params.self_signed(&key).map_err(|e| fail(&e))?;
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| fail(&e))?;
    // Not `CertifiedKey::from_der`: its consistency check parses the certificate with
    // webpki, which refuses the critical acmeIdentifier extension it does not know.
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signer = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| fail(&e))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(line: &str) -> Request {
        crate::http::request::parsed(&format!("{line}\r\nHost: a.test\r\n\r\n"))
    }

    fn pending(kind: Kind, domain: &str, token: &str) -> Pending {
        Pending {
            kind,
            domain: domain.to_owned(),
            token: token.to_owned(),
            key_authorization: format!("{token}.thumb"),
        }
    }

    // The registry is process-wide: one test walks through it, so tests running in parallel
    // never see each other's answers.
    #[test]
    fn answers_what_is_pending_and_nothing_else() {
        let own = pending(Kind::Http01, "a.test", "own-token");
        let shared = pending(Kind::Http01, "a.test", "shared-token");
        let alpn = pending(Kind::TlsAlpn01, "b.test", "alpn-token");
        let body = |r: Response| match r.body {
            Body::Bytes(b) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(
            http01(&request(
                "GET /.well-known/acme-challenge/own-token HTTP/1.1"
            ))
            .is_none()
        );
        add_own(&own).unwrap();
        add_own(&alpn).unwrap();
        set_shared(std::slice::from_ref(&shared));
        let table = [
            (
                "GET /.well-known/acme-challenge/own-token HTTP/1.1",
                Some("own-token.thumb"),
            ),
            (
                "HEAD /.well-known/acme-challenge/own-token HTTP/1.1",
                Some("own-token.thumb"),
            ),
            (
                "GET /.well-known/acme-challenge/shared-token HTTP/1.1",
                Some("shared-token.thumb"),
            ),
            ("GET /.well-known/acme-challenge/other HTTP/1.1", None),
            ("GET /.well-known/acme-challenge/own-token/x HTTP/1.1", None),
            ("POST /.well-known/acme-challenge/own-token HTTP/1.1", None),
            ("GET /own-token HTTP/1.1", None),
        ];
        for (line, want) in table {
            let got = http01(&request(line));
            match want {
                Some(text) => {
                    let response = got.unwrap_or_else(|| panic!("{line}: no answer"));
                    assert_eq!(response.status, 200, "{line}");
                    assert_eq!(body(response), text, "{line}");
                }
                None => assert!(got.is_none(), "{line}"),
            }
        }
        // TLS-ALPN-01: the certificate for the name validated, by SNI (case and a final dot
        // do not matter), with the acmeIdentifier extension.
        let cert = tls_alpn01(Some("B.test.")).expect("challenge certificate");
        let der = cert.end_entity_cert().unwrap().to_vec();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"alpn-token.thumb");
        assert!(der.windows(32).any(|w| w == digest.as_ref()));
        assert!(tls_alpn01(Some("a.test")).is_none());
        assert!(tls_alpn01(None).is_none());
        // The shared set is replaced whole; this node's own answers stay until removed.
        set_shared(&[]);
        assert!(
            http01(&request(
                "GET /.well-known/acme-challenge/shared-token HTTP/1.1"
            ))
            .is_none()
        );
        assert!(
            http01(&request(
                "GET /.well-known/acme-challenge/own-token HTTP/1.1"
            ))
            .is_some()
        );
        remove_own(&own);
        remove_own(&alpn);
        assert!(
            http01(&request(
                "GET /.well-known/acme-challenge/own-token HTTP/1.1"
            ))
            .is_none()
        );
        assert!(tls_alpn01(Some("b.test")).is_none());
        assert!(!ANY.load(Ordering::Acquire));
    }

    #[test]
    fn challenge_types_have_their_acme_names() {
        for kind in [Kind::Http01, Kind::TlsAlpn01] {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("dns-01"), None);
    }
}
