//! Automatic HTTPS: tws obtains its certificate from a CA over ACME and renews it by itself.
//! The manager runs on one thread ("tws-acme"), never on an event loop: at start it serves the
//! stored certificate if it is still valid (else the temporary self-signed one `tls` made),
//! then orders when there is none, when it is due (two thirds of its life, or the CA's renewal
//! window), or when the configuration names other domains or another CA; a new certificate
//! goes to the same `CertStore::replace` a reload uses, so open connections go on. A failure is
//! one line on stderr with the CA's error, a short reason in `/healthz`, and a retry after an
//! exponential backoff with jitter, kept in storage so a restart does not retry at once. With
//! several nodes, one orders at a time and the others install what it stored.
//!
//! `client` speaks RFC 8555 over HTTPS (`protocol`: what it reads), `jws` signs, `order` runs
//! one order, `challenge` holds the answers, `certificate` what is kept, `storage` and
//! `postgres` where, `schedule` when, and `status` what operators see.

pub mod certificate;
pub mod challenge;
pub mod client;
pub mod jws;
pub mod order;
pub mod postgres;
pub mod protocol;
pub mod schedule;
pub mod status;
pub mod storage;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::{AcmeSettings, StoreUrl};
use crate::report;
use crate::tls::CertStore;
use crate::tls::certs::fingerprint;
use certificate::Issued;
use protocol::Error;
use schedule::unix_now;
use storage::{Backoff, Storage};

/// How often the CA's renewal window is asked for again (RFC 9773 suggests following its
/// Retry-After, which Let's Encrypt sets to six hours).
const ARI_EVERY: Duration = Duration::from_secs(6 * 3600);
/// While another node orders, look again this often (its certificate usually arrives sooner,
/// through the watcher).
const BUSY_RECHECK: i64 = 5;

/// The certificate manager.
pub struct Manager {
    settings: AcmeSettings,
    /// What storage keeps the certificate under: the first domain.
    name: String,
    storage: Box<dyn Storage>,
    certs: Arc<CertStore>,
    /// A private CA's roots, trusted alone for its HTTPS.
    roots: Option<Vec<Vec<u8>>>,
    /// The stored certificate being served, and its version in storage.
    installed: Option<(Issued, i64)>,
    backoff: Backoff,
    /// The renewal moment drawn from the CA's window, and when that was asked.
    ari: Option<i64>,
    ari_asked: Option<Instant>,
    /// Another node holds the right to order: not before this.
    busy_until: i64,
    wake: Receiver<()>,
    /// Kept so that `wake` never disconnects (the watcher, if any, holds another).
    _waker: Sender<()>,
}

