//! The generic file responder. A `FileSet` is one file and its precompressed variants, opened
//! and described once; `FileSet::respond` answers a request from it without further I/O, so a
//! set can be cached and reused (see `server::cache`). Pipeline:
//!
//! 1. `FileSet::open`: resolve the file and its `.br` / `.gz` variants inside the folder
//!    (`path::resolve_in`), open and fstat each, derive a strong ETag and Last-Modified, read
//!    small files into memory, and serialise the header lines every answer repeats;
//! 2. `FileSet::respond`: choose the representation by Accept-Encoding q-values, evaluate
//!    If-Match / If-Unmodified-Since / If-None-Match / If-Modified-Since / If-Range, and answer
//!    200, 206 (one range, or multipart/byteranges), 304, 412 or 416;
//! 3. `FileSet::is_current`: a few stats telling whether the files on disk are still the ones
//!    described.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::compressed::Dynamic;
use super::media::{ContentTypes, attachment};
use crate::compress::Settings;
use crate::http::conditional::{self, Precondition, Validators};
use crate::http::encoding::{self, Choice, Coding};
use crate::http::range::{self, Ranges};
use crate::http::response::{Body, Content, Part, Response, header_block};
use crate::http::{HttpError, Method, Request};
use crate::path::{Exposure, resolve_in};
use crate::stamp::FileStamp;

/// How long a file set is trusted before its next use compares it with the disk.
pub const REVALIDATE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Files up to this size are kept in memory with their description.
pub const SMALL_FILE_BYTES: u64 = 32 * 1024;

/// How a file is presented, from its route.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileOptions<'a> {
    /// The type to send; guessed from the extension when `None`.
    pub content_type: Option<&'a str>,
    /// Send as an attachment with this name.
    pub download: Option<&'a str>,
    pub cache_control: Option<&'a str>,
    /// Compress on the fly with these settings (none: the route does not compress).
    pub compression: Option<&'a Settings>,
}

/// One representation: the file itself, or a precompressed variant of it.
#[derive(Debug)]
struct Representation {
    coding: Option<Coding>,
    /// Canonical path, stat'ed on revalidation (following symlinks, as when opened).
    path: PathBuf,
    stamp: FileStamp,
    /// The bytes (small files) or the open file.
    content: Content,
    len: u64,
    validators: Validators,
    /// Header lines of a 200 or 206, and of a 304.
    fixed: Arc<[u8]>,
    fixed_not_modified: Arc<[u8]>,
}

/// A file and its precompressed variants, ready to answer requests.
#[derive(Debug)]
pub struct FileSet {
    content_type: Cow<'static, str>,
    /// The file itself first, then its variants.
    reps: Vec<Representation>,
    /// Variant names that were missing (or refused), with what was there, to notice them appear.
    probes: Vec<(PathBuf, Option<FileStamp>)>,
    /// Compression on the fly of the file itself, when its type and size call for it.
    dynamic: Option<Box<Dynamic>>,
}

/// Which representation answers a request.
enum Plan {
    /// The file or a precompressed variant on disk (index in `reps`).
    Rep(usize),
    /// A form compressed on the fly and kept.
    Form(Coding),
    /// The file streamed through the compressor.
    Stream(Coding),
    NotAcceptable,
}

impl FileSet {
    /// Opens `rel` (a normalised relative path naming a file) inside `folder`, with the
    /// variants beside it that the folder's exposure rules allow.
    pub fn open(
        folder: &Path,
        rel: &str,
        exposure: Exposure,
        types: &ContentTypes,
        options: FileOptions<'_>,
    ) -> Result<FileSet, HttpError> {
        let path = resolve_in(folder, rel, exposure)?;
        let content_type = match options.content_type {
            Some(t) => Cow::Owned(t.to_owned()),
            None => types.for_path(&path),
        };
        let mut found = vec![(None, path)];
        let mut probes = Vec::new();
        for coding in Coding::ALL {
            let variant = format!("{rel}{}", coding.suffix());
            match resolve_in(folder, &variant, exposure) {
                Ok(p) if p.is_file() => found.push((Some(coding), p)),
                _ => {
                    let at = folder.join(&variant);
                    let stamp = FileStamp::of_link(&at);
                    probes.push((at, stamp));
                }
            }
        }
        let identity_meta = std::fs::metadata(&found[0].1).map_err(|_| HttpError::NotFound)?;
        let compressible = options
            .compression
            .is_some_and(|s| s.applies(&content_type, identity_meta.len()));
        let vary = found.len() > 1 || compressible;
        let reps = found
            .into_iter()
            .map(|(coding, path)| Representation::open(coding, path, vary, options))
            .collect::<Result<Vec<_>, _>>()?;
        let identity = &reps[0];
        let dynamic = Dynamic::new(
            options.compression,
            &content_type,
            identity.len,
            &identity.validators,
            options.cache_control,
            options.download.map(attachment),
        )
        .map(Box::new);
        Ok(FileSet {
            content_type,
            reps,
            probes,
            dynamic,
        })
    }

