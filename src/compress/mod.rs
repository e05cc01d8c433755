//! Compression on the fly: which responses are compressed (a compressible type and at least
//! `min_size` bytes), in which coding (negotiated from Accept-Encoding among the configured
//! ones, in the server's order on a tie), and the codecs (`codec`). Files and listing pages
//! keep their compressed forms once made (see `handlers::file` and `handlers::listing`);
//! action answers are compressed per response; large files are streamed through the
//! compressor a piece at a time (`stream`).

pub mod codec;
pub mod stream;

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::http::encoding::{self, Choice, Coding};
use crate::http::response::{Body, ErrorFormat};
use crate::http::{HttpError, Response};

pub use codec::{Effort, Encoder, compress};

/// Default smallest body worth compressing.
pub const DEFAULT_MIN_SIZE: u64 = 1024;
/// Bodies up to this size have their compressed forms made once and kept; larger files are
/// streamed through the compressor.
pub const MAX_KEPT_SOURCE: u64 = 1 << 20;
/// Most bytes of kept compressed forms across the server; past it, forms are made per
/// response instead of kept.
const MAX_KEPT_BYTES: usize = 32 << 20;

/// Compressed bytes kept now, across every file set and listing.
static KEPT: AtomicUsize = AtomicUsize::new(0);

/// Media types compressed unless the configuration says otherwise: text, and the structured
/// text formats of the web. Images other than SVG, audio, video, archives and woff/woff2
/// fonts are compressed already and are never compressed again.
const DEFAULT_TYPES: &[&str] = &[
    "text/*",
    "application/json",
    "application/*+json",
    "application/javascript",
    "application/ecmascript",
    "application/x-javascript",
    "application/xml",
    "application/*+xml",
    "application/x-ndjson",
    "application/wasm",
    "application/rtf",
    "application/vnd.ms-fontobject",
    "image/svg+xml",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "image/bmp",
    "font/ttf",
    "font/otf",
];

/// `[server.compression]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    /// The codings offered, in the server's order of preference.
    pub encodings: Vec<Coding>,
    pub min_size: u64,
    /// Compressible media types (`type/subtype`, `type/*`, `type/*+suffix`), lower case.
    pub types: Vec<String>,
    /// A folder on a disk file system (the data folder) for kept forms that go out with
    /// sendfile; see `handlers::compressed`.
    pub spool: Option<std::path::PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            encodings: Coding::ALL.to_vec(),
            min_size: DEFAULT_MIN_SIZE,
            types: DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            spool: None,
        }
    }
}

impl Settings {
    /// The built-in list of compressible types.
    pub fn default_types() -> Vec<String> {
        DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect()
    }

    /// True when a body of this type and length is compressed.
    pub fn applies(&self, content_type: &str, len: u64) -> bool {
        self.enabled && len >= self.min_size && self.compressible(content_type)
    }

    /// True when this type is compressed (whatever the size).
    pub fn compressible(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let Some((kind, sub)) = essence.split_once('/') else {
            return false;
        };
        self.types.iter().any(|pattern| {
            let Some((pk, ps)) = pattern.split_once('/') else {
                return false;
            };
            pk == kind
                && (ps == sub
                    || ps == "*"
                    || ps
                        .strip_prefix("*+")
                        .is_some_and(|suffix| sub.ends_with(&format!("+{suffix}"))))
        })
    }

    /// The coding to send, from the request's Accept-Encoding.
    pub fn choose(&self, accept_encoding: Option<&str>) -> Choice {
        encoding::negotiate(accept_encoding, &self.encodings)
    }
}

/// Compresses a generated answer (an action's JSON) on its way out, when its type and size
/// call for it and the client accepts a coding (`accept` is its Accept-Encoding). Bodies
/// other than bytes in memory, and answers already encoded, pass unchanged.
pub fn response(
    mut response: Response,
    settings: Option<&Settings>,
    accept: Option<&str>,
) -> Response {
    let Some(settings) = settings else {
        return response;
    };
    let Body::Bytes(bytes) = &response.body else {
        return response;
    };
    let encoded = response
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-encoding"));
    if encoded || !settings.applies(&response.content_type, bytes.len() as u64) {
        return response;
    }
    match settings.choose(accept) {
        Choice::Identity => {}
        Choice::NotAcceptable => {
            return Response::error(HttpError::NotAcceptable, ErrorFormat::Json);
        }
        Choice::Coding(coding) => {
            if let Ok(compressed) = compress(coding, Effort::Fast, bytes) {
                response.body = Body::Bytes(compressed);
                response
                    .headers
                    .push(("Content-Encoding", coding.token().to_owned()));
            }
        }
    }
    response
        .headers
        .push(("Vary", "Accept-Encoding".to_owned()));
    response
}

/// Reserves room to keep `len` compressed bytes; false when the budget is spent.
pub fn reserve(len: usize) -> bool {
    if KEPT.fetch_add(len, Ordering::AcqRel) + len > MAX_KEPT_BYTES {
        KEPT.fetch_sub(len, Ordering::AcqRel);
        return false;
    }
    true
}

/// Gives back room reserved with `reserve`.
pub fn release(len: usize) {
    KEPT.fetch_sub(len, Ordering::AcqRel);
}

/// The strong ETag of a coding's representation, from the identity one: `"abc"` becomes
/// `"abc-br"`.
pub fn coding_etag(etag: &str, coding: Coding) -> String {
    match etag.strip_suffix('"') {
        Some(open) => format!("{open}-{}\"", coding.token()),
        None => format!("{etag}-{}", coding.token()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_types_follow_the_list() {
        let settings = Settings::default();
        let cases = [
            ("text/html; charset=utf-8", true),
            ("text/css", true),
            ("application/json", true),
            ("application/manifest+json", true),
            ("application/ld+json", true),
            ("application/javascript; charset=utf-8", true),
            ("image/svg+xml", true),
            ("application/wasm", true),
            ("image/png", false),
            ("image/jpeg", false),
            ("video/mp4", false),
            ("application/zip", false),
            ("application/gzip", false),
            ("font/woff2", false),
            ("application/octet-stream", false),
            ("nonsense", false),
        ];
        for (kind, want) in cases {
            assert_eq!(settings.compressible(kind), want, "{kind}");
        }
        assert!(!settings.applies("text/css", DEFAULT_MIN_SIZE - 1));
        assert!(settings.applies("text/css", DEFAULT_MIN_SIZE));
        assert_eq!(coding_etag("\"1-2-3\"", Coding::Brotli), "\"1-2-3-br\"");
    }
}
