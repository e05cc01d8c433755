//! Folder routes: a path inside a mounted folder becomes a file, its index, a listing, or a
//! redirect to the slash form of a folder.

use super::file::{ContentTypes, FileOptions, FileSet};
use super::listing::{self, Listing, Listings};
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
    /// A folder's listing, which the caller may cache too.
    Listing(Arc<Listing>),
    /// A redirect to the slash form of a folder.
    Other(Response),
}

/// Serves `rest` (the normalised path below the mount point) from `spec.folder`.
/// `path` is the whole normalised request path, used for redirects and listing titles.
pub fn serve(
    spec: &DirSpec,
    path: &str,
    rest: &str,
    types: &ContentTypes,
    listings: &Listings,
    compression: Option<&Settings>,
) -> Result<Served, HttpError> {
    let target = resolve_in(&spec.folder, rest, spec.exposure)?;
    let options = FileOptions {
        cache_control: spec.cache_control.as_deref(),
        compression,
        ..FileOptions::default()
    };
    let open = |rel: &str| FileSet::open(&spec.folder, rel, spec.exposure, types, options);
    if !target.is_dir() {
        return open(rest).map(Served::File);
    }
    if !path.ends_with('/') {
        let mut location = listing::encode_path(path);
        location.push('/');
        return Ok(Served::Other(
            Response::empty(301).header("Location", location),
        ));
    }
    let index = format!("{rest}{}", spec.index);
    if resolve_in(&spec.folder, &index, spec.exposure).is_ok_and(|p| p.is_file()) {
        return open(&index).map(Served::File);
    }
    if spec.listing {
        let page_size = spec.max_listing_entries;
        listings
            .get(
                &spec.folder,
                rest,
                path,
                spec.exposure,
                page_size,
                compression,
            )
            .map(Served::Listing)
    } else {
        Err(HttpError::NotFound)
    }
}
