//! Tests against RFC 7541: the examples of Appendix C, decoded and (where our encoder makes
//! the same choices) encoded, and the Huffman code of Appendix B.

use std::collections::HashMap;

use super::huffman;
use super::huffman_table::HUFFMAN_CODES;
use super::tests::{Rng, decode_all, fields, hex, table_of};
use super::*;

// ---- Integers (C.1) ----

#[test]
fn integers_rfc_c1() {
    // (value, prefix bits, encoding): C.1.1, C.1.2, C.1.3, and edges.
    let cases: &[(usize, u32, &[u8])] = &[
        (10, 5, &[0x0a]),
        (1337, 5, &[0x1f, 0x9a, 0x0a]),
        (42, 8, &[0x2a]),
        (30, 5, &[0x1e]),
        (31, 5, &[0x1f, 0x00]),
        (127, 7, &[0x7f, 0x00]),
        (128, 7, &[0x7f, 0x01]),
        (4096, 5, &[0x1f, 0xe1, 0x1f]),
        (u32::MAX as usize, 4, &[0x0f, 0xf0, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for &(value, prefix, bytes) in cases {
        let mut out = Vec::new();
        encode_int(&mut out, 0, prefix, value);
        assert_eq!(out, bytes, "encode {value}/{prefix}");
        let mut pos = 0;
        assert_eq!(
            decode_int(bytes, &mut pos, prefix),
            Ok(value),
            "decode {value}/{prefix}"
        );
        assert_eq!(pos, bytes.len());
    }
    // Flag bits above the prefix are kept when encoding and ignored when decoding.
    let mut out = Vec::new();
    encode_int(&mut out, 0xe0, 5, 10);
    assert_eq!(out, [0xea]);
    assert_eq!(decode_int(&out, &mut 0, 5), Ok(10));
    // Zero continuation bytes (padding) are accepted up to the limit.
    assert_eq!(decode_int(&[0x1f, 0x80, 0x80, 0x00], &mut 0, 5), Ok(31));
}

#[test]
fn integers_malformed() {
    let cases: &[&[u8]] = &[
        &[],
        &[0x1f],                                           // continuation missing
        &[0x1f, 0x80],                                     // unfinished
        &[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // 7 continuation bytes
        &[
            0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ], // 11
        &[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f],             // above u32::MAX
    ];
    for bytes in cases {
        assert_eq!(
            decode_int(bytes, &mut 0, 5),
            Err(DecodeError::Compression),
            "{bytes:x?}"
        );
    }
}

// ---- Literal and indexed representations (C.2) ----

#[test]
fn literals_rfc_c2() {
    // Each example alone, with a fresh decoder.
    let cases = [
        Step {
            block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            fields: &[("custom-key", "custom-header")],
            table: &[("custom-key", "custom-header")],
            size: 55,
        },
        Step {
            block: "040c 2f73 616d 706c 652f 7061 7468",
            fields: &[(":path", "/sample/path")],
            table: &[],
            size: 0,
        },
        Step {
            block: "1008 7061 7373 776f 7264 0673 6563 7265 74",
            fields: &[("password", "secret")],
            table: &[],
            size: 0,
        },
        Step {
            block: "82",
            fields: &[(":method", "GET")],
            table: &[],
            size: 0,
        },
    ];
    for step in &cases {
        check_decoding("C.2", DEFAULT_TABLE_SIZE, std::slice::from_ref(step));
    }
    // C.2.4 encoded by us; C.2.3 with `Never` (our encoder Huffman-codes "password").
    let mut e = Encoder::new();
    let mut out = Vec::new();
    e.field(b":method", b"GET", Indexing::Incremental, &mut out);
    assert_eq!(out, [0x82]);
    out.clear();
    e.field(b"password", b"secret", Indexing::Never, &mut out);
    assert_eq!(out[0], 0x10);
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    assert_eq!(
        decode_all(&mut d, &out).unwrap(),
        fields(&[("password", "secret")])
    );
    assert_eq!(d.table.len(), 0);
    assert_eq!(e.table.len(), 0);
}

// ---- Request and response sequences (C.3 to C.6) ----

/// One block of an Appendix C sequence.
struct Step {
    block: &'static str,
    fields: &'static [(&'static str, &'static str)],
    table: &'static [(&'static str, &'static str)],
    size: usize,
}

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_TABLE1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQ_TABLE2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQ_TABLE3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

const C3: &[Step] = &[
    Step {
        block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        fields: REQ1,
        table: REQ_TABLE1,
        size: 57,
    },
    Step {
        block: "8286 84be 5808 6e6f 2d63 6163 6865",
        fields: REQ2,
        table: REQ_TABLE2,
        size: 110,
    },
    Step {
        block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        fields: REQ3,
        table: REQ_TABLE3,
        size: 164,
    },
];

const C4: &[Step] = &[
    Step {
        block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        fields: REQ1,
        table: REQ_TABLE1,
        size: 57,
    },
    Step {
        block: "8286 84be 5886 a8eb 1064 9cbf",
        fields: REQ2,
        table: REQ_TABLE2,
        size: 110,
    },
    Step {
        block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        fields: REQ3,
        table: REQ_TABLE3,
        size: 164,
    },
];

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const HOME: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESP1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", HOME),
];
const RESP2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", DATE1),
    ("location", HOME),
];
const RESP3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", DATE2),
    ("location", HOME),
    ("content-encoding", "gzip"),
    ("set-cookie", COOKIE),
];
const RESP_TABLE1: &[(&str, &str)] = &[
    ("location", HOME),
    ("date", DATE1),
    ("cache-control", "private"),
    (":status", "302"),
];
const RESP_TABLE2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", HOME),
    ("date", DATE1),
    ("cache-control", "private"),
];
const RESP_TABLE3: &[(&str, &str)] = &[
    ("set-cookie", COOKIE),
    ("content-encoding", "gzip"),
    ("date", DATE2),
];

