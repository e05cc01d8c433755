//! Request body framing: a pure, incremental decoder for Content-Length and chunked bodies
//! (RFC 9112 sections 6 and 7.1) that never lets a body grow past its limit.

use super::HttpError;
use super::request::Framing;

/// Longest chunk-size line (size, extensions) or trailer line accepted, in bytes.
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Largest trailer section accepted, in bytes.
pub const MAX_TRAILER_BYTES: usize = 8192;
/// A chunk size has at most this many hex digits (a u64).
const MAX_CHUNK_SIZE_DIGITS: usize = 16;

/// Decodes one request body from the bytes that follow its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyDecoder {
    Length { remaining: u64 },
    Chunked(Chunked),
}

/// Where the chunked decoder is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunked {
    /// Reading hex digits of a chunk size.
    Size {
        size: u64,
        digits: usize,
    },
    /// Past the size, before CRLF: extensions, skipped but bounded.
    Extension {
        size: u64,
        seen: usize,
    },
    /// A CR was read at the end of a size line; LF must follow.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// Reading trailer lines; `line` bytes of the current line, `total` of the whole section.
    Trailer {
        line: usize,
        total: usize,
    },
    TrailerLf {
        line: usize,
        total: usize,
    },
    Done,
}

/// What one call to `decode` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes used; the rest belongs to the next request.
    pub consumed: usize,
    pub done: bool,
}

impl BodyDecoder {
    /// The decoder for a request's framing, or `None` when it has no body.
    /// Body bytes still to come, when the framing says (Content-Length).
    pub fn remaining(&self) -> Option<u64> {
        match self {
            BodyDecoder::Length { remaining } => Some(*remaining),
            _ => None,
        }
    }

    pub fn new(framing: Framing) -> Option<BodyDecoder> {
        match framing {
            Framing::None => None,
            Framing::Length(n) => Some(BodyDecoder::Length { remaining: n }),
            Framing::Chunked => Some(BodyDecoder::Chunked(Chunked::Size { size: 0, digits: 0 })),
        }
    }

    /// Appends the body bytes found in `input` to `out`. Fails with 413 as soon as `out` would
    /// pass `limit`, and with 400 on a malformed chunked stream.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<Progress, HttpError> {
        match self {
            BodyDecoder::Length { remaining } => {
                let take = (*remaining).min(input.len() as u64) as usize;
                push_limited(out, &input[..take], limit)?;
                *remaining -= take as u64;
                Ok(Progress {
                    consumed: take,
                    done: *remaining == 0,
                })
            }
            BodyDecoder::Chunked(state) => decode_chunked(state, input, out, limit),
        }
    }
}

fn push_limited(out: &mut Vec<u8>, bytes: &[u8], limit: u64) -> Result<(), HttpError> {
    if out.len() as u64 + bytes.len() as u64 > limit {
        return Err(HttpError::PayloadTooLarge);
    }
    out.extend_from_slice(bytes);
    Ok(())
}

const BAD_CHUNK: HttpError = HttpError::BadRequest("malformed chunked body");

fn decode_chunked(
    state: &mut Chunked,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: u64,
) -> Result<Progress, HttpError> {
    let mut at = 0;
    while at < input.len() && *state != Chunked::Done {
        if let Chunked::Data { remaining } = state {
            let take = (*remaining).min((input.len() - at) as u64) as usize;
            push_limited(out, &input[at..at + take], limit)?;
            at += take;
            *remaining -= take as u64;
            if *remaining == 0 {
                *state = Chunked::DataCr;
            }
            continue;
        }
        let byte = input[at];
        at += 1;
        *state = chunked_step(state, byte, out.len() as u64, limit)?;
    }
    Ok(Progress {
        consumed: at,
        done: *state == Chunked::Done,
    })
}

