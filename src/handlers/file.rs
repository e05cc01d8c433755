//! The generic file responder. For one file inside a folder it picks a precompressed variant the
//! client accepts, evaluates preconditions (304, 412), resolves ranges (206, 416) and streams
//! the bytes from the open file. Pipeline:
//!
//! 1. resolve the file and its `.br` / `.gz` variants inside the folder (`path::resolve_in`);
//! 2. choose the representation by Accept-Encoding q-values;
//! 3. open it, fstat it, derive a strong ETag and Last-Modified;
//! 4. evaluate If-Match / If-Unmodified-Since / If-None-Match / If-Modified-Since / If-Range;
//! 5. answer 200, 206 (one range, or multipart/byteranges), 304, 412 or 416.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::http::conditional::{self, Precondition, Validators};
use crate::http::encoding::{self, Coding};
use crate::http::range::{self, Ranges};
use crate::http::response::{Body, Part, Response};
use crate::http::{HttpError, Method, Request};
use crate::path::{Exposure, resolve_in};

/// How a file is presented, from its route.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileOptions<'a> {
    /// The type to send; guessed from the extension when `None`.
    pub content_type: Option<&'a str>,
    /// Send as an attachment with this name.
    pub download: Option<&'a str>,
    pub cache_control: Option<&'a str>,
}

/// Content types: a per-extension override table in front of mime_guess's.
#[derive(Debug, Clone, Default)]
pub struct ContentTypes {
    overrides: HashMap<String, String>,
}

impl ContentTypes {
    pub fn new(overrides: HashMap<String, String>) -> ContentTypes {
        ContentTypes { overrides }
    }

    /// The media type for a file name; text types get `charset=utf-8`.
    pub fn for_path(&self, path: &Path) -> Cow<'static, str> {
        if !self.overrides.is_empty()
            && let Some(ext) = path.extension().and_then(|e| e.to_str())
            && let Some(t) = self.overrides.get(&ext.to_ascii_lowercase())
        {
            return Cow::Owned(t.clone());
        }
        guess_type(path)
    }
}

/// The media type from mime_guess's table; text types get `charset=utf-8`.
pub fn guess_type(path: &Path) -> Cow<'static, str> {
    let Some(mime) = mime_guess::from_path(path).first_raw() else {
        return Cow::Borrowed("application/octet-stream");
    };
    if mime.starts_with("text/") || mime == "application/javascript" {
        Cow::Owned(format!("{mime}; charset=utf-8"))
    } else {
        Cow::Borrowed(mime)
    }
}

