//! URL path safety, in one place: a request path is percent-decoded once and normalised before
//! routing, and a path inside a served folder is resolved so that it can never leave that folder.

use std::path::{Path, PathBuf};

use crate::http::HttpError;

/// Decodes and normalises the path of a request target.
///
/// Each `/`-separated segment is percent-decoded once. A decoded segment may not contain `/`,
/// `\`, or NUL (so `%2f`, `%5c` and `%00` are refused), nor may the raw path hold a backslash.
/// Empty and `.` segments are dropped, `..` removes the previous segment, and a `..` that would
/// climb above `/` is refused. A trailing slash is kept, because it names a folder.
pub fn normalize(raw: &str) -> Result<String, HttpError> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(HttpError::BadRequest("path must start with '/'"));
    };
    if raw.contains('\\') {
        return Err(HttpError::BadRequest("backslash in path"));
    }
    if is_plain(rest) {
        return Ok(raw.to_owned());
    }
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for raw_segment in rest.split('/') {
        let segment = decode_segment(raw_segment)?;
        match segment.as_str() {
            "" => {}
            "." => trailing_slash = true,
            ".." => {
                if segments.pop().is_none() {
                    return Err(HttpError::BadRequest("path climbs above the root"));
                }
                trailing_slash = true;
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    trailing_slash |= raw.ends_with('/');
    let mut path = String::with_capacity(raw.len());
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if trailing_slash || segments.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// True when a path (after its leading '/') is already normalised: no escapes, no NUL, no
/// empty, `.` or `..` segments.
fn is_plain(rest: &str) -> bool {
    !rest.contains(['%', '\0'])
        && !rest.starts_with('/')
        && !rest.contains("//")
        && rest
            .split('/')
            .all(|segment| segment != "." && segment != "..")
}

const BAD_ESCAPE: HttpError = HttpError::BadRequest("invalid percent-encoding in path");

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn decode_segment(raw: &str) -> Result<String, HttpError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let Some(&[hi, lo]) = bytes.get(i + 1..i + 3) else {
                return Err(BAD_ESCAPE);
            };
            let (Some(hi), Some(lo)) = (hex_digit(hi), hex_digit(lo)) else {
                return Err(BAD_ESCAPE);
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    match out.iter().find(|b| matches!(b, b'/' | b'\\' | 0)) {
        Some(b'/') => Err(HttpError::BadRequest("encoded '/' in path")),
        Some(b'\\') => Err(HttpError::BadRequest("backslash in path")),
        Some(_) => Err(HttpError::BadRequest("NUL byte in path")),
        None => {
            String::from_utf8(out).map_err(|_| HttpError::BadRequest("path is not valid UTF-8"))
        }
    }
}

/// Which symlinks inside a served folder are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Symlinks {
    /// Followed while their target stays inside the folder (the default).
    #[default]
    Inside,
    /// Never followed: any symlink on the way is reported as not found.
    Never,
    /// Followed wherever they lead (the operator vouches for every link in the folder).
    Follow,
}

impl Symlinks {
    pub const NAMES: [&'static str; 3] = ["inside", "never", "follow"];

    pub fn from_name(name: &str) -> Option<Symlinks> {
        match name {
            "inside" => Some(Symlinks::Inside),
            "never" => Some(Symlinks::Never),
            "follow" => Some(Symlinks::Follow),
            _ => None,
        }
    }
}

/// How a folder is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Exposure {
    /// Serve names starting with `.`; hidden (404) by default.
    pub dotfiles: bool,
    pub symlinks: Symlinks,
}

/// Resolves `rest`, a normalised relative path (`a/b.txt`, no leading slash), inside `folder`,
/// which must be canonical. Hidden names, and symlinks the policy refuses, are reported as not
/// found, so their existence is not revealed.
/// Folders tws writes (its data folder: database, keys, certificates), which no route ever
/// serves or lists, whatever it says. Canonical paths.
static PROTECTED: std::sync::RwLock<Vec<PathBuf>> = std::sync::RwLock::new(Vec::new());

/// Never serves or lists `folder` (which exists) or anything in it.
pub fn protect(folder: &Path) {
    if let Ok(real) = folder.canonicalize() {
        let mut list = PROTECTED
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !list.contains(&real) {
            list.push(real);
        }
    }
}

/// True when `path` (canonical, or a canonical folder joined with a name) is or lies in a
/// protected folder.
pub fn is_protected(path: &Path) -> bool {
    PROTECTED
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(|p| path.starts_with(p))
}

pub fn resolve_in(folder: &Path, rest: &str, exposure: Exposure) -> Result<PathBuf, HttpError> {
    let mut candidate = folder.to_path_buf();
    for segment in rest.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') && !exposure.dotfiles {
            return Err(HttpError::NotFound);
        }
        // Callers pass normalised URL paths or names read from a folder; refuse anything a
        // request could not have named, whatever its source.
        if segment == ".." || segment.contains('\\') {
            return Err(HttpError::NotFound);
        }
        candidate.push(segment);
    }
    let real = candidate.canonicalize().map_err(|_| HttpError::NotFound)?;
    if is_protected(&real) {
        return Err(HttpError::NotFound);
    }
    let allowed = match exposure.symlinks {
        Symlinks::Inside => real.starts_with(folder),
        // The candidate is built from a canonical folder and plain names, so it equals its
        // canonical form exactly when no symlink was crossed.
        Symlinks::Never => real == candidate,
        Symlinks::Follow => true,
    };
    if allowed {
        Ok(real)
    } else {
        Err(HttpError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_or_refuses_each_path() {
        // (raw path, normalised path or error status)
        let cases: &[(&str, Result<&str, u16>)] = &[
            ("/", Ok("/")),
            ("/a/b", Ok("/a/b")),
            ("/a/b/", Ok("/a/b/")),
            ("//a///b", Ok("/a/b")),
            ("/a/./b", Ok("/a/b")),
            ("/a/.", Ok("/a/")),
            ("/a/b/../c", Ok("/a/c")),
            ("/a/..", Ok("/")),
            ("/%61%62", Ok("/ab")),
            ("/caf%C3%A9", Ok("/café")),
            ("/a%20b", Ok("/a b")),
            ("/%2e%2e/x", Err(400)),
            ("/a/%2E%2E/%2e%2e/etc/passwd", Err(400)),
            ("/..", Err(400)),
            ("/../etc/passwd", Err(400)),
            ("/a/../../etc/passwd", Err(400)),
            ("/a%2fb", Err(400)),
            ("/a%2Fb", Err(400)),
            ("/a%5cb", Err(400)),
            ("/a\\..\\b", Err(400)),
            ("/a%00b", Err(400)),
            ("/a\0b", Err(400)),
            ("/%", Err(400)),
            ("/%4", Err(400)),
            ("/%zz", Err(400)),
            ("/%+1", Err(400)),
            ("/%ff", Err(400)),
            ("a/b", Err(400)),
            ("*", Err(400)),
        ];
        for (raw, want) in cases {
            let got = normalize(raw).map_err(|e| e.status());
            assert_eq!(got.as_deref().map_err(|s| *s), *want, "path {raw:?}");
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tws-path-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("site/sub")).unwrap();
        std::fs::write(dir.join("secret.txt"), "secret").unwrap();
        std::fs::write(dir.join("site/a.txt"), "a").unwrap();
        std::fs::write(dir.join("site/.env"), "hidden").unwrap();
        std::fs::write(dir.join("site/sub/b.txt"), "b").unwrap();
        dir
    }

    #[test]
    fn resolves_inside_and_refuses_hidden_and_escaping_paths() {
        let dir = scratch("resolve");
        let site = dir.join("site").canonicalize().unwrap();
        std::os::unix::fs::symlink(dir.join("secret.txt"), site.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(site.join("sub/b.txt"), site.join("in.txt")).unwrap();
        std::os::unix::fs::symlink(&dir, site.join("up")).unwrap();
        let hidden = Exposure::default();
        let cases: &[(&str, Result<&str, u16>)] = &[
            ("a.txt", Ok("a.txt")),
            ("sub/b.txt", Ok("sub/b.txt")),
            ("sub/", Ok("sub")),
            ("", Ok("")),
            ("in.txt", Ok("sub/b.txt")),
            ("out.txt", Err(404)),
            ("up/secret.txt", Err(404)),
            (".env", Err(404)),
            ("sub/.git/config", Err(404)),
            ("missing.txt", Err(404)),
        ];
        for (rest, want) in cases {
            let got = resolve_in(&site, rest, hidden).map_err(|e| e.status());
            let want = want.map(|w| site.join(w).components().collect::<PathBuf>());
            assert_eq!(got, want, "rest {rest:?}");
        }
        let shown = Exposure {
            dotfiles: true,
            ..Exposure::default()
        };
        assert_eq!(resolve_in(&site, ".env", shown), Ok(site.join(".env")));
        let never = Exposure {
            symlinks: Symlinks::Never,
            ..Exposure::default()
        };
        assert_eq!(resolve_in(&site, "in.txt", never), Err(HttpError::NotFound));
        assert_eq!(resolve_in(&site, "a.txt", never), Ok(site.join("a.txt")));
        let follow = Exposure {
            symlinks: Symlinks::Follow,
            ..Exposure::default()
        };
        assert_eq!(
            resolve_in(&site, "out.txt", follow),
            Ok(dir.join("secret.txt").canonicalize().unwrap())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
