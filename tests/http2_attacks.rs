//! HTTP/2 attacks against the real server, in raw frames: Rapid Reset, CONTINUATION flood,
//! HPACK bomb and oversized dynamic table, floods of SETTINGS, PING and empty DATA,
//! WINDOW_UPDATE overflow, stream id reuse, too many streams, malformed requests. Each is
//! refused or bounded, and the server goes on serving.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::h2raw::*;

fn rss_kib(server: &Server) -> u64 {
    common::memory_kib(server.child.id(), "VmRSS")
}

#[test]
fn rapid_reset_is_cut_off_with_enhance_your_calm() {
    let server = h2c_server("h2-rapid-reset", "");
    let mut raw = Raw::connect(server.addr);
    let mut batch = Vec::new();
    let mut sent = 0;
    let mut closed = false;
    for i in 0..5000u32 {
        let stream = 2 * i + 1;
        batch.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            stream,
            &request_block("POST", "/users", &[]),
        ));
        batch.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
        if batch.len() > 16 * 1024 {
            if raw.send(&batch).is_err() {
                closed = true;
                break;
            }
            sent = i;
            batch.clear();
        }
    }
    let goaway = raw.until_closed();
    let code = goaway.as_ref().and_then(Frame::error_code);
    assert!(
        closed || code.is_some(),
        "the connection survived {sent} resets"
    );
    assert_eq!(code, Some(ENHANCE_YOUR_CALM), "{goaway:?}");
    alive(&server);
}

#[test]
fn a_continuation_flood_is_bounded() {
    let server = h2c_server("h2-continuation", "");
    let mut raw = Raw::connect(server.addr);
    raw.send(&frame(HEADERS, 0, 1, &request_block("GET", "/", &[])))
        .unwrap();
    let mut field = Vec::new();
    literal("x-flood", &[b'a'; 1000], &mut field);
    let mut wrote = 0usize;
    for _ in 0..20_000 {
        if raw.send(&frame(CONTINUATION, 0, 1, &field)).is_err() {
            break;
        }
        wrote += field.len();
    }
    let goaway = raw.until_closed();
    assert!(
        goaway.is_some(),
        "no GOAWAY after {wrote} bytes of CONTINUATION"
    );
    assert!(wrote < 20_000_000);
    alive(&server);
}

#[test]
fn an_hpack_bomb_and_an_oversized_table_are_refused() {
    let server = h2c_server("h2-hpack", "");
    let before = rss_kib(&server);
    let mut raw = Raw::connect(server.addr);
    // One 4 KiB field into the dynamic table, then 4,000 one-byte references to it: 16 MB
    // decoded from 8 KB.
    let mut block = request_block("GET", "/", &[]);
    indexed_literal("x-bomb", &[b'b'; 4000], &mut block);
    block.extend(std::iter::repeat_n(0xbe, 4000));
    raw.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
        .unwrap();
    let answer = raw
        .expect(|f| f.kind == GOAWAY || (f.stream == 1 && matches!(f.kind, HEADERS | RST_STREAM)));
    match answer {
        Some(f) if f.kind == HEADERS => assert_eq!(f.status(), Some(431)),
        Some(f) => assert!(f.error_code().is_some_and(|c| c != 0), "{f:?}"),
        None => {}
    }
    assert!(
        rss_kib(&server) < before + 20 * 1024,
        "RSS grew from {before} KiB"
    );
    // A table size update above what the server allowed.
    let mut raw = Raw::connect(server.addr);
    let mut block = Vec::new();
    integer(0x20, 5, 1 << 20, &mut block);
    block.extend(request_block("GET", "/", &[]));
    raw.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
        .unwrap();
    let goaway = raw.until_closed().expect("GOAWAY");
    // RFC 7541 says COMPRESSION_ERROR; the h2 crate closes with PROTOCOL_ERROR.
    assert!(
        matches!(
            goaway.error_code(),
            Some(COMPRESSION_ERROR | PROTOCOL_ERROR)
        ),
        "{goaway:?}"
    );
    alive(&server);
}

/// Floods of small frames from a client that reads nothing: the server stops reading once
/// its answers back up, so memory stays bounded; or it ends the connection.
#[test]
fn settings_ping_and_empty_data_floods_are_bounded() {
    let server = h2c_server("h2-floods", "");
    let before = rss_kib(&server);
    for flood in [
        frame(PING, 0, 0, &[7; 8]),
        frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]),
    ] {
        let mut raw = Raw::connect(server.addr);
        raw.sock
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let batch: Vec<u8> = flood
            .iter()
            .copied()
            .cycle()
            .take(flood.len() * 4096)
            .collect();
        let started = Instant::now();
        let mut sent = 0usize;
        while started.elapsed() < Duration::from_secs(4) && sent < 200_000_000 {
            if raw.send(&batch).is_err() {
                break;
            }
            sent += batch.len();
        }
        assert!(
            sent < 200_000_000,
            "the server read {sent} bytes of flood without pushing back"
        );
        assert!(
            rss_kib(&server) < before + 32 * 1024,
            "RSS grew from {before} KiB"
        );
    }
    // Empty DATA frames on an open stream.
    let mut raw = Raw::connect(server.addr);
    raw.send(&frame(
        HEADERS,
        END_HEADERS,
        1,
        &request_block("POST", "/users", &[("content-type", "application/json")]),
    ))
    .unwrap();
    let empty = frame(DATA, 0, 1, &[]);
    let batch: Vec<u8> = empty
        .iter()
        .copied()
        .cycle()
        .take(empty.len() * 10_000)
        .collect();
    for _ in 0..20 {
        if raw.send(&batch).is_err() {
            break;
        }
    }
    let goaway = raw.until_closed().expect("GOAWAY");
    assert_eq!(goaway.error_code(), Some(ENHANCE_YOUR_CALM));
    alive(&server);
}