/// Serves `rel` (a normalised relative path naming a file) from `folder`.
pub fn serve(
    req: &Request,
    folder: &Path,
    rel: &str,
    exposure: Exposure,
    types: &ContentTypes,
    options: FileOptions<'_>,
) -> Result<Response, HttpError> {
    let path = resolve_in(folder, rel, exposure)?;
    let variants: Vec<(Coding, std::path::PathBuf)> = Coding::ALL
        .into_iter()
        .filter_map(|c| {
            let variant = resolve_in(folder, &format!("{rel}{}", c.suffix()), exposure).ok()?;
            variant.is_file().then_some((c, variant))
        })
        .collect();
    let available: Vec<Coding> = variants.iter().map(|(c, _)| *c).collect();
    let chosen = encoding::preferred(req.header_str("accept-encoding"), &available)
        .first()
        .and_then(|c| variants.iter().find(|(v, _)| v == c));
    let (coding, open_path) = match chosen {
        Some((c, p)) => (Some(*c), p.as_path()),
        None => (None, path.as_path()),
    };
    let file = File::open(open_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => HttpError::Forbidden("file is not readable"),
        _ => HttpError::NotFound,
    })?;
    let meta = file.metadata().map_err(|_| HttpError::NotFound)?;
    if !meta.is_file() {
        return Err(HttpError::NotFound);
    }
    let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
    let validators = Validators::for_file(meta.ino(), meta.len(), modified);
    let content_type = match options.content_type {
        Some(t) => Cow::Owned(t.to_owned()),
        None => types.for_path(&path),
    };
    let mut headers: Vec<(&'static str, String)> = vec![
        ("ETag", validators.etag.clone()),
        ("Last-Modified", validators.last_modified()),
    ];
    if !available.is_empty() {
        headers.push(("Vary", "Accept-Encoding".to_owned()));
    }
    if let Some(cc) = options.cache_control {
        headers.push(("Cache-Control", cc.to_owned()));
    }
    let use_range = match conditional::evaluate(req, &validators) {
        Precondition::NotModified => {
            return Ok(Response {
                headers,
                ..Response::new(304, content_type, Body::Empty)
            });
        }
        Precondition::Failed => return Err(HttpError::PreconditionFailed),
        Precondition::Proceed { use_range } => {
            use_range && matches!(req.method, Method::Get | Method::Head)
        }
    };
    headers.push(("Accept-Ranges", "bytes".to_owned()));
    if let Some(c) = coding {
        headers.push(("Content-Encoding", c.token().to_owned()));
    }
    if let Some(name) = options.download {
        headers.push(("Content-Disposition", attachment(name)));
    }
    let len = meta.len();
    let ranges = if use_range {
        range::resolve(req.header_str("range"), len)
    } else {
        Ranges::Full
    };
    let mut response = match ranges {
        Ranges::Full => Response::new(
            200,
            content_type,
            Body::File {
                file,
                offset: 0,
                len,
            },
        ),
        Ranges::Unsatisfiable => return Err(HttpError::RangeNotSatisfiable(len)),
        Ranges::Partial(parts) if parts.len() == 1 => {
            let (first, last) = parts[0];
            headers.push(("Content-Range", format!("bytes {first}-{last}/{len}")));
            let body = Body::File {
                file,
                offset: first,
                len: last - first + 1,
            };
            Response::new(206, content_type, body)
        }
        Ranges::Partial(parts) => multipart(file, &parts, len, &content_type, &validators.etag),
    };
    response.headers.extend(headers);
    Ok(response)
}

/// A multipart/byteranges body (RFC 9110 section 14.6) for several ranges of one file.
fn multipart(
    file: File,
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
    Response::new(206, media, Body::Multipart { file, parts, tail })
}

/// A boundary no file byte sequence is likely to contain: the tag's hash, salted per process.
fn boundary(etag: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(etag.as_bytes());
    format!("tws-{:016x}", hasher.finish())
}

/// `attachment; filename="..."`, with an RFC 8187 `filename*` when the name is not plain ASCII.
pub fn attachment(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .map(|c| if c == '"' || c == '\\' { '_' } else { c })
        .collect();
    if plain == name {
        format!("attachment; filename=\"{plain}\"")
    } else {
        let encoded = percent_encoding::utf8_percent_encode(name, super::listing::COMPONENT);
        format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_types_with_charset_for_text_and_honours_overrides() {
        let overrides =
            HashMap::from([("md".to_owned(), "text/markdown; charset=utf-8".to_owned())]);
        let types = ContentTypes::new(overrides);
        let cases = [
            ("a.html", "text/html; charset=utf-8"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.png", "image/png"),
            ("a.jpg", "image/jpeg"),
            ("a.json", "application/json"),
            ("a.MD", "text/markdown; charset=utf-8"),
            ("noext", "application/octet-stream"),
        ];
        for (name, want) in cases {
            assert_eq!(types.for_path(Path::new(name)), want, "{name}");
        }
    }

    #[test]
    fn attachment_names_are_quoted_safely() {
        assert_eq!(attachment("big.txt"), "attachment; filename=\"big.txt\"");
        assert_eq!(
            attachment("a\"b.txt"),
            "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt"
        );
        assert_eq!(
            attachment("café.txt"),
            "attachment; filename=\"caf_.txt\"; filename*=UTF-8''caf%C3%A9.txt"
        );
    }
}
