//! Changes to a folder route's folder, each atomic: a file is written to an unnamed file in
//! its target folder (`O_TMPFILE`; a named dotfile where the file system has no such thing),
//! synced, then linked in under its name (refused when the name exists, unless `overwrite`:
//! then renamed over it), so a half-sent upload never shows under the real name and two
//! uploads of one name give one whole file; new folders, deletes and renames (refused where
//! the new name exists). Names are checked like request paths.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::http::HttpError;
use crate::path::{Exposure, is_protected, resolve_in};

/// The prefix of the named temporary files used where `O_TMPFILE` is not available.
const TEMPORARY: &str = ".tws-upload-";

/// Checks one name a client gave for something in the folder; the error says why.
pub fn check_name(name: &str, exposure: Exposure) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("the name \"{name}\" is not allowed"));
    }
    if name.len() > 255 {
        return Err("a name may be at most 255 bytes".to_owned());
    }
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err(format!(
            "the name {name:?} holds a slash, a backslash or a control character"
        ));
    }
    if name.starts_with('.') && !exposure.dotfiles {
        return Err(format!(
            "the name \"{name}\" starts with a dot (hidden files are not served here)"
        ));
    }
    Ok(())
}

/// Checks a relative path of names (`a/b/c.txt`): each name, at most 32 deep.
pub fn check_path(path: &str, exposure: Exposure) -> Result<(), String> {
    let names: Vec<&str> = path.split('/').collect();
    if names.len() > 32 {
        return Err("a path may be at most 32 folders deep".to_owned());
    }
    names.iter().try_for_each(|n| check_name(n, exposure))
}

/// The folder `rel` (relative to `root`, empty or ending in '/') as a real path inside it,
/// made with its missing parents when `create`; never the data folder.
pub fn folder(
    root: &Path,
    rel: &str,
    exposure: Exposure,
    create: bool,
) -> Result<PathBuf, HttpError> {
    let rel = rel.trim_end_matches('/');
    if create && !rel.is_empty() {
        let mut at = String::new();
        for name in rel.split('/') {
            at.push_str(name);
            if resolve_in(root, &at, exposure).is_err() {
                let parent =
                    resolve_in(root, at.rsplit_once('/').map_or("", |(p, _)| p), exposure)?;
                match std::fs::create_dir(parent.join(name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_error(&e)),
                }
            }
            at.push('/');
        }
    }
    let real = resolve_in(root, rel, exposure)?;
    if !real.is_dir() {
        return Err(HttpError::NotFound);
    }
    if is_protected(&real) {
        return Err(HttpError::NotFound);
    }
    Ok(real)
}

/// A file being written, not yet under its name.
pub struct Staged {
    file: File,
    folder: PathBuf,
    name: String,
    /// Where it lies meanwhile, when the file system has no unnamed files.
    temporary: Option<PathBuf>,
    pub written: u64,
    /// Bytes whose writeback to disk has been started.
    started: u64,
    limit: u64,
}

/// Bytes written between starts of their writeback, so that the sync before naming the file
/// finds little left to do.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Whether the file took a free name or replaced a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    Created,
    Replaced,
}