    /// Also turns stale when `path` (missing now) appears: a set served in place of a file
    /// that did not exist (a clean URL, a fallback) gives way to it.
    pub fn watch_missing(&mut self, path: PathBuf) {
        let stamp = FileStamp::of_link(&path);
        self.probes.push((path, stamp));
    }

    /// True while every file (and every missing variant) is as it was when opened.
    pub fn is_current(&self) -> bool {
        self.reps
            .iter()
            .all(|r| std::fs::metadata(&r.path).is_ok_and(|m| FileStamp::of(&m) == r.stamp))
            && self
                .probes
                .iter()
                .all(|(path, stamp)| FileStamp::of_link(path) == *stamp)
    }

    /// Bytes of content held in memory (compressed forms included).
    pub fn memory(&self) -> usize {
        let reps: usize = self
            .reps
            .iter()
            .map(|r| match &r.content {
                Content::Memory(b) => b.len(),
                Content::File(_) => 0,
            })
            .sum();
        reps + self.dynamic.as_ref().map_or(0, |d| d.memory())
    }

    /// Files held open (in-memory files of compressed forms included).
    pub fn open_files(&self) -> usize {
        let reps = self
            .reps
            .iter()
            .filter(|r| matches!(r.content, Content::File(_)))
            .count();
        reps + self.dynamic.as_ref().map_or(0, |d| d.open_files())
    }

    /// Which representation answers `req`: a precompressed variant on disk the client
    /// accepts wins; otherwise compression on the fly, when it applies and the client prefers
    /// a coding to identity. Range requests are answered from the file itself (ranges are of
    /// the identity representation), so Content-Range, Content-Length and ETag agree.
    fn plan(&self, req: &Request) -> Plan {
        let accept = req.header_str("accept-encoding");
        let disk: Vec<Coding> = self.reps.iter().filter_map(|r| r.coding).collect();
        if !disk.is_empty()
            && let Some(coding) = encoding::preferred(accept, &disk).first()
            && let Some(i) = self.reps.iter().position(|r| r.coding == Some(*coding))
        {
            return Plan::Rep(i);
        }
        let Some(dynamic) = &self.dynamic else {
            return Plan::Rep(0);
        };
        if req.header("range").is_some() {
            return Plan::Rep(0);
        }
        match dynamic.choose(accept) {
            Choice::Identity => Plan::Rep(0),
            Choice::NotAcceptable => Plan::NotAcceptable,
            Choice::Coding(c) if dynamic.keeps_forms() => Plan::Form(c),
            Choice::Coding(c) => Plan::Stream(c),
        }
    }

    /// Answers a request from the set without any I/O, or `None` when a compressed form must
    /// first be made (by `respond`, on a worker, never in the event loop).
    pub fn try_respond(&self, req: &Request) -> Option<Result<Response, HttpError>> {
        let plan = self.plan(req);
        if let Plan::Form(c) = plan
            && self.dynamic.as_ref().is_none_or(|d| d.kept(c).is_none())
        {
            return None;
        }
        Some(self.respond_planned(req, plan))
    }

    /// Answers a request from the set. No I/O, unless a compressed form must be made (see
    /// `try_respond`).
    pub fn respond(&self, req: &Request) -> Result<Response, HttpError> {
        self.respond_planned(req, self.plan(req))
    }

    fn respond_planned(&self, req: &Request, plan: Plan) -> Result<Response, HttpError> {
        let identity = &self.reps[0];
        match plan {
            Plan::Rep(i) => self.respond_with(&self.reps[i], req),
            Plan::NotAcceptable => Err(HttpError::NotAcceptable),
            Plan::Form(coding) => {
                let dynamic = self.dynamic.as_ref().expect("planned with compression");
                let made;
                let form = match dynamic.kept(coding) {
                    Some(form) => form,
                    None => {
                        made = dynamic.make(coding, &identity.content, identity.len)?;
                        &made
                    }
                };
                match conditional::evaluate(req, &form.validators) {
                    Precondition::NotModified => Ok(self.not_modified(&form.fixed_not_modified)),
                    Precondition::Failed => Err(HttpError::PreconditionFailed),
                    Precondition::Proceed { .. } => {
                        let body = Body::Content {
                            content: form.content.clone(),
                            offset: 0,
                            len: form.len,
                        };
                        let mut response = Response::new(200, self.content_type.clone(), body);
                        response.fixed = Some(Arc::clone(&form.fixed));
                        Ok(response)
                    }
                }
            }
            Plan::Stream(coding) => {
                let dynamic = self.dynamic.as_ref().expect("planned with compression");
                match conditional::evaluate(req, &dynamic.validators_for(coding)) {
                    Precondition::NotModified => {
                        Ok(self.not_modified(&dynamic.not_modified_headers(coding)))
                    }
                    Precondition::Failed => Err(HttpError::PreconditionFailed),
                    Precondition::Proceed { .. } => {
                        dynamic.stream(coding, &identity.content, identity.len, &self.content_type)
                    }
                }
            }
        }
    }

