//! HPACK header tables (RFC 7541 §2.3): the static table of Appendix A with a name lookup
//! for the encoder, and the dynamic table (a ring of entries, FIFO eviction by size) shared
//! by the encoder and the decoder.

use std::collections::VecDeque;

/// Per-entry overhead counted in a table's size (RFC 7541 §4.1), and per field in a header
/// list's size (RFC 7540 §6.5.2).
pub const ENTRY_OVERHEAD: usize = 32;

/// Number of entries of the static table; dynamic indices start right after it.
pub const STATIC_LEN: usize = 61;

/// The static table (RFC 7541 Appendix A); `STATIC_TABLE[i - 1]` is index `i`.
pub static STATIC_TABLE: [(&[u8], &[u8]); STATIC_LEN] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The static indices `first..=last` whose name is `name`, if any. (Length, first byte, last
/// byte) is unique among the static names, so one `match` finds the only candidate and one
/// comparison confirms it.
pub fn static_name(name: &[u8]) -> Option<(usize, usize)> {
    let (&first, &last) = (name.first()?, name.last()?);
    let range = match (name.len(), first, last) {
        (3, b'a', b'e') => (21, 21),  // age
        (3, b'v', b'a') => (60, 60),  // via
        (4, b'd', b'e') => (33, 33),  // date
        (4, b'e', b'g') => (34, 34),  // etag
        (4, b'f', b'm') => (37, 37),  // from
        (4, b'h', b't') => (38, 38),  // host
        (4, b'l', b'k') => (45, 45),  // link
        (4, b'v', b'y') => (59, 59),  // vary
        (5, b':', b'h') => (4, 5),    // :path
        (5, b'a', b'w') => (22, 22),  // allow
        (5, b'r', b'e') => (50, 50),  // range
        (6, b'a', b't') => (19, 19),  // accept
        (6, b'c', b'e') => (32, 32),  // cookie
        (6, b'e', b't') => (35, 35),  // expect
        (6, b's', b'r') => (54, 54),  // server
        (7, b':', b'd') => (2, 3),    // :method
        (7, b':', b'e') => (6, 7),    // :scheme
        (7, b':', b's') => (8, 14),   // :status
        (7, b'e', b's') => (36, 36),  // expires
        (7, b'r', b'r') => (51, 51),  // referer
        (7, b'r', b'h') => (52, 52),  // refresh
        (8, b'i', b'h') => (39, 39),  // if-match
        (8, b'i', b'e') => (42, 42),  // if-range
        (8, b'l', b'n') => (46, 46),  // location
        (10, b':', b'y') => (1, 1),   // :authority
        (10, b's', b'e') => (55, 55), // set-cookie
        (10, b'u', b't') => (58, 58), // user-agent
        (11, b'r', b'r') => (53, 53), // retry-after
        (12, b'c', b'e') => (31, 31), // content-type
        (12, b'm', b's') => (47, 47), // max-forwards
        (13, b'a', b's') => (18, 18), // accept-ranges
        (13, b'a', b'n') => (23, 23), // authorization
        (13, b'c', b'l') => (24, 24), // cache-control
        (13, b'c', b'e') => (30, 30), // content-range
        (13, b'i', b'h') => (41, 41), // if-none-match
        (13, b'l', b'd') => (44, 44), // last-modified
        (14, b'a', b't') => (15, 15), // accept-charset
        (14, b'c', b'h') => (28, 28), // content-length
        (15, b'a', b'g') => (16, 16), // accept-encoding
        (15, b'a', b'e') => (17, 17), // accept-language
        (16, b'c', b'g') => (26, 26), // content-encoding
        (16, b'c', b'e') => (27, 27), // content-language
        (16, b'c', b'n') => (29, 29), // content-location
        (16, b'w', b'e') => (61, 61), // www-authenticate
        (17, b'i', b'e') => (40, 40), // if-modified-since
        (17, b't', b'g') => (57, 57), // transfer-encoding
        (18, b'p', b'e') => (48, 48), // proxy-authenticate
        (19, b'c', b'n') => (25, 25), // content-disposition
        (19, b'i', b'e') => (43, 43), // if-unmodified-since
        (19, b'p', b'n') => (49, 49), // proxy-authorization
        (25, b's', b'y') => (56, 56), // strict-transport-security
        (27, b'a', b'n') => (20, 20), // access-control-allow-origin
        _ => return None,
    };
    (STATIC_TABLE[range.0 - 1].0 == name).then_some(range)
}

/// One dynamic table entry: name and value in one buffer.
struct Entry {
    buf: Vec<u8>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        &self.buf[..self.name_len]
    }

    fn value(&self) -> &[u8] {
        &self.buf[self.name_len..]
    }
}

/// What [`DynamicTable::find`] found for a (name, value).
pub enum Found {
    /// Not even the name.
    None,
    /// The name at this position (0 = newest), with another value.
    Name(usize),
    /// The exact field at this position.
    Field(usize),
}

