//! Files and folders that hold data or keys (the data folder, the database, the lock, keys
//! and certificates tws makes): created for the owner alone, whatever the umask, and an
//! existing one made so if others could read it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

/// The lock file that keeps a second server off a data folder.
const LOCK_FILE: &str = "tws.lock";

/// Data folders this process holds the lock of, with the lock's file.
static HELD: Mutex<Vec<(PathBuf, Weak<File>)>> = Mutex::new(Vec::new());

/// Locks data folder `data` (`data/tws.lock`, flock) for this process, or says which
/// folder another server is using. The lock lasts while an `Arc` of it is held; asking
/// again in this process gives the same lock.
pub fn lock_data(data: &Path) -> anyhow::Result<Arc<File>> {
    use std::os::fd::AsRawFd;
    let key = data.canonicalize().unwrap_or_else(|_| data.to_path_buf());
    let mut held = crate::sync::lock(&HELD);
    held.retain(|(_, lock)| lock.strong_count() > 0);
    if let Some(lock) = held
        .iter()
        .find(|(p, _)| *p == key)
        .and_then(|(_, l)| l.upgrade())
    {
        return Ok(lock);
    }
    let path = data.join(LOCK_FILE);
    let file = file(&path).map_err(|e| {
        anyhow::anyhow!(
            "cannot open {}: {}",
            path.display(),
            crate::log::io_reason(&e)
        )
    })?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!(
            "data folder {} is in use by another tws (locked {}); give each server its own --data",
            data.display(),
            path.display()
        );
    }
    let lock = Arc::new(file);
    held.push((key, Arc::downgrade(&lock)));
    Ok(lock)
}

/// Creates `path` (and missing parents) for the owner alone (0700); an existing folder loses
/// whatever it granted others.
pub fn folder(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    restrict(path, 0o007)
}

/// Opens (creating if needed) a file for the owner alone (0600), for reading and writing;
/// an existing one is made so.
pub fn file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    restrict(path, 0o077)?;
    Ok(file)
}

/// Writes `bytes` to `path` for the owner alone, replacing it whole (a temporary file renamed
/// into place, so a reader never sees half of it).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_owned());
    let mut temporary = name.clone();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

/// Takes the `mask` bits off `path`'s mode when it has any of them.
fn restrict(path: &Path, mask: u32) -> io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & mask != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & !mask & 0o7777))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_for_the_owner_alone_whatever_the_umask() {
        let dir = std::env::temp_dir().join(format!("tws-private-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        // SAFETY: umask only changes this process's file creation mask.
        let old = unsafe { libc::umask(0) };
        folder(&dir.join("data")).unwrap();
        file(&dir.join("data/db")).unwrap();
        write(&dir.join("data/key"), b"secret").unwrap();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let mode = |p: &str| fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("data"), 0o700);
        assert_eq!(mode("data/db"), 0o600);
        assert_eq!(mode("data/key"), 0o600);
        // Folders and files made by others, open to everyone, are closed to others.
        fs::set_permissions(dir.join("data"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.join("data/db"), fs::Permissions::from_mode(0o644)).unwrap();
        folder(&dir.join("data")).unwrap();
        file(&dir.join("data/db")).unwrap();
        assert_eq!(mode("data"), 0o750);
        assert_eq!(mode("data/db"), 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }
}
