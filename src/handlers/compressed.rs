//! Compression on the fly of one file. A compressible file up to `compress::MAX_KEPT_SOURCE`
//! has its form in each offered coding made once, on a worker, and kept with the file's set
//! (within the server-wide budget), so later requests are answered from memory in the loop;
//! a larger one is streamed through the compressor. Each coding is its own representation:
//! its own strong ETag (the file's with a `-br`, `-zstd` or `-gzip` suffix), the file's
//! Last-Modified, and `Vary: Accept-Encoding`, as identity answers carry too.

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::compress::{self, Effort, Settings, stream::CompressedFile};
use crate::http::conditional::Validators;
use crate::http::encoding::{Choice, Coding};
use crate::http::response::{Body, Content, header_block};
use crate::http::{HttpError, Response};

/// Forms larger than this are kept in an unnamed file (`kept_file`) and sent with sendfile.
const SENDFILE_FORM_BYTES: u64 = 16 * 1024;

/// An anonymous file holding `bytes`, for sendfile. Preferably an unnamed file (O_TMPFILE) in
/// `spool` (the data folder) or else in the temporary folder: on a disk file system its pages
/// sit in the page cache, which splices into sockets at less cost per response than shared
/// memory does (measured: 6.0 against 6.2 µs of server CPU per 21 KB response). Where neither
/// folder takes one, an in-memory file.
fn kept_file(spool: Option<&std::path::Path>, bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    let temp = std::env::temp_dir();
    let unnamed = spool
        .into_iter()
        .chain([temp.as_path()])
        .find_map(|dir| unnamed_file(dir).ok());
    let mut file = match unnamed {
        Some(file) => file,
        None => memory_file()?,
    };
    file.write_all(bytes)?;
    Ok(file)
}

/// An unnamed file in `dir`, readable by nobody else, gone when closed.
fn unnamed_file(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
}

