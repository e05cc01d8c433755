//! Timings of the codec on typical blocks (`cargo test --release -- --ignored --nocapture`).

use super::huffman;
use super::table::{self, DynamicTable};
use super::tests::decode_all;
use super::*;

fn time_it(what: &str, iters: u32, mut f: impl FnMut()) {
    for _ in 0..iters / 10 {
        f();
    }
    let start = std::time::Instant::now();
    for _ in 0..iters {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / iters as f64;
    println!("{what}: {ns:.0} ns");
}

const BROWSER_REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "www.example.com"),
    (":path", "/assets/css/main.3f2a9c.css"),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    ("accept", "text/css,*/*;q=0.1"),
    ("accept-language", "en-US,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("referer", "https://www.example.com/"),
    (
        "cookie",
        "session=7d1e0f9c2b6a4e3d8c5b1a09f7e6d5c4; theme=dark",
    ),
    ("sec-fetch-dest", "style"),
    ("sec-fetch-mode", "no-cors"),
    ("sec-fetch-site", "same-origin"),
];

#[test]
#[ignore]
fn timings() {
    let mut e = Encoder::new();
    let mut first = Vec::new();
    e.begin(&mut first);
    for (n, v) in BROWSER_REQUEST {
        e.field(
            n.as_bytes(),
            v.as_bytes(),
            Indexing::Incremental,
            &mut first,
        );
    }
    let mut next = Vec::new();
    e.begin(&mut next);
    for (n, v) in BROWSER_REQUEST {
        e.field(n.as_bytes(), v.as_bytes(), Indexing::Incremental, &mut next);
    }
    println!(
        "browser request: {} bytes first, {} bytes repeated",
        first.len(),
        next.len()
    );
    let mut sink = 0usize;
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    time_it(
        "decode first request (Huffman literals, inserts)",
        200_000,
        || {
            let r = d.decode(&first, 64 * 1024, |n, v| {
                sink += n.len() + v.len();
                Ok::<(), ()>(())
            });
            assert_eq!(r, Ok(Ok(())));
        },
    );
    let mut d = Decoder::new(DEFAULT_TABLE_SIZE);
    decode_all(&mut d, &first).unwrap();
    time_it("decode repeated request (indexed)", 1_000_000, || {
        let r = d.decode(&next, 64 * 1024, |n, v| {
            sink += n.len() + v.len();
            Ok::<(), ()>(())
        });
        assert_eq!(r, Ok(Ok(())));
    });
    let ua = BROWSER_REQUEST[4].1.as_bytes();
    let mut coded = Vec::new();
    huffman::encode(ua, huffman::encoded_len(ua), &mut coded);
    let mut out = Vec::with_capacity(256);
    time_it(
        "huffman decode of the user-agent (71 bytes)",
        1_000_000,
        || {
            out.clear();
            huffman::decode(&coded, &mut out).unwrap();
        },
    );
    time_it("huffman encode of the user-agent", 1_000_000, || {
        out.clear();
        huffman::encode(ua, huffman::encoded_len(ua), &mut out);
    });
    let response: &[(&[u8], &[u8], Indexing)] = &[
        (b"server", b"tws", Indexing::Incremental),
        (
            b"date",
            b"Tue, 14 Apr 2026 10:00:00 GMT",
            Indexing::Incremental,
        ),
        (
            b"content-type",
            b"text/css; charset=utf-8",
            Indexing::Incremental,
        ),
        (b"content-length", b"18342", Indexing::Without),
        (b"etag", b"\"5f2a-18342\"", Indexing::Without),
        (
            b"last-modified",
            b"Mon, 13 Apr 2026 08:12:44 GMT",
            Indexing::Without,
        ),
        (b"cache-control", b"max-age=3600", Indexing::Incremental),
        (b"vary", b"accept-encoding", Indexing::Incremental),
    ];
    let mut e = Encoder::new();
    let mut out = Vec::with_capacity(256);
    time_it(
        "encode response (status + 8 fields, steady table)",
        1_000_000,
        || {
            out.clear();
            e.begin(&mut out);
            e.status(200, &mut out);
            for &(n, v, i) in response {
                e.field(n, v, i, &mut out);
            }
        },
    );
    println!(
        "response block: {} bytes; table {} entries",
        out.len(),
        e.table.len()
    );
    // Dynamic table lookup: linear scan against a hash map keyed by (name, value).
    let mut t = DynamicTable::new(DEFAULT_TABLE_SIZE, true);
    let mut map = std::collections::HashMap::new();
    let keys: Vec<(Vec<u8>, Vec<u8>)> = (0..24)
        .map(|i| {
            (
                format!("x-header-{}", i % 7).into_bytes(),
                format!("value-{i}").into_bytes(),
            )
        })
        .collect();
    for (seq, (n, v)) in keys.iter().enumerate() {
        t.insert(table::field_key(n, v), n, v);
        map.insert((n.clone(), v.clone()), seq);
    }
    let probes: Vec<(Vec<u8>, Vec<u8>)> = (0..48)
        .map(|i| {
            (
                format!("x-header-{}", i % 7).into_bytes(),
                format!("value-{i}").into_bytes(),
            )
        })
        .collect();
    time_it("dynamic table scan x48 (24 entries)", 200_000, || {
        for (n, v) in &probes {
            let key = table::field_key(n, v);
            sink += matches!(t.find(key, n, v), table::Found::Field(_)) as usize;
        }
    });
    let mut key = (Vec::new(), Vec::new());
    time_it("hash map lookup x48 (24 entries)", 200_000, || {
        for (n, v) in &probes {
            key.0.clear();
            key.0.extend_from_slice(n);
            key.1.clear();
            key.1.extend_from_slice(v);
            sink += map.contains_key(&key) as usize;
        }
    });
    println!("({sink})");
}
