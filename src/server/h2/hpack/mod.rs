//! HPACK header compression for HTTP/2 (RFC 7541): the `Encoder` and `Decoder`, their
//! errors, and the integer (§5.1) and string literal (§5.2) primitives.
//!
//! Performance notes. The decoder borrows names and values from the static table, the
//! dynamic table, the block itself, or one scratch buffer it keeps for Huffman-decoded
//! strings, so a field costs no allocation; a dynamic table in steady state reuses the buffer
//! of the entry it evicts. The encoder finds a full match in the static table with one
//! `match` on (length, first byte, last byte) of the name, and in the dynamic table by
//! scanning a ring of 64-bit fingerprints of its entries (hash of the name, hash of name and
//! value), comparing bytes only where a fingerprint matches: for 24 entries that measured
//! about 30 ns a lookup, hashing included, against about 45 ns for a std `HashMap` keyed by
//! (name, value), which would also keep a second copy of every entry and need upkeep on
//! eviction.

mod huffman;
mod huffman_table;
mod table;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rfc;
#[cfg(test)]
mod tests_timing;

use table::{DynamicTable, ENTRY_OVERHEAD, Found, STATIC_LEN, STATIC_TABLE};

/// The initial size of the dynamic tables (SETTINGS_HEADER_TABLE_SIZE default).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Why a header block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Malformed block: bad integer, string or index, a table size update above the limit or
    /// not at the start of the block, bad Huffman padding or EOS... The connection gets
    /// COMPRESSION_ERROR.
    Compression,
    /// The decoded header list (RFC 7540 §6.5.2 size: name + value + 32 per field) exceeds
    /// the limit passed to [`Decoder::decode`]. The block was still decoded to its end, so
    /// the dynamic table is in sync; only the callback stopped being called.
    ListTooLarge,
}

// ---- Integers (RFC 7541 §5.1) ----

/// Appends `value` as an integer with a `prefix_bits`-bit prefix; `flags` holds the bits of
/// the first byte above the prefix.
#[inline]
fn encode_int(out: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Reads an integer with a `prefix_bits`-bit prefix starting at `block[*pos]` (the byte that
/// holds the prefix). At most 5 continuation bytes and values up to `u32::MAX` are accepted:
/// anything longer or larger is a decoding error (§5.1 "implementation limits").
#[inline]
fn decode_int(block: &[u8], pos: &mut usize, prefix_bits: u32) -> Result<usize, DecodeError> {
    let max = ((1u32 << prefix_bits) - 1) as u8;
    let first = *block.get(*pos).ok_or(DecodeError::Compression)?;
    *pos += 1;
    let prefix = first & max;
    if prefix < max {
        return Ok(prefix as usize);
    }
    let mut value = max as u64;
    let mut shift = 0;
    loop {
        let b = *block.get(*pos).ok_or(DecodeError::Compression)?;
        *pos += 1;
        value += ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err(DecodeError::Compression);
        }
    }
    if value > u32::MAX as u64 {
        return Err(DecodeError::Compression);
    }
    Ok(value as usize)
}

// ---- Strings (RFC 7541 §5.2) ----

/// Appends a string literal, Huffman-coded when that is strictly shorter.
#[inline]
fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    let huffman_len = huffman::encoded_len(s);
    if huffman_len < s.len() {
        encode_int(out, 0x80, 7, huffman_len);
        huffman::encode(s, huffman_len, out);
    } else {
        encode_int(out, 0, 7, s.len());
        out.extend_from_slice(s);
    }
}

