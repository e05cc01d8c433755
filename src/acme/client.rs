//! The ACME protocol (RFC 8555) over synchronous HTTPS: the directory, nonces (a `badNonce`
//! answer is retried with the fresh nonce it carries), requests signed by the account key,
//! the steps of an order, and the renewal window of RFC 9773; the objects it reads are in
//! `protocol`.
//! HTTPS is ureq on rustls with the aws-lc-rs provider tws already uses, so no async runtime
//! is needed: everything runs on the manager's thread, never on an event loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use super::jws::AccountKey;
use super::protocol::{Directory, Error, Order, ProblemDoc, Result};

/// A request to the CA may take this long, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `badNonce` answers retried in a row before giving up.
const NONCE_RETRIES: usize = 10;
/// Most bytes read of any answer (certificate chains are a few KiB).
const MAX_ANSWER: u64 = 1 << 20;

/// An answer of the CA: status, the headers ACME uses, the body.
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json<T: for<'de> Deserialize<'de>>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Protocol(format!("{what} is not what RFC 8555 describes: {e}")))
    }
}

/// A connection to one CA, with the account key requests are signed with.
pub struct Client {
    agent: ureq::Agent,
    pub directory: Directory,
    nonce: Option<String>,
    pub key: AccountKey,
    /// The account URL, once known.
    pub kid: Option<String>,
}

