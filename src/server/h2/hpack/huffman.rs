//! Huffman coding of string literals (RFC 7541 §5.2 with the code of Appendix B): an encoder
//! with a 64-bit bit accumulator, and a table-driven decoder that resolves one or two whole
//! symbols per lookup when their codes fit in 12 bits (printable ASCII but for a few rare
//! signs has codes of 5 to 12 bits), and longer codes from the canonical code's lengths.

use super::DecodeError;
use super::huffman_table::HUFFMAN_CODES;

/// The EOS symbol: never valid inside a string.
const EOS: u16 = 256;

/// Longest code, in bits.
const MAX_BITS: u32 = 30;

/// Bits looked up at once by the decoder's table (4096 entries of 4 bytes: one third of a
/// typical L1 data cache; 11 bits was measured about 15% slower on header text).
const FAST_BITS: u32 = 12;

/// Code lengths of the 256 byte values, for [`encoded_len`].
static LENGTHS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut s = 0;
    while s < 256 {
        t[s] = HUFFMAN_CODES[s].1;
        s += 1;
    }
    t
};

/// One symbol per entry, indexed by the next [`FAST_BITS`] bits of input: `bits << 8 |
/// symbol` for the code those bits start with, or 0 when that code is longer.
const SINGLE: [u16; 1 << FAST_BITS] = {
    let mut t = [0u16; 1 << FAST_BITS];
    let mut s = 0;
    while s < 256 {
        let (code, bits) = HUFFMAN_CODES[s];
        let bits = bits as u32;
        if bits <= FAST_BITS {
            let shift = FAST_BITS - bits;
            let first = (code << shift) as usize;
            let mut i = 0;
            while i < 1 << shift {
                t[first + i] = ((bits as u16) << 8) | s as u16;
                i += 1;
            }
        }
        s += 1;
    }
    t
};

/// The decoder's table, indexed by the next [`FAST_BITS`] bits of input: the one or two
/// whole codes those bits start with. Bits 0..6: length of both codes (the shift, taken
/// with no masking); 8..16: first symbol; 16..24: second symbol; 24..29: length of the first
/// code; 30..32: how many symbols (0 when the first code is longer than [`FAST_BITS`]: see
/// [`decode_long`]).
static FAST: [u32; 1 << FAST_BITS] = {
    let mut t = [0u32; 1 << FAST_BITS];
    let mut i = 0;
    while i < 1 << FAST_BITS {
        let first = SINGLE[i] as u32;
        let len1 = first >> 8;
        if len1 != 0 {
            let mut entry = len1 | ((first & 0xff) << 8) | (len1 << 24) | (1 << 30);
            let rest = (i << len1) & ((1 << FAST_BITS) - 1);
            let second = SINGLE[rest] as u32;
            let len2 = second >> 8;
            if len2 != 0 && len1 + len2 <= FAST_BITS {
                entry = (len1 + len2)
                    | ((first & 0xff) << 8)
                    | ((second & 0xff) << 16)
                    | (len1 << 24)
                    | (2 << 30);
            }
            t[i] = entry;
        }
        i += 1;
    }
    t
};

/// The code is canonical (codes of one length are consecutive, in symbol order, and follow
/// the shorter ones), so a long code is found from its length: `FIRST[l]` is the first code
/// of `l` bits, `COUNT[l]` how many there are, `OFFSET[l]` where their symbols start in
/// `SYMBOLS` (all symbols ordered by code). Tests check the canonical property.
struct Canonical {
    first: [u32; MAX_BITS as usize + 1],
    count: [u16; MAX_BITS as usize + 1],
    offset: [u16; MAX_BITS as usize + 1],
    symbols: [u16; 257],
}

static CANONICAL: Canonical = {
    let mut c = Canonical {
        first: [0; MAX_BITS as usize + 1],
        count: [0; MAX_BITS as usize + 1],
        offset: [0; MAX_BITS as usize + 1],
        symbols: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        c.count[HUFFMAN_CODES[s].1 as usize] += 1;
        s += 1;
    }
    let mut l = 1;
    while l <= MAX_BITS as usize {
        c.offset[l] = c.offset[l - 1] + c.count[l - 1];
        l += 1;
    }
    let mut filled = [0u16; MAX_BITS as usize + 1];
    let mut s = 0;
    while s < 257 {
        let (code, bits) = HUFFMAN_CODES[s];
        let bits = bits as usize;
        if filled[bits] == 0 {
            c.first[bits] = code;
        }
        c.symbols[(c.offset[bits] + filled[bits]) as usize] = s as u16;
        filled[bits] += 1;
        s += 1;
    }
    c
};

