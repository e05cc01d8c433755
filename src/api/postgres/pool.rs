//! Connections to PostgreSQL, pooled. A connection found broken is dropped; once any has
//! failed, idle ones are checked with an empty query before use, so that after the server
//! restarts no request is sent on a connection that died while idle.

use std::collections::HashMap;

use crate::sync::lock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls, Statement};

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub client: Client,
    pub statements: HashMap<String, Statement>,
}

impl Conn {
    /// A statement, prepared once per connection.
    pub fn prepared(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        prepare(&mut self.client, &mut self.statements, sql)
    }
}

/// A statement from `statements`, preparing it on `client` the first time.
pub(super) fn prepare(
    client: &mut impl postgres::GenericClient,
    statements: &mut HashMap<String, Statement>,
    sql: &str,
) -> Result<Statement, postgres::Error> {
    if let Some(statement) = statements.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql)?;
    statements.insert(sql.to_owned(), statement.clone());
    Ok(statement)
}

struct Idle {
    conn: Conn,
    /// The failure count when it was last known good.
    checked: u64,
    since: Instant,
}

#[derive(Default)]
struct State {
    idle: Vec<Idle>,
    /// Connections open, idle or lent.
    open: usize,
}

pub(super) struct Pool {
    config: Config,
    max: usize,
    wait: Duration,
    state: Mutex<State>,
    freed: Condvar,
    /// Connections seen broken so far.
    failures: AtomicU64,
    /// The database cannot be reached (said once on stderr when it goes, once when it is back).
    down: AtomicBool,
    /// Where the database is, for those two lines.
    shown: String,
}

/// Idle longer than this, a connection is checked before use.
const STALE: Duration = Duration::from_secs(30);

/// A lent connection, given back when dropped (unless broken).
pub(super) struct Lent<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Lent<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("lent until dropped")
    }
}

impl std::ops::DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("lent until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

impl Pool {
    /// At most `max` connections; a caller waits at most `wait` for one.
    pub fn new(config: Config, max: usize, wait: Duration, shown: String) -> Pool {
        Pool {
            config,
            max,
            wait,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            failures: AtomicU64::new(0),
            down: AtomicBool::new(false),
            shown,
        }
    }

    /// Says on stderr, once, that the database cannot be reached.
    fn went_down(&self, why: &str) {
        if !self.down.swap(true, Ordering::AcqRel) {
            crate::report!(
                "tws: the database at {} is unavailable ({why}); collections answer 503 until it is back, files are served on",
                self.shown
            );
        }
    }

    /// Says on stderr, once, that the database can be reached again.
    fn came_back(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            crate::report!("tws: the database at {} is available again", self.shown);
        }
    }

    /// Opens a connection now (for startup, to report a failure at once).
    pub fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    /// A connection: an idle one that is still good, or a new one.
    pub fn get(&self) -> Result<Lent<'_>, String> {
        let deadline = Instant::now() + self.wait;
        let mut state = lock(&self.state);
        loop {
            while let Some(idle) = state.idle.pop() {
                drop(state);
                if let Some(conn) = self.usable(idle) {
                    return Ok(Lent {
                        pool: self,
                        conn: Some(conn),
                    });
                }
                state = lock(&self.state);
                state.open -= 1;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(conn) => {
                        self.came_back();
                        Ok(Lent {
                            pool: self,
                            conn: Some(conn),
                        })
                    }
                    Err(e) => {
                        lock(&self.state).open -= 1;
                        self.freed.notify_one();
                        self.failures.fetch_add(1, Ordering::Relaxed);
                        let why = format!("cannot connect: {}", reason(&e));
                        self.went_down(&why);
                        Err(why)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "no database connection came free within {:?}",
                    self.wait
                ));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// An idle connection if it still works: checked when a failure happened since it was
    /// last good, or when it has been idle long.
    fn usable(&self, mut idle: Idle) -> Option<Conn> {
        if idle.conn.client.is_closed() {
            return None;
        }
        let failures = self.failures.load(Ordering::Relaxed);
        if (idle.checked != failures || idle.since.elapsed() > STALE)
            && idle.conn.client.simple_query("").is_err()
        {
            return None;
        }
        Some(idle.conn)
    }

    fn give_back(&self, conn: Conn) {
        let mut state = lock(&self.state);
        if conn.client.is_closed() {
            state.open -= 1;
            self.failures.fetch_add(1, Ordering::Relaxed);
        } else {
            state.idle.push(Idle {
                conn,
                checked: self.failures.load(Ordering::Relaxed),
                since: Instant::now(),
            });
        }
        drop(state);
        self.freed.notify_one();
    }

    /// Counts a failure seen on a connection (so that idle ones are checked before use).
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// A database error in one line: the server's message when there is one.
pub fn reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => {
            let text = e.to_string();
            match std::error::Error::source(e) {
                Some(source) => format!("{text}: {source}"),
                None => text,
            }
        }
    }
}