const C5: &[Step] = &[
    Step {
        block: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
                2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
                6c65 2e63 6f6d",
        fields: RESP1,
        table: RESP_TABLE1,
        size: 222,
    },
    Step {
        block: "4803 3330 37c1 c0bf",
        fields: RESP2,
        table: RESP_TABLE2,
        size: 222,
    },
    Step {
        block: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
                54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
                5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
                3d31",
        fields: RESP3,
        table: RESP_TABLE3,
        size: 215,
    },
];

const C6: &[Step] = &[
    Step {
        block: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
                2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        fields: RESP1,
        table: RESP_TABLE1,
        size: 222,
    },
    Step {
        block: "4883 640e ffc1 c0bf",
        fields: RESP2,
        table: RESP_TABLE2,
        size: 222,
    },
    Step {
        block: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
                77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
                9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        fields: RESP3,
        table: RESP_TABLE3,
        size: 215,
    },
];

/// Decodes the blocks of `steps` in sequence, checking the fields and the table after each.
fn check_decoding(name: &str, table_size: usize, steps: &[Step]) {
    let mut d = Decoder::new(table_size);
    for (i, step) in steps.iter().enumerate() {
        let got = decode_all(&mut d, &hex(step.block)).unwrap();
        assert_eq!(got, fields(step.fields), "{name}.{}", i + 1);
        assert_eq!(
            table_of(&d.table),
            fields(step.table),
            "{name}.{} table",
            i + 1
        );
        assert_eq!(d.table.size(), step.size, "{name}.{} size", i + 1);
    }
}

/// Encodes the fields of `steps` with incremental indexing, returning each block, and
/// checks the encoder's table after each against the decoder's expected one.
fn encode_steps(table_size: usize, steps: &[Step]) -> Vec<Vec<u8>> {
    let mut e = Encoder::new();
    e.set_max_table_size(table_size);
    e.begin(&mut Vec::new()); // the examples assume the size is known: drop the update
    let mut blocks = Vec::new();
    for step in steps {
        let mut out = Vec::new();
        e.begin(&mut out);
        for (n, v) in step.fields {
            e.field(n.as_bytes(), v.as_bytes(), Indexing::Incremental, &mut out);
        }
        assert_eq!(table_of(&e.table), fields(step.table));
        assert_eq!(e.table.size(), step.size);
        blocks.push(out);
    }
    blocks
}