/// The HTTPS agent: `roots` alone are trusted when given (a private CA), else Mozilla's.
pub fn agent(roots: Option<&[Vec<u8>]>) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder().unversioned_rustls_crypto_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ));
    if let Some(roots) = roots {
        let certs: Vec<Certificate<'static>> = roots
            .iter()
            .map(|der| Certificate::from_der(der).to_owned())
            .collect();
        tls = tls.root_certs(RootCerts::Specific(Arc::new(certs)));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .https_only(true)
        .max_redirects(0)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .user_agent(concat!("tws/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// Reads an answer's status, headers and body (bounded).
fn reply(
    result: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Reply> {
    let mut response = result.map_err(|e| Error::Unreachable(e.to_string()))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let location = header("location");
    let retry_after = header("retry-after").and_then(|v| retry_after(&v));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .map_err(|e| Error::Unreachable(format!("reading the answer: {e}")))?;
    Ok(Reply {
        status,
        location,
        retry_after,
        body,
    })
}

/// A Retry-After value: seconds, or an HTTP date (RFC 9110 §10.2.3); at most a day.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(Duration::from_secs(86_400)))
}

impl Client {
    /// Reads the directory at `url`; requests will be signed with `key`.
    pub fn connect(agent: ureq::Agent, url: &str, key: AccountKey) -> Result<Client> {
        let directory = directory(&agent, url)?;
        Ok(Client {
            agent,
            directory,
            nonce: None,
            key,
            kid: None,
        })
    }

    /// A fresh nonce: the last one the CA gave, else one from newNonce.
    fn nonce(&mut self) -> Result<String> {
        if let Some(nonce) = self.nonce.take() {
            return Ok(nonce);
        }
        let response = self
            .agent
            .head(&self.directory.new_nonce)
            .call()
            .map_err(|e| Error::Unreachable(e.to_string()))?;
        response
            .headers()
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Error::Protocol("newNonce gave no Replay-Nonce".to_owned()))
    }

    /// A signed POST (`payload` none: POST-as-GET), retried on `badNonce`; a problem document
    /// becomes `Error::Problem`. Signed with the JWK when there is no account URL yet.
    pub fn post(&mut self, url: &str, payload: Option<&Value>) -> Result<Reply> {
        for _ in 0..NONCE_RETRIES {
            let nonce = self.nonce()?;
            let body = self
                .key
                .sign(url, &nonce, self.kid.as_deref(), payload)
                .map_err(Error::Local)?;
            let result = self
                .agent
                .post(url)
                .header("Content-Type", "application/jose+json")
                .send(body.to_string().as_bytes());
            let mut fresh = None;
            if let Ok(response) = &result {
                fresh = response
                    .headers()
                    .get("replay-nonce")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
            }
            let answer = reply(result)?;
            self.nonce = fresh;
            if answer.status < 400 {
                return Ok(answer);
            }
            let doc: ProblemDoc = serde_json::from_slice(&answer.body).unwrap_or_default();
            let problem = doc.into_problem(answer.status, answer.retry_after);
            if problem.kind != "badNonce" {
                return Err(Error::Problem(problem));
            }
        }
        Err(Error::Protocol(format!(
            "{NONCE_RETRIES} nonces in a row were refused (badNonce)"
        )))
    }

    /// Finds or creates the account of this key (RFC 8555 §7.3): agreeing to the CA's terms,
    /// with the contact address and the external account binding when given.
    pub fn account(&mut self, email: Option<&str>, eab: Option<(&str, &str)>) -> Result<String> {
        let url = self.directory.new_account.clone();
        let mut payload = json!({ "termsOfServiceAgreed": true });
        if let Some(email) = email {
            payload["contact"] = json!([format!("mailto:{email}")]);
        }
        if let Some((kid, hmac)) = eab {
            payload["externalAccountBinding"] = self
                .key
                .external_binding(&url, kid, hmac)
                .map_err(Error::Local)?;
        } else if self.directory.meta.external_account_required {
            return Err(Error::Local(
                "this CA requires external account binding: set eab_kid and eab_hmac_key".into(),
            ));
        }
        self.kid = None;
        let answer = self.post(&url, Some(&payload))?;
        let kid = answer
            .location
            .ok_or_else(|| Error::Protocol("newAccount gave no Location".to_owned()))?;
        self.kid = Some(kid.clone());
        Ok(kid)
    }

    /// A new order for `domains`; its URL and state.
    pub fn new_order(&mut self, domains: &[String]) -> Result<(String, Order)> {
        let identifiers: Vec<Value> = domains
            .iter()
            .map(|d| json!({ "type": "dns", "value": d }))
            .collect();
        let url = self.directory.new_order.clone();
        let answer = self.post(&url, Some(&json!({ "identifiers": identifiers })))?;
        let location = answer
            .location
            .clone()
            .ok_or_else(|| Error::Protocol("newOrder gave no Location".to_owned()))?;
        Ok((location, answer.json("the order")?))
    }

    /// Fetches an object with POST-as-GET.
    pub fn fetch<T: for<'de> Deserialize<'de>>(
        &mut self,
        url: &str,
        what: &str,
    ) -> Result<(T, Option<Duration>)> {
        let answer = self.post(url, None)?;
        Ok((answer.json(what)?, answer.retry_after))
    }

    /// Tells the CA a challenge is ready to be validated.
    pub fn respond(&mut self, url: &str) -> Result<()> {
        self.post(url, Some(&json!({}))).map(drop)
    }

    /// Fetches `url` until `done` says the object is settled, waiting between fetches as the
    /// CA asks (Retry-After) or a little longer each time, until `deadline`.
    pub fn poll<T: for<'de> Deserialize<'de>>(
        &mut self,
        url: &str,
        what: &str,
        deadline: Instant,
        done: impl Fn(&T) -> bool,
    ) -> Result<T> {
        let mut pause = Duration::from_millis(100);
        loop {
            let (object, asked) = self.fetch::<T>(url, what)?;
            if done(&object) {
                return Ok(object);
            }
            let wait = asked
                .unwrap_or(pause)
                .clamp(Duration::from_millis(50), Duration::from_secs(10));
            if Instant::now() + wait > deadline {
                return Err(Error::Protocol(format!(
                    "{what} was still not settled when tws stopped waiting"
                )));
            }
            std::thread::sleep(wait);
            pause = (pause * 3 / 2).min(Duration::from_secs(3));
        }
    }

    /// Sends the CSR (DER) to the order's finalize URL.
    pub fn finalize(&mut self, url: &str, csr: &[u8]) -> Result<()> {
        let csr = super::jws::b64(csr);
        self.post(url, Some(&json!({ "csr": csr }))).map(drop)
    }

    /// Downloads the certificate chain (PEM, leaf first).
    pub fn download(&mut self, url: &str) -> Result<String> {
        let answer = self.post(url, None)?;
        String::from_utf8(answer.body)
            .map_err(|_| Error::Protocol("the certificate chain is not PEM text".to_owned()))
    }
}

/// The CA's directory at `url`.
pub fn directory(agent: &ureq::Agent, url: &str) -> Result<Directory> {
    let answer = reply(agent.get(url).call())?;
    if answer.status != 200 {
        return Err(Error::Protocol(format!(
            "the directory {url} answered {}",
            answer.status
        )));
    }
    answer.json("the directory")
}

/// The renewal window the CA of `directory` suggests for a certificate (RFC 9773 §4.2), as
/// seconds since 1970, when it offers renewal information: an unsigned GET.
pub fn renewal_window(
    agent: &ureq::Agent,
    directory: &Directory,
    cert_id: &str,
) -> Result<Option<(i64, i64)>> {
    let Some(base) = &directory.renewal_info else {
        return Ok(None);
    };
    let url = format!("{}/{cert_id}", base.trim_end_matches('/'));
    let answer = reply(agent.get(&url).call())?;
    if answer.status != 200 {
        return Ok(None);
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Info {
        suggested_window: Window,
    }
    #[derive(Deserialize)]
    struct Window {
        start: String,
        end: String,
    }
    let info: Info = answer.json("the renewal information")?;
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .map_err(|e| Error::Protocol(format!("renewal window time {t:?}: {e}")))
    };
    Ok(Some((
        parse(&info.suggested_window.start)?,
        parse(&info.suggested_window.end)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let table = [
            ("120", Some(120)),
            (" 3 ", Some(3)),
            ("0", Some(0)),
            ("999999", Some(86_400)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("soon", None),
        ];
        for (value, want) in table {
            assert_eq!(retry_after(value).map(|d| d.as_secs()), want, "{value}");
        }
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(600));
        let got = retry_after(&later).unwrap().as_secs();
        assert!((595..=600).contains(&got), "{got}");
    }
}
