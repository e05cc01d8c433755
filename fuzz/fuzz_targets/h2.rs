//! Fuzz target: HTTP/2's decoders as a connection uses them. The input is cut into frames by
//! their headers; HEADERS and CONTINUATION payloads are joined into header blocks and
//! decoded, one HPACK table across all of them (as one connection's); padding and SETTINGS
//! are read as the connection reads them. Checks that nothing panics, that no decoded list
//! passes its limit, and that decoding is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tws::server::h2::frame::{self, Head};
use tws::server::h2::hpack::Decoder;

const MAX_LIST: usize = 4096;

/// Decodes every header block of `data` with one table: the fields, or where it failed.
fn run(data: &[u8]) -> Vec<Result<Vec<(Vec<u8>, Vec<u8>)>, String>> {
    let mut decoder = Decoder::new(4096);
    let mut results = Vec::new();
    let mut block = Vec::new();
    let mut at = 0;
    while data.len() - at >= frame::HEADER_LEN {
        let head = Head::read(&data[at..]);
        let len = head.len.min(data.len() - at - frame::HEADER_LEN);
        let payload = &data[at + frame::HEADER_LEN..at + frame::HEADER_LEN + len];
        at += frame::HEADER_LEN + len;
        match head.kind {
            frame::HEADERS | frame::CONTINUATION | frame::DATA => {
                let Some((start, end)) = frame::unpad(&head, payload) else {
                    continue;
                };
                assert!(start <= end && end <= payload.len());
                if head.kind == frame::DATA {
                    continue;
                }
                block.extend_from_slice(&payload[start..end]);
                if !head.has(frame::END_HEADERS) {
                    continue;
                }
            }
            frame::SETTINGS => {
                if let Some(entries) = frame::settings(payload) {
                    assert_eq!(entries.count(), payload.len() / 6);
                }
                continue;
            }
            _ => continue,
        }
        let mut fields = Vec::new();
        let mut size = 0;
        let decoded = decoder.decode(&block, MAX_LIST, |name, value| {
            size += name.len() + value.len() + 32;
            fields.push((name.to_vec(), value.to_vec()));
            Ok::<(), ()>(())
        });
        assert!(size <= MAX_LIST, "the list limit was passed");
        results.push(match decoded {
            Ok(Ok(())) => Ok(fields),
            other => Err(format!("{other:?}")),
        });
        block.clear();
    }
    results
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(run(data), run(data));
});
