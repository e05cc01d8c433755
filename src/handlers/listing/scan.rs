//! One pass over a folder into compact, sorted entries: folders first, then by name (letter
//! case aside). Names live in one string; an entry is a few words. The scan is what every
//! page of a listing is rendered from, and costs one stat per entry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::http::HttpError;
use crate::path::{Exposure, resolve_in};

/// A folder's entries, read once.
#[derive(Debug)]
pub struct Scan {
    pub folder: PathBuf,
    /// The folder's inode and modification time when the scan began.
    stamp: Option<(u64, i128)>,
    pub built: Instant,
    /// How long the scan took: large folders are rescanned less often.
    pub took: Duration,
    names: String,
    entries: Vec<Entry>,
}

/// One entry; its name is `names[name_at..name_at + name_len]`.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    name_at: u32,
    name_len: u32,
    pub is_dir: bool,
    pub size: u64,
    /// Seconds since 1970.
    pub modified: Option<i64>,
}

impl Scan {
    /// Reads the folder `rest` (relative, empty or ending in '/') inside the canonical `root`.
    /// A symlink is followed (and listed) only when the exposure rules would serve it.
    pub fn read(root: &Path, rest: &str, exposure: Exposure) -> Result<Scan, HttpError> {
        let started = Instant::now();
        let folder = resolve_in(root, rest, exposure)?;
        // Stamped before reading: a change during the read makes the scan stale at once.
        let stamp = folder_stamp(&folder);
        let reader = std::fs::read_dir(&folder).map_err(|_| HttpError::NotFound)?;
        let mut names = String::new();
        let mut entries = Vec::new();
        for e in reader.filter_map(Result::ok) {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if (name.starts_with('.') && !exposure.dotfiles)
                || name.contains('\\')
                || crate::path::is_protected(&folder.join(&name))
            {
                continue;
            }
            let Ok(kind) = e.file_type() else { continue };
            let meta = if kind.is_symlink() {
                let Ok(real) = resolve_in(root, &format!("{rest}{name}"), exposure) else {
                    continue;
                };
                std::fs::metadata(real)
            } else {
                e.metadata()
            };
            let Ok(meta) = meta else { continue };
            let (Ok(name_at), Ok(name_len)) =
                (u32::try_from(names.len()), u32::try_from(name.len()))
            else {
                break;
            };
            names.push_str(&name);
            entries.push(Entry {
                name_at,
                name_len,
                is_dir: meta.is_dir(),
                size: meta.len(),
                modified: meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64),
            });
        }
        entries.shrink_to_fit();
        names.shrink_to_fit();
        let name = |e: &Entry| &names[e.name_at as usize..(e.name_at + e.name_len) as usize];
        // As people read names: letter case aside (then byte order, for one order).
        entries.sort_unstable_by(|a, b| {
            b.is_dir.cmp(&a.is_dir).then_with(|| {
                let (x, y) = (name(a), name(b));
                x.chars()
                    .flat_map(char::to_lowercase)
                    .cmp(y.chars().flat_map(char::to_lowercase))
                    .then_with(|| x.cmp(y))
            })
        });
        Ok(Scan {
            folder,
            stamp,
            built: Instant::now(),
            took: started.elapsed(),
            names,
            entries,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `i` (in the scan's order: folders first, then by name).
    pub fn entry(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    /// The name of entry `i`.
    pub fn name(&self, i: usize) -> &str {
        let e = &self.entries[i];
        &self.names[e.name_at as usize..(e.name_at + e.name_len) as usize]
    }

    /// The entries from `start`, at most `count` of them, with their names.
    pub fn slice(&self, start: usize, count: usize) -> impl Iterator<Item = (&str, &Entry)> {
        let end = start.saturating_add(count).min(self.entries.len());
        self.entries[start.min(end)..end].iter().map(|e| {
            (
                &self.names[e.name_at as usize..(e.name_at + e.name_len) as usize],
                e,
            )
        })
    }

    /// No entry was added, removed or renamed since the scan began (one stat).
    pub fn folder_unchanged(&self) -> bool {
        folder_stamp(&self.folder) == self.stamp
    }

    /// Bytes held.
    pub fn memory(&self) -> usize {
        self.names.capacity() + self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

/// A folder's inode and modification time, in nanoseconds.
fn folder_stamp(folder: &Path) -> Option<(u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(folder).ok()?;
    Some((
        meta.ino(),
        i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    ))
}
