//! Fuzz target: the request-head parser followed by the body decoder, as the event loop uses
//! them. Checks that nothing panics, that consumption stays within the input, that bodies
//! respect their limit, and that feeding the same bytes in two pieces decodes the same body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tws::http::body::BodyDecoder;
use tws::http::request::{Limits, Parse, parse_head};

const LIMITS: Limits = Limits {
    max_head_bytes: 4096,
    max_uri_bytes: 1024,
    max_headers: 32,
    max_body_bytes: 2048,
};

fuzz_target!(|data: &[u8]| {
    // The first byte picks where the body bytes are split in two.
    let Some((&split, input)) = data.split_first() else { return };
    let Ok(Parse::Complete(req, used)) = parse_head(input, &LIMITS) else { return };
    assert!(used <= input.len());
    assert!(!req.path().is_empty());
    let rest = &input[used..];
    let Some(mut whole) = BodyDecoder::new(req.framing) else { return };
    let mut body = Vec::new();
    let one = whole.decode(rest, &mut body, LIMITS.max_body_bytes);
    if let Ok(p) = &one {
        assert!(p.consumed <= rest.len());
        assert!(body.len() as u64 <= LIMITS.max_body_bytes);
    }

    let mut pieces = BodyDecoder::new(req.framing).unwrap();
    let mut body2 = Vec::new();
    let at = usize::from(split).min(rest.len());
    let first = pieces.decode(&rest[..at], &mut body2, LIMITS.max_body_bytes);
    let two = match first {
        Ok(p) if p.done => Ok((p.consumed, true)),
        Ok(p) => {
            assert_eq!(p.consumed, at, "an unfinished body uses all it is given");
            pieces
                .decode(&rest[at..], &mut body2, LIMITS.max_body_bytes)
                .map(|q| (at + q.consumed, q.done))
        }
        Err(e) => Err(e),
    };
    match (one, two) {
        (Ok(p), Ok((consumed, done))) => {
            assert_eq!((p.consumed, p.done), (consumed, done));
            assert_eq!(body, body2);
        }
        (Err(a), Err(b)) => assert_eq!(a.status(), b.status()),
        (a, b) => panic!("one piece gave {a:?}, two pieces gave {b:?}"),
    }
});
