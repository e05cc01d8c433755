//! Certificates: a PEM chain and key loaded and checked (one clear line per problem), a
//! self-signed certificate made at startup for local development, the validity dates read
//! from a certificate, and its SHA-256 fingerprint.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Loads a certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 RSA or SEC1
/// EC) and checks that the key belongs to the leaf.
pub fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let chain = read_chain(cert)?;
    let key_der = read_key(key)?;
    let pair = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => anyhow!(
            "TLS key {} does not match the certificate {}",
            key.display(),
            cert.display()
        ),
        other => anyhow!(
            "TLS key {}: unsupported or malformed key: {other}",
            key.display()
        ),
    })?;
    Ok(pair)
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let text = std::fs::read(path).map_err(|e| {
        anyhow!(
            "cannot read TLS certificate {}: {}",
            path.display(),
            crate::log::io_reason(&e)
        )
    })?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| anyhow!("TLS certificate {}: malformed PEM: {e}", path.display()))?;
    if chain.is_empty() {
        bail!(
            "TLS certificate {}: no CERTIFICATE block in the file",
            path.display()
        );
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let text = std::fs::read(path).map_err(|e| {
        anyhow!(
            "cannot read TLS key {}: {}",
            path.display(),
            crate::log::io_reason(&e)
        )
    })?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => anyhow!(
            "TLS key {}: no private key in the file (PKCS#8, PKCS#1 RSA or SEC1 EC PEM expected)",
            path.display()
        ),
        other => anyhow!("TLS key {}: malformed PEM: {other}", path.display()),
    })
}

/// A certificate made at startup for `localhost`, `127.0.0.1`, `::1` and `host` (an ECDSA
/// P-256 key valid for a year), with its PEM text. The key never leaves memory.
pub fn self_signed(host: &str, provider: &CryptoProvider) -> Result<(CertifiedKey, String)> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let unspecified = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    if !host.is_empty() && !unspecified && !names.iter().any(|n| n == host) {
        names.push(host.to_owned());
    }
    self_signed_for(names, "tws self-signed", provider)
}

/// A self-signed certificate for `names` (an ECDSA P-256 key valid for a year), with its PEM
/// text. The key never leaves memory.
pub fn self_signed_for(
    names: Vec<String>,
    common_name: &str,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, String)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| anyhow!("cannot generate a TLS key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(names)
        .map_err(|e| anyhow!("cannot make a self-signed certificate: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
    let cert = params
        .self_signed(&key)
        .map_err(|e| anyhow!("cannot make a self-signed certificate: {e}"))?;
    let pem = pem_encode("CERTIFICATE", cert.der());
    let key_der = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow!("cannot use the generated key: {e}"))?;
    let pair = CertifiedKey::from_der(vec![cert.der().clone()], key_der, provider)
        .map_err(|e| anyhow!("cannot use the generated key: {e}"))?;
    Ok((pair, pem))
}

/// PEM text (RFC 7468) of one DER object: base64 in lines of 64 between the labels.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// `AB:CD:...`: the SHA-256 fingerprint of a certificate, as browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The leaf certificate of a pair.
pub fn leaf(pair: &Arc<CertifiedKey>) -> &[u8] {
    pair.cert.first().map_or(&[], |c| c.as_ref())
}

/// A certificate's validity period (notBefore, notAfter) as seconds since 1970, read from
/// its DER: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... } }.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert, _) = element(der)?;
    let (_, tbs, _) = element(cert)?;
    let mut rest = tbs;
    // The optional explicit version [0].
    let (tag, _, after) = element(rest)?;
    if tag == 0xA0 {
        rest = after;
    }
    for _ in 0..3 {
        // serialNumber, signature, issuer
        rest = element(rest)?.2;
    }
    let (tag, validity, _) = element(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (t1, not_before, more) = element(validity)?;
    let (t2, not_after, _) = element(more)?;
    Some((asn1_time(t1, not_before)?, asn1_time(t2, not_after)?))
}

/// One DER element: (tag, contents, what follows).
pub fn element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// UTCTime (`YYMMDDhhmmssZ`) or GeneralizedTime (`YYYYMMDDhhmmssZ`) to seconds since 1970.
fn asn1_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if text.len() == 12 => {
            let yy: i64 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        0x18 if text.len() == 14 => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pem_text_reads_back_as_the_same_der() {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let der: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        let pem = super::pem_encode("CERTIFICATE", &der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(back.as_ref(), &der[..]);
    }

    use super::*;

    #[test]
    fn reads_validity_and_fingerprint_of_a_generated_certificate() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let (pair, pem) = self_signed("example.test", &provider).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let pair = Arc::new(pair);
        let (from, until) = validity(leaf(&pair)).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(from <= now && now - from < 2 * 3600, "{from} {now}");
        assert!((until - now - 365 * 86_400).abs() < 120, "{until} {now}");
        let print = fingerprint(leaf(&pair));
        assert_eq!(print.len(), 32 * 3 - 1);
        assert!(print.chars().all(|c| c.is_ascii_hexdigit() || c == ':'));
    }

    #[test]
    fn asn1_times_convert_to_unix_seconds() {
        assert_eq!(asn1_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(asn1_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(asn1_time(0x18, b"20261126123000Z"), Some(1_795_696_200));
        assert_eq!(asn1_time(0x17, b"7001010000Z"), None);
        assert_eq!(validity(b"\x30\x03\x02\x01\x01"), None);
    }
}
