//! Basic authentication (RFC 7617) for routes that name a realm: realms and their users,
//! whose passwords are kept only as argon2id hashes (PHC strings, checked whole at load), and
//! credentials read from `Authorization`. A request without credentials is answered 401 at
//! once, before any file system lookup, so a protected tree answers the same for paths that
//! exist and paths that do not. Checking a password runs argon2 on threads of its own (it is
//! slow on purpose); what bounds guessing is `guard`.

use std::collections::HashMap;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};

use crate::http::Request;

/// Argon2 memory (KiB) and passes above which a hash costs much more than
/// `tws hash-password`'s (m=19456, t=2): a warning at load.
const HEAVY_COST: u64 = 4 * 19_456 * 2;

/// A realm: its name and its users' argon2id hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    pub name: String,
    /// user name → PHC string.
    users: HashMap<String, String>,
}

impl Realm {
    /// A realm whose every hash is checked to be a whole argon2id PHC string; the error names
    /// the user. Also returns warnings (hashes much costlier than `tws hash-password`'s).
    pub fn new(
        name: String,
        users: HashMap<String, String>,
    ) -> Result<(Realm, Vec<String>), String> {
        let mut warnings = Vec::new();
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
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return Err(format!(
                    "user {user}: the argon2id hash is cut short (no salt or no hash after the parameters); copy the whole line `tws hash-password` printed"
                ));
            }
            let params = argon2::Params::try_from(&parsed)
                .map_err(|e| format!("user {user}: the argon2id parameters are invalid: {e}"))?;
            let cost = u64::from(params.m_cost()) * u64::from(params.t_cost());
            if cost > HEAVY_COST {
                warnings.push(format!(
                    "user {user}'s hash (m={}, t={}) costs {}x a `tws hash-password` one: a wrong password for this user takes that much longer to check than one for an unknown user, which tells a guesser the user exists; re-hash it with `tws hash-password`",
                    params.m_cost(),
                    params.t_cost(),
                    cost / (19_456 * 2)
                ));
            }
        }
        if users.is_empty() {
            return Err("a realm needs at least one user".to_owned());
        }
        Ok((Realm { name, users }, warnings))
    }

    /// The stored hash of `user`.
    pub fn hash_of(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }

    /// True when the credentials name a user of the realm with the right password. An
    /// unknown user costs an argon2 verification too.
    pub fn verify(&self, credentials: &Credentials) -> bool {
        let phc = self
            .users
            .get(&credentials.user)
            .map_or_else(|| dummy_hash().as_str(), String::as_str);
        PasswordHash::new(phc).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(credentials.password.as_bytes(), &hash)
                .is_ok()
        }) && self.users.contains_key(&credentials.user)
    }

    /// `WWW-Authenticate` for a 401.
    pub fn challenge(&self) -> String {
        let name = self.name.replace(['"', '\\'], "");
        format!("Basic realm=\"{name}\", charset=\"UTF-8\"")
    }
}

/// A user name and password from an Authorization header.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub(super) password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even in debug output.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// `Authorization: Basic base64(user:password)`.
pub fn credentials(req: &Request) -> Option<Credentials> {
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
        // A hash cut short after its parameters, or after its salt.
        let parts: Vec<&str> = hash.split('$').collect();
        for cut in [parts[..4].join("$"), parts[..5].join("$")] {
            let err = Realm::new("r".into(), users(&cut)).unwrap_err();
            assert!(err.contains("cut short"), "{cut}: {err}");
        }
        // Much costlier than `tws hash-password`'s: accepted, with a warning.
        let heavy = hash.replacen("m=19456,t=2", "m=262144,t=3", 1);
        let (_, warnings) = Realm::new("r".into(), users(&heavy)).unwrap();
        assert!(warnings[0].contains("costs 20x"), "{warnings:?}");
        let err = Realm::new("r".into(), users("hunter2")).unwrap_err();
        assert!(err.contains("not a password"), "{err}");
        let argon2i = hash.replacen("$argon2id$", "$argon2i$", 1);
        assert!(
            Realm::new("r".into(), users(&argon2i))
                .unwrap_err()
                .contains("only argon2id")
        );
    }
}
