//! The three codecs behind one encoder: brotli (the `brotli` crate, pure Rust), zstd (the
//! `zstd` crate, bindings to the reference C library, the fastest at a given ratio), and gzip
//! (`flate2` on its pure-Rust backend). Output can be taken as it is produced, so a large
//! body is compressed a piece at a time with bounded memory.

use std::io::{self, Write};

use crate::http::encoding::Coding;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// A form made once and kept (cached files and listing pages): the smallest output worth
    /// the time, since it is paid once.
    Once,
    /// Per response or per stream: fast, with small windows so each stream's memory is small.
    Fast,
}

/// Inputs up to this size get brotli's highest quality when compressed once (quality 11 runs
/// at about 1 MB/s; larger inputs get quality 9).
const BROTLI_MAX_QUALITY_BYTES: usize = 256 * 1024;

/// A running compressor for one coding.
pub struct Encoder {
    inner: Inner,
}

enum Inner {
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl Encoder {
    /// An encoder for `coding`; `size_hint` is the input size when known.
    pub fn new(coding: Coding, effort: Effort, size_hint: Option<usize>) -> io::Result<Encoder> {
        let capacity = size_hint.map_or(64 * 1024, |n| (n / 3).clamp(256, 1 << 20));
        let out = Vec::with_capacity(capacity);
        let inner = match (coding, effort) {
            (Coding::Brotli, Effort::Once) => {
                let small = size_hint.is_some_and(|n| n <= BROTLI_MAX_QUALITY_BYTES);
                let quality = if small { 11 } else { 9 };
                // A window just larger than the input (at least 1 KiB, at most 4 MiB).
                let lgwin = size_hint.map_or(22, |n| {
                    (usize::BITS - n.max(1024).leading_zeros()).clamp(10, 22)
                });
                Inner::Brotli(Box::new(brotli::CompressorWriter::new(
                    out, 4096, quality, lgwin,
                )))
            }
            (Coding::Brotli, Effort::Fast) => {
                Inner::Brotli(Box::new(brotli::CompressorWriter::new(out, 4096, 4, 18)))
            }
            (Coding::Zstd, effort) => {
                let level = if effort == Effort::Once { 19 } else { 3 };
                let mut encoder = zstd::stream::write::Encoder::new(out, level)?;
                if let Some(n) = size_hint {
                    encoder.set_pledged_src_size(Some(n as u64))?;
                }
                if effort == Effort::Fast {
                    encoder.window_log(19)?;
                }
                Inner::Zstd(encoder)
            }
            (Coding::Gzip, effort) => {
                let level = if effort == Effort::Once { 9 } else { 5 };
                Inner::Gzip(flate2::write::GzEncoder::new(
                    out,
                    flate2::Compression::new(level),
                ))
            }
        };
        Ok(Encoder { inner })
    }

    /// Feeds input.
    pub fn write(&mut self, input: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Brotli(w) => w.write_all(input),
            Inner::Zstd(w) => w.write_all(input),
            Inner::Gzip(w) => w.write_all(input),
        }
    }

    /// Takes the output produced so far.
    pub fn take(&mut self) -> Vec<u8> {
        match &mut self.inner {
            Inner::Brotli(w) => std::mem::take(w.get_mut()),
            Inner::Zstd(w) => std::mem::take(w.get_mut()),
            Inner::Gzip(w) => std::mem::take(w.get_mut()),
        }
    }

    /// Ends the stream; returns the rest of the output.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self.inner {
            Inner::Brotli(w) => Ok(w.into_inner()),
            Inner::Zstd(w) => w.finish(),
            Inner::Gzip(w) => w.finish(),
        }
    }
}

/// Compresses all of `input` at once.
pub fn compress(coding: Coding, effort: Effort, input: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = Encoder::new(coding, effort, Some(input.len()))?;
    encoder.write(input)?;
    let mut out = encoder.take();
    out.extend(encoder.finish()?);
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::Read;

    /// Decompresses with the same crates, for checks.
    pub fn decompress(coding: Coding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Brotli => {
                brotli::Decompressor::new(data, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Coding::Zstd => out = zstd::stream::decode_all(data).unwrap(),
            Coding::Gzip => {
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .unwrap();
            }
        }
        out
    }

    #[test]
    fn every_coding_round_trips_in_one_piece_and_in_many() {
        let text: Vec<u8> = (0..50_000)
            .flat_map(|i| format!("line {i} of some text; ").into_bytes())
            .collect();
        for coding in Coding::ALL {
            for effort in [Effort::Once, Effort::Fast] {
                let whole = compress(coding, effort, &text).unwrap();
                assert!(whole.len() < text.len() / 3, "{coding:?} {effort:?}");
                assert_eq!(decompress(coding, &whole), text, "{coding:?} {effort:?}");
            }
            let mut encoder = Encoder::new(coding, Effort::Fast, None).unwrap();
            let mut streamed = Vec::new();
            for piece in text.chunks(7_001) {
                encoder.write(piece).unwrap();
                streamed.extend(encoder.take());
            }
            streamed.extend(encoder.finish().unwrap());
            assert_eq!(decompress(coding, &streamed), text, "{coding:?} streamed");
        }
    }
}