/// A 64-bit fingerprint of a field for [`DynamicTable::find`]: the high half hashes the
/// name alone, the low half the name and the value.
pub fn field_key(name: &[u8], value: &[u8]) -> u64 {
    let n = hash(name);
    let f = (n ^ hash(value).rotate_left(29)).wrapping_mul(HASH_K);
    (n & 0xffff_ffff_0000_0000) | (f >> 32)
}

const HASH_K: u64 = 0x517c_c1b7_2722_0a95;

/// An FxHash-style hash, 8 bytes at a time.
#[inline]
fn hash(bytes: &[u8]) -> u64 {
    let mut h = (bytes.len() as u64).wrapping_mul(HASH_K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ word).wrapping_mul(HASH_K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let word = rest.iter().fold(0u64, |w, &b| (w << 8) | b as u64);
        h = (h.rotate_left(5) ^ word).wrapping_mul(HASH_K);
    }
    h
}

/// The dynamic table: newest entry at the front (position 0 = HPACK index 62). The buffer
/// of the last evicted entry is kept to build the next one, so a table in steady state
/// (one insert, one eviction) does not allocate. The encoder's table also keeps each
/// entry's [`field_key`] in a parallel ring, which `find` scans.
pub struct DynamicTable {
    entries: VecDeque<Entry>,
    /// `field_key` of each entry, in the same order (encoder only: `keyed`).
    keys: VecDeque<u64>,
    keyed: bool,
    /// Sum of the entries' sizes (name + value + 32 each).
    size: usize,
    max_size: usize,
    spare: Vec<u8>,
}

impl DynamicTable {
    /// A table for a decoder (`keyed` false: [`push`](Self::push)) or an encoder (`keyed`
    /// true: [`insert`](Self::insert) and [`find`](Self::find)).
    pub fn new(max_size: usize, keyed: bool) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            keys: VecDeque::new(),
            keyed,
            size: 0,
            max_size,
            spare: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The entry at `pos` (0 = newest), if there is one.
    #[inline]
    pub fn get(&self, pos: usize) -> Option<(&[u8], &[u8])> {
        self.entries.get(pos).map(|e| (e.name(), e.value()))
    }

    /// Changes the maximum size, evicting the oldest entries until the table fits.
    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// An empty buffer to build a new entry in (the spare one if any); give it back with
    /// [`push`](Self::push). Built before the eviction, so a new entry may use the name of
    /// an entry its insertion evicts (RFC 7541 §4.4).
    pub fn take_buf(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        buf
    }

    /// Makes room for an entry of `entry_size`: false (and the table emptied) when it is
    /// larger than the whole table (RFC 7541 §4.4).
    fn make_room(&mut self, entry_size: usize) -> bool {
        if entry_size > self.max_size {
            self.evict_to(0);
            return false;
        }
        self.evict_to(self.max_size - entry_size);
        self.size += entry_size;
        true
    }

    /// Decoder: inserts `buf` (name then value, the name `name_len` bytes) as the newest
    /// entry, evicting as needed.
    pub fn push(&mut self, buf: Vec<u8>, name_len: usize) {
        debug_assert!(!self.keyed);
        if self.make_room(buf.len() + ENTRY_OVERHEAD) {
            self.entries.push_front(Entry { buf, name_len });
        } else {
            self.spare = buf;
        }
    }

    /// Encoder: inserts a copy of (name, value), whose [`field_key`] is `key`.
    pub fn insert(&mut self, key: u64, name: &[u8], value: &[u8]) {
        debug_assert!(self.keyed);
        if self.make_room(name.len() + value.len() + ENTRY_OVERHEAD) {
            let mut buf = self.take_buf();
            buf.reserve(name.len() + value.len());
            buf.extend_from_slice(name);
            buf.extend_from_slice(value);
            let name_len = name.len();
            self.entries.push_front(Entry { buf, name_len });
            self.keys.push_front(key);
        }
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some(e) = self.entries.pop_back() else {
                break;
            };
            self.keys.pop_back();
            self.size -= e.buf.len() + ENTRY_OVERHEAD;
            self.spare = e.buf;
        }
    }

    /// Encoder: looks for (name, value), whose [`field_key`] is `key`, newest first: the
    /// exact field, else the newest entry with that name. Scans the ring of keys (8 bytes
    /// an entry) and compares bytes only where a key matches.
    #[inline]
    pub fn find(&self, key: u64, name: &[u8], value: &[u8]) -> Found {
        let mut found = Found::None;
        for (pos, &k) in self.keys.iter().enumerate() {
            if k == key {
                let e = &self.entries[pos];
                if e.name() == name && e.value() == value {
                    return Found::Field(pos);
                }
            }
            if (k ^ key) >> 32 == 0
                && matches!(found, Found::None)
                && self.entries[pos].name() == name
            {
                found = Found::Name(pos);
            }
        }
        found
    }

    /// The entries, newest first.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|e| (e.name(), e.value()))
    }
}
