//! Folder listings. A folder is scanned once into compact entries (`scan`), cut into pages of
//! at most `max_listing_entries`, and each page of the default view (by name) is rendered
//! once, as HTML or JSON (`render`), then shared by every connection that sends it:
//! connections hold a reference to the bytes, never a copy. Other views (sorted otherwise,
//! filtered: `view`) are made from the same scan for their request. `Listings` keeps recently
//! listed folders for every loop and worker, so a folder is scanned once while it is
//! unchanged, however many loops and readers want it.

pub mod readme;
pub mod render;
pub mod scan;
pub mod view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::compress::{self, Effort, Settings};
use crate::http::encoding::{Choice, Coding};
use crate::http::response::{APPLICATION_JSON, Body, Response, TEXT_HTML};
use crate::http::{HttpError, Request};
use crate::path::Exposure;
use crate::sync::lock;
pub use render::Features;
use render::PageSpan;
use scan::Scan;
use view::View;

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

/// How long a built listing is reused at least. Entries added, removed or renamed show at
/// once (they change the folder's own modification time, checked at every use); the sizes and
/// times of files already listed, within this, or within twenty times the scan's own duration
/// for a folder slow to scan (100,000 entries: a few seconds).
pub const LISTING_TTL: Duration = Duration::from_secs(1);
const TTL_PER_SCAN: u32 = 20;
/// Default most entries on one page of a listing.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// Most rendered page bytes kept across every listing; past it a page is rendered for each
/// request instead of kept (memory per response stays bounded by one page).
const MAX_RENDERED_BYTES: usize = 32 << 20;
/// Most listings kept by `Listings`.
const MAX_LISTINGS: usize = 64;

/// Rendered page bytes kept now, across every listing.
static RENDERED: AtomicUsize = AtomicUsize::new(0);

/// The two forms of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

impl Format {
    fn media_type(self) -> &'static str {
        match self {
            Format::Html => TEXT_HTML,
            Format::Json => APPLICATION_JSON,
        }
    }

    /// JSON when the client asks for `application/json` and not for HTML.
    fn of(req: &Request) -> Format {
        let accept = req.header_str("accept").unwrap_or("");
        if accept.contains("application/json") && !accept.contains("text/html") {
            Format::Json
        } else {
            Format::Html
        }
    }
}

/// A page's bytes as they are made: HTML and JSON, each plain and in each coding.
#[derive(Debug, Default)]
struct Page {
    cells: [OnceLock<Bytes>; 8],
}

impl Page {
    fn cell(&self, format: Format, coding: Option<Coding>) -> &OnceLock<Bytes> {
        let form = match format {
            Format::Html => 0,
            Format::Json => 4,
        };
        &self.cells[form + coding.map_or(0, |c| 1 + c.index())]
    }
}

/// A folder's listing: its scan, and its pages as they are rendered.
#[derive(Debug)]
pub struct Listing {
    scan: Scan,
    /// The URL path of the folder, ending in '/'.
    path: String,
    page_size: usize,
    pages: Box<[Page]>,
    ttl: Duration,
    /// Compression of pages, when on for the route.
    compression: Option<Settings>,
    /// What the route lets people do from the page.
    features: Features,
    /// The folder's README, rendered.
    readme: Option<String>,
    /// The default view's order: every entry, in the scan's order.
    all: Box<[u32]>,
}

impl Listing {
    /// Lists the folder `rest` (relative, empty or ending in '/') inside the canonical `root`,
    /// reached at URL `path` (which ends in '/'), `page_size` entries a page.
    pub fn build(
        root: &Path,
        rest: &str,
        path: &str,
        exposure: Exposure,
        page_size: usize,
        compression: Option<Settings>,
        features: Features,
    ) -> Result<Listing, HttpError> {
        let scan = Scan::read(root, rest, exposure)?;
        let page_size = page_size.max(1);
        let pages = scan.len().div_ceil(page_size).max(1);
        let ttl = LISTING_TTL.max(scan.took * TTL_PER_SCAN);
        let readme = readme::render(&scan.folder);
        let all = (0..scan.len() as u32).collect();
        Ok(Listing {
            scan,
            path: path.to_owned(),
            page_size,
            pages: (0..pages).map(|_| Page::default()).collect(),
            ttl,
            compression,
            features,
            readme,
            all,
        })
    }

    /// The page of `rows` (a view's entries) that `view` asks for.
    fn span(&self, view: &View, rows: usize) -> Result<PageSpan, HttpError> {
        let pages = rows.div_ceil(self.page_size).max(1);
        if view.page > pages {
            return Err(HttpError::NotFound);
        }
        let start = (view.page - 1) * self.page_size;
        Ok(PageSpan {
            number: view.page,
            pages,
            start,
            count: self.page_size.min(rows - start.min(rows)),
        })
    }