/// Length in bytes of the Huffman coding of `src` (padding included).
#[inline]
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| LENGTHS[b as usize] as usize).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `src` to `out`; `len` is [`encoded_len`]`(src)`.
pub fn encode(src: &[u8], len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + len, 0);
    let dst = &mut out[start..];
    let mut j = 0;
    // The pending bits are the low `n` bits of `acc` (n < 32 between symbols; a code has at
    // most 30 bits, so n stays below 64); bits above them are stale and never read.
    let mut acc: u64 = 0;
    let mut n: u32 = 0;
    for &b in src {
        let (code, bits) = HUFFMAN_CODES[b as usize];
        acc = (acc << bits) | code as u64;
        n += bits as u32;
        if n >= 32 {
            n -= 32;
            dst[j..j + 4].copy_from_slice(&((acc >> n) as u32).to_be_bytes());
            j += 4;
        }
    }
    if n > 0 {
        // Pad to a byte boundary with the most significant bits of EOS (all ones).
        let pad = (8 - n % 8) % 8;
        acc = (acc << pad) | ((1 << pad) - 1);
        n += pad;
        while n > 0 {
            n -= 8;
            dst[j] = (acc >> n) as u8;
            j += 1;
        }
    }
    debug_assert_eq!(j, len);
}

/// Decodes a code longer than [`FAST_BITS`] from the top of `acc`, which holds `n` valid
/// bits: the symbol and its length, or `None` when no code fits in those `n` bits.
#[cold]
fn decode_long(acc: u64, n: u32) -> Option<(u16, u32)> {
    let c = &CANONICAL;
    let mut l = FAST_BITS + 1;
    while l <= MAX_BITS.min(n) {
        let v = (acc >> (64 - l)) as u32;
        let k = v.wrapping_sub(c.first[l as usize]);
        if k < c.count[l as usize] as u32 {
            return Some((c.symbols[(c.offset[l as usize] as u32 + k) as usize], l));
        }
        l += 1;
    }
    None
}

/// Appends the decoding of `src` to `out`. Errors: the EOS symbol, more than 7 bits of
/// padding, or padding that is not all ones (RFC 7541 §5.2).
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    // Codes are at least 5 bits long; one more byte because two symbols are always written.
    let start = out.len();
    out.resize(start + src.len() * 8 / 5 + 2, 0);
    let dst = &mut out[start..];
    let mut j = 0;
    // The next `n` bits of input are the top bits of `acc`. Below them `acc` holds zeros or
    // the bits that follow in `src` (left there by the 8-byte refill, rewritten by the next
    // refill with the same values), so once `src` is all loaded they are zeros.
    let mut acc: u64 = 0;
    let mut n: u32 = 0;
    let mut i = 0;
    loop {
        if let Some(word) = src.get(i..i + 8) {
            let word = u64::from_be_bytes(word.try_into().expect("8 bytes"));
            acc |= word >> n;
            i += ((63 - n) >> 3) as usize;
            n |= 56;
        } else {
            while n <= 56 && i < src.len() {
                acc |= (src[i] as u64) << (56 - n);
                n += 8;
                i += 1;
            }
            if n < MAX_BITS {
                break; // all loaded: the tail is decoded below, checking lengths
            }
        }
        // At least MAX_BITS bits: any code fits.
        while n >= MAX_BITS {
            let e = FAST[(acc >> (64 - FAST_BITS)) as usize];
            let count = (e >> 30) as usize;
            if count != 0 {
                dst[j] = (e >> 8) as u8;
                dst[j + 1] = (e >> 16) as u8;
                j += count;
                acc <<= e & 0x3f;
                n -= e & 0x3f;
            } else {
                let (sym, bits) = decode_long(acc, n).ok_or(DecodeError::Compression)?;
                if sym == EOS {
                    return Err(DecodeError::Compression);
                }
                dst[j] = sym as u8;
                j += 1;
                acc <<= bits;
                n -= bits;
            }
        }
    }
    // Fewer than MAX_BITS bits left: decode the codes that fit whole, one at a time, then
    // what is left must be padding.
    while n > 0 {
        let e = FAST[(acc >> (64 - FAST_BITS)) as usize];
        let (sym, bits) = if e >> 30 != 0 {
            ((e >> 8) as u16 & 0xff, (e >> 24) & 0x1f)
        } else {
            match decode_long(acc, n) {
                Some(found) => found,
                None => break,
            }
        };
        if bits > n {
            break;
        }
        if sym == EOS {
            return Err(DecodeError::Compression);
        }
        dst[j] = sym as u8;
        j += 1;
        acc <<= bits;
        n -= bits;
    }
    out.truncate(start + j);
    if n >= 8 || (n > 0 && acc >> (64 - n) != (1 << n) - 1) {
        return Err(DecodeError::Compression);
    }
    Ok(())
}
