//! Fuzz target: URL path normalisation. A normalised path starts with '/', has no empty, '.'
//! or '..' segment, no backslash or NUL, and normalises to itself once re-encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tws::handlers::listing::encode_path;
use tws::path::normalize;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let Ok(path) = normalize(raw) else { return };
    assert!(path.starts_with('/'));
    assert!(!path.contains('\\') && !path.contains('\0'));
    let inner = path.trim_start_matches('/').trim_end_matches('/');
    if !inner.is_empty() {
        for segment in inner.split('/') {
            assert!(!segment.is_empty() && segment != "." && segment != "..", "{path:?}");
        }
    }
    assert_eq!(normalize(&encode_path(&path)).as_deref(), Ok(path.as_str()));
});
