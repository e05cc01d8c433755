//! A certificate obtained over ACME as tws keeps it: the PEM chain, its private key, the CA
//! directory it came from and the domains it was ordered for; with what the manager asks of
//! it (a rustls pair to serve, its validity, whether it still fits the configuration, its
//! RFC 9773 identifier) and the key and CSR of a new order.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::jws::b64;
use crate::tls::certs;

/// A certificate and its key, and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The chain, leaf first, PEM.
    pub chain: String,
    /// The private key, PKCS#8 PEM.
    pub key: String,
    /// The directory URL of the CA that issued it.
    pub directory: String,
    pub domains: Vec<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("directory", &self.directory)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// The pair to serve; an error names what is wrong.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, String> {
        let chain = CertificateDer::pem_slice_iter(self.chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the stored chain is not PEM: {e}"))?;
        if chain.is_empty() {
            return Err("the stored chain holds no certificate".to_owned());
        }
        let key = PrivateKeyDer::from_pem_slice(self.key.as_bytes())
            .map_err(|e| format!("the stored key is not PEM: {e}"))?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        CertifiedKey::from_der(chain, key, &provider)
            .map(Arc::new)
            .map_err(|e| format!("the stored certificate and key do not go together: {e}"))
    }

    /// The leaf's DER.
    fn leaf(&self) -> Option<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(self.chain.as_bytes())
            .next()?
            .ok()
    }

    /// notBefore and notAfter of the leaf, seconds since 1970.
    pub fn validity(&self) -> Option<(i64, i64)> {
        certs::validity(self.leaf()?.as_ref())
    }

    /// True when it was issued by `directory` for exactly `domains` (in any order).
    pub fn fits(&self, directory: &str, domains: &[String]) -> bool {
        let mut have = self.domains.clone();
        let mut want = domains.to_vec();
        have.sort();
        want.sort();
        self.directory == directory && have == want
    }

    /// The certificate's identifier for renewal information (RFC 9773 §4.1): the
    /// base64url key identifier of its Authority Key Identifier, a dot, and the base64url
    /// bytes of its serial number.
    pub fn renewal_id(&self) -> Option<String> {
        renewal_id(self.leaf()?.as_ref())
    }
}

/// RFC 9773 §4.1 for a DER certificate: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
/// [0] version, serialNumber INTEGER, signature, issuer, validity, subject,
/// subjectPublicKeyInfo, [1], [2], [3] extensions SEQUENCE OF Extension } }; the AKI
/// extension (2.5.29.35) holds SEQUENCE { [0] keyIdentifier }.
pub fn renewal_id(der: &[u8]) -> Option<String> {
    const AKI: &[u8] = &[0x55, 0x1d, 0x23];
    let (_, cert, _) = certs::element(der)?;
    let (_, tbs, _) = certs::element(cert)?;
    let mut rest = tbs;
    let (tag, _, after) = certs::element(rest)?;
    if tag == 0xA0 {
        rest = after;
    }
    let (tag, serial, mut rest) = certs::element(rest)?;
    if tag != 0x02 {
        return None;
    }
    // signature, issuer, validity, subject, subjectPublicKeyInfo
    for _ in 0..5 {
        rest = certs::element(rest)?.2;
    }
    while !rest.is_empty() {
        let (tag, contents, after) = certs::element(rest)?;
        rest = after;
        if tag != 0xA3 {
            continue;
        }
        let (_, mut list, _) = certs::element(contents)?;
        while !list.is_empty() {
            let (_, extension, next) = certs::element(list)?;
            list = next;
            let (_, oid, mut fields) = certs::element(extension)?;
            if oid != AKI {
                continue;
            }
            let (mut tag, mut value, after) = certs::element(fields)?;
            if tag == 0x01 {
                // critical BOOLEAN
                fields = after;
                (tag, value, _) = certs::element(fields)?;
            }
            if tag != 0x04 {
                return None;
            }
            let (_, aki, _) = certs::element(value)?;
            let (tag, key_id, _) = certs::element(aki)?;
            return (tag == 0x80).then(|| format!("{}.{}", b64(key_id), b64(serial)));
        }
    }
    None
}

/// A new key (ECDSA P-256) and the CSR naming `domains`: the CSR's DER, and the key's PEM.
pub fn csr(domains: &[String]) -> Result<(Vec<u8>, String), String> {
    let fail = |e: rcgen::Error| format!("cannot make the certificate request: {e}");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(domains.to_vec()).map_err(fail)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let request = params.serialize_request(&key).map_err(fail)?;
    let pem = certs::pem_encode("PRIVATE KEY", &key.serialize_der());
    Ok((request.der().to_vec(), pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate for `domains` signed by a throwaway CA, as a CA would issue it.
    fn issued(domains: &[&str]) -> (Issued, rcgen::Certificate) {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![0xAB; 20]);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let names: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
        let (_, key_pem) = csr(&names).unwrap();
        let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let key = rcgen::KeyPair::try_from(&der).unwrap();
        let mut params = rcgen::CertificateParams::new(names.clone()).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x02, 0x03]));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer).unwrap();
        let chain = certs::pem_encode("CERTIFICATE", cert.der())
            + &certs::pem_encode("CERTIFICATE", ca_cert.der());
        let issued = Issued {
            chain,
            key: key_pem,
            directory: "https://ca.test/dir".to_owned(),
            domains: names,
        };
        (issued, cert)
    }

    #[test]
    fn an_issued_certificate_serves_and_names_itself() {
        let (issued, _) = issued(&["a.test", "www.a.test"]);
        let pair = issued.certified_key().unwrap();
        assert_eq!(pair.cert.len(), 2);
        let (from, until) = issued.validity().unwrap();
        assert!(until > from);
        // The identifier RFC 9773 asks for: AKI key id and serial, base64url.
        assert_eq!(
            issued.renewal_id().unwrap(),
            format!("{}.AQID", b64(&[0xAB; 20]))
        );
        let table: [(&str, &[&str], bool); 5] = [
            ("https://ca.test/dir", &["a.test", "www.a.test"], true),
            ("https://ca.test/dir", &["www.a.test", "a.test"], true),
            ("https://ca.test/dir", &["a.test"], false),
            (
                "https://ca.test/dir",
                &["a.test", "www.a.test", "b.test"],
                false,
            ),
            ("https://staging.test/dir", &["a.test", "www.a.test"], false),
        ];
        for (directory, domains, fits) in table {
            let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
            assert_eq!(
                issued.fits(directory, &domains),
                fits,
                "{directory} {domains:?}"
            );
        }
        // Debug never shows the key.
        assert!(!format!("{issued:?}").contains("PRIVATE"));
    }

    #[test]
    fn broken_storage_is_named() {
        let (good, _) = issued(&["a.test"]);
        let (other, _) = issued(&["a.test"]);
        let table = [
            Issued {
                chain: String::new(),
                ..good.clone()
            },
            Issued {
                key: "junk".into(),
                ..good.clone()
            },
            Issued {
                key: other.key.clone(),
                ..good.clone()
            },
        ];
        for broken in table {
            assert!(broken.certified_key().is_err());
        }
        assert_eq!(renewal_id(b"\x30\x00"), None);
        assert_eq!(renewal_id(b""), None);
    }
}
