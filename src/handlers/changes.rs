//! The changes to a folder route's folder that carry no file: a new folder (`POST folder/`
//! with `mkdir=NAME`), a delete (`DELETE path`, or `POST path` with `delete`), a rename
//! (`POST path` with `rename=NEW`, within its folder; never over an existing name). The
//! parameters come in the query or in a form body. A browser's form is sent back to the
//! listing (303); other clients get 201, 204 or 200.

use super::writes::{self, check_name};
use crate::http::encoding::prefers_html;
use crate::http::response::Response;
use crate::http::{HttpError, Method, Request, form};
use crate::path::{is_protected, resolve_in};
use crate::routes::DirSpec;

/// Applies the change `req` asks for at `rest` (below the route's folder; `url` is its URL
/// path); on a worker.
pub fn apply(
    spec: &DirSpec,
    req: &Request,
    url: &str,
    rest: &str,
    body: &[u8],
) -> Result<Response, HttpError> {
    let mut params = form::pairs(req.query().unwrap_or("").as_bytes())
        .map_err(|_| HttpError::BadRequest("the query is not valid"))?;
    if req.media_type().as_deref() == Some("application/x-www-form-urlencoded") {
        params.extend(
            form::pairs(body).map_err(|_| HttpError::BadRequest("the form body is not valid"))?,
        );
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let writes = &spec.writes;
    let folder_url = url.rsplit_once('/').map_or("/", |(parent, _)| parent);
    let back = |status: u16, location: &str| -> Response {
        if prefers_html(req.header_str("accept")) {
            let listing = if url.ends_with('/') {
                super::listing::encode_path(url)
            } else {
                super::listing::encode_path(&format!("{folder_url}/"))
            };
            Response::empty(303).header("Location", listing)
        } else if status == 204 {
            Response::empty(204)
        } else {
            Response::json(status, &serde_json::json!({ "path": location }))
                .header("Location", super::listing::encode_path(location))
        }
    };
    let target = rest.trim_end_matches('/');
    if req.method == Method::Delete || param("delete").is_some() {
        if !writes.delete {
            return Err(HttpError::Forbidden(
                "deleting is not allowed here (delete = true on the route)",
            ));
        }
        if target.is_empty() {
            return Err(HttpError::Forbidden(
                "the route's own folder cannot be deleted",
            ));
        }
        let path = existing(spec, target)?;
        writes::delete(&path)?;
        return Ok(back(204, url));
    }
    if let Some(name) = param("mkdir") {
        if !writes.mkdir {
            return Err(HttpError::Forbidden(
                "making folders is not allowed here (mkdir = true on the route)",
            ));
        }
        if !(rest.is_empty() || rest.ends_with('/')) {
            return Err(HttpError::BadRequest(
                "a folder is made inside a folder: POST /folder/",
            ));
        }
        check_name(name, spec.exposure).map_err(|_| {
            HttpError::BadRequest(
                "the folder name is refused (no slash, '..', control characters or leading dot)",
            )
        })?;
        let folder = writes::folder(&spec.folder, rest, spec.exposure, false)?;
        writes::mkdir(&folder, name)?;
        return Ok(back(201, &format!("{url}{name}/")));
    }
    if let Some(name) = param("rename") {
        if !writes.rename {
            return Err(HttpError::Forbidden(
                "renaming is not allowed here (rename = true on the route)",
            ));
        }
        if target.is_empty() {
            return Err(HttpError::Forbidden(
                "the route's own folder cannot be renamed",
            ));
        }
        check_name(name, spec.exposure).map_err(|_| {
            HttpError::BadRequest(
                "the new name is refused (no slash, '..', control characters or leading dot)",
            )
        })?;
        let from = existing(spec, target)?;
        let to = from.with_file_name(name);
        writes::rename(&from, &to, false)?;
        let slash = if url.ends_with('/') { "/" } else { "" };
        return Ok(back(
            200,
            &format!("{}/{name}{slash}", folder_url.trim_end_matches('/')),
        ));
    }
    Err(HttpError::BadRequest(
        "nothing to do: POST with mkdir=NAME, rename=NEW or delete, or upload files",
    ))
}

/// The real path of an existing entry `rel` inside the route's folder (the entry itself, not
/// where a symlink leads), never the data folder.
fn existing(spec: &DirSpec, rel: &str) -> Result<std::path::PathBuf, HttpError> {
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    check_name(name, spec.exposure).map_err(|_| HttpError::NotFound)?;
    let folder = resolve_in(&spec.folder, parent, spec.exposure)?;
    let path = folder.join(name);
    if std::fs::symlink_metadata(&path).is_err() || is_protected(&path) {
        return Err(HttpError::NotFound);
    }
    Ok(path)
}
