//! Folder listings as HTML: sorted entries with size and time, every name escaped for HTML and
//! percent-encoded in links.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::http::response::{APPLICATION_JSON, Body, Response, TEXT_HTML};
use crate::http::{HttpError, Request};
use crate::path::{Exposure, resolve_in};
use crate::time::Civil;

/// Characters kept as they are in one path segment: RFC 3986 unreserved ones.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a normalised path segment by segment, keeping its slashes.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| utf8_percent_encode(segment, COMPONENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Escapes text for HTML content and attribute values; control characters become U+FFFD.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

struct Entry {
    name: String,
    is_dir: bool,
    size: u64,
    modified: Option<std::time::SystemTime>,
}

/// How long a built listing may be reused. Entries added, removed or renamed show at once
/// (they change the folder's own modification time, checked at every use); the sizes and
/// times of files already listed, within this.
pub const LISTING_TTL: Duration = Duration::from_secs(1);

/// A folder's listing, built once as HTML and as JSON, reusable while the folder is unchanged.
#[derive(Debug)]
pub struct Listing {
    folder: PathBuf,
    stamp: Option<(u64, i128)>,
    built: Instant,
    html: Arc<[u8]>,
    json: Arc<[u8]>,
}

impl Listing {
    /// Lists the folder `rest` (relative, empty or ending in '/') inside the canonical `root`,
    /// reached at URL `path` (which ends in '/').
    pub fn build(
        root: &Path,
        rest: &str,
        path: &str,
        exposure: Exposure,
    ) -> Result<Listing, HttpError> {
        let folder = resolve_in(root, rest, exposure)?;
        // Stamped before reading: a change during the read makes the listing stale at once.
        let stamp = folder_stamp(&folder);
        let entries = read_entries(&folder, root, rest, exposure)?;
        let items: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name,
                    "type": if e.is_dir { "dir" } else { "file" },
                    "size": e.size,
                    "modified": e.modified.map(|t| Civil::from_system(t).rfc3339()),
                })
            })
            .collect();
        let mut json = serde_json::to_vec(&items).unwrap_or_default();
        json.push(b'\n');
        Ok(Listing {
            folder,
            stamp,
            built: Instant::now(),
            html: Arc::from(html(&entries, path).into_bytes()),
            json: Arc::from(json),
        })
    }

    /// HTML, or JSON when the client asks for `application/json` and not for HTML.
    pub fn respond(&self, req: &Request) -> Response {
        let accept = req.header_str("accept").unwrap_or("");
        let response = if accept.contains("application/json") && !accept.contains("text/html") {
            Response::new(200, APPLICATION_JSON, Body::shared(Arc::clone(&self.json)))
        } else {
            Response::new(200, TEXT_HTML, Body::shared(Arc::clone(&self.html)))
        };
        response.header("Vary", "Accept")
    }

    /// True while the listing is young enough and the folder has not changed.
    pub fn is_current(&self, now: Instant) -> bool {
        self.is_young(now) && self.folder_unchanged()
    }

    /// Built less than `LISTING_TTL` ago.
    pub fn is_young(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.built) < LISTING_TTL
    }

    /// No entry was added, removed or renamed since it was built (one stat).
    pub fn folder_unchanged(&self) -> bool {
        folder_stamp(&self.folder) == self.stamp
    }

    pub fn memory(&self) -> usize {
        self.html.len() + self.json.len()
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

/// The entries a request could reach: folders first, then by name. One stat per entry; a
/// symlink is followed (and kept) only when the exposure rules would serve it.
fn read_entries(
    folder: &Path,
    root: &Path,
    rest: &str,
    exposure: Exposure,
) -> Result<Vec<Entry>, HttpError> {
    let reader = std::fs::read_dir(folder).map_err(|_| HttpError::NotFound)?;
    let mut entries: Vec<Entry> = reader
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if (name.starts_with('.') && !exposure.dotfiles) || name.contains('\\') {
                return None;
            }
            let meta = if e.file_type().ok()?.is_symlink() {
                let real = resolve_in(root, &format!("{rest}{name}"), exposure).ok()?;
                std::fs::metadata(real).ok()?
            } else {
                e.metadata().ok()?
            };
            Some(Entry {
                name,
                is_dir: meta.is_dir(),
                size: meta.len(),
                modified: meta.modified().ok(),
            })
        })
        .collect();
    entries.sort_unstable_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok(entries)
}

fn html(entries: &[Entry], path: &str) -> String {
    let mut html = String::with_capacity(512 + entries.len() * 160);
    let mut title = String::new();
    escape_into(&mut title, path);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Index of {title}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:2em}}td{{padding:.2em 1em .2em 0}}\
         td.n{{text-align:right}}</style>\n</head>\n<body>\n<h1>Index of {title}</h1>\n<table>\n\
         <tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
    );
    if path != "/" {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in entries {
        let slash = if entry.is_dir { "/" } else { "" };
        let href = utf8_percent_encode(&entry.name, COMPONENT);
        let _ = write!(html, "<tr><td><a href=\"./{href}{slash}\">");
        escape_into(&mut html, &entry.name);
        html.push_str(slash);
        html.push_str("</a></td><td class=\"n\">");
        if entry.is_dir {
            html.push('-');
        } else {
            let _ = write!(html, "{}", entry.size);
        }
        html.push_str("</td><td>");
        if let Some(t) = entry.modified {
            let c = Civil::from_system(t);
            let _ = write!(
                html,
                "{:04}-{:02}-{:02} {:02}:{:02}",
                c.year, c.month, c.day, c.hour, c.minute
            );
        }
        html.push_str("</td></tr>\n");
    }
    html.push_str("</table>\n</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html_escape(text: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, text);
        out
    }

    #[test]
    fn escapes_hostile_names() {
        assert_eq!(
            html_escape("a\"b'c<d>e&f"),
            "a&quot;b&#39;c&lt;d&gt;e&amp;f"
        );
        assert_eq!(html_escape("line\nbreak"), "line\u{FFFD}break");
        let encoded = utf8_percent_encode("a b#c?d%e\"<>é\n", COMPONENT).to_string();
        assert_eq!(encoded, "a%20b%23c%3Fd%25e%22%3C%3E%C3%A9%0A");
        assert_eq!(encode_path("/a b/c#d/"), "/a%20b/c%23d/");
    }
}
