//! Folder routes: a path inside a mounted folder becomes a file, its index, a listing, or a
//! redirect to the slash form of a folder.

use super::archive;
use super::file::{FileOptions, FileSet};
use super::listing::{self, Listing, Listings};
use super::media::ContentTypes;
use crate::compress::Settings;
use crate::http::HttpError;
use crate::http::response::Response;
use crate::path::resolve_in;
use crate::routes::DirSpec;
use std::sync::Arc;

/// What a folder route found for a request.
pub enum Served {
    /// A file (or a folder's index file): the caller answers from the set and may cache it.
    File(FileSet),
    /// A file found under another name than the request's (a clean URL's `.html`, a folder's
    /// index, the fallback): its path below the mount. Another route may own that path; the
    /// caller decides (an internal redirect, as nginx's `try_files`).
    Found(FileSet, String),
    /// A folder's listing, which the caller may cache too.
    Listing(Arc<Listing>),
    /// A redirect to the slash form of a folder.
    Other(Response),
}

/// Serves `rest` (the normalised path below the mount point) from `spec.folder`.
/// `path` is the whole normalised request path, used for redirects and listing titles;
/// `query` carries over into redirects. What would be a 404 becomes the route's fallback
/// file when it has one (an SPA's index), with its own validators.
pub fn serve(
    spec: &DirSpec,
    path: &str,
    rest: &str,
    query: Option<&str>,
    types: &ContentTypes,
    listings: &Listings,
    compression: Option<&Settings>,
) -> Result<Served, HttpError> {
    let options = FileOptions {
        cache_control: spec.cache_control.as_deref(),
        compression,
        ..FileOptions::default()
    };
    let open = |rel: &str| FileSet::open(&spec.folder, rel, spec.exposure, types, options);
    match find(spec, path, rest, query, &open, listings, compression) {
        Err(HttpError::NotFound) => match &spec.fallback {
            Some(fallback) => {
                let mut set = open(fallback)?;
                // Should a real file appear at this path, it wins at once.
                set.watch_missing(spec.folder.join(rest));
                Ok(Served::Found(set, fallback.clone()))
            }
            None => Err(HttpError::NotFound),
        },
        found => found,
    }
}

fn find(
    spec: &DirSpec,
    path: &str,
    rest: &str,
    query: Option<&str>,
    open: &dyn Fn(&str) -> Result<FileSet, HttpError>,
    listings: &Listings,
    compression: Option<&Settings>,
) -> Result<Served, HttpError> {
    let is_file =
        |rel: &str| resolve_in(&spec.folder, rel, spec.exposure).is_ok_and(|p| p.is_file());
    // Clean URLs: `/about.html` moves to `/about` for good.
    if spec.clean_urls
        && let Some(stem) = rest.strip_suffix(".html")
        && !stem.is_empty()
        && !stem.ends_with('/')
        && is_file(rest)
    {
        let mut location = listing::encode_path(&path[..path.len() - ".html".len()]);
        if let Some(query) = query {
            location.push('?');
            location.push_str(query);
        }
        return Ok(Served::Other(
            Response::empty(308).header("Location", location),
        ));
    }
    let target = match resolve_in(&spec.folder, rest, spec.exposure) {
        Ok(target) => target,
        // Clean URLs: `/about` is `about.html`.
        Err(HttpError::NotFound) if spec.clean_urls && !rest.is_empty() && !rest.ends_with('/') => {
            let html = format!("{rest}.html");
            if !is_file(&html) {
                return Err(HttpError::NotFound);
            }
            let mut set = open(&html)?;
            set.watch_missing(spec.folder.join(rest));
            return Ok(Served::Found(set, html));
        }
        Err(e) => return Err(e),
    };
    if !target.is_dir() {
        // A file has no slash form: `/a.txt/` names nothing.
        if path.ends_with('/') {
            return Err(HttpError::NotFound);
        }
        return open(rest).map(Served::File);
    }
    if !path.ends_with('/') {
        let mut location = listing::encode_path(path);
        location.push('/');
        return Ok(Served::Other(
            Response::empty(301).header("Location", location),
        ));
    }
    if let Some(format) = archive::requested(query) {
        if !spec.features().archives {
            return Err(HttpError::Forbidden(
                "this folder is not offered as an archive (archives = true on its route)",
            ));
        }
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("files");
        return Ok(Served::Other(archive::response(
            &target,
            name,
            spec.exposure,
            format?,
        )));
    }
    let index = format!("{rest}{}", spec.index);
    if is_file(&index) {
        return open(&index).map(|set| Served::Found(set, index));
    }
    if spec.listing {
        let key = listing::Key {
            root: spec.folder.clone(),
            rest: rest.to_owned(),
            path: path.to_owned(),
            exposure: spec.exposure,
            page_size: spec.max_listing_entries,
            compressed: compression.is_some(),
            features: spec.features(),
        };
        listings.get(key, compression).map(Served::Listing)
    } else {
        Err(HttpError::NotFound)
    }
}
