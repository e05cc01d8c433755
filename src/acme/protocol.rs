//! What an ACME CA and tws exchange (RFC 8555 §7.1, RFC 7807): the directory, orders,
//! authorizations, challenges and problem documents as the CA writes them, and the typed error
//! of a step, with the few words `/healthz` shows and the wait a CA asked for.

use std::time::Duration;

use serde::Deserialize;

/// Why a step failed.
#[derive(Debug)]
pub enum Error {
    /// The CA could not be reached: DNS, connection, TLS, a timeout.
    Unreachable(String),
    /// The CA answered with a problem document (RFC 7807).
    Problem(Problem),
    /// The CA answered something this client cannot use.
    Protocol(String),
    /// A challenge was tried and failed: the domain, and the CA's account of it.
    Challenge { domain: String, problem: Problem },
    /// Here: a key, a storage write.
    Local(String),
}

/// A problem document, its `type` without the `urn:ietf:params:acme:error:` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: String,
    pub detail: String,
    pub status: u16,
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}", self.kind, self.status)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        f.write_str(")")
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unreachable(why) => write!(f, "the CA cannot be reached: {why}"),
            Error::Problem(p) => write!(f, "the CA refused: {p}"),
            Error::Protocol(why) => write!(f, "unexpected answer from the CA: {why}"),
            Error::Challenge { domain, problem } => {
                write!(f, "the challenge for {domain} failed: {problem}")
            }
            Error::Local(why) => f.write_str(why),
        }
    }
}

impl Error {
    /// A few words for `/healthz`, with nothing from the CA's text.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Unreachable(_) => "CA unreachable",
            Error::Problem(p) if p.kind == "rateLimited" => "rate limited by the CA",
            Error::Problem(_) => "refused by the CA",
            Error::Protocol(_) => "unexpected answer from the CA",
            Error::Challenge { .. } => "challenge failed",
            Error::Local(_) => "local error",
        }
    }

    /// How long the CA asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Problem(p) | Error::Challenge { problem: p, .. } => p.retry_after,
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The CA's directory (RFC 8555 §7.1.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub new_nonce: String,
    pub new_account: String,
    pub new_order: String,
    /// ACME Renewal Information (RFC 9773), when the CA offers it.
    pub renewal_info: Option<String>,
    #[serde(default)]
    pub meta: Meta,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub external_account_required: bool,
}

/// An order (RFC 8555 §7.1.3).
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub status: String,
    #[serde(default)]
    pub authorizations: Vec<String>,
    pub finalize: String,
    pub certificate: Option<String>,
    pub error: Option<ProblemDoc>,
}

/// An authorization (RFC 8555 §7.1.4).
#[derive(Debug, Clone, Deserialize)]
pub struct Authorization {
    pub status: String,
    pub identifier: Identifier,
    #[serde(default)]
    pub challenges: Vec<Challenge>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Identifier {
    pub value: String,
}

/// A challenge (RFC 8555 §7.1.5).
#[derive(Debug, Clone, Deserialize)]
pub struct Challenge {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    pub token: Option<String>,
    pub status: String,
    pub error: Option<ProblemDoc>,
}

/// A problem document as the CA writes it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProblemDoc {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub detail: Option<String>,
    pub status: Option<u16>,
}

impl ProblemDoc {
    pub fn into_problem(self, status: u16, retry_after: Option<Duration>) -> Problem {
        let kind = self.kind.unwrap_or_default();
        Problem {
            kind: kind
                .strip_prefix("urn:ietf:params:acme:error:")
                .unwrap_or(&kind)
                .to_owned(),
            detail: self.detail.unwrap_or_default().chars().take(300).collect(),
            status: self.status.unwrap_or(status),
            retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_keep_the_short_type_and_a_bounded_detail() {
        let doc: ProblemDoc = serde_json::from_str(
            r#"{"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many certificates", "status": 429}"#,
        )
        .unwrap();
        let problem = doc.into_problem(400, Some(Duration::from_secs(60)));
        assert_eq!(problem.kind, "rateLimited");
        assert_eq!(problem.status, 429);
        assert_eq!(
            problem.to_string(),
            "rateLimited (429: too many certificates)"
        );
        let error = Error::Problem(problem);
        assert_eq!(error.reason(), "rate limited by the CA");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
        let long = ProblemDoc {
            kind: Some("about:blank".into()),
            detail: Some("x".repeat(5000)),
            status: None,
        };
        let problem = long.into_problem(500, None);
        assert_eq!(problem.kind, "about:blank");
        assert_eq!(problem.status, 500);
        assert_eq!(problem.detail.len(), 300);
        // The short reasons never carry the CA's words.
        let table = [
            (Error::Unreachable("refused".into()), "CA unreachable"),
            (Error::Protocol("x".into()), "unexpected answer from the CA"),
            (
                Error::Challenge {
                    domain: "a.test".into(),
                    problem: ProblemDoc::default().into_problem(403, None),
                },
                "challenge failed",
            ),
        ];
        for (error, reason) in table {
            assert_eq!(error.reason(), reason);
        }
    }

    #[test]
    fn objects_read_as_rfc_8555_writes_them() {
        let directory: Directory = serde_json::from_str(
            r#"{"newNonce": "https://ca/n", "newAccount": "https://ca/a", "newOrder": "https://ca/o",
                "revokeCert": "https://ca/r", "keyChange": "https://ca/k",
                "renewalInfo": "https://ca/ari", "meta": {"externalAccountRequired": true}}"#,
        )
        .unwrap();
        assert_eq!(directory.renewal_info.as_deref(), Some("https://ca/ari"));
        assert!(directory.meta.external_account_required);
        let authz: Authorization = serde_json::from_str(
            r#"{"status": "pending", "identifier": {"type": "dns", "value": "a.test"},
                "challenges": [{"type": "http-01", "url": "https://ca/c/1", "token": "t1", "status": "pending"},
                               {"type": "dns-01", "url": "https://ca/c/2", "token": "t2", "status": "pending"}]}"#,
        )
        .unwrap();
        assert_eq!(authz.identifier.value, "a.test");
        assert_eq!(authz.challenges[0].kind, "http-01");
        assert_eq!(authz.challenges[1].token.as_deref(), Some("t2"));
        let order: Order = serde_json::from_str(
            r#"{"status": "invalid", "finalize": "https://ca/f", "authorizations": [],
                "error": {"type": "urn:ietf:params:acme:error:unauthorized", "detail": "no"}}"#,
        )
        .unwrap();
        assert_eq!(
            order.error.unwrap().into_problem(400, None).kind,
            "unauthorized"
        );
    }
}
