//! Tests of the HPACK codec's behaviour: malformed blocks, size updates, list size limits,
//! the encoder's choices, and random encoder/decoder round trips; with the helpers the other
//! test files share.

use super::table::{DynamicTable, STATIC_TABLE, static_name};
use super::*;

pub(super) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

pub(super) fn fields(list: &[(&str, &str)]) -> Fields {
    list.iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// Decodes `block` with no list limit, returning its fields.
pub(super) fn decode_all(d: &mut Decoder, block: &[u8]) -> Result<Fields, DecodeError> {
    let mut got = Vec::new();
    d.decode(block, usize::MAX, |n, v| {
        got.push((n.to_vec(), v.to_vec()));
        Ok::<(), ()>(())
    })?
    .unwrap();
    Ok(got)
}

pub(super) fn table_of(t: &DynamicTable) -> Fields {
    t.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

/// A tiny xorshift64* generator (deterministic, no crate).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn bytes(&mut self, max_len: usize, alphabet: &[u8]) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

// ---- Decoder errors and limits ----

#[test]
fn decoder_malformed_blocks() {
    let cases: &[(&str, &[u8])] = &[
        ("index 0", &[0x80]),
        ("index past the static table, empty dynamic table", &[0xbe]),
        ("index far past the table", &[0xff, 0x80, 0x01]),
        ("literal name index past the table", &[0x7e, 0x01, b'x']),
        (
            "never-indexed name index past the table",
            &[0x1f, 0x30, 0x01, b'x'],
        ),
        (
            "integer with 10 continuation bytes",
            &[
                0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
        ),
        ("truncated integer", &[0xff]),
        ("string length past the end", &[0x40, 0x0a, b'a', b'b']),
        ("value missing", &[0x41]),
        ("name length missing", &[0x40]),
        ("bad Huffman in a value", &[0x41, 0x81, 0xff]),
        ("EOS in a name", &[0x40, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]),
        ("size update above the limit", &[0x3f, 0xe2, 0x1f]), // 4097
        (
            "size update after a field",
            &[0x82, 0x20, 0x01, b'a', 0x01, b'b'],
        ),
        (
            "size update after a literal",
            &[0x41, 0x01, b'x', 0x3f, 0x01],
        ),
    ];
    for (what, block) in cases {
        let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
        assert_eq!(
            decode_all(&mut d, block),
            Err(DecodeError::Compression),
            "{what}"
        );
    }
    // The same with a valid size update first, and two updates at the start, are fine.
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    assert_eq!(
        decode_all(&mut d, &[0x3f, 0xe1, 0x1f, 0x82]).unwrap(),
        fields(&[(":method", "GET")])
    );
    assert_eq!(
        decode_all(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82])
            .unwrap()
            .len(),
        1
    );
    assert_eq!(decode_all(&mut d, &[]).unwrap(), fields(&[]));
}

#[test]
fn decoder_size_updates() {
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    decode_all(
        &mut d,
        &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
    )
    .unwrap();
    assert_eq!(d.table.len(), 1);
    // An update to 0 empties the table: index 62 no longer exists.
    assert_eq!(
        decode_all(&mut d, &[0x20, 0xbe]),
        Err(DecodeError::Compression)
    );
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    decode_all(
        &mut d,
        &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
    )
    .unwrap();
    decode_all(&mut d, &[0x20, 0x3f, 0xe1, 0x1f]).unwrap();
    assert_eq!((d.table.len(), d.table.max_size()), (0, 4096));

    // Lowering our setting below the table size: the next block must start with an update
    // at most that large.
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    d.set_max_table_size(100);
    assert_eq!(decode_all(&mut d, &[0x82]), Err(DecodeError::Compression));
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    d.set_max_table_size(100);
    assert_eq!(
        decode_all(&mut d, &[0x3f, 0x46, 0x82]),
        Err(DecodeError::Compression)
    ); // 101
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    d.set_max_table_size(100);
    decode_all(&mut d, &[0x3f, 0x45, 0x82]).unwrap(); // 100
    decode_all(&mut d, &[0x82]).unwrap(); // only the first block needs it
    // Lowered to 0 then raised: the smallest must be signaled.
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    d.set_max_table_size(0);
    d.set_max_table_size(4096);
    assert_eq!(
        decode_all(&mut d, &[0x3f, 0xe1, 0x1f]),
        Err(DecodeError::Compression)
    );
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    d.set_max_table_size(0);
    d.set_max_table_size(4096);
    decode_all(&mut d, &[0x20, 0x3f, 0xe1, 0x1f]).unwrap();
    // Raising needs no update.
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    d.set_max_table_size(8192);
    decode_all(&mut d, &[0x82]).unwrap();
    decode_all(&mut d, &[0x3f, 0xe1, 0x3f]).unwrap(); // 8192
}

/// A block inserting `name: value` (a literal with a new name, incremental indexing).
fn insert_block(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut b = vec![0x40];
    encode_int(&mut b, 0, 7, name.len());
    b.extend_from_slice(name);
    encode_int(&mut b, 0, 7, value.len());
    b.extend_from_slice(value);
    b
}

#[test]
fn decoder_list_too_large_keeps_table() {
    let value = [b'v'; 100];
    let block = insert_block(b"x-big", &value);
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut calls = 0;
    let r = d.decode(&block, 136, |_, _| {
        calls += 1;
        Ok::<(), ()>(())
    });
    assert_eq!((r, calls), (Err(DecodeError::ListTooLarge), 0));
    // The entry was inserted anyway: the next block references it.
    let got = decode_all(&mut d, &[0xbe]).unwrap();
    assert_eq!(got, vec![(b"x-big".to_vec(), value.to_vec())]);
    // Exactly at the limit is fine (5 + 100 + 32 = 137).
    let r = d.decode(&[0xbe], 137, |_, _| Ok::<(), ()>(()));
    assert_eq!(r, Ok(Ok(())));
}

#[test]
fn decoder_callback_error_stops_calls_not_decoding() {
    let mut block = vec![0x82];
    block.extend(insert_block(b"a", b"1"));
    block.extend(insert_block(b"b", b"2"));
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut seen = Vec::new();
    let r = d.decode(&block, usize::MAX, |n, _| {
        seen.push(n.to_vec());
        if n == b"a" { Err("bad name") } else { Ok(()) }
    });
    assert_eq!(r, Ok(Err("bad name")));
    assert_eq!(seen, [b":method".to_vec(), b"a".to_vec()]);
    assert_eq!(table_of(&d.table), fields(&[("b", "2"), ("a", "1")]));
    // A malformed block still wins over a callback error.
    block.push(0x80);
    let r = Decoder::new(DEFAULT_TABLE_SIZE).decode(&block, usize::MAX, |_, _| Err(()));
    assert_eq!(r, Err(DecodeError::Compression));
}

#[test]
fn decoder_hpack_bomb() {
    // One ~4 KiB entry, then 10,000 one-byte references to it (40 MB of header list).
    let value = vec![b'x'; 4000];
    let mut block = insert_block(b"bomb", &value);
    block.extend(std::iter::repeat_n(0xbe, 10_000));
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut calls = 0;
    let start = std::time::Instant::now();
    let r = d.decode(&block, 16 * 1024, |n, v| {
        assert_eq!((n, v.len()), (&b"bomb"[..], 4000));
        calls += 1;
        Ok::<(), ()>(())
    });
    assert_eq!(r, Err(DecodeError::ListTooLarge));
    assert_eq!(calls, 4); // 4 x 4036 <= 16384 < 5 x 4036
    assert!(d.scratch.capacity() <= block.len());
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(d.table.len(), 1);
}

// ---- Encoder ----

#[test]
fn encoder_status() {
    let mut e = Encoder::new();
    for (status, byte) in [
        (200, 0x88),
        (204, 0x89),
        (206, 0x8a),
        (304, 0x8b),
        (400, 0x8c),
        (404, 0x8d),
        (500, 0x8e),
    ] {
        let mut out = Vec::new();
        e.status(status, &mut out);
        assert_eq!(out, [byte], "{status}");
    }
    let mut out = Vec::new();
    e.status(302, &mut out);
    assert_eq!(out, hex("4882 6402"));
    out.clear();
    e.status(302, &mut out);
    assert_eq!(out, [0xbe]); // a repeat costs one byte
    out.clear();
    e.status(101, &mut out);
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    assert_eq!(
        decode_all(&mut d, &out).unwrap(),
        fields(&[(":status", "101")])
    );
}

#[test]
fn encoder_static_table() {
    // Every static entry is found by name, and encodes as its one-byte index.
    for (i, &(name, value)) in STATIC_TABLE.iter().enumerate() {
        let (first, last) = static_name(name).unwrap();
        assert!(
            (first..=last).contains(&(i + 1)),
            "{}",
            String::from_utf8_lossy(name)
        );
        assert!(STATIC_TABLE[first - 1..last].iter().all(|e| e.0 == name));
        let mut out = Vec::new();
        Encoder::new().field(name, value, Indexing::Without, &mut out);
        assert_eq!(out, [0x80 | (i + 1) as u8]);
    }
    for name in [
        "",
        "a",
        "x-date",
        "datf",
        ":path2",
        "cookies",
        "content-typo",
        "dade",
    ] {
        assert_eq!(static_name(name.as_bytes()), None, "{name}");
    }
}

#[test]
fn encoder_indexing_modes() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut out = Vec::new();
    e.begin(&mut out);
    e.field(b"x-id", b"abc", Indexing::Without, &mut out);
    e.field(b"cookie", b"secret=1", Indexing::Never, &mut out);
    e.field(b"x-tag", b"t1", Indexing::Incremental, &mut out);
    let len = out.len();
    e.field(b"x-tag", b"t1", Indexing::Incremental, &mut out);
    assert_eq!(out[len..], [0xbe]);
    e.field(b"x-tag", b"t1", Indexing::Without, &mut out);
    assert_eq!(out[len + 1..], [0xbe]);
    // Never: a literal even when the table has the field; the name index is still used.
    e.field(b"x-tag", b"t1", Indexing::Never, &mut out);
    assert_eq!(out[len + 2..len + 4], [0x1f, 0x2f]); // never indexed, name index 62
    // Another value: the name is taken from the dynamic table.
    let len = out.len();
    e.field(b"x-tag", b"t2", Indexing::Without, &mut out);
    assert_eq!(out[len..], [0x0f, 0x2f, 0x02, b't', b'2']);
    // Larger than the table: sent without indexing, the table stays as it is.
    let huge = vec![b'h'; 5000];
    let len = out.len();
    e.field(b"x-huge", &huge, Indexing::Incremental, &mut out);
    assert_eq!(out[len], 0x00);
    assert_eq!(e.table.len(), 1);
    let got = decode_all(&mut d, &out).unwrap();
    assert_eq!(got.len(), 8);
    assert_eq!(got[7], (b"x-huge".to_vec(), huge));
    assert_eq!(table_of(&d.table), fields(&[("x-tag", "t1")]));
}

#[test]
fn encoder_size_updates() {
    // (settings changes since the last block, bytes `begin` emits)
    let cases: &[(&[usize], &str)] = &[
        (&[], ""),
        (&[4096], ""),
        (&[8192], ""),       // we keep using 4096: nothing to signal
        (&[256], "3fe1 01"), // 256
        (&[0, 4096], "20 3fe1 1f"),
        (&[100, 200], "3f45 3fa9 01"),
        (&[256, 8192, 100], "3f45"),
        (&[0, 0], "20"),
        (&[1000, 4096], "3fc9 07 3fe1 1f"),
    ];
    for &(sizes, bytes) in cases {
        let mut e = Encoder::new();
        for &s in sizes {
            e.set_max_table_size(s);
        }
        let mut out = Vec::new();
        e.begin(&mut out);
        assert_eq!(out, hex(bytes), "{sizes:?}");
        out.clear();
        e.begin(&mut out);
        assert!(out.is_empty(), "{sizes:?} again");
    }
    // Shrinking evicts at once; the decoder evicts the same on the update.
    let mut e = Encoder::new();
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut out = Vec::new();
    e.begin(&mut out);
    e.field(b"a", b"1", Indexing::Incremental, &mut out);
    e.field(b"b", b"2", Indexing::Incremental, &mut out);
    decode_all(&mut d, &out).unwrap();
    e.set_max_table_size(34);
    d.set_max_table_size(34);
    assert_eq!(table_of(&e.table), fields(&[("b", "2")]));
    out.clear();
    e.begin(&mut out);
    e.field(b"b", b"2", Indexing::Incremental, &mut out);
    assert_eq!(out, [0x3f, 0x03, 0xbe]);
    assert_eq!(decode_all(&mut d, &out).unwrap(), fields(&[("b", "2")]));
    assert_eq!(table_of(&d.table), fields(&[("b", "2")]));
}

#[test]
fn round_trip_random_lists() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let names: &[&[u8]] = &[
        b":method",
        b":path",
        b":status",
        b":authority",
        b"content-type",
        b"content-length",
        b"date",
        b"server",
        b"cookie",
        b"set-cookie",
        b"x-request-id",
        b"x-a",
        b"etag",
        b"vary",
        b"user-agent",
    ];
    let values: &[&[u8]] = &[
        b"GET",
        b"/",
        b"200",
        b"text/html",
        b"",
        b"gzip, deflate",
        b"0",
        b"x",
    ];
    let text = b"abcdefghijklmnopqrstuvwxyz0123456789-_./:;, =ABCXYZ";
    let any: Vec<u8> = (0..=255).collect();
    let sizes = [0, 40, 64, 256, 1000, 4096, 8192];
    let mut e = Encoder::new();
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    let mut block = Vec::new();
    for round in 0..3000 {
        // Table size changes between blocks: sometimes several, e.g. shrink to 0 then grow.
        if rng.below(8) == 0 {
            for _ in 0..1 + rng.below(3) {
                let s = sizes[rng.below(sizes.len())];
                e.set_max_table_size(s);
                d.set_max_table_size(s);
            }
        }
        let mut list: Fields = Vec::new();
        for _ in 0..rng.below(20) {
            let name = match rng.below(3) {
                0 => rng
                    .bytes(12, b"abcdefghijklmnopqrstuvwxyz-")
                    .into_iter()
                    .chain(*b"q")
                    .collect(),
                _ => names[rng.below(names.len())].to_vec(),
            };
            let value = match rng.below(4) {
                0 => rng.bytes(60, text),
                1 => rng.bytes(30, &any),
                _ => values[rng.below(values.len())].to_vec(),
            };
            list.push((name, value));
        }
        block.clear();
        e.begin(&mut block);
        for (n, v) in &list {
            let indexing =
                [Indexing::Incremental, Indexing::Without, Indexing::Never][rng.below(3)];
            e.field(n, v, indexing, &mut block);
        }
        let got = decode_all(&mut d, &block).unwrap_or_else(|err| panic!("round {round}: {err:?}"));
        assert_eq!(got, list, "round {round}");
        assert_eq!(table_of(&d.table), table_of(&e.table), "round {round}");
        assert_eq!(d.table.size(), e.table.size());
    }
}

#[test]
fn decoder_survives_garbage() {
    // Random and corrupted blocks: an error or some fields, never a panic; and whatever
    // decodes keeps the table within its size.
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let any: Vec<u8> = (0..=255).collect();
    let mut e = Encoder::new();
    for i in 0..20_000 {
        let block = if i % 2 == 0 {
            rng.bytes(40, &any)
        } else {
            let mut b = Vec::new();
            e.begin(&mut b);
            for _ in 0..1 + rng.below(5) {
                let (n, v) = (rng.bytes(8, b"abc:-"), rng.bytes(20, &any));
                e.field(&n, &v, Indexing::Incremental, &mut b);
            }
            let pos = rng.below(b.len());
            b[pos] = any[rng.below(256)];
            b.truncate(b.len() - rng.below(3).min(b.len()));
            b
        };
        let mut d = Decoder::new(256);
        let _ = d.decode(&block, 1000, |_, _| Ok::<(), ()>(()));
        assert!(d.table.size() <= d.table.max_size());
    }
}