/// An anonymous file in memory (memfd).
fn memory_file() -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create takes a NUL-terminated name and returns a new descriptor we own.
    let fd = unsafe { libc::memfd_create(c"tws-compressed".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// A coding's form of the file, made once and kept.
#[derive(Debug, Clone)]
pub struct Form {
    /// Small forms are bytes (copied after the head); larger ones live in an unnamed file
    /// (`kept_file`), so they go out with sendfile, not copied per response.
    pub content: Content,
    pub len: u64,
    pub validators: Validators,
    /// Header lines of a 200, and of a 304.
    pub fixed: Arc<[u8]>,
    pub fixed_not_modified: Arc<[u8]>,
}

/// How a file is compressed on the fly.
#[derive(Debug)]
pub struct Dynamic {
    settings: Settings,
    /// Forms by coding (`Coding::index`), for files small enough to keep them.
    forms: Option<[OnceLock<Form>; Coding::ALL.len()]>,
    /// The identity representation's validators, from which each coding's derive.
    validators: Validators,
    cache_control: Option<String>,
    disposition: Option<String>,
    /// Bytes of kept forms, reserved in the server-wide budget.
    kept: AtomicUsize,
}

impl Dynamic {
    /// Compression for a file of this type and length, when it applies.
    pub fn new(
        settings: Option<&Settings>,
        content_type: &str,
        len: u64,
        validators: &Validators,
        cache_control: Option<&str>,
        disposition: Option<String>,
    ) -> Option<Dynamic> {
        let settings = settings.filter(|s| s.applies(content_type, len))?;
        Some(Dynamic {
            settings: settings.clone(),
            forms: (len <= compress::MAX_KEPT_SOURCE).then(Default::default),
            validators: validators.clone(),
            cache_control: cache_control.map(str::to_owned),
            disposition,
            kept: AtomicUsize::new(0),
        })
    }

    pub fn choose(&self, accept_encoding: Option<&str>) -> Choice {
        self.settings.choose(accept_encoding)
    }

    /// True when forms are made once and kept (a small file), false when streamed.
    pub fn keeps_forms(&self) -> bool {
        self.forms.is_some()
    }

    /// The kept form in `coding`, if it was made.
    pub fn kept(&self, coding: Coding) -> Option<&Form> {
        self.forms.as_ref()?[coding.index()].get()
    }

    /// Makes the form in `coding` from the file's `content` (on a worker: it reads and
    /// compresses), and keeps it when the budget allows.
    pub fn make(&self, coding: Coding, content: &Content, len: u64) -> Result<Form, HttpError> {
        const FAILED: HttpError = HttpError::Internal("could not compress the file");
        let source = match content {
            Content::Memory(bytes) => bytes.clone(),
            Content::File(file) => {
                let mut buf = vec![0u8; len as usize];
                file.read_exact_at(&mut buf, 0).map_err(|_| FAILED)?;
                Bytes::from(buf)
            }
        };
        let compressed = compress::compress(coding, Effort::Once, &source).map_err(|_| FAILED)?;
        let form = self.form(coding, compressed)?;
        if let Some(forms) = &self.forms
            && compress::reserve(form.len as usize)
        {
            let len = form.len as usize;
            match forms[coding.index()].set(form) {
                Ok(()) => {
                    self.kept.fetch_add(len, Ordering::AcqRel);
                    return Ok(forms[coding.index()].get().expect("just set").clone());
                }
                // Another worker kept it first.
                Err(form) => {
                    compress::release(len);
                    return Ok(form);
                }
            }
        }
        Ok(form)
    }

    /// A form of `bytes` with its validators and header lines.
    fn form(&self, coding: Coding, bytes: Vec<u8>) -> Result<Form, HttpError> {
        let validators = self.validators_for(coding);
        let mut lines = self.validator_lines(&validators);
        let fixed_not_modified = block(&lines);
        lines.push(("Content-Encoding", coding.token().to_owned()));
        if let Some(d) = &self.disposition {
            lines.push(("Content-Disposition", d.clone()));
        }
        let len = bytes.len() as u64;
        let content = if len > SENDFILE_FORM_BYTES {
            Content::File(Arc::new(
                kept_file(self.settings.spool.as_deref(), &bytes)
                    .map_err(|_| HttpError::Internal("could not keep the compressed file"))?,
            ))
        } else {
            Content::Memory(Bytes::from(bytes))
        };
        Ok(Form {
            content,
            len,
            fixed: block(&lines),
            fixed_not_modified,
            validators,
        })
    }

    /// The validators of the representation in `coding`.
    pub fn validators_for(&self, coding: Coding) -> Validators {
        Validators {
            etag: compress::coding_etag(&self.validators.etag, coding),
            modified: self.validators.modified,
        }
    }

    /// A 200 streaming the file through the compressor (a file too large to keep forms of).
    pub fn stream(
        &self,
        coding: Coding,
        content: &Content,
        len: u64,
        content_type: &str,
    ) -> Result<Response, HttpError> {
        let Content::File(file) = content else {
            return Err(HttpError::Internal("a streamed file is not open"));
        };
        let producer = CompressedFile::new(Arc::clone(file), len, coding)
            .map_err(|_| HttpError::Internal("could not start the compressor"))?;
        let validators = self.validators_for(coding);
        let mut response = Response::new(
            200,
            content_type.to_owned(),
            Body::Stream(Box::new(producer)),
        )
        .header("ETag", validators.etag.clone())
        .header("Last-Modified", validators.last_modified())
        .header("Vary", "Accept-Encoding")
        .header("Content-Encoding", coding.token());
        if let Some(cc) = &self.cache_control {
            response = response.header("Cache-Control", cc.clone());
        }
        if let Some(d) = &self.disposition {
            response = response.header("Content-Disposition", d.clone());
        }
        Ok(response)
    }

    /// Header lines of a 304 for the streamed representation in `coding`.
    pub fn not_modified_headers(&self, coding: Coding) -> Arc<[u8]> {
        block(&self.validator_lines(&self.validators_for(coding)))
    }

    /// The lines every answer for a representation carries, 304s included.
    fn validator_lines(&self, validators: &Validators) -> Vec<(&'static str, String)> {
        let mut lines = vec![
            ("ETag", validators.etag.clone()),
            ("Last-Modified", validators.last_modified()),
            ("Vary", "Accept-Encoding".to_owned()),
        ];
        if let Some(cc) = &self.cache_control {
            lines.push(("Cache-Control", cc.clone()));
        }
        lines
    }

    /// Bytes of forms kept.
    pub fn memory(&self) -> usize {
        self.kept.load(Ordering::Acquire)
    }

    /// Descriptors held by kept forms.
    pub fn open_files(&self) -> usize {
        self.forms.as_ref().map_or(0, |forms| {
            forms
                .iter()
                .filter(|f| {
                    matches!(
                        f.get(),
                        Some(Form {
                            content: Content::File(_),
                            ..
                        })
                    )
                })
                .count()
        })
    }
}

impl Drop for Dynamic {
    fn drop(&mut self) {
        compress::release(self.kept.load(Ordering::Acquire));
    }
}

/// Serialised header lines.
fn block(lines: &[(&str, String)]) -> Arc<[u8]> {
    let pairs: Vec<(&str, &str)> = lines.iter().map(|(n, v)| (*n, v.as_str())).collect();
    header_block(&pairs)
}

#[cfg(test)]
mod tests {
    use super::kept_file;
    use std::os::unix::fs::FileExt;

    fn contents(file: &std::fs::File, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, 0).unwrap();
        buf
    }

    #[test]
    fn a_kept_form_is_an_unnamed_file_in_the_spool() {
        let spool = std::env::temp_dir().join(format!("tws-spool-{}", std::process::id()));
        std::fs::create_dir_all(&spool).unwrap();
        let bytes = vec![7u8; 40_000];
        let file = kept_file(Some(&spool), &bytes).unwrap();
        assert_eq!(contents(&file, bytes.len()), bytes);
        assert_eq!(file.metadata().unwrap().len(), 40_000);
        // Nothing is left where others could see it.
        assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
        std::fs::remove_dir(&spool).unwrap();
    }

    #[test]
    fn without_a_usable_spool_a_form_is_kept_elsewhere() {
        let gone = std::path::Path::new("/nonexistent/tws-spool");
        let file = kept_file(Some(gone), b"abc").unwrap();
        assert_eq!(contents(&file, 3), b"abc");
        let file = kept_file(None, b"xyz").unwrap();
        assert_eq!(contents(&file, 3), b"xyz");
    }
}
