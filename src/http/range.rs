//! Byte ranges (RFC 9110 section 14): parsing a Range header and resolving it against a length.

/// More ranges than this in one request are ignored (the whole file is sent) rather than
/// letting a client ask for thousands of tiny overlapping parts.
pub const MAX_RANGES: usize = 16;

/// What to send for a Range header against a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// No usable Range header: the whole representation, 200.
    Full,
    /// One or more satisfiable ranges, inclusive `(first, last)`, sorted and merged; 206.
    Partial(Vec<(u64, u64)>),
    /// A valid header none of whose ranges overlaps the representation: 416.
    Unsatisfiable,
}

/// Resolves a Range header value. Syntax errors and other units are ignored (RFC 9110 14.2).
pub fn resolve(header: Option<&str>, len: u64) -> Ranges {
    let Some(value) = header else {
        return Ranges::Full;
    };
    let Some(specs) = value.trim().strip_prefix("bytes=") else {
        return Ranges::Full;
    };
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut count = 0;
    for spec in specs.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_RANGES {
            return Ranges::Full;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return Ranges::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // Suffix: the last N bytes.
            let Some(n) = digits(last) else {
                return Ranges::Full;
            };
            (n > 0 && len > 0).then(|| (len - n.min(len), len - 1))
        } else {
            let Some(first) = digits(first) else {
                return Ranges::Full;
            };
            let last = if last.is_empty() {
                u64::MAX
            } else {
                match digits(last) {
                    Some(l) if l >= first => l,
                    _ => return Ranges::Full,
                }
            };
            (first < len).then(|| (first, last.min(len - 1)))
        };
        ranges.extend(range);
    }
    if count == 0 {
        return Ranges::Full;
    }
    if ranges.is_empty() {
        return Ranges::Unsatisfiable;
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match merged.last_mut() {
            Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
            _ => merged.push((first, last)),
        }
    }
    Ranges::Partial(merged)
}

/// A decimal number; values past u64::MAX saturate, which only ever widens a range.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ranges::*;

    #[test]
    fn resolves_ranges_against_a_length() {
        // (header, length, outcome)
        let cases: Vec<(Option<&str>, u64, Ranges)> = vec![
            (None, 1000, Full),
            (Some("bytes=0-99"), 1000, Partial(vec![(0, 99)])),
            (Some("bytes=100-"), 1000, Partial(vec![(100, 999)])),
            (Some("bytes=-500"), 1000, Partial(vec![(500, 999)])),
            (Some("bytes=-5000"), 1000, Partial(vec![(0, 999)])),
            (Some("bytes=990-2000"), 1000, Partial(vec![(990, 999)])),
            (Some("bytes=0-0"), 1000, Partial(vec![(0, 0)])),
            (
                Some(" bytes=0-1 , 5-6 "),
                1000,
                Partial(vec![(0, 1), (5, 6)]),
            ),
            (Some("bytes=5-6,0-1"), 1000, Partial(vec![(0, 1), (5, 6)])),
            (Some("bytes=0-10,5-20,21-30"), 1000, Partial(vec![(0, 30)])),
            (
                Some("bytes=0-99999999999999999999999"),
                1000,
                Partial(vec![(0, 999)]),
            ),
            (Some("bytes=1000-"), 1000, Unsatisfiable),
            (Some("bytes=99999999999999999999999-"), 1000, Unsatisfiable),
            (Some("bytes=-0"), 1000, Unsatisfiable),
            (Some("bytes=0-1"), 0, Unsatisfiable),
            (Some("bytes=-1"), 0, Unsatisfiable),
            (Some("bytes=2000-3000, 5-6"), 1000, Partial(vec![(5, 6)])),
            (Some("bytes=5-1"), 1000, Full),
            (Some("bytes=a-b"), 1000, Full),
            (Some("bytes=-"), 1000, Full),
            (Some("bytes=1"), 1000, Full),
            (Some("bytes=+1-2"), 1000, Full),
            (Some("bytes="), 1000, Full),
            (Some("items=0-1"), 1000, Full),
            (
                Some(
                    "bytes=0-1,2-3,4-5,6-7,8-9,10-11,12-13,14-15,16-17,18-19,20-21,22-23,24-25,26-27,28-29,30-31,32-33",
                ),
                1000,
                Full,
            ),
        ];
        for (header, len, want) in cases {
            assert_eq!(resolve(header, len), want, "{header:?} of {len}");
        }
    }
}