/// One byte of the chunked grammar outside chunk data:
/// `chunk-size [ chunk-ext ] CRLF`, `CRLF` after data, `*( field-line CRLF ) CRLF` trailers.
fn chunked_step(
    state: &Chunked,
    byte: u8,
    body_len: u64,
    limit: u64,
) -> Result<Chunked, HttpError> {
    use Chunked::*;
    Ok(match *state {
        Size { size, digits } => match (byte as char).to_digit(16) {
            Some(d) => {
                if digits == MAX_CHUNK_SIZE_DIGITS || size > u64::MAX >> 4 {
                    return Err(HttpError::BadRequest("chunk size too large"));
                }
                Size {
                    size: size << 4 | u64::from(d),
                    digits: digits + 1,
                }
            }
            None if digits == 0 => return Err(BAD_CHUNK),
            None => {
                if body_len.saturating_add(size) > limit {
                    return Err(HttpError::PayloadTooLarge);
                }
                match byte {
                    b'\r' => SizeLf { size },
                    b';' | b' ' | b'\t' => Extension { size, seen: 1 },
                    _ => return Err(BAD_CHUNK),
                }
            }
        },
        Extension { size, seen } => match byte {
            b'\r' => SizeLf { size },
            b'\n' | 0 => return Err(BAD_CHUNK),
            _ if seen >= MAX_CHUNK_LINE_BYTES => {
                return Err(HttpError::BadRequest("chunk extension too long"));
            }
            _ => Extension {
                size,
                seen: seen + 1,
            },
        },
        SizeLf { size } => match byte {
            b'\n' if size == 0 => Trailer { line: 0, total: 0 },
            b'\n' => Data { remaining: size },
            _ => return Err(BAD_CHUNK),
        },
        DataCr => match byte {
            b'\r' => DataLf,
            _ => return Err(BAD_CHUNK),
        },
        DataLf => match byte {
            b'\n' => Size { size: 0, digits: 0 },
            _ => return Err(BAD_CHUNK),
        },
        Trailer { line, total } => match byte {
            b'\r' => TrailerLf { line, total },
            b'\n' | 0 => return Err(BAD_CHUNK),
            _ if line >= MAX_CHUNK_LINE_BYTES || total >= MAX_TRAILER_BYTES => {
                return Err(HttpError::BadRequest("chunked trailer too large"));
            }
            _ => Trailer {
                line: line + 1,
                total: total + 1,
            },
        },
        TrailerLf { line, total } => match byte {
            b'\n' if line == 0 => Done,
            b'\n' => Trailer { line: 0, total },
            _ => return Err(BAD_CHUNK),
        },
        Data { .. } | Done => unreachable!("handled by the caller"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, input: &[u8], limit: u64) -> Result<(Vec<u8>, usize), u16> {
        let mut decoder = BodyDecoder::new(framing).expect("a body");
        let mut out = Vec::new();
        match decoder.decode(input, &mut out, limit) {
            Ok(p) if p.done => Ok((out, p.consumed)),
            Ok(_) => Err(0),
            Err(e) => Err(e.status()),
        }
    }

    #[test]
    fn chunked_cases() {
        // (input, limit, expected: Ok(body, consumed) or Err(status, 0 = incomplete))
        type Case = (&'static [u8], u64, Result<(&'static [u8], usize), u16>);
        let cases: &[Case] = &[
            (b"0\r\n\r\n", 10, Ok((b"", 5))),
            (b"3\r\nabc\r\n0\r\n\r\nNEXT", 10, Ok((b"abc", 13))),
            (
                b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                10,
                Ok((b"abcde", 26)),
            ),
            (b"A\r\n0123456789\r\n0\r\n\r\n", 10, Ok((b"0123456789", 20))),
            (
                b"a\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
                10,
                Ok((b"0123456789", 28)),
            ),
            (b"3\r\nabc\r\n", 10, Err(0)),
            (b"B\r\n0123456789a\r\n0\r\n\r\n", 10, Err(413)),
            (b"ffffffffffffffff\r\n", 10, Err(413)),
            (b"10000000000000000\r\n", u64::MAX, Err(400)),
            (b"\r\n", 10, Err(400)),
            (b"x\r\n", 10, Err(400)),
            (b"3\nabc\r\n0\r\n\r\n", 10, Err(400)),
            (b"3\r\nabcX\r\n0\r\n\r\n", 10, Err(400)),
            (b"3\r\nabc\rX0\r\n\r\n", 10, Err(400)),
            (b"3\r\nabc\n0\r\n\r\n", 10, Err(400)),
            (b"0\r\n\n", 10, Err(400)),
            (b"0\r\nX: a\nY: b\r\n\r\n", 10, Err(400)),
        ];
        for (input, limit, want) in cases {
            let got = decode_all(Framing::Chunked, input, *limit);
            let want = want.map(|(body, used)| (body.to_vec(), used));
            assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn chunked_decodes_the_same_when_fed_one_byte_at_a_time() {
        let input = b"4;a=b\r\nWiki\r\n5\r\npedia\r\n0\r\nT: x\r\n\r\n";
        let mut decoder = BodyDecoder::new(Framing::Chunked).unwrap();
        let mut out = Vec::new();
        for (i, byte) in input.iter().enumerate() {
            let p = decoder
                .decode(std::slice::from_ref(byte), &mut out, 100)
                .unwrap();
            assert_eq!(p.consumed, 1);
            assert_eq!(p.done, i == input.len() - 1);
        }
        assert_eq!(out, b"Wikipedia");
    }

    #[test]
    fn long_extensions_and_trailers_are_refused() {
        let ext = format!(
            "1;{}\r\na\r\n0\r\n\r\n",
            "e".repeat(MAX_CHUNK_LINE_BYTES + 1)
        );
        assert_eq!(decode_all(Framing::Chunked, ext.as_bytes(), 10), Err(400));
        let trailer = format!("0\r\n{}\r\n\r\n", "t".repeat(MAX_CHUNK_LINE_BYTES + 1));
        assert_eq!(
            decode_all(Framing::Chunked, trailer.as_bytes(), 10),
            Err(400)
        );
    }

    #[test]
    fn content_length_takes_exactly_its_bytes() {
        assert_eq!(
            decode_all(Framing::Length(3), b"abcdef", 10),
            Ok((b"abc".to_vec(), 3))
        );
        assert_eq!(decode_all(Framing::Length(3), b"ab", 10), Err(0));
        assert_eq!(
            decode_all(Framing::Length(11), b"01234567890", 10),
            Err(413)
        );
        let mut decoder = BodyDecoder::new(Framing::Length(4)).unwrap();
        let mut out = Vec::new();
        assert!(!decoder.decode(b"ab", &mut out, 10).unwrap().done);
        let p = decoder.decode(b"cdGET", &mut out, 10).unwrap();
        assert_eq!(
            (p.consumed, p.done, out.as_slice()),
            (2, true, &b"abcd"[..])
        );
    }
}
