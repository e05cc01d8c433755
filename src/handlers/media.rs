//! What a file is presented as: its media type (an override table from routes.toml in front
//! of mime_guess's, with `charset=utf-8` on text) and, for downloads, its Content-Disposition.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

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
fn guess_type(path: &Path) -> Cow<'static, str> {
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
