//! HTTP/2 framing (RFC 9113 §4 and §6): the frame header, frame types, flags, error codes and
//! settings identifiers; reading one frame's header from received bytes, and writing every
//! frame a server sends. Pure functions over byte slices: no state, no I/O.

/// What a connection must open with to be HTTP/2 (§3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The fixed part of every frame.
pub const HEADER_LEN: usize = 9;
/// The smallest maximum frame size; every peer accepts frames this large.
pub const DEFAULT_MAX_FRAME: usize = 16_384;
/// The largest value SETTINGS_MAX_FRAME_SIZE may take.
pub const MAX_MAX_FRAME: u32 = (1 << 24) - 1;
/// The largest flow-control window.
pub const MAX_WINDOW: i64 = (1 << 31) - 1;
/// The window every stream and the connection start with.
pub const DEFAULT_WINDOW: i64 = 65_535;

// Frame types (§6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

// Settings identifiers (§6.5.2).
pub const HEADER_TABLE_SIZE: u16 = 0x1;
pub const ENABLE_PUSH: u16 = 0x2;
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const MAX_FRAME_SIZE: u16 = 0x5;
pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Error codes (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Code {
    NoError = 0x0,
    Protocol = 0x1,
    Internal = 0x2,
    FlowControl = 0x3,
    StreamClosed = 0x5,
    FrameSize = 0x6,
    RefusedStream = 0x7,
    Cancel = 0x8,
    Compression = 0x9,
    EnhanceYourCalm = 0xb,
}

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Reads a frame header from the start of `bytes` (at least `HEADER_LEN` long).
    pub fn read(bytes: &[u8]) -> Head {
        Head {
            len: (usize::from(bytes[0]) << 16)
                | (usize::from(bytes[1]) << 8)
                | usize::from(bytes[2]),
            kind: bytes[3],
            flags: bytes[4],
            // The reserved bit is ignored (§4.1).
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Appends a frame header.
pub fn write_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= MAX_MAX_FRAME as usize);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Strips the padding of a DATA or HEADERS payload (§6.1): the content, or `None` when the
/// pad length is not smaller than the payload (a PROTOCOL_ERROR).
pub fn unpad(head: &Head, payload: &[u8]) -> Option<(usize, usize)> {
    if !head.has(PADDED) {
        return Some((0, payload.len()));
    }
    let pad = usize::from(*payload.first()?);
    let end = payload.len().checked_sub(pad)?;
    (end >= 1).then_some((1, end))
}

/// SETTINGS entries: (identifier, value) pairs; `None` when the length is not a multiple of six.
pub fn settings(payload: &[u8]) -> Option<impl Iterator<Item = (u16, u32)> + '_> {
    payload.len().is_multiple_of(6).then(|| {
        payload.chunks_exact(6).map(|e| {
            (
                u16::from_be_bytes([e[0], e[1]]),
                u32::from_be_bytes([e[2], e[3], e[4], e[5]]),
            )
        })
    })
}

/// A 31-bit big-endian value (a window increment or a stream id), reserved bit ignored.
pub fn u31(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & 0x7fff_ffff
}

pub fn write_settings(out: &mut Vec<u8>, entries: &[(u16, u32)]) {
    write_head(out, entries.len() * 6, SETTINGS, 0, 0);
    for (id, value) in entries {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub fn write_settings_ack(out: &mut Vec<u8>) {
    write_head(out, 0, SETTINGS, ACK, 0);
}

pub fn write_ping_ack(out: &mut Vec<u8>, opaque: &[u8]) {
    write_head(out, 8, PING, ACK, 0);
    out.extend_from_slice(&opaque[..8]);
}

pub fn write_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    write_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&increment.to_be_bytes());
}

pub fn write_rst(out: &mut Vec<u8>, stream: u32, code: Code) {
    write_head(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

pub fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: Code) {
    write_head(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&last_stream.to_be_bytes());
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

/// A header block as HEADERS plus CONTINUATION frames of at most `max_frame` bytes each.
pub fn write_headers(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool, max: usize) {
    let mut chunks = block.chunks(max.max(1));
    let first = chunks.next().unwrap_or(&[]);
    let last = first.len() == block.len();
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if last {
        flags |= END_HEADERS;
    }
    write_head(out, first.len(), HEADERS, flags, stream);
    out.extend_from_slice(first);
    let mut rest = chunks.peekable();
    while let Some(chunk) = rest.next() {
        let flags = if rest.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        write_head(out, chunk.len(), CONTINUATION, flags, stream);
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_the_reserved_bit_is_ignored() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            0x01_0203,
            HEADERS,
            END_STREAM | END_HEADERS,
            0x7fff_ffff,
        );
        let mut head = Head::read(&out);
        assert_eq!(
            head,
            Head {
                len: 0x01_0203,
                kind: HEADERS,
                flags: END_STREAM | END_HEADERS,
                stream: 0x7fff_ffff
            }
        );
        out[5] |= 0x80;
        head = Head::read(&out);
        assert_eq!(head.stream, 0x7fff_ffff);
    }

    #[test]
    fn padding_is_stripped_or_refused() {
        let padded = Head {
            len: 0,
            kind: DATA,
            flags: PADDED,
            stream: 1,
        };
        let plain = Head { flags: 0, ..padded };
        type Case<'a> = (&'a Head, &'a [u8], Option<(usize, usize)>);
        let cases: &[Case] = &[
            (&plain, b"abc", Some((0, 3))),
            (&padded, &[2, b'a', 0, 0], Some((1, 2))),
            (&padded, &[0, b'a'], Some((1, 2))),
            (&padded, &[3, 0, 0, 0], Some((1, 1))),
            (&padded, &[4, 0, 0, 0], None),
            (&padded, &[9], None),
            (&padded, &[], None),
        ];
        for (head, payload, want) in cases {
            assert_eq!(unpad(head, payload), *want, "{payload:?}");
        }
    }

    #[test]
    fn settings_are_read_in_sixes() {
        let mut out = Vec::new();
        write_settings(
            &mut out,
            &[(INITIAL_WINDOW_SIZE, 1 << 20), (MAX_FRAME_SIZE, 32_768)],
        );
        let head = Head::read(&out);
        assert_eq!((head.len, head.kind), (12, SETTINGS));
        let entries: Vec<_> = settings(&out[HEADER_LEN..]).unwrap().collect();
        assert_eq!(
            entries,
            [(INITIAL_WINDOW_SIZE, 1 << 20), (MAX_FRAME_SIZE, 32_768)]
        );
        assert!(settings(&[0; 7]).is_none());
    }

    #[test]
    fn a_large_block_is_split_into_continuations() {
        let block: Vec<u8> = (0..40u8).collect();
        let mut out = Vec::new();
        write_headers(&mut out, 3, &block, true, 16);
        let mut at = 0;
        let mut seen = Vec::new();
        let mut kinds = Vec::new();
        while at < out.len() {
            let head = Head::read(&out[at..]);
            kinds.push((head.kind, head.flags));
            seen.extend_from_slice(&out[at + HEADER_LEN..at + HEADER_LEN + head.len]);
            at += HEADER_LEN + head.len;
        }
        assert_eq!(seen, block);
        assert_eq!(
            kinds,
            [
                (HEADERS, END_STREAM),
                (CONTINUATION, 0),
                (CONTINUATION, END_HEADERS)
            ]
        );
    }
}
