//! `[server.tls]` with the command line over it: where the certificate comes from (files, made
//! at startup, or obtained over ACME from `[server.tls.acme]`) and the plain listener that
//! redirects to HTTPS.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::acme::{AcmeSettings, RawAcme, acme_settings};
use super::{Locator, Overrides};

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSettings {
    /// A PEM certificate chain and private key.
    Files { cert: PathBuf, key: PathBuf },
    /// Made at startup, for local development.
    SelfSigned,
    /// Obtained and renewed by tws over ACME.
    Acme(AcmeSettings),
}

impl TlsSettings {
    /// The ACME settings, when the certificate comes from a CA over ACME.
    pub fn acme(&self) -> Option<&AcmeSettings> {
        match self {
            TlsSettings::Acme(acme) => Some(acme),
            _ => None,
        }
    }
}

/// `[server.tls]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<bool>,
    redirect_http: Option<u16>,
    acme: Option<Spanned<RawAcme>>,
}

/// `[server.tls]` with the command line over it: a certificate and key (both), a self-signed
/// certificate, or ACME; a redirect port only with TLS (by default port 80 with ACME's
/// HTTP-01, which is answered there).
pub(super) fn tls_settings(
    raw: Option<Spanned<RawTls>>,
    base: &Path,
    cli: &Overrides,
    at: &Locator<'_>,
) -> Result<(Option<TlsSettings>, Option<u16>)> {
    let span = raw.as_ref().map_or(0..0, |r| r.span());
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    // In folder mode every setting came from a flag: the message names the flags alone.
    let fail = |why: &str, flags: &str| {
        if at.text.is_empty() {
            anyhow::anyhow!("{flags}")
        } else {
            at.key_error(span.clone(), format!("[server.tls] {why}"))
        }
    };
    let cert = cli.tls_cert.clone().or(raw.cert.map(|p| base.join(p)));
    let key = cli.tls_key.clone().or(raw.key.map(|p| base.join(p)));
    let self_signed = cli.tls_self_signed || raw.self_signed.unwrap_or(false);
    let acme = acme_settings(raw.acme, base, cli, at)?;
    let tls = match (cert, key, self_signed) {
        _ if acme.is_some()
            && (cli.tls_cert.is_some() || cli.tls_key.is_some() || cli.tls_self_signed) =>
        {
            return Err(anyhow::anyhow!(
                "--domain and --acme-email (ACME) cannot go with --tls-cert, --tls-key or --tls-self-signed: choose one"
            ));
        }
        (None, None, false) => acme.map(TlsSettings::Acme),
        _ if acme.is_some() => {
            return Err(fail(
                "acme cannot be combined with cert, key or self_signed: choose one",
                "--domain cannot go with a certificate: choose one",
            ));
        }
        (None, None, true) => Some(TlsSettings::SelfSigned),
        (Some(_), _, true) | (_, Some(_), true) => {
            return Err(fail(
                "self_signed cannot be combined with cert and key: choose one",
                "--tls-self-signed cannot go with --tls-cert or --tls-key: choose one",
            ));
        }
        (Some(cert), Some(key), false) => Some(TlsSettings::Files { cert, key }),
        (Some(_), None, false) => {
            return Err(fail(
                "cert needs a key (key = \"...\", or --tls-key)",
                "--tls-cert needs --tls-key (the certificate's private key)",
            ));
        }
        (None, Some(_), false) => {
            return Err(fail(
                "key needs a cert (cert = \"...\", or --tls-cert)",
                "--tls-key needs --tls-cert (the certificate chain)",
            ));
        }
    };
    let acme_http = tls
        .as_ref()
        .and_then(TlsSettings::acme)
        .is_some_and(AcmeSettings::http01);
    let redirect_http = cli
        .redirect_http
        .or(raw.redirect_http)
        .or(acme_http.then_some(80));
    if redirect_http.is_some() && tls.is_none() {
        return Err(fail(
            "redirect_http needs TLS: give cert and key, or self_signed = true",
            "--redirect-http needs HTTPS: add --tls-cert and --tls-key, or --tls-self-signed",
        ));
    }
    Ok((tls, redirect_http))
}
