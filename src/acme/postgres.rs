//! ACME state in the PostgreSQL database several nodes share (tables in the `tws` schema,
//! created under the store's migration lock): the account, the certificate and its key, the
//! backoff, and the challenge answers every node gives. One node orders at a time (a session
//! advisory lock, held on its own connection for the order's length and released if the node
//! dies). Each node's watcher thread LISTENs for changes: challenge answers reach every node
//! within milliseconds of being published, and a renewed certificate wakes the manager, which
//! installs it. Connections are made as the collections store makes them (same URL, password
//! sources and timeouts). The keys are in the database: whoever can read the `tws` schema can
//! read them.

use std::sync::Mutex;
use std::sync::mpsc::Sender;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};

use super::certificate::Issued;
use super::challenge::{self, Kind, Pending};
use super::storage::{Account, Backoff, OrderLock, Storage};
use crate::api::postgres::{MIGRATION_LOCK, connection_config, reason};
use crate::sync::lock;

/// The advisory lock a node holds while it orders (with the certificate name's hash).
const ORDER_LOCK: i32 = 0x7477_7302;
/// What nodes LISTEN on: `challenges` or `certificate`.
const CHANNEL: &str = "tws_acme";
/// How long a published answer is kept at most (an order that died leaves none behind).
const ANSWER_LIFETIME: i64 = 600;
/// Without notifications, the watcher looks anyway this often.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// The ACME tables, in order, applied once.
const MIGRATIONS: [&str; 1] = ["
    CREATE TABLE tws.acme_accounts (
        directory TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        key BYTEA NOT NULL
    );
    CREATE TABLE tws.acme_certificates (
        name TEXT PRIMARY KEY,
        directory TEXT NOT NULL,
        domains TEXT[] NOT NULL,
        chain TEXT NOT NULL,
        key TEXT NOT NULL,
        version BIGINT NOT NULL,
        updated TEXT NOT NULL
    );
    CREATE TABLE tws.acme_backoff (
        name TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        next_attempt BIGINT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE tws.acme_challenges (
        token TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        domain TEXT NOT NULL,
        key_authorization TEXT NOT NULL,
        expires BIGINT NOT NULL
    );"];

pub struct Pg {
    config: postgres::Config,
    shown: String,
    /// The connection for reads and writes (not the watcher's, nor an order lock's).
    conn: Mutex<Option<Client>>,
}

impl Pg {
    /// Connects (failing at once when the database cannot be reached) and creates the tables.
    pub fn open(url: &str) -> anyhow::Result<Pg> {
        let (config, shown) = connection_config(url)?;
        let mut client = config.connect(NoTls).map_err(|e| {
            anyhow::anyhow!("cannot connect to PostgreSQL at {shown}: {}", reason(&e))
        })?;
        migrate(&mut client)
            .map_err(|e| anyhow::anyhow!("PostgreSQL at {shown}: ACME tables: {}", reason(&e)))?;
        Ok(Pg {
            config,
            shown,
            conn: Mutex::new(Some(client)),
        })
    }

    /// Runs `f` on the shared connection, reconnecting once when it was lost.
    fn with<T>(&self, f: impl Fn(&mut Client) -> Result<T, postgres::Error>) -> Result<T, String> {
        let mut slot = lock(&self.conn);
        for _ in 0..2 {
            if slot.as_ref().is_none_or(Client::is_closed) {
                *slot = Some(self.config.connect(NoTls).map_err(|e| self.failed(&e))?);
            }
            let client = slot.as_mut().expect("connected above");
            match f(client) {
                Ok(value) => return Ok(value),
                Err(_) if client.is_closed() => *slot = None,
                Err(e) => return Err(self.failed(&e)),
            }
        }
        Err(format!(
            "PostgreSQL at {}: the connection keeps closing",
            self.shown
        ))
    }

    fn failed(&self, e: &postgres::Error) -> String {
        format!("PostgreSQL at {}: {}", self.shown, reason(e))
    }

    /// Starts the watcher: it answers every node's challenges here, and sends on `wake` when
    /// the certificate `name` changes.
    pub fn watch(&self, name: String, wake: Sender<()>) -> anyhow::Result<()> {
        let config = self.config.clone();
        std::thread::Builder::new()
            .name("tws-acme-watch".to_owned())
            .spawn(move || watch(&config, &name, &wake))
            .map(drop)
            .map_err(|e| anyhow::anyhow!("cannot start the ACME watcher: {e}"))
    }
}

fn migrate(client: &mut Client) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS tws;
         CREATE TABLE IF NOT EXISTS tws.acme_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL);",
    )?;
    let done: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM tws.acme_migrations",
            &[],
        )?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO tws.acme_migrations (version, applied) VALUES ($1, $2)",
            &[&(i as i32 + 1), &crate::time::now_rfc3339()],
        )?;
    }
    tx.commit()
}