/// Where a decoded name or value lies, resolved to a slice once the field is complete (so
/// the scratch buffer may grow while the field is read).
#[derive(Clone, Copy)]
enum Str {
    Static(&'static [u8]),
    /// Name or value of the dynamic entry at this position.
    DynName(usize),
    DynValue(usize),
    /// A range of the block (raw literal).
    Block(usize, usize),
    /// A range of the scratch buffer (Huffman-decoded literal).
    Scratch(usize, usize),
}

impl Str {
    #[inline]
    fn get<'a>(self, block: &'a [u8], scratch: &'a [u8], table: &'a DynamicTable) -> &'a [u8] {
        match self {
            Str::Static(s) => s,
            Str::DynName(pos) => table.get(pos).map_or(&[], |e| e.0),
            Str::DynValue(pos) => table.get(pos).map_or(&[], |e| e.1),
            Str::Block(a, b) => &block[a..b],
            Str::Scratch(a, b) => &scratch[a..b],
        }
    }
}

/// Reads a string literal at `block[*pos]`; a Huffman-coded one is decoded onto `scratch`.
#[inline]
fn decode_str(block: &[u8], pos: &mut usize, scratch: &mut Vec<u8>) -> Result<Str, DecodeError> {
    let huffman = block.get(*pos).ok_or(DecodeError::Compression)? & 0x80 != 0;
    let len = decode_int(block, pos, 7)?;
    let start = *pos;
    if len > block.len() - start {
        return Err(DecodeError::Compression);
    }
    *pos = start + len;
    if !huffman {
        return Ok(Str::Block(start, start + len));
    }
    let from = scratch.len();
    huffman::decode(&block[start..start + len], scratch)?;
    Ok(Str::Scratch(from, scratch.len()))
}

/// The name (and value) of an index of the static or dynamic table.
#[inline]
fn lookup(table: &DynamicTable, index: usize) -> Result<(Str, Str), DecodeError> {
    if index == 0 {
        Err(DecodeError::Compression)
    } else if index <= STATIC_LEN {
        let (name, value) = STATIC_TABLE[index - 1];
        Ok((Str::Static(name), Str::Static(value)))
    } else if index - STATIC_LEN - 1 < table.len() {
        let pos = index - STATIC_LEN - 1;
        Ok((Str::DynName(pos), Str::DynValue(pos)))
    } else {
        Err(DecodeError::Compression)
    }
}

// ---- Decoder ----

/// The decoding side of one connection: its dynamic table and a scratch buffer.
pub struct Decoder {
    table: DynamicTable,
    /// What we advertise as SETTINGS_HEADER_TABLE_SIZE: the largest size update allowed.
    limit: usize,
    /// Set when `limit` dropped below the table's size: the next block must open with a
    /// size update at most this small (RFC 7541 §4.2).
    required_update: Option<usize>,
    /// Huffman-decoded strings of the current field.
    scratch: Vec<u8>,
}

/// Scratch capacity kept between blocks (more is given back after a block that needed it).
const SCRATCH_KEEP: usize = 16 * 1024;

/// Why the callback stopped being called.
enum Stop<E> {
    No,
    TooLarge,
    Field(E),
}