impl Staged {
    /// Starts a file `name` in `folder` (which exists), at most `limit` bytes.
    pub fn new(folder: &Path, name: &str, limit: u64) -> Result<Staged, HttpError> {
        let tmpfile = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o644)
            .open(folder);
        let (file, temporary) = match tmpfile {
            Ok(file) => (file, None),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                ) =>
            {
                let mut random = [0u8; 8];
                aws_lc_rs::rand::fill(&mut random)
                    .map_err(|_| HttpError::Internal("no random source"))?;
                let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
                let path = folder.join(format!("{TEMPORARY}{hex}"));
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&path)
                    .map_err(|e| io_error(&e))?;
                (file, Some(path))
            }
            Err(e) => return Err(io_error(&e)),
        };
        Ok(Staged {
            file,
            folder: folder.to_path_buf(),
            name: name.to_owned(),
            temporary,
            written: 0,
            started: 0,
            limit,
        })
    }

    /// Appends bytes (the disk full is a 507; past the limit, a 413).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        self.written += bytes.len() as u64;
        if self.written > self.limit {
            return Err(HttpError::PayloadTooLarge);
        }
        self.file.write_all(bytes).map_err(|e| io_error(&e))?;
        if self.written - self.started >= WRITEBACK_STEP {
            // Starts writing back what is written so far, without waiting for it: the disk
            // works while the body still arrives. Only a hint: `place` syncs whatever it did.
            // SAFETY: the descriptor is this file's own, open for its lifetime.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.started = self.written;
        }
        Ok(())
    }

    /// Syncs the file and puts it under its name (slow: on a worker).
    pub fn place(mut self, overwrite: bool) -> Result<Placed, HttpError> {
        self.file.sync_all().map_err(|e| io_error(&e))?;
        let target = self.folder.join(&self.name);
        let placed = match self.temporary.take() {
            None => self.link(&target, overwrite)?,
            Some(temporary) => {
                let placed = rename(&temporary, &target, overwrite);
                if placed.is_err() {
                    let _ = std::fs::remove_file(&temporary);
                }
                placed?
            }
        };
        if let Ok(folder) = File::open(&self.folder) {
            let _ = folder.sync_all();
        }
        Ok(placed)
    }

    /// Links the unnamed file in under `target` (through /proc/self/fd, which needs no
    /// privilege); with `overwrite`, under a temporary name renamed over the target.
    fn link(&self, target: &Path, overwrite: bool) -> Result<Placed, HttpError> {
        let fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
        let link = |to: &Path| -> io::Result<()> {
            let from = CString::new(fd.as_bytes()).map_err(io::Error::other)?;
            let to = CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
            // SAFETY: both paths are NUL-terminated and live for the call.
            let rc = unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        match link(target) {
            Ok(()) => Ok(Placed::Created),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && overwrite => {
                let mut random = [0u8; 8];
                let _ = aws_lc_rs::rand::fill(&mut random);
                let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
                let temporary = self.folder.join(format!("{TEMPORARY}{hex}"));
                link(&temporary).map_err(|e| io_error(&e))?;
                let placed = rename(&temporary, target, true);
                if placed.is_err() {
                    let _ = std::fs::remove_file(&temporary);
                }
                placed.map(|_| Placed::Replaced)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists()),
            Err(e) => Err(io_error(&e)),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // A file never placed: an unnamed one goes with its descriptor; a named one is removed.
        if let Some(temporary) = self.temporary.take() {
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// Renames `from` to `to`: over it with `overwrite`, else only if `to` does not exist
/// (`RENAME_NOREPLACE`: checked and done in one step).
pub fn rename(from: &Path, to: &Path, overwrite: bool) -> Result<Placed, HttpError> {
    if overwrite {
        let existed = to.exists();
        std::fs::rename(from, to).map_err(|e| io_error(&e))?;
        return Ok(if existed {
            Placed::Replaced
        } else {
            Placed::Created
        });
    }
    let from = CString::new(from.as_os_str().as_bytes())
        .map_err(|_| HttpError::BadRequest("a name holds NUL"))?;
    let to = CString::new(to.as_os_str().as_bytes())
        .map_err(|_| HttpError::BadRequest("a name holds NUL"))?;
    // SAFETY: both paths are NUL-terminated and live for the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(Placed::Created);
    }
    let e = io::Error::last_os_error();
    Err(if e.kind() == io::ErrorKind::AlreadyExists {
        exists()
    } else {
        io_error(&e)
    })
}

/// A new folder `name` in `folder`.
pub fn mkdir(folder: &Path, name: &str) -> Result<(), HttpError> {
    match std::fs::create_dir(folder.join(name)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists()),
        Err(e) => Err(io_error(&e)),
    }
}

/// Deletes `path` (a file, a symlink itself, or a folder and all it holds; links are never
/// followed).
pub fn delete(path: &Path) -> Result<(), HttpError> {
    let meta = std::fs::symlink_metadata(path).map_err(|_| HttpError::NotFound)?;
    let done = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    done.map_err(|e| io_error(&e))
}

fn exists() -> HttpError {
    HttpError::Conflict("that name is taken (a route with overwrite = true replaces files)")
}

/// What an I/O error on a write means for the client.
pub fn io_error(e: &io::Error) -> HttpError {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => HttpError::InsufficientStorage,
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => {
            HttpError::Forbidden("the server may not write there")
        }
        Some(libc::ENOTEMPTY) => HttpError::Conflict("the folder is not empty"),
        Some(libc::ENOENT) => HttpError::NotFound,
        Some(libc::ENAMETOOLONG) => HttpError::BadRequest("the name is too long"),
        _ => HttpError::Internal("the file could not be written"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_paths() {
        let plain = Exposure::default();
        let dotfiles = Exposure {
            dotfiles: true,
            ..Exposure::default()
        };
        let cases: &[(&str, Exposure, bool)] = &[
            ("report.pdf", plain, true),
            ("a b ü.txt", plain, true),
            ("", plain, false),
            ("..", plain, false),
            ("a/b", plain, false),
            ("a\\b", plain, false),
            ("a\0b", plain, false),
            ("a\nb", plain, false),
            (".env", plain, false),
            (".env", dotfiles, true),
        ];
        for (name, exposure, ok) in cases {
            assert_eq!(check_name(name, *exposure).is_ok(), *ok, "{name:?}");
        }
        assert!(check_path("a/b/c.txt", plain).is_ok());
        assert!(check_path("a/../c.txt", plain).is_err());
    }

    #[test]
    fn a_staged_file_appears_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("tws-writes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut staged = Staged::new(&dir, "a.txt", 100).unwrap();
        staged.write(b"hello").unwrap();
        assert!(
            !dir.join("a.txt").exists(),
            "nothing under the name before placing"
        );
        assert_eq!(staged.place(false).unwrap(), Placed::Created);
        assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"hello");
        let mut again = Staged::new(&dir, "a.txt", 100).unwrap();
        again.write(b"other").unwrap();
        assert_eq!(again.place(false).unwrap_err().status(), 409);
        let mut replace = Staged::new(&dir, "a.txt", 100).unwrap();
        replace.write(b"new").unwrap();
        assert_eq!(replace.place(true).unwrap(), Placed::Replaced);
        assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"new");
        let mut big = Staged::new(&dir, "b.txt", 4).unwrap();
        assert_eq!(big.write(b"12345").unwrap_err().status(), 413);
        drop(big);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
