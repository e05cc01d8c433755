//! A request's header block, decoded with HPACK and checked as RFC 9113 §8.2-8.3 asks:
//! pseudo-header fields first, each once, only the request ones; names in lower case; no
//! connection-specific fields; values without NUL, CR, LF or surrounding whitespace. What is
//! left becomes the same request model HTTP/1.1 builds, under the same limits.

use super::frame::Code;
use super::hpack::{DecodeError, Decoder};
use crate::http::request::FieldsBuilder;
use crate::http::{HttpError, Limits, Request};

/// The pseudo-header fields of a request, and the rest as the request model takes them.
#[derive(Default)]
struct Head {
    method: Option<Vec<u8>>,
    scheme: bool,
    authority: Option<Vec<u8>>,
    path: Option<Vec<u8>>,
    /// A regular field was seen: no pseudo-header may follow.
    regular: bool,
    fields: FieldsBuilder,
}

/// Decodes a request's header block. `Err` is a connection error (the block broke HPACK);
/// `Ok(Err)` a request that cannot be served, answered on its stream with that status.
pub fn request(
    decoder: &mut Decoder,
    block: &[u8],
    ended: bool,
    limits: &Limits,
) -> Result<Result<Request, HttpError>, Code> {
    let mut head = Head::default();
    let decoded = decoder.decode(block, limits.max_head_bytes, |name, value| {
        head.field(name, value, limits)
    });
    match decoded {
        Err(DecodeError::Compression) => Err(Code::Compression),
        Err(DecodeError::ListTooLarge) => Ok(Err(HttpError::HeaderFieldsTooLarge(
            "request head is larger than the limit",
        ))),
        Ok(Err(e)) => Ok(Err(e)),
        Ok(Ok(())) => Ok(head.finish(ended, limits)),
    }
}

/// Decodes a trailer block (its fields are not used); `Err` as for `request`, or `Ok(false)`
/// when the block is malformed (a pseudo-header field in trailers).
pub fn trailers(decoder: &mut Decoder, block: &[u8], limits: &Limits) -> Result<bool, Code> {
    let decoded = decoder.decode(block, limits.max_head_bytes, |name, _| {
        if name.first() == Some(&b':') {
            Err(())
        } else {
            Ok(())
        }
    });
    match decoded {
        Err(DecodeError::Compression) => Err(Code::Compression),
        Err(DecodeError::ListTooLarge) | Ok(Err(())) => Ok(false),
        Ok(Ok(())) => Ok(true),
    }
}

impl Head {
    fn field(&mut self, name: &[u8], value: &[u8], limits: &Limits) -> Result<(), HttpError> {
        const MALFORMED: fn(&'static str) -> HttpError = HttpError::BadRequest;
        if value.iter().any(|b| matches!(b, b'\0' | b'\r' | b'\n'))
            || value.first().is_some_and(|b| matches!(b, b' ' | b'\t'))
            || value.last().is_some_and(|b| matches!(b, b' ' | b'\t'))
        {
            return Err(MALFORMED("invalid header field value"));
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.regular {
                return Err(MALFORMED("pseudo-header field after a regular field"));
            }
            let slot = match pseudo {
                b"method" => &mut self.method,
                b"authority" => &mut self.authority,
                b"path" => &mut self.path,
                b"scheme" => {
                    if std::mem::replace(&mut self.scheme, true) {
                        return Err(MALFORMED("repeated pseudo-header field"));
                    }
                    return Ok(());
                }
                _ => return Err(MALFORMED("unknown pseudo-header field")),
            };
            if slot.replace(value.to_vec()).is_some() {
                return Err(MALFORMED("repeated pseudo-header field"));
            }
            return Ok(());
        }
        self.regular = true;
        if name.is_empty() || !name.iter().all(|b| is_token_lower(*b)) {
            return Err(MALFORMED(
                "invalid header field name (HTTP/2 names are lower case)",
            ));
        }
        match name {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => {
                return Err(MALFORMED("connection-specific header field in HTTP/2"));
            }
            b"te" if value != b"trailers" => {
                return Err(MALFORMED("TE other than trailers in HTTP/2"));
            }
            _ => {}
        }
        self.fields.field(name, value, limits)
    }

    fn finish(self, ended: bool, limits: &Limits) -> Result<Request, HttpError> {
        let (Some(method), Some(path), true) = (self.method, self.path, self.scheme) else {
            return Err(HttpError::BadRequest(
                "missing :method, :scheme or :path pseudo-header field",
            ));
        };
        if path.is_empty() {
            return Err(HttpError::BadRequest("empty :path"));
        }
        self.fields
            .finish(&method, &path, self.authority.as_deref(), ended, limits)
    }
}

/// A token character (RFC 9110 §5.6.2) that is not an upper-case letter.
fn is_token_lower(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9')
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}
