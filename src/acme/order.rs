//! One certificate order from start to finish (RFC 8555 §7.3 to §7.4.2): the account (its
//! stored key and URL, or a new one), a new order for the domains, each pending
//! authorization's challenge answered (in the configured order of preference) and published
//! to every node, the CA told to validate, the results awaited, then a fresh key and CSR,
//! finalization, and the chain downloaded. Every wait is bounded.

use std::time::{Duration, Instant};

use super::certificate::{Issued, csr};
use super::challenge::{self, Kind, Pending};
use super::client::Client;
use super::jws::AccountKey;
use super::protocol::{Authorization, Error, Order, Result};
use super::storage::{Account, Storage};
use crate::config::AcmeSettings;

/// The longest an order may take, from the directory to the chain.
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);
/// With several nodes: how long the answers are given to reach every node before the CA
/// is told to validate (the watchers hear of them within milliseconds).
const PROPAGATION: Duration = Duration::from_millis(500);

/// Challenge answers given for the length of an order: withdrawn when dropped, whatever
/// happened.
struct Answering<'a> {
    storage: &'a dyn Storage,
    given: Vec<Pending>,
}

impl Answering<'_> {
    fn give(&mut self, pending: Pending) -> Result<()> {
        // Published first: a node's watcher replaces what it answers with what is published.
        self.storage.publish(&pending).map_err(Error::Local)?;
        challenge::add_own(&pending).map_err(Error::Local)?;
        self.given.push(pending);
        Ok(())
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        for pending in &self.given {
            challenge::remove_own(pending);
            let _ = self.storage.withdraw(pending);
        }
    }
}

/// The account key for the CA of `client`'s directory, and its URL, registering it when new.
fn account(
    client: &mut Client,
    settings: &AcmeSettings,
    storage: &dyn Storage,
    again: bool,
) -> Result<()> {
    let stored = storage.account(&settings.directory).map_err(Error::Local)?;
    if let Some(account) = &stored
        && !again
    {
        client.kid = Some(account.url.clone());
        return Ok(());
    }
    let eab = settings
        .eab
        .as_ref()
        .map(|e| (e.kid.as_str(), e.hmac_key.as_str()));
    let url = client.account(settings.email.as_deref(), eab)?;
    let account = Account {
        url,
        key: client.key.pkcs8().to_vec(),
    };
    storage
        .save_account(&settings.directory, &account)
        .map_err(Error::Local)
}

/// Obtains a certificate for `settings.domains` from the CA `client` talks to.
pub fn obtain(
    agent: ureq::Agent,
    settings: &AcmeSettings,
    storage: &dyn Storage,
) -> Result<Issued> {
    let deadline = Instant::now() + ORDER_TIMEOUT;
    let key = match storage.account(&settings.directory).map_err(Error::Local)? {
        Some(account) => AccountKey::from_pkcs8(&account.key).map_err(Error::Local)?,
        None => AccountKey::generate().map_err(Error::Local)?,
    };
    let mut client = Client::connect(agent, &settings.directory, key)?;
    account(&mut client, settings, storage, false)?;
    let (url, order) = match client.new_order(&settings.domains) {
        // The CA forgot the account (a test CA restarted, an account deactivated): register
        // the same key again, once.
        Err(Error::Problem(p)) if p.kind == "accountDoesNotExist" || p.kind == "unauthorized" => {
            account(&mut client, settings, storage, true)?;
            client.new_order(&settings.domains)?
        }
        other => other?,
    };
    let mut answering = Answering {
        storage,
        given: Vec::new(),
    };
    let mut waiting: Vec<(String, String)> = Vec::new();
    let mut respond: Vec<String> = Vec::new();
    for authz_url in &order.authorizations {
        let (authz, _) = client.fetch::<Authorization>(authz_url, "an authorization")?;
        if authz.status == "valid" {
            continue;
        }
        if authz.status != "pending" {
            return Err(Error::Protocol(format!(
                "the authorization for {} is {}",
                authz.identifier.value, authz.status
            )));
        }
        let domain = authz.identifier.value.to_ascii_lowercase();
        let chosen = settings.challenges.iter().find_map(|kind| {
            authz
                .challenges
                .iter()
                .find(|c| c.kind == kind.name() && c.token.is_some())
                .map(|c| (*kind, c))
        });
        let Some((kind, offered)) = chosen else {
            return Err(Error::Protocol(format!(
                "the CA offers no challenge tws answers for {domain} (configured: {})",
                names(&settings.challenges)
            )));
        };
        let token = offered.token.clone().unwrap_or_default();
        if token.is_empty()
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::Protocol(format!(
                "a challenge token for {domain} is not base64url"
            )));
        }
        answering.give(Pending {
            kind,
            domain: domain.clone(),
            key_authorization: client.key.key_authorization(&token),
            token,
        })?;
        respond.push(offered.url.clone());
        waiting.push((authz_url.clone(), domain));
    }
    if storage.shared() && !respond.is_empty() {
        std::thread::sleep(PROPAGATION);
    }
    for url in &respond {
        client.respond(url)?;
    }
    for (authz_url, domain) in &waiting {
        let authz = client.poll::<Authorization>(authz_url, "an authorization", deadline, |a| {
            a.status != "pending" && a.status != "processing"
        })?;
        if authz.status != "valid" {
            let problem = authz
                .challenges
                .iter()
                .find_map(|c| c.error.clone())
                .unwrap_or_default()
                .into_problem(403, None);
            return Err(Error::Challenge {
                domain: domain.clone(),
                problem,
            });
        }
    }
    drop(answering);
    let settled = |o: &Order| o.status != "pending" && o.status != "processing";
    let order = client.poll::<Order>(&url, "the order", deadline, settled)?;
    // Only a ready order takes this node's CSR (an order finalized earlier carries a key
    // tws does not have).
    if order.status != "ready" {
        return Err(refused(order));
    }
    let (request, key) = csr(&settings.domains).map_err(Error::Local)?;
    client.finalize(&order.finalize, &request)?;
    let order = client.poll::<Order>(&url, "the order", deadline, |o| {
        settled(o) && o.status != "ready"
    })?;
    let Some(certificate) = order
        .certificate
        .clone()
        .filter(|_| order.status == "valid")
    else {
        return Err(refused(order));
    };
    let chain = client.download(&certificate)?;
    Ok(Issued {
        chain,
        key,
        directory: settings.directory.clone(),
        domains: settings.domains.clone(),
    })
}

/// An order that went invalid: the CA's reason.
fn refused(order: Order) -> Error {
    match order.error {
        Some(doc) => Error::Problem(doc.into_problem(403, None)),
        None => Error::Protocol(format!("the order is {}", order.status)),
    }
}

fn names(kinds: &[Kind]) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}
