//! The entries of a folder to archive, depth first and sorted by name, found lazily (one
//! folder's names in memory at a time per level): what its listing would show, by the same
//! rules (dotfiles, symlinks, the data folder never), and no folder twice (a symlink loop).

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::path::{Exposure, is_protected, resolve_in};

/// One entry: its path inside the archive (`/`-separated, relative to the folder archived),
/// and a file to read, or a folder.
pub enum Item {
    Folder {
        name: String,
        modified: i64,
    },
    File {
        name: String,
        file: File,
        size: u64,
        modified: i64,
        mode: u32,
    },
}

/// A folder being walked: its path below the root, and the names still to visit.
struct Level {
    rel: String,
    names: std::vec::IntoIter<String>,
}

pub struct Walk {
    /// The canonical folder archived.
    root: PathBuf,
    exposure: Exposure,
    stack: Vec<Level>,
    /// (device, inode) of the folders on the current path, to skip a loop.
    seen: Vec<(u64, u64)>,
}

impl Walk {
    pub fn new(root: &Path, exposure: Exposure) -> Walk {
        let mut walk = Walk {
            root: root.to_path_buf(),
            exposure,
            stack: Vec::new(),
            seen: Vec::new(),
        };
        if let Ok(meta) = std::fs::metadata(root) {
            walk.enter(String::new(), &meta);
        }
        walk
    }

    /// Starts listing folder `rel` (empty, or ending in '/').
    fn enter(&mut self, rel: String, meta: &Metadata) {
        let key = (meta.dev(), meta.ino());
        if self.seen.contains(&key) {
            return;
        }
        let mut names: Vec<String> = std::fs::read_dir(self.root.join(&rel))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| {
                        (self.exposure.dotfiles || !n.starts_with('.')) && !n.contains('\\')
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort_unstable();
        self.seen.push(key);
        self.stack.push(Level {
            rel,
            names: names.into_iter(),
        });
    }

    /// The next entry, or `None` once everything was visited.
    pub fn next_item(&mut self) -> Option<Item> {
        loop {
            let level = self.stack.last_mut()?;
            let Some(name) = level.names.next() else {
                self.stack.pop();
                self.seen.pop();
                continue;
            };
            let rel = format!("{}{name}", level.rel);
            // The same rules as serving: symlinks as the route allows, never outside it
            // unless it follows them, never the data folder.
            let Ok(real) = resolve_in(&self.root, &rel, self.exposure) else {
                continue;
            };
            if is_protected(&real) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&real) else {
                continue;
            };
            let modified = meta.mtime();
            if meta.is_dir() {
                let folder = format!("{rel}/");
                self.enter(folder.clone(), &meta);
                return Some(Item::Folder {
                    name: folder,
                    modified,
                });
            }
            if !meta.is_file() {
                continue;
            }
            let Ok(file) = File::open(&real) else {
                continue;
            };
            return Some(Item::File {
                name: rel,
                file,
                size: meta.len(),
                modified,
                mode: meta.mode() & 0o777,
            });
        }
    }
}
