//! Folder routes: a path inside a mounted folder becomes a file, its index, a listing, or a
//! redirect to the slash form of a folder.

use super::file::{self, ContentTypes, FileOptions};
use super::listing;
use crate::http::response::Response;
use crate::http::{HttpError, Request};
use crate::path::resolve_in;
use crate::routes::DirSpec;

/// Serves `rest` (the normalised path below the mount point) from `spec.folder`.
/// `path` is the whole normalised request path, used for redirects and listing titles.
pub fn serve(
    req: &Request,
    spec: &DirSpec,
    path: &str,
    rest: &str,
    types: &ContentTypes,
) -> Result<Response, HttpError> {
    let target = resolve_in(&spec.folder, rest, spec.exposure)?;
    let options = FileOptions {
        cache_control: spec.cache_control.as_deref(),
        ..FileOptions::default()
    };
    if !target.is_dir() {
        return file::serve(req, &spec.folder, rest, spec.exposure, types, options);
    }
    if !path.ends_with('/') {
        let mut location = listing::encode_path(path);
        location.push('/');
        return Ok(Response::empty(301).header("Location", location));
    }
    let index = format!("{rest}{}", spec.index);
    if resolve_in(&spec.folder, &index, spec.exposure).is_ok_and(|p| p.is_file()) {
        return file::serve(req, &spec.folder, &index, spec.exposure, types, options);
    }
    if spec.listing {
        listing::render(req, &target, path, spec.exposure)
    } else {
        Err(HttpError::NotFound)
    }
}