impl Decoder {
    /// `max_table_size`: what we advertise as SETTINGS_HEADER_TABLE_SIZE (size updates above
    /// it are a COMPRESSION_ERROR); the table starts at that size. The peer's encoder starts
    /// at 4096 until it has our SETTINGS, so when advertising less, start with
    /// `new(DEFAULT_TABLE_SIZE)` and call [`set_max_table_size`](Self::set_max_table_size)
    /// when the peer acknowledges.
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size, false),
            limit: max_table_size,
            required_update: None,
            scratch: Vec::new(),
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE changed and the peer acknowledged it. When it is below
    /// the table's current size, the peer's next block must start with a size update at most
    /// this large (or smaller, if this is called again with a smaller value before).
    pub fn set_max_table_size(&mut self, size: usize) {
        self.limit = size;
        if size < self.table.max_size() {
            self.required_update = Some(self.required_update.map_or(size, |r| r.min(size)));
        }
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION payloads joined), calling
    /// `field(name, value)` for each field in order. When the header list grows past
    /// `max_list` bytes (RFC 7540 §6.5.2 size), or `field` returns an error, `field` is no
    /// longer called but the block is decoded to its end so the dynamic table stays in sync;
    /// the first of these two events decides the result: `Err(ListTooLarge)`, or `Ok(Err(e))`.
    /// `Err(Compression)` (malformed block) wins over both.
    pub fn decode<E>(
        &mut self,
        block: &[u8],
        max_list: usize,
        mut field: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<Result<(), E>, DecodeError> {
        let Decoder {
            table,
            limit,
            required_update,
            scratch,
        } = self;
        let mut pos = 0;

        // Dynamic table size updates: only at the start of the block (§4.2).
        let mut smallest: Option<usize> = None;
        while pos < block.len() && block[pos] & 0xe0 == 0x20 {
            let size = decode_int(block, &mut pos, 5)?;
            if size > *limit {
                return Err(DecodeError::Compression);
            }
            table.set_max_size(size);
            smallest = Some(smallest.map_or(size, |s| s.min(size)));
        }
        if let Some(required) = required_update.take()
            && smallest.is_none_or(|s| s > required)
        {
            return Err(DecodeError::Compression);
        }

        let mut list_size = 0usize;
        let mut stop = Stop::No;
        while pos < block.len() {
            let b = block[pos];
            let (name, value, insert) = if b & 0x80 != 0 {
                // Indexed field (§6.1).
                let index = decode_int(block, &mut pos, 7)?;
                let (name, value) = lookup(table, index)?;
                (name, value, false)
            } else {
                // Literal (§6.2): with incremental indexing (01), without (0000), never
                // indexed (0001); 001 is a size update, out of place here.
                let (prefix_bits, insert) = match b & 0xe0 {
                    0x20 => return Err(DecodeError::Compression),
                    0x40 | 0x60 => (6, true),
                    _ => (4, false),
                };
                let index = decode_int(block, &mut pos, prefix_bits)?;
                scratch.clear();
                let name = if index == 0 {
                    decode_str(block, &mut pos, scratch)?
                } else {
                    lookup(table, index)?.0
                };
                let value = decode_str(block, &mut pos, scratch)?;
                (name, value, insert)
            };

            // The new entry's buffer is taken before the slices borrow the table.
            let mut buf = if insert { table.take_buf() } else { Vec::new() };
            let (name, value) = (
                name.get(block, scratch, table),
                value.get(block, scratch, table),
            );
            if let Stop::No = stop {
                list_size = list_size.saturating_add(name.len() + value.len() + ENTRY_OVERHEAD);
                if list_size > max_list {
                    stop = Stop::TooLarge;
                } else if let Err(e) = field(name, value) {
                    stop = Stop::Field(e);
                }
            }
            if insert {
                buf.reserve(name.len() + value.len());
                buf.extend_from_slice(name);
                buf.extend_from_slice(value);
                let name_len = name.len();
                table.push(buf, name_len);
            }
        }

        if scratch.capacity() > SCRATCH_KEEP {
            *scratch = Vec::new();
        }
        match stop {
            Stop::No => Ok(Ok(())),
            Stop::TooLarge => Err(DecodeError::ListTooLarge),
            Stop::Field(e) => Ok(Err(e)),
        }
    }
}

// ---- Encoder ----

/// How a literal field may be stored by the decoder (RFC 7541 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexing {
    /// Added to the dynamic table: a repeat of the same field then costs one or two bytes.
    Incremental,
    /// Not added (a value that changes every time, or a large one).
    Without,
    /// Never added, by us or by an intermediary re-encoding it (secrets: cookies,
    /// authorization). Always sent as a literal, even when the table holds it.
    Never,
}