    fn not_modified(&self, fixed: &Arc<[u8]>) -> Response {
        let mut response = Response::new(304, self.content_type.clone(), Body::Empty);
        response.fixed = Some(Arc::clone(fixed));
        response
    }

    /// Answers from one representation on disk: preconditions, then the whole of it or
    /// ranges of it.
    fn respond_with(&self, rep: &Representation, req: &Request) -> Result<Response, HttpError> {
        let use_range = match conditional::evaluate(req, &rep.validators) {
            Precondition::NotModified => return Ok(self.not_modified(&rep.fixed_not_modified)),
            Precondition::Failed => return Err(HttpError::PreconditionFailed),
            Precondition::Proceed { use_range } => {
                use_range && matches!(req.method, Method::Get | Method::Head)
            }
        };
        let len = rep.len;
        let ranges = if use_range {
            range::resolve(req.header_str("range"), len)
        } else {
            Ranges::Full
        };
        let content = rep.content.clone();
        let mut response = match ranges {
            Ranges::Full => {
                let body = Body::Content {
                    content,
                    offset: 0,
                    len,
                };
                Response::new(200, self.content_type.clone(), body)
            }
            Ranges::Unsatisfiable => return Err(HttpError::RangeNotSatisfiable(len)),
            Ranges::Partial(parts) if parts.len() == 1 => {
                let (first, last) = parts[0];
                let body = Body::Content {
                    content,
                    offset: first,
                    len: last - first + 1,
                };
                Response::new(206, self.content_type.clone(), body)
                    .header("Content-Range", format!("bytes {first}-{last}/{len}"))
            }
            Ranges::Partial(parts) => multipart(
                content,
                &parts,
                len,
                &self.content_type,
                &rep.validators.etag,
            ),
        };
        response.fixed = Some(Arc::clone(&rep.fixed));
        Ok(response)
    }
}

impl Representation {
    fn open(
        coding: Option<Coding>,
        path: PathBuf,
        vary: bool,
        options: FileOptions<'_>,
    ) -> Result<Representation, HttpError> {
        let mut file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => HttpError::Forbidden("file is not readable"),
            _ => HttpError::NotFound,
        })?;
        let meta = file.metadata().map_err(|_| HttpError::NotFound)?;
        if !meta.is_file() {
            return Err(HttpError::NotFound);
        }
        let len = meta.len();
        let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        let validators = Validators::for_file(meta.ino(), len, modified);
        let content = if len <= SMALL_FILE_BYTES {
            let mut bytes = Vec::with_capacity(len as usize);
            (&mut file)
                .take(len)
                .read_to_end(&mut bytes)
                .map_err(|_| HttpError::NotFound)?;
            if bytes.len() as u64 != len {
                return Err(HttpError::ServiceUnavailable(
                    "file changed while being read",
                ));
            }
            // Small files are served from memory; their descriptor is closed.
            Content::Memory(bytes::Bytes::from(bytes))
        } else {
            Content::File(Arc::new(file))
        };
        let last_modified = validators.last_modified();
        let mut common: Vec<(&str, &str)> = vec![
            ("ETag", &validators.etag),
            ("Last-Modified", &last_modified),
        ];
        if vary {
            common.push(("Vary", "Accept-Encoding"));
        }
        if let Some(cc) = options.cache_control {
            common.push(("Cache-Control", cc));
        }
        let fixed_not_modified = header_block(&common);
        common.push(("Accept-Ranges", "bytes"));
        if let Some(c) = coding {
            common.push(("Content-Encoding", c.token()));
        }
        let disposition = options.download.map(attachment);
        if let Some(d) = &disposition {
            common.push(("Content-Disposition", d));
        }
        let fixed = header_block(&common);
        Ok(Representation {
            coding,
            stamp: FileStamp::of(&meta),
            path,
            content,
            len,
            validators,
            fixed,
            fixed_not_modified,
        })
    }
}

/// A multipart/byteranges body (RFC 9110 section 14.6) for several ranges of one file.
fn multipart(
    content: Content,
    ranges: &[(u64, u64)],
    len: u64,
    content_type: &str,
    etag: &str,
) -> Response {
    let boundary = boundary(etag);
    let parts = ranges
        .iter()
        .map(|&(first, last)| Part {
            head: format!(
                "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {first}-{last}/{len}\r\n\r\n"
            )
            .into_bytes(),
            offset: first,
            len: last - first + 1,
        })
        .collect();
    let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
    let media = format!("multipart/byteranges; boundary={boundary}");
    Response::new(
        206,
        media,
        Body::Multipart {
            content,
            parts,
            tail,
        },
    )
}

/// A boundary no file byte sequence is likely to contain: the tag's hash, salted per process.
fn boundary(etag: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(etag.as_bytes());
    format!("tws-{:016x}", hasher.finish())
}