    /// Answers `req` when that needs no rendering (a kept page of the default view, or an
    /// error); `None` otherwise. The loop answers such requests itself and hands the others to
    /// a worker, which calls `respond`.
    pub fn try_respond(&self, req: &Request) -> Option<Result<Response, HttpError>> {
        let view = match View::of(req.query()) {
            Ok(view) => view,
            Err(e) => return Some(Err(e)),
        };
        if !view.is_default_order() {
            return None;
        }
        let span = match self.span(&view, self.scan.len()) {
            Ok(span) => span,
            Err(e) => return Some(Err(e)),
        };
        let format = Format::of(req);
        let page = &self.pages[span.number - 1];
        let plain = page.cell(format, None).get()?;
        if let Ok(Some(coding)) = self.coding(req, format, plain.len()) {
            page.cell(format, Some(coding)).get()?;
        }
        Some(self.respond(req))
    }

    /// The coding to send a page of `len` bytes in, if any (406 when nothing is acceptable).
    fn coding(
        &self,
        req: &Request,
        format: Format,
        len: usize,
    ) -> Result<Option<Coding>, HttpError> {
        let Some(settings) = self
            .compression
            .as_ref()
            .filter(|s| s.applies(format.media_type(), len as u64))
        else {
            return Ok(None);
        };
        match settings.choose(req.header_str("accept-encoding")) {
            Choice::Coding(c) => Ok(Some(c)),
            Choice::Identity => Ok(None),
            Choice::NotAcceptable => Err(HttpError::NotAcceptable),
        }
    }

    /// Answers a request for one page, rendering it first if need be (on a worker: see
    /// `try_respond`).
    pub fn respond(&self, req: &Request) -> Result<Response, HttpError> {
        let view = View::of(req.query())?;
        let format = Format::of(req);
        let ordered;
        let rows: &[u32] = if view.is_default_order() {
            &self.all
        } else {
            ordered = view.order(&self.scan);
            &ordered
        };
        let span = self.span(&view, rows.len())?;
        let plain = if view.is_default_order() {
            self.page_bytes(&view, span, format)
        } else {
            Bytes::from(self.render(&view, rows, span, format))
        };
        let compressible = self
            .compression
            .as_ref()
            .is_some_and(|s| s.applies(format.media_type(), plain.len() as u64));
        let mut response = match self.coding(req, format, plain.len())? {
            None => Response::new(200, format.media_type(), Body::shared(plain)),
            Some(coding) if !view.is_default_order() => {
                let coded = compress::compress(coding, Effort::Fast, &plain)
                    .map_err(|_| HttpError::Internal("could not compress the listing"))?;
                Response::new(200, format.media_type(), Body::Bytes(coded))
                    .header("Content-Encoding", coding.token())
            }
            Some(coding) => {
                let coded = self.coded(span, format, coding, &plain)?;
                Response::new(200, format.media_type(), Body::shared(coded))
                    .header("Content-Encoding", coding.token())
            }
        };
        let vary = if compressible {
            "Accept, Accept-Encoding"
        } else {
            "Accept"
        };
        response = response.header("Vary", vary);
        if span.pages > 1 {
            let base = encode_path(&self.path);
            let mut links = Vec::new();
            if span.number < span.pages {
                let next = view.query_for_page(span.number + 1);
                links.push(format!("<{base}{next}>; rel=\"next\""));
            }
            if span.number > 1 {
                let prev = view.query_for_page(span.number - 1);
                links.push(format!("<{base}{prev}>; rel=\"prev\""));
            }
            response = response.header("Link", links.join(", "));
        }
        Ok(response)
    }

    /// The page's bytes: shared when kept, else rendered for this response alone (when the
    /// kept pages of every listing already fill `MAX_RENDERED_BYTES`).
    fn page_bytes(&self, view: &View, span: PageSpan, format: Format) -> Bytes {
        let cell = self.pages[span.number - 1].cell(format, None);
        if let Some(bytes) = cell.get() {
            return bytes.clone();
        }
        let rendered = self.render(view, &self.all, span, format);
        self.keep(cell, Bytes::from(rendered))
    }

    /// Renders one page of a view whose entries are `rows`.
    fn render(&self, view: &View, rows: &[u32], span: PageSpan, format: Format) -> Vec<u8> {
        let page = render::Page {
            scan: &self.scan,
            path: &self.path,
            view,
            rows,
            span,
            features: self.features,
            readme: self.readme.as_deref(),
        };
        match format {
            Format::Html => render::html(&page),
            Format::Json => render::json(&page),
        }
    }