#[test]
fn requests_rfc_c3_c4() {
    check_decoding("C.3", DEFAULT_TABLE_SIZE, C3);
    check_decoding("C.4", DEFAULT_TABLE_SIZE, C4);
    // Huffman is shorter for every literal string there: our encoder writes C.4 exactly
    // (C.3 is the same choices without Huffman).
    let blocks = encode_steps(DEFAULT_TABLE_SIZE, C4);
    for (i, (got, step)) in blocks.iter().zip(C4).enumerate() {
        assert_eq!(*got, hex(step.block), "C.4.{} encoded", i + 1);
    }
}

#[test]
fn responses_rfc_c5_c6() {
    check_decoding("C.5", 256, C5);
    check_decoding("C.6", 256, C6);
    // Our encoder writes C.6, except ":status: 307" in C.6.2, whose Huffman coding is no
    // shorter (3 bytes): we send it raw, which is exactly C.5.2.
    let blocks = encode_steps(256, C6);
    assert_eq!(blocks[0], hex(C6[0].block), "C.6.1 encoded");
    assert_eq!(blocks[1], hex(C5[1].block), "C.6.2 encoded");
    assert_eq!(blocks[2], hex(C6[2].block), "C.6.3 encoded");
}

// ---- Huffman ----

#[test]
fn huffman_code_is_canonical() {
    // The decoder's long-code path relies on it: ordered by (length, symbol), each code is
    // the previous one plus one, shifted left by the growth in length; and the code is
    // complete (Kraft sum 1).
    let mut order: Vec<usize> = (0..257).collect();
    order.sort_by_key(|&s| (HUFFMAN_CODES[s].1, s));
    let (mut code, mut bits) = (0u64, HUFFMAN_CODES[order[0]].1);
    let mut kraft = 0u64;
    for &s in &order {
        let (c, l) = HUFFMAN_CODES[s];
        code <<= l - bits;
        bits = l;
        assert_eq!(c as u64, code, "symbol {s}");
        code += 1;
        kraft += 1 << (30 - l);
    }
    assert_eq!(kraft, 1 << 30);
    assert_eq!(HUFFMAN_CODES[256], (0x3fff_ffff, 30));
}

fn huffman_round_trip(s: &[u8]) {
    let len = huffman::encoded_len(s);
    let mut enc = vec![0xaa]; // appends after what is there
    huffman::encode(s, len, &mut enc);
    assert_eq!(enc.len(), 1 + len);
    let mut dec = vec![0x55];
    huffman::decode(&enc[1..], &mut dec).unwrap_or_else(|e| panic!("{e:?} for {s:x?}"));
    assert_eq!(&dec[1..], s);
}

#[test]
fn huffman_round_trips() {
    for b in 0..=255u8 {
        huffman_round_trip(&[b]);
        huffman_round_trip(&[b'a', b, b'z', b, b]);
    }
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    huffman_round_trip(&all);
    huffman_round_trip(b"");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let text = b"abcdefghijklmnopqrstuvwxyz0123456789-_./:;, =ABCXYZ%&?";
    let any: Vec<u8> = (0..=255).collect();
    for i in 0..2000 {
        let s = rng.bytes(
            if i % 10 == 0 { 300 } else { 40 },
            if i % 3 == 0 { &any } else { text },
        );
        huffman_round_trip(&s);
    }
}