impl Manager {
    /// Opens the storage (the PostgreSQL database of `store`, else `<data>/acme/`), reads a
    /// private CA's roots, and serves the stored certificate if it is still valid. Every
    /// failure is one line.
    pub fn open(
        settings: &AcmeSettings,
        data: &Path,
        store: Option<&StoreUrl>,
        certs: Arc<CertStore>,
    ) -> Result<Manager> {
        let name = settings
            .domains
            .first()
            .cloned()
            .context("ACME needs a domain")?;
        let roots = match &settings.ca_root {
            Some(path) => Some(crate::config::read_roots(path).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let (waker, wake) = channel();
        let storage: Box<dyn Storage> = match store {
            Some(url) => {
                let pg = postgres::Pg::open(&url.0)?;
                pg.watch(name.clone(), waker.clone())?;
                Box::new(pg)
            }
            None => Box::new(storage::Files::open(data)?),
        };
        status::start(&settings.domains);
        let mut manager = Manager {
            settings: settings.clone(),
            name,
            storage,
            certs,
            roots,
            installed: None,
            backoff: Backoff::default(),
            ari: None,
            ari_asked: None,
            busy_until: 0,
            wake,
            _waker: waker,
        };
        let where_ = manager.storage.location();
        let stored = manager
            .storage
            .certificate(&manager.name)
            .map_err(|e| anyhow::anyhow!("ACME storage {where_}: {e}"))?;
        if let Some((issued, version)) = stored {
            manager.install(issued, version);
        }
        manager.backoff = manager
            .storage
            .backoff(&manager.name)
            .map_err(|e| anyhow::anyhow!("ACME storage {where_}: {e}"))?;
        if manager.backoff.failures > 0 {
            status::failing(&manager.backoff.reason, manager.backoff.next_attempt);
        }
        Ok(manager)
    }

    /// What the banner says about the certificate.
    pub fn describe(&self) -> String {
        let domains = self.settings.domains.join(", ");
        match self.installed.as_ref().and_then(|(i, _)| i.validity()) {
            Some((_, until)) => format!(
                "for {domains} over ACME (stored, valid until {})",
                crate::time::rfc3339_unix(until)
            ),
            None => format!(
                "temporary self-signed for {domains} until one arrives over ACME from {}",
                self.settings.directory
            ),
        }
    }

    /// Starts the manager's thread.
    pub fn spawn(self) -> Result<()> {
        std::thread::Builder::new()
            .name("tws-acme".to_owned())
            .spawn(move || self.run())
            .map(drop)
            .context("cannot start the ACME manager")
    }

    fn run(mut self) {
        if self.installed.is_none() {
            report!(
                "tws: ACME: no certificate yet for {}; serving a temporary self-signed one until it arrives",
                self.settings.domains.join(", ")
            );
        }
        loop {
            let now = unix_now();
            let due = self.due(now);
            let ask_ari = self.ari_due();
            let wait = if ask_ari { 0 } else { (due - now).max(0) };
            if wait > 0 {
                let until = Duration::from_secs(wait as u64).min(ARI_EVERY);
                if self.wake.recv_timeout(until).is_ok() {
                    while self.wake.try_recv().is_ok() {}
                    self.refresh();
                }
                continue;
            }
            if ask_ari {
                self.ask_ari();
                continue;
            }
            self.attempt();
        }
    }

    /// When the next order is due: now without a certificate that fits the settings; else
    /// its renewal time; never before the backoff allows or while another node orders.
    fn due(&self, now: i64) -> i64 {
        let renewal = match &self.installed {
            Some((issued, _)) if issued.fits(&self.settings.directory, &self.settings.domains) => {
                match issued.validity() {
                    Some((from, until)) => {
                        schedule::renewal_time(from, until, self.settings.renew_before, self.ari)
                    }
                    None => now,
                }
            }
            _ => now,
        };
        let mut due = renewal;
        if self.backoff.failures > 0 {
            due = due.max(self.backoff.next_attempt);
        }
        due.max(self.busy_until)
    }

    /// True when the CA's renewal window should be asked for the certificate served.
    fn ari_due(&self) -> bool {
        let fits = self
            .installed
            .as_ref()
            .is_some_and(|(i, _)| i.fits(&self.settings.directory, &self.settings.domains));
        fits && self.ari_asked.is_none_or(|at| at.elapsed() >= ARI_EVERY)
    }

    /// Asks the CA for the renewal window of the certificate served (RFC 9773); without an
    /// answer, two thirds of its life it is.
    fn ask_ari(&mut self) {
        self.ari_asked = Some(Instant::now());
        let Some(id) = self.installed.as_ref().and_then(|(i, _)| i.renewal_id()) else {
            return;
        };
        let agent = client::agent(self.roots.as_deref());
        let Ok(directory) = client::directory(&agent, &self.settings.directory) else {
            return;
        };
        if let Ok(Some((start, end))) = client::renewal_window(&agent, &directory, &id) {
            self.ari = Some(schedule::in_window(start, end, schedule::random_fraction()));
        }
    }

    /// Takes what storage holds now: the backoff, and a certificate another node stored.
    fn refresh(&mut self) {
        if let Ok(backoff) = self.storage.backoff(&self.name) {
            if backoff.failures == 0 {
                status::succeeded();
            } else {
                status::failing(&backoff.reason, backoff.next_attempt);
            }
            self.backoff = backoff;
        }
        match self.storage.certificate(&self.name) {
            Ok(Some((issued, version)))
                if self.installed.as_ref().is_none_or(|(_, v)| *v != version) =>
            {
                if self.install(issued, version) {
                    report!(
                        "tws: ACME: installed the certificate another node obtained for {}",
                        self.settings.domains.join(", ")
                    );
                }
            }
            Ok(_) => {}
            Err(e) => report!("tws: ACME: cannot read the stored certificate: {e}"),
        }
    }

    /// Serves `issued` from now on, unless it is expired or broken; true when installed.
    fn install(&mut self, issued: Issued, version: i64) -> bool {
        let Some((_, until)) = issued.validity().filter(|(_, until)| *until > unix_now()) else {
            return false;
        };
        match issued.certified_key() {
            Ok(pair) => {
                self.certs.replace(pair);
                status::certificate(until);
                self.installed = Some((issued, version));
                self.ari = None;
                self.ari_asked = None;
                true
            }
            Err(e) => {
                report!("tws: ACME: the stored certificate is not used: {e}");
                false
            }
        }
    }

    /// One order, if this node may order and it is still due.
    fn attempt(&mut self) {
        let now = unix_now();
        let lock = match self.storage.lock(&self.name) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                self.busy_until = now + BUSY_RECHECK + (schedule::random_fraction() * 2.0) as i64;
                return;
            }
            Err(e) => return self.failed(&Error::Local(e)),
        };
        self.busy_until = 0;
        // Another node may have renewed, or failed, meanwhile.
        self.refresh();
        if self.due(now) > now {
            return;
        }
        let domains = self.settings.domains.join(", ");
        report!(
            "tws: ACME: ordering a certificate for {domains} from {}",
            self.settings.directory
        );
        let started = Instant::now();
        let agent = client::agent(self.roots.as_deref());
        let result = order::obtain(agent, &self.settings, &*self.storage).and_then(|issued| {
            let version = self
                .storage
                .save_certificate(&self.name, &issued)
                .map_err(Error::Local)?;
            Ok((issued, version))
        });
        match result {
            Ok((issued, version)) => {
                let until = issued.validity().map_or(0, |(_, u)| u);
                // The failure is over before the new certificate shows (/healthz agrees
                // with the first handshake that gets it).
                self.backoff = Backoff::default();
                if let Err(e) = self.storage.save_backoff(&self.name, &self.backoff) {
                    report!("tws: ACME: {e}");
                }
                status::succeeded();
                if !self.install(issued, version) {
                    return self.failed(&Error::Protocol(
                        "the certificate issued cannot be served".to_owned(),
                    ));
                }
                let print = fingerprint(crate::tls::certs::leaf(&self.certs.current()));
                report!(
                    "tws: ACME: certificate for {domains} installed after {:.1}s; valid until {}, SHA-256 {print}",
                    started.elapsed().as_secs_f64(),
                    crate::time::rfc3339_unix(until)
                );
            }
            Err(e) => self.failed(&e),
        }
        drop(lock);
    }

    /// A failed attempt: one line, the backoff grown and kept, `/healthz` told.
    fn failed(&mut self, e: &Error) {
        let failures = self.backoff.failures.saturating_add(1);
        let wait = schedule::backoff(
            failures,
            self.settings.first_retry,
            schedule::random_fraction(),
            e.retry_after(),
        );
        self.backoff = Backoff {
            failures,
            next_attempt: schedule::unix_after(wait),
            reason: e.reason().to_owned(),
        };
        let kept = match self.storage.save_backoff(&self.name, &self.backoff) {
            Ok(()) => String::new(),
            Err(why) => format!(" (not kept: {why})"),
        };
        status::failing(e.reason(), self.backoff.next_attempt);
        let serving = match self.installed.as_ref().and_then(|(i, _)| i.validity()) {
            Some((_, until)) => format!(
                "still serving the certificate valid until {}",
                crate::time::rfc3339_unix(until)
            ),
            None => "still serving the temporary self-signed certificate".to_owned(),
        };
        report!(
            "tws: ACME: no certificate for {}: {e}; {serving}; next attempt in {} (failure {failures}{kept})",
            self.settings.domains.join(", "),
            schedule::words(wait)
        );
    }
}
