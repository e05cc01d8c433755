//! A listed folder downloaded whole (`?download=tar`, `tar.gz` or `zip`): an archive made as
//! it is sent, a piece at a time on a worker (a `Producer`), never built in memory or on disk:
//! memory stays at one piece and one open file whatever the folder holds (zip adds its
//! central directory, a few dozen bytes per entry). The entries are what the listing shows,
//! by the same rules (`walk`).

mod tar;
mod walk;
mod zip;

use std::io::{self, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::http::response::{Body, Producer};
use crate::http::{HttpError, Response};
use crate::path::Exposure;
use walk::{Item, Walk};

/// Bytes of content read per piece.
const PIECE: usize = 256 * 1024;

/// The archive formats offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
    Zip,
}

impl Format {
    /// The format a `download=` value names.
    pub fn of(value: &str) -> Option<Format> {
        match value {
            "tar" => Some(Format::Tar),
            "tar.gz" | "tgz" => Some(Format::TarGz),
            "zip" => Some(Format::Zip),
            _ => None,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
            Format::Zip => "zip",
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::TarGz => "application/gzip",
            Format::Zip => "application/zip",
        }
    }
}

/// The `download=` value of a query, if any: `Err` when it names no format.
pub fn requested(query: Option<&str>) -> Option<Result<Format, HttpError>> {
    let value = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("download="))?;
    Some(Format::of(value).ok_or(HttpError::BadRequest("download must be zip, tar.gz or tar")))
}

/// The archive of `folder` (canonical), named after `name` (the folder's own name, or the
/// site's for its root): a streamed 200.
pub fn response(folder: &Path, name: &str, exposure: Exposure, format: Format) -> Response {
    let base = if name.is_empty() { "files" } else { name };
    let producer = Archive {
        walk: Walk::new(folder, exposure),
        format,
        prefix: format!("{base}/"),
        current: None,
        zip: zip::Zip::default(),
        gzip: (format == Format::TarGz).then(|| GzEncoder::new(Vec::new(), Compression::fast())),
        done: false,
    };
    let file = format!("{base}.{}", format.suffix());
    let ascii: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(&file, super::listing::COMPONENT);
    Response::new(200, format.media_type(), Body::Stream(Box::new(producer)))
        .header(
            "Content-Disposition",
            format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
        )
        .header("Cache-Control", "no-store")
}

/// A file being sent: what is left of it, and its running CRC (zip).
struct Current {
    file: std::fs::File,
    left: u64,
    size: u64,
    crc: crc32fast::Hasher,
}

struct Archive {
    walk: Walk,
    format: Format,
    /// Every entry's path starts with the folder's name.
    prefix: String,
    current: Option<Current>,
    zip: zip::Zip,
    gzip: Option<GzEncoder<Vec<u8>>>,
    done: bool,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Archive {
    /// Appends the next raw (uncompressed) bytes of the archive to `out`: a piece of the
    /// current file, or the next entry's header(s); false once the archive is complete.
    fn step(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        if let Some(current) = &mut self.current {
            let n = (current.left as usize).min(PIECE);
            let at = out.len();
            out.resize(at + n, 0);
            current
                .file
                .read_exact(&mut out[at..])
                .map_err(|e| io::Error::new(e.kind(), "a file shrank while it was archived"))?;
            current.left -= n as u64;
            if self.format == Format::Zip {
                current.crc.update(&out[at..]);
                self.zip.sent(n as u64);
            }
            if current.left == 0 {
                let current = self.current.take().expect("checked above");
                match self.format {
                    Format::Zip => self.zip.finish_entry(
                        out,
                        zip::Sent {
                            crc: current.crc.finalize(),
                            size: current.size,
                        },
                    ),
                    _ => out.resize(out.len() + tar::padding(current.size), 0),
                }
            }
            return Ok(true);
        }
        let Some(item) = self.walk.next_item() else {
            match self.format {
                Format::Zip => self.zip.end(out),
                _ => tar::end(out),
            }
            return Ok(false);
        };
        match item {
            Item::Folder { name, modified } => {
                let name = format!("{}{name}", self.prefix);
                match self.format {
                    Format::Zip => {
                        self.zip.begin_entry(out, &name, 0, modified, 0o755);
                        self.zip.finish_entry(out, zip::Sent { crc: 0, size: 0 });
                    }
                    _ => tar::header(out, &name, 0, modified, 0o755),
                }
            }
            Item::File {
                name,
                file,
                size,
                modified,
                mode,
            } => {
                let name = format!("{}{name}", self.prefix);
                match self.format {
                    Format::Zip => self.zip.begin_entry(out, &name, size, modified, mode),
                    _ => tar::header(out, &name, size, modified, mode),
                }
                let current = Current {
                    file,
                    left: size,
                    size,
                    crc: crc32fast::Hasher::new(),
                };
                if size == 0 {
                    self.current = Some(current);
                    // An empty file's entry ends at once.
                    return self.step(out);
                }
                self.current = Some(current);
            }
        }
        Ok(true)
    }
}

impl Producer for Archive {
    fn produce(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut raw = Vec::with_capacity(PIECE + 4096);
        while raw.len() < PIECE {
            if !self.step(&mut raw)? {
                self.done = true;
                break;
            }
        }
        let Some(gzip) = &mut self.gzip else {
            return Ok(Some(raw));
        };
        gzip.write_all(&raw)?;
        if self.done {
            let gzip = self.gzip.take().expect("checked above");
            return Ok(Some(gzip.finish()?));
        }
        Ok(Some(std::mem::take(gzip.get_mut())))
    }
}
