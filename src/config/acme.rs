//! `[server.tls.acme]` (and `--domain`, `--acme-email`): certificates obtained and renewed by
//! tws over ACME. Checked at load: domain names, the contact address, the directory URL, the
//! private CA's root file, the external account binding, the challenge types and the waits;
//! each error names the file, the line and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::{Locator, Overrides};
use crate::acme::challenge::Kind;
use crate::rules::hosts::HostPattern;

/// Let's Encrypt, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging CA (untrusted certificates, generous limits), for `staging = true`.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// The first retry after a failure comes about this long after it.
pub const DEFAULT_FIRST_RETRY: Duration = Duration::from_secs(20);
/// Most names on one certificate (Let's Encrypt's limit).
const MAX_DOMAINS: usize = 100;

/// How tws obtains its certificate over ACME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The names the certificate carries (the first names it in storage); filled from the
    /// routes' hosts when the table gives none.
    pub domains: Vec<String>,
    pub email: Option<String>,
    /// The CA's directory URL.
    pub directory: String,
    /// PEM certificates trusted, alone, for the CA's HTTPS (a private CA).
    pub ca_root: Option<PathBuf>,
    pub eab: Option<Eab>,
    /// Challenge types answered, most preferred first.
    pub challenges: Vec<Kind>,
    /// Renew when this little of the certificate's life is left (at the latest).
    pub renew_before: Option<Duration>,
    /// The wait before the first retry after a failure (doubling from there).
    pub first_retry: Duration,
}

/// External account binding: the key id and MAC key a CA hands out. The key is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Eab {
    pub kid: String,
    pub hmac_key: String,
}

impl std::fmt::Debug for Eab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eab")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AcmeSettings {
    /// True when the plain-HTTP listener is needed (HTTP-01 is answered).
    pub fn http01(&self) -> bool {
        self.challenges.contains(&Kind::Http01)
    }

    pub fn tls_alpn01(&self) -> bool {
        self.challenges.contains(&Kind::TlsAlpn01)
    }
}

/// `[server.tls.acme]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAcme {
    domains: Option<Spanned<Vec<String>>>,
    email: Option<Spanned<String>>,
    directory: Option<Spanned<String>>,
    staging: Option<Spanned<bool>>,
    ca_root: Option<Spanned<PathBuf>>,
    eab_kid: Option<Spanned<String>>,
    eab_hmac_key: Option<Spanned<String>>,
    challenges: Option<Spanned<Vec<String>>>,
    renew_before: Option<Spanned<toml::Value>>,
    first_retry: Option<Spanned<toml::Value>>,
}

