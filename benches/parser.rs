//! Hot-path micro-benchmarks: the request-head parser and the chunked body decoder.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tws::http::body::BodyDecoder;
use tws::http::request::{Framing, Limits, parse_head};

const SMALL: &[u8] = b"GET /small.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

const BROWSER: &[u8] = b"GET /page_four HTTP/1.1\r\n\
Host: example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Connection: keep-alive\r\n\
Referer: https://example.com/\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
If-None-Match: \"5f1a-3e8-17e4d2c\"\r\n\
If-Modified-Since: Wed, 25 Nov 2026 14:18:02 GMT\r\n\r\n";

fn heads(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse_head");
    for (name, raw) in [("small GET", SMALL), ("browser GET", BROWSER)] {
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_head(black_box(raw), &limits).unwrap())
        });
    }
    group.finish();
}

fn chunked(c: &mut Criterion) {
    let mut body = Vec::new();
    for _ in 0..64 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'x'; 1024]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut group = c.benchmark_group("chunked");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("64 KiB in 1 KiB chunks", |b| {
        b.iter(|| {
            let mut decoder = BodyDecoder::new(Framing::Chunked).unwrap();
            let mut out = Vec::with_capacity(64 * 1024);
            decoder.decode(black_box(&body), &mut out, 1 << 20).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, heads, chunked);
criterion_main!(benches);
