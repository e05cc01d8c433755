//! What bounds password guessing, for the whole server: logins verified recently (kept under
//! a keyed hash of realm, user, password and the stored hash, so a changed or removed user
//! stops matching at once, and forgotten at every reload), and attempts per client address,
//! counted when they start (not when argon2 finishes, so a burst sent at once is counted as a
//! burst). An address may have one verification in flight, a user two; the rest are answered
//! 429 at once. Ten attempts a minute lock an address out for a minute. The table of
//! addresses has a fixed size and forgets the oldest first.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::auth::{Credentials, Realm, credentials};
use crate::http::Request;
use crate::sync::lock;

/// How long verified credentials are remembered.
const REMEMBER_FOR: Duration = Duration::from_secs(300);
/// Most verified credentials remembered.
const MAX_REMEMBERED: usize = 4096;
/// Attempts from one address within `WINDOW` that close it for `LOCKOUT`.
pub const MAX_ATTEMPTS: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Verifications in flight at once for one address, and for one user of a realm.
const IN_FLIGHT_PER_ADDRESS: u32 = 1;
const IN_FLIGHT_PER_USER: u32 = 2;
/// Most addresses tracked; past it the oldest is forgotten.
pub const MAX_TRACKED: usize = 16_384;

/// What a request's credentials allow, as far as can be told without argon2.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Verified recently: go on.
    Allowed,
    /// No usable credentials: 401.
    Challenge,
    /// Too many attempts from this address: 429 until the lockout ends.
    Locked,
    /// A verification for this address or user is already running: 429, retry shortly.
    Busy,
    /// Credentials to verify with argon2; the attempt is already counted.
    Verify(Attempt),
}

/// A verification that was counted when it started. Finishing it (`Guard::finish`) says how
/// it went; dropped unfinished, it still frees its place.
#[derive(Debug, PartialEq, Eq)]
pub struct Attempt {
    pub credentials: Credentials,
    peer: IpAddr,
    /// Realm and user, whose in-flight count it holds.
    user: (String, String),
    done: bool,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            guard().release(self, false, Instant::now());
        }
    }
}

/// One address's record.
struct Record {
    /// Attempts in the current window (counted at their start, uncounted when they succeed).
    attempts: u32,
    since: Instant,
    locked_until: Option<Instant>,
    in_flight: u32,
}

#[derive(Default)]
struct Attempts {
    by_address: HashMap<IpAddr, Record>,
    /// Addresses in the order they were first tracked, oldest first.
    order: VecDeque<IpAddr>,
    users_in_flight: HashMap<(String, String), u32>,
}

pub struct Guard {
    /// Random key of the keyed hash remembered logins are stored under.
    key: aws_lc_rs::hmac::Key,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    attempts: Mutex<Attempts>,
}

/// The server's guard.
pub fn guard() -> &'static Guard {
    static GUARD: OnceLock<Guard> = OnceLock::new();
    GUARD.get_or_init(|| {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = aws_lc_rs::hmac::Key::generate(aws_lc_rs::hmac::HMAC_SHA256, &rng)
            .expect("the system's random source works");
        Guard {
            key,
            verified: Mutex::new(HashMap::new()),
            attempts: Mutex::new(Attempts::default()),
        }
    })
}