/// The ACME settings from the table (`span`: where it is) and the flags over it, or `None`
/// when neither asks for ACME.
pub(super) fn acme_settings(
    raw: Option<Spanned<RawAcme>>,
    base: &Path,
    cli: &Overrides,
    at: &Locator<'_>,
) -> Result<Option<AcmeSettings>> {
    if raw.is_none() && cli.domains.is_empty() && cli.acme_email.is_none() {
        return Ok(None);
    }
    let table = raw.as_ref().map_or(0..0, |r| r.span());
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    let fail = |span: Range<usize>, why: String| {
        if at.text.is_empty() {
            anyhow::anyhow!("{why}")
        } else {
            at.key_error(span, format!("[server.tls.acme] {why}"))
        }
    };
    let domains = if cli.domains.is_empty() {
        let span = raw.domains.as_ref().map_or(table.clone(), |d| d.span());
        let list = raw.domains.map(Spanned::into_inner).unwrap_or_default();
        domain_list(&list).map_err(|why| fail(span, format!("domains: {why}")))?
    } else {
        domain_list(&cli.domains).map_err(|why| anyhow::anyhow!("--domain: {why}"))?
    };
    if domains.is_empty() && at.text.is_empty() {
        anyhow::bail!("--acme-email needs --domain NAME: the names the certificate is for");
    }
    let email = match (&cli.acme_email, raw.email) {
        (Some(email), _) => {
            Some(check_email(email).map_err(|why| anyhow::anyhow!("--acme-email: {why}"))?)
        }
        (None, Some(email)) => Some(
            check_email(email.get_ref())
                .map_err(|why| fail(email.span(), format!("email: {why}")))?,
        ),
        (None, None) => None,
    };
    let directory = match (raw.directory, raw.staging) {
        (Some(_), Some(staging)) if *staging.get_ref() => {
            return Err(fail(
                staging.span(),
                "staging = true and directory name two CAs: choose one".to_owned(),
            ));
        }
        (Some(url), _) => {
            let text = url.get_ref().trim();
            if !text.starts_with("https://") || text.len() <= "https://".len() {
                return Err(fail(
                    url.span(),
                    format!("directory must be an https:// URL (RFC 8555), not {text:?}"),
                ));
            }
            text.to_owned()
        }
        (None, Some(staging)) if *staging.get_ref() => LETS_ENCRYPT_STAGING.to_owned(),
        (None, _) => LETS_ENCRYPT.to_owned(),
    };
    let ca_root = match raw.ca_root {
        None => None,
        Some(path) => {
            let span = path.span();
            let full = base.join(path.into_inner());
            read_roots(&full).map_err(|why| fail(span, format!("ca_root: {why}")))?;
            Some(full)
        }
    };
    let eab = match (raw.eab_kid, raw.eab_hmac_key) {
        (None, None) => None,
        (Some(kid), Some(key)) => {
            let text = key.get_ref().trim().trim_end_matches('=');
            use base64::Engine;
            if text.is_empty()
                || base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text)
                    .is_err()
            {
                return Err(fail(
                    key.span(),
                    "eab_hmac_key must be the base64url key the CA gave".to_owned(),
                ));
            }
            Some(Eab {
                kid: kid.into_inner(),
                hmac_key: text.to_owned(),
            })
        }
        (Some(kid), None) => {
            return Err(fail(kid.span(), "eab_kid needs eab_hmac_key".to_owned()));
        }
        (None, Some(key)) => {
            return Err(fail(key.span(), "eab_hmac_key needs eab_kid".to_owned()));
        }
    };
    let challenges = match raw.challenges {
        None => vec![Kind::Http01, Kind::TlsAlpn01],
        Some(list) => {
            let span = list.span();
            challenge_list(list.get_ref())
                .map_err(|why| fail(span, format!("challenges: {why}")))?
        }
    };
    let wait = |value: Option<Spanned<toml::Value>>, key: &str| -> Result<Option<Duration>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let span = value.span();
        duration(value.get_ref())
            .map(Some)
            .map_err(|why| fail(span, format!("{key}: {why}")))
    };
    let renew_before = wait(raw.renew_before, "renew_before")?;
    let first_retry = wait(raw.first_retry, "first_retry")?.unwrap_or(DEFAULT_FIRST_RETRY);
    Ok(Some(AcmeSettings {
        domains,
        email,
        directory,
        ca_root,
        eab,
        challenges,
        renew_before,
        first_retry,
    }))
}

/// Fills empty `domains` from the routes' hosts (exact names only: a wildcard needs DNS-01).
pub(super) fn domains_from_hosts<'h>(
    settings: &mut AcmeSettings,
    hosts: impl Iterator<Item = &'h HostPattern>,
    at: &Locator<'_>,
) -> Result<()> {
    if !settings.domains.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = Vec::new();
    for host in hosts {
        if let HostPattern::Exact(name) = host
            && !names.contains(name)
            && check_domain(name).is_ok()
        {
            names.push(name.clone());
        }
    }
    // The table's own line (its span is not kept past `acme_settings`).
    let table = at.text.find("[server.tls.acme]").unwrap_or(0);
    if names.is_empty() {
        return Err(at.key_error(
            table..table,
            "[server.tls.acme] needs domains (domains = [\"example.com\"], or --domain), or routes with host = \"example.com\" to take them from".to_owned(),
        ));
    }
    settings.domains = domain_list(&names).map_err(|why| {
        at.key_error(
            table..table,
            format!("[server.tls.acme] domains from the routes' hosts: {why}"),
        )
    })?;
    Ok(())
}

