//! `multipart/form-data` (RFC 7578) read as it arrives, in any pieces: each part's head,
//! then its content as slices of the input (nothing is copied or held but a boundary's
//! length of bytes between pieces), then its end. Pure and bounded: a part's head is at most
//! `MAX_HEAD` bytes.

use memchr::memmem::Finder;

use super::HttpError;

/// Most bytes of one part's header block.
const MAX_HEAD: usize = 8 * 1024;

/// What one part says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartHead {
    /// The form field's name.
    pub name: String,
    /// The file name a browser or curl gave, for a file part (as sent: the caller checks it).
    pub filename: Option<String>,
}

/// What the input held, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Part(PartHead),
    Data(&'a [u8]),
    PartEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first boundary.
    Preamble,
    /// After a boundary: `\r\n` (a part follows) or `--` (the end).
    AfterBoundary,
    Head,
    Body,
    /// After the closing boundary: the epilogue, ignored.
    Done,
}

pub struct Multipart {
    /// `\r\n--` and the boundary.
    delimiter: Vec<u8>,
    finder: Finder<'static>,
    state: State,
    /// Bytes kept between pieces: a head in progress, or what could be a delimiter's start.
    held: Vec<u8>,
}

/// The boundary of a `multipart/form-data` Content-Type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let essence = parts.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

impl Multipart {
    pub fn new(boundary: &str) -> Multipart {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        // The first boundary may start the body: read it as if a line break came before.
        Multipart {
            finder: Finder::new(&delimiter).into_owned(),
            delimiter,
            state: State::Preamble,
            held: b"\r\n".to_vec(),
        }
    }

    /// True once the closing boundary was read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads the next piece of the body, telling `on` what it holds. The piece is read where
    /// it lies: only what is held from the last one (a head in progress, or what could start a
    /// delimiter) is joined with the first few bytes of this one.
    pub fn feed<E: From<HttpError>>(
        &mut self,
        input: &[u8],
        mut on: impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut input = input;
        let mut step = self.delimiter.len() + 2;
        while !self.held.is_empty() {
            if input.is_empty() {
                return Ok(());
            }
            let old = self.held.len();
            let joined = input.len().min(step);
            let mut held = std::mem::take(&mut self.held);
            held.extend_from_slice(&input[..joined]);
            let at = self.scan(&held, &mut on)?;
            if at >= old {
                // Past what was held: go on in the input itself.
                held.clear();
                input = &input[at - old..];
            } else {
                // Still inside what was held (a long head): hold more, join more next time.
                held.drain(..at);
                input = &input[joined..];
                step *= 2;
            }
            self.held = held;
        }
        let at = self.scan(input, &mut on)?;
        self.held.extend_from_slice(&input[at..]);
        Ok(())
    }

    /// Reads `bytes` as far as it can tell what it holds; returns how far that is.
    fn scan<E: From<HttpError>>(
        &mut self,
        bytes: &[u8],
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut at = 0;
        loop {
            let rest = &bytes[at..];
            match self.state {
                State::Done => {
                    at = bytes.len();
                    break;
                }
                State::Preamble => match self.finder.find(rest) {
                    Some(i) => match ends_delimiter(&rest[i + self.delimiter.len()..]) {
                        None => {
                            at += i;
                            break;
                        }
                        Some(false) => at += i + self.delimiter.len(),
                        Some(true) => {
                            at += i + self.delimiter.len();
                            self.state = State::AfterBoundary;
                        }
                    },
                    None => {
                        // Keep what could be the start of the delimiter.
                        at += rest.len().saturating_sub(self.delimiter.len() - 1);
                        break;
                    }
                },
                State::AfterBoundary => {
                    if rest.len() < 2 {
                        break;
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Done;
                    } else if rest.starts_with(b"\r\n") {
                        self.state = State::Head;
                    } else {
                        return Err(HttpError::BadRequest("malformed multipart boundary").into());
                    }
                    at += 2;
                }
                State::Head => {
                    let Some(end) = memchr::memmem::find(rest, b"\r\n\r\n") else {
                        if rest.len() > MAX_HEAD {
                            return Err(HttpError::BadRequest(
                                "a multipart part's head is too large",
                            )
                            .into());
                        }
                        break;
                    };
                    let head = part_head(&rest[..end])?;
                    at += end + 4;
                    self.state = State::Body;
                    on(Event::Part(head))?;
                }
                State::Body => match self.finder.find(rest) {
                    Some(i) => {
                        let end = i + self.delimiter.len();
                        match ends_delimiter(&rest[end..]) {
                            None => {
                                // Whether it is a boundary shows with the next piece.
                                if i > 0 {
                                    on(Event::Data(&rest[..i]))?;
                                }
                                at += i;
                                break;
                            }
                            Some(false) => {
                                // The boundary's text inside the content, not a boundary.
                                on(Event::Data(&rest[..end]))?;
                                at += end;
                            }
                            Some(true) => {
                                if i > 0 {
                                    on(Event::Data(&rest[..i]))?;
                                }
                                on(Event::PartEnd)?;
                                at += end;
                                self.state = State::AfterBoundary;
                            }
                        }
                    }
                    None => {
                        let safe = rest.len().saturating_sub(self.delimiter.len() - 1);
                        if safe > 0 {
                            on(Event::Data(&rest[..safe]))?;
                        }
                        at += safe;
                        break;
                    }
                },
            }
        }
        Ok(at)
    }
}

