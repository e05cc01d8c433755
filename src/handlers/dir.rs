//! Folder routes: a path inside a mounted folder becomes a file, its index, a listing, or a
//! redirect to the slash form of a folder.

use super::{file, listing};
use crate::http::HttpError;
use crate::http::response::Response;
use crate::path::{Exposure, resolve_in};
use crate::routes::DirSpec;

const EXPOSURE: Exposure = Exposure { dotfiles: false };

/// Serves `rest` (the normalised path below the mount point) from `spec.folder`.
/// `path` is the whole normalised request path, used for redirects and listing titles.
pub fn serve(spec: &DirSpec, path: &str, rest: &str) -> Result<Response, HttpError> {
    let target = resolve_in(&spec.folder, rest, EXPOSURE)?;
    let meta = std::fs::metadata(&target).map_err(|_| HttpError::NotFound)?;
    if !meta.is_dir() {
        return file::serve(&target, file::guess_type(&target), None);
    }
    if !path.ends_with('/') {
        let mut location = listing::encode_path(path);
        location.push('/');
        return Ok(Response::empty(301).header("Location", location));
    }
    let index_rest = format!("{rest}{}", spec.index);
    match resolve_in(&spec.folder, &index_rest, EXPOSURE) {
        Ok(index) if index.is_file() => return file::serve(&index, file::guess_type(&index), None),
        _ => {}
    }
    if spec.listing {
        listing::render(&target, path, EXPOSURE)
    } else {
        Err(HttpError::NotFound)
    }
}
