//! Uploads: request bodies that go to disk as they arrive, never into memory. A `PUT` is one
//! file; a `POST` of `multipart/form-data` to a folder is a file per part (what a browser's
//! form, a folder picker or `curl -F` sends). Each file is staged unnamed and placed under
//! its name only once whole (`writes::Staged`); the placing (fsync, link) happens on a
//! worker, once the body has arrived.

use std::path::PathBuf;

use super::writes::{self, Placed, Staged, check_path};
use crate::http::encoding::prefers_html;
use crate::http::multipart::{self, Event, Multipart};
use crate::http::response::{Body, Response, TEXT_PLAIN};
use crate::http::{HttpError, Request};
use crate::path::Exposure;
use crate::routes::DirSpec;

/// Bytes of a multipart body parsed at a time.
const FEED_PIECE: usize = 64 * 1024;
/// Most files one multipart upload may hold (a folder larger than this goes in several).
const MAX_FILES: usize = 1000;

/// An answer that refuses an upload (saying why, naming a bad name).
pub type Refusal = Box<Response>;

/// Where a streamed request body goes.
pub trait BodySink: Send {
    /// Takes the next bytes of the body; a refusal answers the request (and its connection
    /// stops reading it).
    fn write(&mut self, bytes: &[u8]) -> Result<(), Refusal>;
    /// The whole body arrived: puts what it held in place (slow: on a worker) and answers.
    fn finish(self: Box<Self>) -> Response;
}

/// The refusal for an error.
pub fn refusal(e: HttpError) -> Refusal {
    e.into()
}

/// The sink for an upload to a folder route, when `req` is one: `PUT path` or a multipart
/// `POST folder/`; `Ok(None)` for any other request. Refusals come before any byte is read:
/// a bad name (400), a name taken (409), a declared length past the limit (413).
pub fn sink(
    spec: &DirSpec,
    req: &Request,
    url: &str,
    rest: &str,
) -> Result<Option<Box<dyn BodySink>>, Refusal> {
    if !spec.writes.upload {
        return Ok(None);
    }
    let limit = spec.writes.max_upload_bytes;
    match req.method {
        crate::http::Method::Put => {
            if rest.is_empty() || rest.ends_with('/') {
                return Err(refusal(HttpError::BadRequest(
                    "PUT needs a file name: PUT /folder/name",
                )));
            }
            check_path(rest, spec.exposure).map_err(|why| bad_name(rest, &why))?;
            if let crate::http::request::Framing::Length(n) = req.framing
                && n > limit
            {
                return Err(refusal(HttpError::PayloadTooLarge));
            }
            let (parent, name) = rest.rsplit_once('/').unwrap_or(("", rest));
            let folder =
                writes::folder(&spec.folder, parent, spec.exposure, true).map_err(refusal)?;
            if !spec.writes.overwrite && folder.join(name).exists() {
                return Err(refusal(taken()));
            }
            Ok(Some(Box::new(Put {
                staged: Staged::new(&folder, name, limit).map_err(refusal)?,
                url: url.to_owned(),
                overwrite: spec.writes.overwrite,
            })))
        }
        crate::http::Method::Post => {
            let Some(boundary) = req.header_str("content-type").and_then(multipart::boundary)
            else {
                return Ok(None);
            };
            if !(rest.is_empty() || rest.ends_with('/')) {
                return Err(refusal(HttpError::BadRequest(
                    "files are uploaded to a folder: POST /folder/",
                )));
            }
            let folder =
                writes::folder(&spec.folder, rest, spec.exposure, false).map_err(refusal)?;
            Ok(Some(Box::new(Form {
                multipart: Multipart::new(&boundary),
                folder,
                url: url.to_owned(),
                exposure: spec.exposure,
                limit,
                overwrite: spec.writes.overwrite,
                current: None,
                staged: Vec::new(),
                browser: prefers_html(req.header_str("accept")),
            })))
        }
        _ => Ok(None),
    }
}

