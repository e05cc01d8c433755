//! Basic authentication (RFC 7617) for routes that name a realm. Passwords are kept only as
//! argon2id hashes (PHC strings). A request without credentials is answered 401 at once, before
//! any file system lookup, so a protected tree answers the same for paths that exist and paths
//! that do not. Checking a password runs argon2 on a worker (it is slow on purpose); a
//! password once verified is remembered (under a keyed hash, never in clear) for a few minutes
//! so repeat requests are answered in the event loop; and an address that keeps failing is
//! answered 429 for a while, so guessing is bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};

use crate::http::Request;
use crate::sync::lock;

/// How long verified credentials are remembered.
const REMEMBER_FOR: Duration = Duration::from_secs(300);
/// Most verified credentials remembered.
const MAX_REMEMBERED: usize = 4096;
/// Failures from one address within `FAILURE_WINDOW` that close it for `LOCKOUT`.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
const LOCKOUT: Duration = Duration::from_secs(60);
/// Most addresses tracked for failures.
const MAX_TRACKED: usize = 16_384;

/// A realm: its name and its users' argon2id hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    pub name: String,
    /// user name → PHC string.
    users: HashMap<String, String>,
}

impl Realm {
    /// A realm whose every hash is checked to be an argon2id PHC string; the error names the
    /// user.
    pub fn new(name: String, users: HashMap<String, String>) -> Result<Realm, String> {
        for (user, phc) in &users {
            if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
                return Err(format!(
                    "user name {user:?} is empty or holds ':' or control characters"
                ));
            }
            let parsed = PasswordHash::new(phc).map_err(|_| {
                format!(
                    "user {user}: the password must be an argon2id hash (PHC string from `tws hash-password`), not a password"
                )
            })?;
            if parsed.algorithm != Algorithm::Argon2id.ident() {
                return Err(format!(
                    "user {user}: the hash uses {}; only argon2id is accepted",
                    parsed.algorithm
                ));
            }
        }
        if users.is_empty() {
            return Err("a realm needs at least one user".to_owned());
        }
        Ok(Realm { name, users })
    }

    /// `WWW-Authenticate` for a 401.
    pub fn challenge(&self) -> String {
        let name = self.name.replace(['"', '\\'], "");
        format!("Basic realm=\"{name}\", charset=\"UTF-8\"")
    }
}

/// What a request's credentials allow, as far as the event loop can tell without argon2.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Verified recently: go on.
    Allowed,
    /// No usable credentials: 401.
    Challenge,
    /// Too many failures from this address: 429.
    Locked,
    /// Credentials to verify with argon2, on a worker.
    Verify(Credentials),
}

/// A user name and password from an Authorization header.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even in debug output.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Remembered verifications and failures, for the whole server.
pub struct Guard {
    /// Random key of the keyed hash remembered credentials are stored under.
    key: aws_lc_rs::hmac::Key,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

struct Failures {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// The server's guard (remembered logins outlive route reloads).
pub fn guard() -> &'static Guard {
    static GUARD: OnceLock<Guard> = OnceLock::new();
    GUARD.get_or_init(|| {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = aws_lc_rs::hmac::Key::generate(aws_lc_rs::hmac::HMAC_SHA256, &rng)
            .expect("the system's random source works");
        Guard {
            key,
            verified: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    })
}

impl Guard {
    /// What a request for a route in `realm` from `peer` may do.
    pub fn check(&self, realm: &Realm, req: &Request, peer: IpAddr, now: Instant) -> Check {
        if self.locked(peer, now) {
            return Check::Locked;
        }
        let Some(credentials) = credentials(req) else {
            return Check::Challenge;
        };
        let fingerprint = self.fingerprint(realm, &credentials);
        let remembered = lock(&self.verified)
            .get(&fingerprint)
            .is_some_and(|at| now.duration_since(*at) < REMEMBER_FOR);
        if remembered {
            Check::Allowed
        } else {
            Check::Verify(credentials)
        }
    }

    /// Verifies credentials with argon2 (slow: on a worker). An unknown user costs the same
    /// as a wrong password. Success is remembered; failure counted against `peer`.
    pub fn verify(&self, realm: &Realm, credentials: &Credentials, peer: IpAddr) -> bool {
        let phc = realm
            .users
            .get(&credentials.user)
            .map_or_else(|| dummy_hash().as_str(), String::as_str);
        let ok = PasswordHash::new(phc).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(credentials.password.as_bytes(), &hash)
                .is_ok()
        }) && realm.users.contains_key(&credentials.user);
        let now = Instant::now();
        if ok {
            let mut verified = lock(&self.verified);
            if verified.len() >= MAX_REMEMBERED {
                verified.retain(|_, at| now.duration_since(*at) < REMEMBER_FOR);
                if verified.len() >= MAX_REMEMBERED {
                    verified.clear();
                }
            }
            verified.insert(self.fingerprint(realm, credentials), now);
        } else {
            self.fail(peer, now);
        }
        ok
    }