/// Whether what follows `CRLF--boundary` makes it a delimiter (`--` closes, CRLF starts a
/// part); `None` until two bytes are there to tell.
fn ends_delimiter(after: &[u8]) -> Option<bool> {
    let next = after.get(..2)?;
    Some(next == b"--" || next == b"\r\n")
}

/// A part's head: its Content-Disposition's name and filename.
fn part_head(block: &[u8]) -> Result<PartHead, HttpError> {
    let text = std::str::from_utf8(block)
        .map_err(|_| HttpError::BadRequest("a multipart part's head is not UTF-8"))?;
    let mut head = None;
    for line in text.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let mut params = value.split(';');
        if !params
            .next()
            .is_some_and(|d| d.trim().eq_ignore_ascii_case("form-data"))
        {
            return Err(HttpError::BadRequest("a multipart part is not form-data"));
        }
        let mut part = PartHead::default();
        for param in params {
            let Some((key, raw)) = param.split_once('=') else {
                continue;
            };
            let value = unquote(raw.trim());
            match key.trim().to_ascii_lowercase().as_str() {
                "name" => part.name = value,
                "filename" => part.filename = Some(value),
                _ => {}
            }
        }
        head = Some(part);
    }
    head.ok_or(HttpError::BadRequest(
        "a multipart part has no Content-Disposition",
    ))
}

/// A quoted-string's value (browsers escape `"` as `%22`, and some send `\"`).
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.txt\"\r\n\
        Content-Type: text/plain\r\n\r\nline one\r\n--XyZnot a boundary\r\nend\r\n--XyZ--\r\nepilogue";

    /// Parts as (head, content), fed in pieces of `size` bytes.
    fn parts(body: &[u8], size: usize) -> Result<Vec<(PartHead, Vec<u8>)>, HttpError> {
        let mut multipart = Multipart::new("XyZ");
        let mut out: Vec<(PartHead, Vec<u8>)> = Vec::new();
        for piece in body.chunks(size) {
            multipart.feed(piece, |event| {
                match event {
                    Event::Part(head) => out.push((head, Vec::new())),
                    Event::Data(bytes) => out.last_mut().unwrap().1.extend_from_slice(bytes),
                    Event::PartEnd => {}
                }
                Ok::<(), HttpError>(())
            })?;
        }
        assert!(multipart.is_done());
        Ok(out)
    }

    #[test]
    fn parts_are_read_whatever_the_pieces() {
        for size in [1, 2, 3, 7, 16, 1000] {
            let got = parts(BODY.as_bytes(), size).unwrap();
            assert_eq!(got.len(), 2, "pieces of {size}");
            assert_eq!(
                (got[0].0.name.as_str(), got[0].1.as_slice()),
                ("note", &b"hello"[..])
            );
            assert_eq!(got[1].0.filename.as_deref(), Some("a b.txt"));
            assert_eq!(
                got[1].1, b"line one\r\n--XyZnot a boundary\r\nend",
                "pieces of {size}"
            );
        }
    }

    #[test]
    fn boundaries_and_heads_are_checked() {
        let cases = [
            ("multipart/form-data; boundary=abc", Some("abc")),
            (
                "multipart/form-data; charset=utf-8; boundary=\"a b\"",
                Some("a b"),
            ),
            ("multipart/mixed; boundary=abc", None),
            ("multipart/form-data", None),
        ];
        for (header, want) in cases {
            assert_eq!(boundary(header).as_deref(), want, "{header}");
        }
        let no_disposition = "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--";
        assert!(parts(no_disposition.as_bytes(), 100).is_err());
        // The boundary's text followed by anything else is content: this body never ends.
        let unended = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--XyZ!!";
        let mut m = Multipart::new("XyZ");
        m.feed(unended.as_bytes(), |_| Ok::<(), HttpError>(()))
            .unwrap();
        assert!(!m.is_done());
        let huge = format!("--XyZ\r\nX: {}\r\n", "h".repeat(MAX_HEAD + 10));
        let mut m = Multipart::new("XyZ");
        assert!(
            m.feed(huge.as_bytes(), |_| Ok::<(), HttpError>(()))
                .is_err()
        );
    }
}