/// 400 naming the name refused and why.
fn bad_name(name: &str, why: &str) -> Refusal {
    let body = format!("400 Bad Request: the file name {name:?} is refused: {why}\n");
    Box::new(Response::new(
        400,
        TEXT_PLAIN,
        Body::Bytes(body.into_bytes()),
    ))
}

fn taken() -> HttpError {
    HttpError::Conflict("a file of that name exists (a route with overwrite = true replaces files)")
}

/// One file, sent with PUT.
struct Put {
    staged: Staged,
    url: String,
    overwrite: bool,
}

impl BodySink for Put {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        self.staged.write(bytes).map_err(refusal)
    }

    fn finish(self: Box<Self>) -> Response {
        let size = self.staged.written;
        let placed = match self.staged.place(self.overwrite) {
            Ok(placed) => placed,
            Err(e) => return *refusal(e),
        };
        let status = if placed == Placed::Created { 201 } else { 200 };
        Response::json(status, &serde_json::json!({"path": self.url, "size": size}))
            .header("Location", super::listing::encode_path(&self.url))
    }
}

/// Files sent as the parts of a form.
struct Form {
    multipart: Multipart,
    /// The folder they go to, and its URL path (ending in '/').
    folder: PathBuf,
    url: String,
    exposure: Exposure,
    limit: u64,
    overwrite: bool,
    /// The file part being received.
    current: Option<(Staged, String)>,
    /// Whole parts, placed when the body ends.
    staged: Vec<(Staged, String)>,
    /// The form came from a browser page: it is sent back to the listing (303).
    browser: bool,
}

impl BodySink for Form {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Refusal> {
        let Form {
            multipart,
            folder,
            exposure,
            limit,
            overwrite,
            current,
            staged,
            ..
        } = self;
        let mut on = |event: Event<'_>| -> Result<(), Refusal> {
            match event {
                Event::Part(head) => {
                    *current = None;
                    // A form's other fields, and an empty file input, carry no file.
                    let Some(name) = head.filename.filter(|n| !n.is_empty()) else {
                        return Ok(());
                    };
                    // A folder upload names each file by its path inside the folder.
                    check_path(&name, *exposure).map_err(|why| bad_name(&name, &why))?;
                    if staged.len() >= MAX_FILES {
                        return Err(refusal(HttpError::BadRequest(
                            "at most 1000 files in one upload: send the rest in another",
                        )));
                    }
                    let (parent, file) = name.rsplit_once('/').unwrap_or(("", &name));
                    let target =
                        writes::folder(folder, parent, *exposure, true).map_err(refusal)?;
                    if !*overwrite && target.join(file).exists() {
                        return Err(refusal(taken()));
                    }
                    let staged_file = Staged::new(&target, file, *limit).map_err(refusal)?;
                    *current = Some((staged_file, name));
                }
                Event::Data(data) => {
                    if let Some((file, _)) = current {
                        file.write(data).map_err(refusal)?;
                    }
                }
                Event::PartEnd => {
                    if let Some(done) = current.take() {
                        staged.push(done);
                    }
                }
            }
            Ok(())
        };
        // In pieces: what the parser joins between calls stays small.
        for piece in bytes.chunks(FEED_PIECE) {
            multipart.feed(piece, &mut on)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Response {
        if !self.multipart.is_done() {
            return *refusal(HttpError::BadRequest(
                "the multipart body ended before its closing boundary",
            ));
        }
        let mut placed = Vec::new();
        for (file, name) in self.staged {
            let size = file.written;
            if let Err(e) = file.place(self.overwrite) {
                return *refusal(e);
            }
            placed.push(serde_json::json!({"path": format!("{}{name}", self.url), "size": size}));
        }
        if self.browser {
            let location = super::listing::encode_path(&self.url);
            return Response::empty(303).header("Location", location);
        }
        Response::json(201, &serde_json::json!({ "files": placed }))
    }
}
