//! Tar headers (POSIX ustar, with a pax extended header for a path longer than ustar holds,
//! a name that is not ASCII, or a file of 8 GiB or more) and the archive's end.

/// One tar block.
pub const BLOCK: usize = 512;
/// The largest size ustar's 11 octal digits hold.
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// Appends the header(s) of one entry: a file of `size` bytes, or a folder (`name` ends in
/// '/').
pub fn header(out: &mut Vec<u8>, name: &str, size: u64, modified: i64, mode: u32) {
    let folder = name.ends_with('/');
    let (prefix, short) = split_ustar(name);
    let long = prefix.is_none() && short.is_none();
    let big = size > USTAR_MAX_SIZE;
    if long || big || !name.is_ascii() {
        let mut records = String::new();
        if long || !name.is_ascii() {
            records.push_str(&record("path", name));
        }
        if big {
            records.push_str(&record("size", &size.to_string()));
        }
        let pax_name = format!("PaxHeaders/{}", tail(name, 80));
        block(
            out,
            &pax_name,
            "",
            records.len() as u64,
            modified,
            0o644,
            b'x',
        );
        out.extend_from_slice(records.as_bytes());
        pad(out);
    }
    let (prefix, short) = match (prefix, short) {
        (Some(p), Some(s)) => (p, s),
        // The pax header carries the real name; ustar gets what fits.
        _ => ("", tail(name, 99)),
    };
    let kind = if folder { b'5' } else { b'0' };
    let mode = if folder { 0o755 } else { mode };
    let size = if folder { 0 } else { size.min(USTAR_MAX_SIZE) };
    block(out, short, prefix, size, modified, mode, kind);
}

/// Zeros after a file's content, up to the next block.
pub fn pad(out: &mut Vec<u8>) {
    let rest = out.len() % BLOCK;
    if rest != 0 {
        out.resize(out.len() + BLOCK - rest, 0);
    }
}

/// Padding after `size` bytes of content, whatever precedes it in the buffer.
pub fn padding(size: u64) -> usize {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 { 0 } else { BLOCK - rest }
}

/// The end of an archive: two zero blocks.
pub fn end(out: &mut Vec<u8>) {
    out.resize(out.len() + 2 * BLOCK, 0);
}

/// A pax record: `LEN key=value\n`, LEN counting itself.
fn record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while (len.to_string().len() + body.len()) != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}")
}

/// `name` as ustar's prefix (155) and name (100) fields, split at a '/', when it fits.
fn split_ustar(name: &str) -> (Option<&str>, Option<&str>) {
    if name.len() <= 100 {
        return (Some(""), Some(name));
    }
    let bytes = name.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'/' && i <= 155 && name.len() - i - 1 <= 100 && i + 1 < name.len() {
            return (Some(&name[..i]), Some(&name[i + 1..]));
        }
    }
    (None, None)
}

/// At most the last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut at = text.len().saturating_sub(max);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}

/// One ustar header block.
fn block(
    out: &mut Vec<u8>,
    name: &str,
    prefix: &str,
    size: u64,
    modified: i64,
    mode: u32,
    kind: u8,
) {
    let mut h = [0u8; BLOCK];
    put(&mut h[0..100], name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], modified.max(0) as u64);
    h[148..156].fill(b' ');
    h[156] = kind;
    put(&mut h[257..263], b"ustar\0");
    put(&mut h[263..265], b"00");
    put(&mut h[345..500], prefix.as_bytes());
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    out.extend_from_slice(&h);
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// A number in octal, zero-padded, NUL-terminated, filling the field.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(text);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value in ["a", &"b".repeat(5), &"c".repeat(94), &"d".repeat(995)] {
            let r = record("path", value);
            let (len, _) = r.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{r}");
        }
    }

    #[test]
    fn long_and_plain_names_take_the_right_headers() {
        let mut out = Vec::new();
        header(&mut out, "docs/a.txt", 5, 1_700_000_000, 0o644);
        assert_eq!(out.len(), BLOCK, "a plain name: one ustar block");
        assert_eq!(&out[257..263], b"ustar\0");
        let long = format!("{}/{}", "d".repeat(150), "f".repeat(90));
        let mut out = Vec::new();
        header(&mut out, &long, 5, 0, 0o644);
        assert_eq!(out.len(), BLOCK, "split into prefix and name");
        let longer = "x".repeat(300);
        let mut out = Vec::new();
        header(&mut out, &longer, 5, 0, 0o644);
        assert_eq!(out.len(), 3 * BLOCK, "pax header, its records, then ustar");
        assert_eq!(out[156], b'x');
    }
}