impl Guard {
    /// What a request for a route in `realm` from `peer` may do; a verification it needs is
    /// counted now.
    pub fn check(&self, realm: &Realm, req: &Request, peer: IpAddr, now: Instant) -> Check {
        let Some(credentials) = credentials(req) else {
            return if self.locked(peer, now) {
                Check::Locked
            } else {
                Check::Challenge
            };
        };
        if let Some(phc) = realm.hash_of(&credentials.user) {
            let fingerprint = self.fingerprint(realm, &credentials, phc);
            let remembered = lock(&self.verified)
                .get(&fingerprint)
                .is_some_and(|at| now.duration_since(*at) < REMEMBER_FOR);
            if remembered && !self.locked(peer, now) {
                return Check::Allowed;
            }
        }
        let user = (realm.name.clone(), credentials.user.clone());
        let mut attempts = lock(&self.attempts);
        let users = attempts.users_in_flight.get(&user).copied().unwrap_or(0);
        let record = attempts.record(peer, now);
        if record.locked_until.is_some_and(|until| now < until) {
            return Check::Locked;
        }
        if record.in_flight >= IN_FLIGHT_PER_ADDRESS || users >= IN_FLIGHT_PER_USER {
            return Check::Busy;
        }
        if record.attempts >= MAX_ATTEMPTS {
            record.locked_until = Some(now + LOCKOUT);
            return Check::Locked;
        }
        record.attempts += 1;
        record.in_flight += 1;
        *attempts.users_in_flight.entry(user.clone()).or_insert(0) += 1;
        Check::Verify(Attempt {
            credentials,
            peer,
            user,
            done: false,
        })
    }

    /// Verifies an attempt with argon2 (slow: on the login threads). An unknown user costs
    /// the same as a wrong password. Success is remembered and uncounted; a failure that
    /// reaches the limit locks the address out.
    pub fn verify(&self, realm: &Realm, mut attempt: Attempt) -> bool {
        let ok = realm.verify(&attempt.credentials);
        let now = Instant::now();
        if ok {
            let phc = realm.hash_of(&attempt.credentials.user).unwrap_or_default();
            let fingerprint = self.fingerprint(realm, &attempt.credentials, phc);
            let mut verified = lock(&self.verified);
            if verified.len() >= MAX_REMEMBERED {
                verified.retain(|_, at| now.duration_since(*at) < REMEMBER_FOR);
                if verified.len() >= MAX_REMEMBERED {
                    verified.clear();
                }
            }
            verified.insert(fingerprint, now);
        }
        attempt.done = true;
        self.release(&attempt, ok, now);
        ok
    }

    /// Forgets every remembered login (the realms may have changed: a reload).
    pub fn forget_logins(&self) {
        lock(&self.verified).clear();
    }

    /// Frees an attempt's places; a success is taken off the address's count.
    fn release(&self, attempt: &Attempt, ok: bool, now: Instant) {
        let mut attempts = lock(&self.attempts);
        if let Some(n) = attempts.users_in_flight.get_mut(&attempt.user) {
            *n -= 1;
            if *n == 0 {
                attempts.users_in_flight.remove(&attempt.user);
            }
        }
        if let Some(record) = attempts.by_address.get_mut(&attempt.peer) {
            record.in_flight = record.in_flight.saturating_sub(1);
            if ok {
                record.attempts = record.attempts.saturating_sub(1);
            } else if record.attempts >= MAX_ATTEMPTS {
                record.locked_until = Some(now + LOCKOUT);
            }
        }
    }

    fn locked(&self, peer: IpAddr, now: Instant) -> bool {
        lock(&self.attempts)
            .by_address
            .get(&peer)
            .and_then(|r| r.locked_until)
            .is_some_and(|until| now < until)
    }

    fn fingerprint(&self, realm: &Realm, credentials: &Credentials, phc: &str) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        for part in [&realm.name, &credentials.user, &credentials.password, phc] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Addresses tracked now (for tests of the bound).
    pub fn tracked(&self) -> usize {
        lock(&self.attempts).by_address.len()
    }
}