    /// The page in `coding`, made from its plain bytes and kept like them.
    fn coded(
        &self,
        span: PageSpan,
        format: Format,
        coding: Coding,
        plain: &[u8],
    ) -> Result<Bytes, HttpError> {
        let cell = self.pages[span.number - 1].cell(format, Some(coding));
        if let Some(bytes) = cell.get() {
            return Ok(bytes.clone());
        }
        // Listings are rebuilt as their folder changes: fast compression, not the best.
        let compressed = compress::compress(coding, Effort::Fast, plain)
            .map_err(|_| HttpError::Internal("could not compress the listing"))?;
        Ok(self.keep(cell, Bytes::from(compressed)))
    }

    /// Keeps `bytes` in `cell` when the budget of kept pages allows.
    fn keep(&self, cell: &OnceLock<Bytes>, bytes: Bytes) -> Bytes {
        let len = bytes.len();
        if RENDERED.fetch_add(len, Ordering::AcqRel) + len > MAX_RENDERED_BYTES {
            RENDERED.fetch_sub(len, Ordering::AcqRel);
            return bytes;
        }
        if cell.set(bytes.clone()).is_err() {
            // Another worker kept the same page first.
            RENDERED.fetch_sub(len, Ordering::AcqRel);
        }
        cell.get().unwrap_or(&bytes).clone()
    }

    /// True while the listing is young enough and the folder has not changed.
    pub fn is_current(&self, now: Instant) -> bool {
        self.is_young(now) && self.folder_unchanged()
    }

    /// Built less than its time to live ago.
    pub fn is_young(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.scan.built) < self.ttl
    }

    /// No entry was added, removed or renamed since it was built (one stat).
    pub fn folder_unchanged(&self) -> bool {
        self.scan.folder_unchanged()
    }

    /// Bytes held: the scan and the pages kept so far.
    pub fn memory(&self) -> usize {
        self.scan.memory() + self.kept_bytes()
    }

    fn kept_bytes(&self) -> usize {
        self.pages
            .iter()
            .flat_map(|p| p.cells.iter().filter_map(OnceLock::get))
            .map(Bytes::len)
            .sum()
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        RENDERED.fetch_sub(self.kept_bytes(), Ordering::AcqRel);
    }
}

/// What identifies a listing: the folder, how it is exposed and paged, and its URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub root: PathBuf,
    pub rest: String,
    pub path: String,
    pub exposure: Exposure,
    pub page_size: usize,
    pub compressed: bool,
    pub features: Features,
}

type Slot = Arc<Mutex<Option<Arc<Listing>>>>;

/// The listings of recently listed folders, shared by every loop and worker of one routes
/// table. One worker builds a listing while others wanting the same one wait for it.
#[derive(Debug, Default)]
pub struct Listings {
    slots: Mutex<HashMap<Key, Slot>>,
}

impl Listings {
    /// The current listing of a folder (see `Listing::build`), built if need be.
    pub fn get(&self, key: Key, compression: Option<&Settings>) -> Result<Arc<Listing>, HttpError> {
        let slot = {
            let mut slots = lock(&self.slots);
            if slots.len() >= MAX_LISTINGS && !slots.contains_key(&key) {
                // Forget the listings nobody is building, oldest first.
                let mut idle: Vec<(Key, Instant)> = slots
                    .iter()
                    .filter_map(|(k, s)| {
                        let held = s.try_lock().ok()?;
                        Some((
                            k.clone(),
                            held.as_ref().map_or(Instant::now(), |l| l.scan.built),
                        ))
                    })
                    .collect();
                idle.sort_by_key(|(_, built)| *built);
                for (k, _) in idle.into_iter().take(slots.len() + 1 - MAX_LISTINGS) {
                    slots.remove(&k);
                }
            }
            Arc::clone(slots.entry(key.clone()).or_default())
        };
        let mut held = lock(&slot);
        if let Some(listing) = held.as_ref()
            && listing.is_current(Instant::now())
        {
            return Ok(Arc::clone(listing));
        }
        let listing = Arc::new(Listing::build(
            &key.root,
            &key.rest,
            &key.path,
            key.exposure,
            key.page_size,
            compression.cloned(),
            key.features,
        )?);
        *held = Some(Arc::clone(&listing));
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html_escape(text: &str) -> String {
        let mut out = Vec::new();
        render::escape_into(&mut out, text);
        String::from_utf8(out).unwrap()
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
