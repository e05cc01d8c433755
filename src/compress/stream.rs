//! A large file compressed as it is sent: each call reads a bounded piece of the file, feeds
//! the encoder and returns what it produced, on a worker, only once the connection has sent
//! the previous piece. Memory per stream is the encoder's state (small windows) and one piece.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::codec::{Effort, Encoder};
use crate::http::encoding::Coding;
use crate::http::response::Producer;

/// Input read per piece.
const INPUT_PIECE: usize = 128 * 1024;
/// A piece is returned once it holds this much output, or once this much input was read
/// (text that compresses to almost nothing must not keep a worker busy).
const MIN_OUTPUT: usize = 16 * 1024;
const MAX_INPUT_PER_CALL: u64 = 4 << 20;

/// Compresses `len` bytes of a file from `offset` as they are asked for.
pub struct CompressedFile {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    encoder: Option<Encoder>,
    coding: Coding,
}

impl std::fmt::Debug for CompressedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressedFile")
            .field("coding", &self.coding)
            .field("offset", &self.offset)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl CompressedFile {
    pub fn new(file: Arc<File>, len: u64, coding: Coding) -> io::Result<CompressedFile> {
        Ok(CompressedFile {
            file,
            offset: 0,
            remaining: len,
            encoder: Some(Encoder::new(coding, Effort::Fast, None)?),
            coding,
        })
    }
}

impl Producer for CompressedFile {
    fn produce(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.encoder.is_none() {
            return Ok(None);
        }
        let mut input = vec![0u8; INPUT_PIECE.min(self.remaining.max(1) as usize)];
        let mut read = 0u64;
        let mut out = Vec::new();
        while self.remaining > 0 {
            let want = (self.remaining as usize).min(input.len());
            let n = self.file.read_at(&mut input[..want], self.offset)?;
            if n == 0 {
                // The file shrank under us: the body can no longer be completed.
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let encoder = self.encoder.as_mut().expect("checked above");
            encoder.write(&input[..n])?;
            self.offset += n as u64;
            self.remaining -= n as u64;
            read += n as u64;
            out.extend(encoder.take());
            if out.len() >= MIN_OUTPUT || read >= MAX_INPUT_PER_CALL {
                return Ok(Some(out));
            }
        }
        if let Some(encoder) = self.encoder.take() {
            out.extend(encoder.finish()?);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produces_pieces_that_decompress_to_the_file() {
        let path = std::env::temp_dir().join(format!("tws-stream-{}", std::process::id()));
        let text: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("{i} ").into_bytes())
            .collect();
        std::fs::write(&path, &text).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        for coding in Coding::ALL {
            let mut producer =
                CompressedFile::new(Arc::clone(&file), text.len() as u64, coding).unwrap();
            let mut out = Vec::new();
            let mut pieces = 0;
            while let Some(piece) = producer.produce().unwrap() {
                out.extend(piece);
                pieces += 1;
                assert!(pieces < 10_000);
            }
            assert!(pieces > 1, "{coding:?} came in one piece");
            assert_eq!(super::super::codec::tests::decompress(coding, &out), text);
        }
        std::fs::remove_file(path).unwrap();
    }
}
