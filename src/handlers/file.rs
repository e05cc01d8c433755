//! The generic file responder: one open, one fstat, and a body streamed from the open file.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use crate::http::HttpError;
use crate::http::response::{Body, Response, TEXT_HTML};
use crate::routes::FileSpec;

/// Serves a `file` route: its own type, or the one guessed from the extension.
pub fn serve_spec(spec: &FileSpec) -> Result<Response, HttpError> {
    let content_type = match &spec.content_type {
        Some(ct) => Cow::Owned(ct.clone()),
        None => guess_type(&spec.file),
    };
    serve(&spec.file, content_type, spec.download.as_deref())
}

/// The type of every `page` route.
pub fn page_type() -> Cow<'static, str> {
    Cow::Borrowed(TEXT_HTML)
}

/// Serves one regular file. `download` names the file for `Content-Disposition: attachment`.
pub fn serve(
    path: &Path,
    content_type: Cow<'static, str>,
    download: Option<&str>,
) -> Result<Response, HttpError> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => HttpError::Forbidden("file is not readable"),
        _ => HttpError::NotFound,
    })?;
    let meta = file.metadata().map_err(|_| HttpError::NotFound)?;
    if !meta.is_file() {
        return Err(HttpError::NotFound);
    }
    let len = meta.len();
    let mut response = Response::new(
        200,
        content_type,
        Body::File {
            file,
            offset: 0,
            len,
        },
    );
    if let Some(name) = download {
        response = response.header("Content-Disposition", attachment(name));
    }
    Ok(response)
}

/// The media type for a file name, from mime_guess's table; text types get `charset=utf-8`.
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
    fn guesses_types_with_charset_for_text() {
        let cases = [
            ("a.html", "text/html; charset=utf-8"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.png", "image/png"),
            ("a.jpg", "image/jpeg"),
            ("a.json", "application/json"),
            ("noext", "application/octet-stream"),
        ];
        for (name, want) in cases {
            assert_eq!(guess_type(Path::new(name)), want, "{name}");
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