impl Attempts {
    /// The record of `peer`, made (forgetting the oldest tracked address if the table is
    /// full) when it has none; its window restarted when it is over.
    fn record(&mut self, peer: IpAddr, now: Instant) -> &mut Record {
        if !self.by_address.contains_key(&peer) {
            while self.by_address.len() >= MAX_TRACKED {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                // An address with a verification in flight stays until it finishes.
                match self.by_address.get(&oldest) {
                    Some(r) if r.in_flight > 0 => self.order.push_back(oldest),
                    _ => {
                        self.by_address.remove(&oldest);
                    }
                }
            }
            self.order.push_back(peer);
        }
        let record = self.by_address.entry(peer).or_insert(Record {
            attempts: 0,
            since: now,
            locked_until: None,
            in_flight: 0,
        });
        if now.duration_since(record.since) >= WINDOW {
            record.attempts = 0;
            record.since = now;
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parsed;
    use crate::rules::auth::hash_password;

    fn request(auth: &str) -> Request {
        parsed(&format!("GET / HTTP/1.1\r\nHost: t\r\n{auth}\r\n"))
    }

    fn realm() -> Realm {
        Realm::new(
            "guard-test".into(),
            HashMap::from([("alice".to_owned(), hash_password("right").unwrap())]),
        )
        .unwrap()
        .0
    }

    const GOOD: &str = "Authorization: Basic YWxpY2U6cmlnaHQ=\r\n";
    const BAD: &str = "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n";

    #[test]
    fn a_login_is_remembered_until_the_realm_changes_or_a_reload() {
        let realm = realm();
        let guard = guard();
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Instant::now();
        let Check::Verify(attempt) = guard.check(&realm, &request(GOOD), peer, now) else {
            panic!("first time: verify")
        };
        assert!(guard.verify(&realm, attempt));
        assert_eq!(
            guard.check(&realm, &request(GOOD), peer, now),
            Check::Allowed
        );
        assert_eq!(
            guard.check(&realm, &request(""), peer, now),
            Check::Challenge
        );
        // The same password under a new hash (the user was re-hashed): not remembered.
        let rehashed = Realm::new(
            "guard-test".into(),
            HashMap::from([("alice".to_owned(), hash_password("right").unwrap())]),
        )
        .unwrap()
        .0;
        assert!(matches!(
            guard.check(&rehashed, &request(GOOD), peer, now),
            Check::Verify(_)
        ));
        guard.forget_logins();
        assert!(matches!(
            guard.check(&realm, &request(GOOD), peer, now),
            Check::Verify(_)
        ));
    }

    #[test]
    fn a_burst_is_counted_when_it_starts() {
        let realm = realm();
        let guard = guard();
        let peer: IpAddr = "192.0.2.8".parse().unwrap();
        let now = Instant::now();
        // One verification in flight per address: the rest of a burst is refused at once.
        let Check::Verify(first) = guard.check(&realm, &request(BAD), peer, now) else {
            panic!("the first is verified")
        };
        for _ in 0..50 {
            assert_eq!(guard.check(&realm, &request(GOOD), peer, now), Check::Busy);
        }
        assert!(!guard.verify(&realm, first));
        // Attempts one after another: the tenth locks the address out, the right password
        // included.
        for _ in 1..MAX_ATTEMPTS {
            let Check::Verify(attempt) = guard.check(&realm, &request(BAD), peer, now) else {
                panic!("not locked yet")
            };
            assert!(!guard.verify(&realm, attempt));
        }
        assert_eq!(
            guard.check(&realm, &request(GOOD), peer, now),
            Check::Locked
        );
        assert_eq!(guard.check(&realm, &request(""), peer, now), Check::Locked);
        let later = now + LOCKOUT + WINDOW;
        assert!(matches!(
            guard.check(&realm, &request(GOOD), peer, later),
            Check::Verify(_)
        ));
    }

    #[test]
    fn the_address_table_forgets_the_oldest_first() {
        let mut attempts = Attempts::default();
        let now = Instant::now();
        let first: IpAddr = "10.0.0.1".parse().unwrap();
        attempts.record(first, now).attempts = 5;
        for i in 0..MAX_TRACKED as u32 {
            let ip = IpAddr::from((0x0b00_0000u32 + i).to_be_bytes());
            attempts.record(ip, now);
        }
        assert_eq!(attempts.by_address.len(), MAX_TRACKED);
        assert!(!attempts.by_address.contains_key(&first), "the oldest went");
        let last = IpAddr::from((0x0b00_0000u32 + MAX_TRACKED as u32 - 1).to_be_bytes());
        assert!(attempts.by_address.contains_key(&last));
    }
}