#[test]
fn huffman_rfc_strings() {
    let cases = [
        ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        ("no-cache", "a8eb 1064 9cbf"),
        ("custom-key", "25a8 49e9 5ba9 7d7f"),
        ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        ("302", "6402"),
        ("private", "aec3 771a 4b"),
        ("gzip", "9bd9 ab"),
    ];
    for (plain, coded) in cases {
        let coded = hex(coded);
        let mut out = Vec::new();
        huffman::encode(
            plain.as_bytes(),
            huffman::encoded_len(plain.as_bytes()),
            &mut out,
        );
        assert_eq!(out, coded, "{plain}");
        out.clear();
        huffman::decode(&coded, &mut out).unwrap();
        assert_eq!(out, plain.as_bytes());
    }
}

#[test]
fn huffman_invalid() {
    let cases: &[(&str, &[u8])] = &[
        ("8 bits of padding", &[0xff]),
        ("'a' then 11 bits of padding", &[0x1f, 0xff]),
        ("24 bits of padding", &[0xff, 0xff, 0xff]),
        ("padding with a zero bit", &[0x1e]), // 'a' = 00011, then 110
        ("padding of zeros", &[0x18]),        // 'a' then 000
        ("EOS", &[0xff, 0xff, 0xff, 0xff]),   // 30 ones (EOS) + 2 of padding
        ("'a' then EOS", &[0x1f, 0xff, 0xff, 0xff, 0xff]), // 5 + 30 + 5 of padding
        (
            "EOS after 8 bytes",
            &[
                0x08, 0x42, 0x10, 0x84, 0x21, 0x08, 0x42, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ),
    ];
    for (what, bytes) in cases {
        assert_eq!(
            huffman::decode(bytes, &mut Vec::new()),
            Err(DecodeError::Compression),
            "{what}"
        );
    }
    // For contrast, valid ones: 'a' + 3 bits of padding, and '0' (00000) x 8 = 5 bytes.
    let mut out = Vec::new();
    huffman::decode(&[0x1f], &mut out).unwrap();
    assert_eq!(out, b"a");
    out.clear();
    huffman::decode(&[0, 0, 0, 0, 0], &mut out).unwrap();
    assert_eq!(out, b"00000000");
}

/// A bit-by-bit decoder straight from the RFC, to compare the table-driven one with.
fn reference_decode(codes: &HashMap<(u32, u8), u16>, src: &[u8]) -> Option<Vec<u8>> {
    let (mut code, mut len, mut out) = (0u32, 0u8, Vec::new());
    for i in 0..src.len() * 8 {
        code = (code << 1) | (src[i / 8] >> (7 - i % 8) & 1) as u32;
        len += 1;
        if let Some(&sym) = codes.get(&(code, len)) {
            if sym == 256 {
                return None;
            }
            out.push(sym as u8);
            (code, len) = (0, 0);
        }
    }
    (len < 8 && code == (1 << len) - 1).then_some(out)
}

#[test]
fn huffman_matches_reference_on_random_input() {
    let codes: HashMap<(u32, u8), u16> = (0..257u16)
        .map(|s| (HUFFMAN_CODES[s as usize], s))
        .collect();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let any: Vec<u8> = (0..=255).collect();
    let text = b"abcdefghijklmnopqrstuvwxyz0123456789-/.";
    for i in 0..20_000 {
        // Random bytes (mostly invalid), or a valid coding with a bit flipped, a byte cut
        // off or a byte added.
        let input = if i % 2 == 0 {
            rng.bytes(
                12,
                if i % 4 == 0 {
                    &any
                } else {
                    &[0xff, 0xfe, 0x7f, 0x00]
                },
            )
        } else {
            let plain = rng.bytes(20, if i % 3 == 0 { &any } else { text });
            let mut coded = Vec::new();
            huffman::encode(&plain, huffman::encoded_len(&plain), &mut coded);
            match (rng.below(4), coded.len()) {
                (0, n) if n > 0 => coded[rng.below(n)] ^= 1 << rng.below(8),
                (1, n) if n > 0 => coded.truncate(n - 1),
                (2, _) => coded.push(any[rng.below(256)]),
                _ => {}
            }
            coded
        };
        let mut out = Vec::new();
        let got = huffman::decode(&input, &mut out).ok().map(|()| out);
        assert_eq!(got, reference_decode(&codes, &input), "{input:x?}");
    }
}
