//! Fuzz target: the multipart/form-data parser. Whatever the body, and however it is cut
//! into pieces (the first byte picks the piece size), parsing never panics, and the events
//! are the same as for the body given whole: the same parts, heads and contents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tws::http::HttpError;
use tws::http::multipart::{Event, Multipart};

/// The parts seen (head, content), whether the body ended, and whether it was refused.
fn parse(body: &[u8], piece: usize) -> (Vec<(String, Option<String>, Vec<u8>)>, bool, bool) {
    let mut multipart = Multipart::new("XyZ");
    let mut parts: Vec<(String, Option<String>, Vec<u8>)> = Vec::new();
    for chunk in body.chunks(piece) {
        let fed = multipart.feed(chunk, |event| {
            match event {
                Event::Part(head) => parts.push((head.name, head.filename, Vec::new())),
                Event::Data(bytes) => {
                    if let Some(last) = parts.last_mut() {
                        last.2.extend_from_slice(bytes);
                    }
                }
                Event::PartEnd => {}
            }
            Ok::<(), HttpError>(())
        });
        if fed.is_err() {
            return (parts, multipart.is_done(), true);
        }
    }
    (parts, multipart.is_done(), false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let piece = usize::from(first % 64) + 1;
    let whole = parse(body, body.len().max(1));
    let pieces = parse(body, piece);
    if !whole.2 && !pieces.2 {
        assert_eq!(whole, pieces, "pieces of {piece}");
    }
});