#[test]
fn window_overflow_stream_reuse_and_too_many_streams_are_errors() {
    let server = h2c_server("h2-errors", "");
    // A connection window pushed past 2^31-1.
    let mut raw = Raw::connect(server.addr);
    raw.send(&frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()))
        .unwrap();
    assert_eq!(
        raw.until_closed().and_then(|f| f.error_code()),
        Some(FLOW_CONTROL_ERROR)
    );
    // A stream id used twice, and an even one.
    for second in [1u32, 2] {
        let mut raw = Raw::connect(server.addr);
        raw.send(&frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &request_block("GET", "/", &[]),
        ))
        .unwrap();
        raw.expect(|f| f.kind == DATA && f.stream == 1 && f.flags & END_STREAM != 0)
            .expect("first answer");
        raw.send(&frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            second,
            &request_block("GET", "/", &[]),
        ))
        .unwrap();
        let goaway = raw.until_closed().expect("GOAWAY");
        assert!(
            goaway
                .error_code()
                .is_some_and(|c| c == PROTOCOL_ERROR || c == 0x5),
            "{goaway:?}"
        );
    }
    // More streams than SETTINGS_MAX_CONCURRENT_STREAMS: the extra one is refused.
    let mut raw = Raw::connect(server.addr);
    let mut batch = Vec::new();
    for i in 0..101u32 {
        batch.extend(frame(
            HEADERS,
            END_HEADERS,
            2 * i + 1,
            &request_block("POST", "/users", &[("content-type", "application/json")]),
        ));
    }
    raw.send(&batch).unwrap();
    let refused = raw
        .expect(|f| f.kind == RST_STREAM || f.kind == GOAWAY)
        .expect("a refusal");
    assert!(
        refused.kind == GOAWAY || refused.stream == 201,
        "{refused:?}"
    );
    alive(&server);
}

#[test]
fn malformed_requests_are_refused_per_stream() {
    let server = h2c_server("h2-malformed", "");
    let cases: [(&str, Vec<u8>, Vec<u8>); 3] = [
        // A connection-specific header.
        (
            "connection",
            request_block("GET", "/", &[("connection", "keep-alive")]),
            Vec::new(),
        ),
        // Content-Length disagreeing with the DATA sent.
        (
            "content-length",
            request_block(
                "POST",
                "/users",
                &[
                    ("content-type", "application/json"),
                    ("content-length", "100"),
                ],
            ),
            b"{\"Nombre\":\"x\"}".to_vec(),
        ),
        // An uppercase header name.
        (
            "uppercase",
            request_block("GET", "/", &[("X-Upper", "1")]),
            Vec::new(),
        ),
    ];
    for (what, block, body) in cases {
        let mut raw = Raw::connect(server.addr);
        let flags = if body.is_empty() {
            END_HEADERS | END_STREAM
        } else {
            END_HEADERS
        };
        let mut bytes = frame(HEADERS, flags, 1, &block);
        if !body.is_empty() {
            bytes.extend(frame(DATA, END_STREAM, 1, &body));
        }
        raw.send(&bytes).unwrap();
        let answer = raw
            .expect(|f| {
                (f.stream == 1 && matches!(f.kind, HEADERS | RST_STREAM)) || f.kind == GOAWAY
            })
            .unwrap_or_else(|| panic!("{what}: no answer"));
        match answer.kind {
            HEADERS => assert_eq!(answer.status(), Some(400), "{what}"),
            _ => assert_eq!(
                answer.error_code(),
                Some(PROTOCOL_ERROR),
                "{what}: {answer:?}"
            ),
        }
    }
    // Nothing was created by the refused POST.
    let mut raw = Raw::connect(server.addr);
    raw.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("GET", "/users/1", &[]),
    ))
    .unwrap();
    assert_eq!(
        raw.expect(|f| f.kind == HEADERS).and_then(|f| f.status()),
        Some(404)
    );
    // A header list past max_head_bytes.
    let mut raw = Raw::connect(server.addr);
    let big = "v".repeat(20_000);
    raw.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("GET", "/", &[("x-big", &big)]),
    ))
    .unwrap();
    let answer = raw
        .expect(|f| f.stream == 1 || f.kind == GOAWAY)
        .expect("an answer");
    assert!(
        answer.status() == Some(431) || answer.error_code().is_some(),
        "{answer:?}"
    );
}