/// The watcher's life: connect, LISTEN, look, then look again at each notification (or every
/// few seconds); reconnect after a failure, waiting longer each time up to half a minute.
fn watch(config: &postgres::Config, name: &str, wake: &Sender<()>) {
    let mut pause = Duration::from_millis(500);
    let mut version: Option<i64> = None;
    loop {
        let outcome = (|| -> Result<(), postgres::Error> {
            let mut client = config.connect(NoTls)?;
            client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            loop {
                challenge::set_shared(&answers(&mut client)?);
                let now: Option<i64> = client
                    .query_opt(
                        "SELECT version FROM tws.acme_certificates WHERE name = $1",
                        &[&name],
                    )?
                    .map(|row| row.get(0));
                if now != version {
                    version = now;
                    if wake.send(()).is_err() {
                        return Ok(());
                    }
                }
                pause = Duration::from_millis(500);
                let mut notifications = client.notifications();
                // One notification (or none within the wait) is reason enough to look again;
                // any others queued are taken with it.
                notifications.timeout_iter(WATCH_EVERY).next()?;
                while notifications.iter().next()?.is_some() {}
            }
        })();
        if outcome.is_ok() {
            return;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// The answers published and not expired.
fn answers(client: &mut Client) -> Result<Vec<Pending>, postgres::Error> {
    let rows = client.query(
        "SELECT kind, domain, token, key_authorization FROM tws.acme_challenges WHERE expires > $1",
        &[&super::schedule::unix_now()],
    )?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(Pending {
                kind: Kind::from_name(row.get(0))?,
                domain: row.get(1),
                token: row.get(2),
                key_authorization: row.get(3),
            })
        })
        .collect())
}

impl Storage for Pg {
    fn location(&self) -> String {
        format!("PostgreSQL at {}", self.shown)
    }

    fn shared(&self) -> bool {
        true
    }

    fn account(&self, directory: &str) -> Result<Option<Account>, String> {
        self.with(|c| {
            let row = c.query_opt(
                "SELECT url, key FROM tws.acme_accounts WHERE directory = $1",
                &[&directory],
            )?;
            Ok(row.map(|row| Account {
                url: row.get(0),
                key: row.get(1),
            }))
        })
    }

    fn save_account(&self, directory: &str, account: &Account) -> Result<(), String> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tws.acme_accounts (directory, url, key) VALUES ($1, $2, $3)
                 ON CONFLICT (directory) DO UPDATE SET url = excluded.url, key = excluded.key",
                &[&directory, &account.url, &account.key],
            )
            .map(drop)
        })
    }

    fn certificate(&self, name: &str) -> Result<Option<(Issued, i64)>, String> {
        self.with(|c| {
            let row = c.query_opt(
                "SELECT directory, domains, chain, key, version FROM tws.acme_certificates WHERE name = $1",
                &[&name],
            )?;
            Ok(row.map(|row| {
                let issued = Issued {
                    directory: row.get(0),
                    domains: row.get(1),
                    chain: row.get(2),
                    key: row.get(3),
                };
                (issued, row.get(4))
            }))
        })
    }

    fn save_certificate(&self, name: &str, issued: &Issued) -> Result<i64, String> {
        let now = crate::time::now_rfc3339();
        self.with(|c| {
            let mut tx = c.transaction()?;
            let version: i64 = tx.query_one(
                "INSERT INTO tws.acme_certificates (name, directory, domains, chain, key, version, updated)
                 VALUES ($1, $2, $3, $4, $5, 1, $6)
                 ON CONFLICT (name) DO UPDATE SET directory = excluded.directory,
                     domains = excluded.domains, chain = excluded.chain, key = excluded.key,
                     version = tws.acme_certificates.version + 1, updated = excluded.updated
                 RETURNING version",
                &[&name, &issued.directory, &issued.domains, &issued.chain, &issued.key, &now],
            )?.get(0);
            tx.execute(&format!("NOTIFY {CHANNEL}, 'certificate'"), &[])?;
            tx.commit()?;
            Ok(version)
        })
    }

    fn backoff(&self, name: &str) -> Result<Backoff, String> {
        self.with(|c| {
            let row = c.query_opt(
                "SELECT failures, next_attempt, reason FROM tws.acme_backoff WHERE name = $1",
                &[&name],
            )?;
            Ok(row.map_or_else(Backoff::default, |row| Backoff {
                failures: row.get::<_, i32>(0).max(0) as u32,
                next_attempt: row.get(1),
                reason: row.get(2),
            }))
        })
    }

    fn save_backoff(&self, name: &str, backoff: &Backoff) -> Result<(), String> {
        let failures = i32::try_from(backoff.failures).unwrap_or(i32::MAX);
        self.with(|c| {
            c.execute(
                "INSERT INTO tws.acme_backoff (name, failures, next_attempt, reason) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET failures = excluded.failures,
                     next_attempt = excluded.next_attempt, reason = excluded.reason",
                &[&name, &failures, &backoff.next_attempt, &backoff.reason],
            )
            .map(drop)
        })
    }

    fn lock(&self, name: &str) -> Result<Option<OrderLock>, String> {
        let mut client = self.config.connect(NoTls).map_err(|e| self.failed(&e))?;
        let taken: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&ORDER_LOCK, &name],
            )
            .map_err(|e| self.failed(&e))?
            .get(0);
        // The lock lasts as long as its connection: dropping the client releases it.
        Ok(taken.then(|| Box::new(client) as OrderLock))
    }

    fn publish(&self, p: &Pending) -> Result<(), String> {
        let expires = super::schedule::unix_now() + ANSWER_LIFETIME;
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO tws.acme_challenges (token, kind, domain, key_authorization, expires)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (token) DO UPDATE SET kind = excluded.kind, domain = excluded.domain,
                     key_authorization = excluded.key_authorization, expires = excluded.expires",
                &[
                    &p.token,
                    &p.kind.name(),
                    &p.domain,
                    &p.key_authorization,
                    &expires,
                ],
            )?;
            tx.execute(&format!("NOTIFY {CHANNEL}, 'challenges'"), &[])?;
            tx.commit()
        })
    }

    fn withdraw(&self, p: &Pending) -> Result<(), String> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "DELETE FROM tws.acme_challenges WHERE token = $1",
                &[&p.token],
            )?;
            tx.execute(&format!("NOTIFY {CHANNEL}, 'challenges'"), &[])?;
            tx.commit()
        })
    }
}