    fn fingerprint(&self, realm: &Realm, credentials: &Credentials) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        for part in [&realm.name, &credentials.user, &credentials.password] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    fn locked(&self, peer: IpAddr, now: Instant) -> bool {
        lock(&self.failures)
            .get(&peer)
            .and_then(|f| f.locked_until)
            .is_some_and(|until| now < until)
    }

    fn fail(&self, peer: IpAddr, now: Instant) {
        let mut failures = lock(&self.failures);
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&peer) {
            failures.retain(|_, f| {
                now.duration_since(f.since) < FAILURE_WINDOW
                    || f.locked_until.is_some_and(|u| now < u)
            });
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        let entry = failures.entry(peer).or_insert(Failures {
            count: 0,
            since: now,
            locked_until: None,
        });
        if now.duration_since(entry.since) >= FAILURE_WINDOW {
            entry.count = 0;
            entry.since = now;
        }
        entry.count += 1;
        if entry.count >= MAX_FAILURES {
            entry.locked_until = Some(now + LOCKOUT);
            entry.count = 0;
            entry.since = now;
        }
    }
}

/// Seconds an address stays locked out, for `Retry-After`.
pub fn lockout_seconds() -> u64 {
    LOCKOUT.as_secs()
}

/// `Authorization: Basic base64(user:password)`.
fn credentials(req: &Request) -> Option<Credentials> {
    let value = req.header_str("authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(token.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// Standard base64 with padding (RFC 4648 section 4).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) || bytes.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 || (pad > 0 && !std::ptr::eq(chunk, bytes.chunks(4).last()?)) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&got[..3 - pad]);
    }
    Some(out)
}

/// A real argon2id hash of nothing in particular, so an unknown user costs a verification too.
fn dummy_hash() -> &'static String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("tws dummy password").unwrap_or_default())
}

/// An argon2id PHC string for `password`, with a random salt (`tws hash-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "no random source".to_owned())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parsed;

    fn request(auth: &str) -> Request {
        parsed(&format!("GET / HTTP/1.1\r\nHost: t\r\n{auth}\r\n"))
    }

    #[test]
    fn base64_and_credentials_parse_strictly() {
        assert_eq!(base64_decode("YWxpY2U6c2VjcmV0").unwrap(), b"alice:secret");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        for bad in ["", "YQ", "Y===", "YQ==YQ==", "a*==", "YWxp Y2U="] {
            assert!(base64_decode(bad).is_none(), "{bad:?}");
        }
        let c = credentials(&request("Authorization: Basic YWxpY2U6c2VjcmV0\r\n")).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "secret"));
        assert!(credentials(&request("Authorization: Bearer abc\r\n")).is_none());
        assert!(credentials(&request("")).is_none());
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn realms_refuse_plain_and_foreign_hashes() {
        let hash = hash_password("pw").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let users = |h: &str| HashMap::from([("alice".to_owned(), h.to_owned())]);
        assert!(Realm::new("r".into(), users(&hash)).is_ok());
        let err = Realm::new("r".into(), users("hunter2")).unwrap_err();
        assert!(err.contains("not a password"), "{err}");
        let argon2i = hash.replacen("$argon2id$", "$argon2i$", 1);
        assert!(
            Realm::new("r".into(), users(&argon2i))
                .unwrap_err()
                .contains("only argon2id")
        );
    }

    #[test]
    fn verification_is_remembered_and_failures_lock_out() {
        let realm = Realm::new(
            "test".into(),
            HashMap::from([("alice".to_owned(), hash_password("right").unwrap())]),
        )
        .unwrap();
        let guard = guard();
        let peer: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Instant::now();
        let good = request("Authorization: Basic YWxpY2U6cmlnaHQ=\r\n");
        let Check::Verify(c) = guard.check(&realm, &good, peer, now) else {
            panic!("first time: verify")
        };
        assert!(guard.verify(&realm, &c, peer));
        assert_eq!(
            guard.check(&realm, &good, peer, Instant::now()),
            Check::Allowed
        );
        assert_eq!(
            guard.check(&realm, &request(""), peer, now),
            Check::Challenge
        );
        // Ten wrong passwords lock the address out; the right one then waits too.
        let bad = request("Authorization: Basic YWxpY2U6d3Jvbmc=\r\n");
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            let Check::Verify(c) = guard.check(&realm, &bad, other, Instant::now()) else {
                panic!("not locked yet")
            };
            assert!(!guard.verify(&realm, &c, other));
        }
        assert_eq!(
            guard.check(&realm, &good, other, Instant::now()),
            Check::Locked
        );
        assert_eq!(
            guard.check(&realm, &good, peer, Instant::now()),
            Check::Allowed
        );
    }
}