/// The encoding side of one connection: its dynamic table, which the peer's decoder mirrors.
pub struct Encoder {
    table: DynamicTable,
    /// Largest table we use, whatever the peer allows (memory per connection).
    cap: usize,
    /// Table size the peer's decoder was last told.
    signaled: usize,
    /// Smallest table size since the last block (to signal first if below `signaled`).
    smallest: usize,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder for a peer with the default SETTINGS_HEADER_TABLE_SIZE (4096).
    pub fn new() -> Encoder {
        Encoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE, true),
            cap: DEFAULT_TABLE_SIZE,
            signaled: DEFAULT_TABLE_SIZE,
            smallest: DEFAULT_TABLE_SIZE,
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed. We use `min(size, 4096)`: entries are
    /// evicted now as needed, and the next [`begin`](Self::begin) emits the size update(s)
    /// (RFC 7541 §4.2: the smallest size since the last block, then the final one).
    pub fn set_max_table_size(&mut self, size: usize) {
        let size = size.min(self.cap);
        self.table.set_max_size(size);
        self.smallest = self.smallest.min(size);
    }

    /// Starts a header block: emits any pending table size update. Call it first in every
    /// block.
    pub fn begin(&mut self, out: &mut Vec<u8>) {
        let size = self.table.max_size();
        if self.smallest < self.signaled && self.smallest < size {
            encode_int(out, 0x20, 5, self.smallest);
        }
        if size != self.signaled || self.smallest < size {
            encode_int(out, 0x20, 5, size);
        }
        self.signaled = size;
        self.smallest = size;
    }

    /// `:status`: a one-byte static index for 200, 204, 206, 304, 400, 404 and 500;
    /// otherwise a literal with incremental indexing, so a repeat costs one byte.
    /// `status` must be a three-digit code (100..=999).
    pub fn status(&mut self, status: u16, out: &mut Vec<u8>) {
        let index = match status {
            200 => 8,
            204 => 9,
            206 => 10,
            304 => 11,
            400 => 12,
            404 => 13,
            500 => 14,
            _ => 0,
        };
        if index != 0 {
            out.push(0x80 | index);
            return;
        }
        debug_assert!((100..=999).contains(&status), "status {status}");
        let digits = [
            b'0' + (status / 100 % 10) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        self.field(b":status", &digits, Indexing::Incremental, out);
    }

    /// One field; `name` is already lower-case. A field in the static or dynamic table is
    /// sent as its index (except with `Never`); otherwise a literal, with the name's index
    /// when a table has the name, strings Huffman-coded when that is shorter. `Incremental`
    /// adds the field to the table (evicting the oldest entries), unless it is larger than
    /// the whole table (then it is sent `Without`, which leaves the table as it is).
    pub fn field(&mut self, name: &[u8], value: &[u8], indexing: Indexing, out: &mut Vec<u8>) {
        debug_assert!(!name.iter().any(u8::is_ascii_uppercase), "{name:?}");
        let mut name_index = 0;
        if let Some((first, last)) = table::static_name(name) {
            name_index = first;
            if indexing != Indexing::Never {
                for index in first..=last {
                    if STATIC_TABLE[index - 1].1 == value {
                        encode_int(out, 0x80, 7, index);
                        return;
                    }
                }
            }
        }
        let key = table::field_key(name, value);
        match self.table.find(key, name, value) {
            Found::Field(pos) if indexing != Indexing::Never => {
                encode_int(out, 0x80, 7, STATIC_LEN + 1 + pos);
                return;
            }
            Found::Field(pos) | Found::Name(pos) if name_index == 0 => {
                name_index = STATIC_LEN + 1 + pos;
            }
            _ => {}
        }
        let insert = indexing == Indexing::Incremental
            && name.len() + value.len() + ENTRY_OVERHEAD <= self.table.max_size();
        let (flags, prefix_bits) = match indexing {
            Indexing::Incremental if insert => (0x40, 6),
            Indexing::Incremental | Indexing::Without => (0x00, 4),
            Indexing::Never => (0x10, 4),
        };
        encode_int(out, flags, prefix_bits, name_index);
        if name_index == 0 {
            encode_str(out, name);
        }
        encode_str(out, value);
        if insert {
            self.table.insert(key, name, value);
        }
    }
}