/// Checked, lower-cased, without repeats.
fn domain_list(names: &[String]) -> Result<Vec<String>, String> {
    let mut list: Vec<String> = Vec::new();
    for name in names {
        let name = check_domain(name)?;
        if !list.contains(&name) {
            list.push(name);
        }
    }
    if list.len() > MAX_DOMAINS {
        return Err(format!("at most {MAX_DOMAINS} names on one certificate"));
    }
    Ok(list)
}

/// A DNS name a public CA can validate: letters, digits and dashes in labels of at most 63,
/// at least two labels, 253 characters in all.
fn check_domain(name: &str) -> Result<String, String> {
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if lower.starts_with("*.") {
        return Err(format!(
            "{name:?} is a wildcard, which only the DNS-01 challenge can validate; tws answers HTTP-01 and TLS-ALPN-01"
        ));
    }
    if lower.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("{name:?} is an address, not a domain name"));
    }
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if lower.len() > 253 || !lower.contains('.') || !lower.split('.').all(label) {
        return Err(format!(
            "{name:?} is not a domain name such as \"example.com\""
        ));
    }
    Ok(lower)
}

fn check_email(email: &str) -> Result<String, String> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !host.contains('@')
        })
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c.is_control());
    if valid {
        Ok(email.to_owned())
    } else {
        Err(format!(
            "{email:?} is not an address such as \"me@example.com\""
        ))
    }
}

fn challenge_list(names: &[String]) -> Result<Vec<Kind>, String> {
    let mut list = Vec::new();
    for name in names {
        let kind = Kind::from_name(name).ok_or_else(|| {
            format!("unknown challenge {name:?} (tws answers \"http-01\" and \"tls-alpn-01\")")
        })?;
        if list.contains(&kind) {
            return Err(format!("{name:?} is listed twice"));
        }
        list.push(kind);
    }
    if list.is_empty() {
        return Err(
            "the list is empty: name at least one of \"http-01\", \"tls-alpn-01\"".to_owned(),
        );
    }
    Ok(list)
}

/// A wait: a number of seconds, or a string such as "30d", "12h", "5m", "90s".
pub(super) fn duration(value: &toml::Value) -> Result<Duration, String> {
    let seconds = match value {
        toml::Value::Integer(n) => *n as f64,
        toml::Value::Float(f) => *f,
        toml::Value::String(text) => {
            let text = text.trim();
            let (number, unit) = text.split_at(
                text.find(|c: char| c.is_ascii_alphabetic())
                    .unwrap_or(text.len()),
            );
            let factor = match unit {
                "" | "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                "d" => 86_400.0,
                _ => {
                    return Err(format!(
                        "{text:?}: use seconds, or a number with s, m, h or d"
                    ));
                }
            };
            number
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{text:?}: use seconds, or a number with s, m, h or d"))?
                * factor
        }
        _ => return Err("use seconds, or a string such as \"30d\"".to_owned()),
    };
    if !(seconds > 0.0 && seconds <= 366.0 * 86_400.0) {
        return Err("must be more than 0 and at most a year".to_owned());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The certificates (DER) of a PEM file; at least one.
pub fn read_roots(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read {}: {}",
            path.display(),
            crate::log::io_reason(&e)
        )
    })?;
    let roots = CertificateDer::pem_slice_iter(&text)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: malformed PEM: {e}", path.display()))?;
    if roots.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE block in the file",
            path.display()
        ));
    }
    Ok(roots)
}

#[cfg(test)]
#[path = "acme_tests.rs"]
mod tests;
