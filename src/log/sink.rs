//! Log sinks: where log lines go without ever making the event loop wait. Each sink is a
//! writer thread fed through a queue bounded in bytes; a full queue drops the new lines and
//! counts them, and the count is reported on stderr at most once every few seconds. The
//! writer joins whatever is queued into one write, reopens its file on request (SIGUSR1, the
//! logrotate convention) between writes, so no line is split across files, and reports write
//! errors at most once a minute without ever stopping.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Most bytes queued for a sink before new lines are dropped.
pub const MAX_QUEUED_BYTES: usize = 4 << 20;
/// Most bytes joined into one write.
const MAX_WRITE_BYTES: usize = 1 << 20;
/// How often dropped lines are reported while dropping.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(5);
/// How often a failing write is reported.
const ERROR_REPORT_EVERY: Duration = Duration::from_secs(60);
/// Mode of a log file tws creates.
const FILE_MODE: u32 = 0o640;

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
    /// Appended to (`O_APPEND`), created with mode 0640 when missing, reopened on request.
    File(PathBuf),
}

/// A handle on a sink; clones share the writer thread.
#[derive(Clone)]
pub struct Sink {
    tx: Sender<Vec<u8>>,
    shared: Arc<Shared>,
}

struct Shared {
    /// What the sink carries, for messages ("access log").
    what: &'static str,
    queued: AtomicUsize,
    dropped: AtomicU64,
    reopen: AtomicBool,
    /// Batches accepted, and batches the writer has written (or given up on).
    sent: AtomicU64,
    written: AtomicU64,
    /// Drops reported so far, and when (milliseconds since `epoch`; 0: never).
    reported_drops: AtomicU64,
    last_drop_report: AtomicU64,
    epoch: Instant,
}

impl Shared {
    /// Counts dropped lines and reports them, at most once every `DROP_REPORT_EVERY`. Runs on
    /// whichever thread notices, so a writer stuck on a full pipe does not silence it.
    fn drop_lines(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
        self.report_drops();
    }

    fn report_drops(&self) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped == self.reported_drops.load(Ordering::Relaxed) {
            return;
        }
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let last = self.last_drop_report.load(Ordering::Relaxed);
        let every = DROP_REPORT_EVERY.as_millis() as u64;
        if last != 0 && now < last + every {
            return;
        }
        if self
            .last_drop_report
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return; // another thread reports
        }
        let before = self.reported_drops.swap(dropped, Ordering::AcqRel);
        report(format_args!(
            "tws: {} is not keeping up: {} lines dropped",
            self.what,
            dropped.saturating_sub(before)
        ));
    }
}

impl Sink {
    /// Opens the target (a file that cannot be opened is a startup error naming it) and starts
    /// the writer thread.
    pub fn start(target: Target, what: &'static str) -> Result<Sink> {
        let out = Output::open(&target).map_err(|e| {
            anyhow::anyhow!(
                "cannot open {what} {}: {}",
                target.describe(),
                crate::log::io_reason(&e)
            )
        })?;
        let (tx, rx) = channel();
        let shared = Arc::new(Shared {
            what,
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            reopen: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            written: AtomicU64::new(0),
            reported_drops: AtomicU64::new(0),
            last_drop_report: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let writer = Writer {
            rx,
            out,
            target,
            shared: Arc::clone(&shared),
            taken: 0,
            last_error_report: None,
        };
        std::thread::Builder::new()
            .name(format!("tws-log-{}", what.replace(' ', "-")))
            .spawn(move || writer.run())
            .context("cannot start a log writer thread")?;
        Ok(Sink { tx, shared })
    }

    /// Queues a batch of `lines` whole lines; never blocks. When the queue is full the batch
    /// is dropped and counted; returns false then.
    pub fn send(&self, batch: Vec<u8>, lines: u64) -> bool {
        let len = batch.len();
        let queued = self.shared.queued.fetch_add(len, Ordering::AcqRel);
        if queued + len > MAX_QUEUED_BYTES {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            self.shared.drop_lines(lines);
            return false;
        }
        self.shared.sent.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(batch).is_err() {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            self.shared.written.fetch_add(1, Ordering::AcqRel);
            self.shared.drop_lines(lines);
            return false;
        }
        true
    }

    /// Waits (at most `limit`) until what was queued before the call is written: at exit.
    pub fn flush(&self, limit: Duration) {
        let target = self.shared.sent.load(Ordering::Acquire);
        let deadline = Instant::now() + limit;
        while self.shared.written.load(Ordering::Acquire) < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Lines dropped so far because the queue was full or the sink failed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Asks the writer to reopen its file before its next write (SIGUSR1).
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
        // An empty batch wakes the writer.
        self.send(Vec::new(), 0);
    }
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Stdout => "(standard output)".to_owned(),
            Target::Stderr => "(standard error)".to_owned(),
            Target::File(path) => path.display().to_string(),
        }
    }
}

enum Output {
    Stdout(io::Stdout),
    Stderr(io::Stderr),
    File(File),
}

impl Output {
    fn open(target: &Target) -> io::Result<Output> {
        Ok(match target {
            Target::Stdout => Output::Stdout(io::stdout()),
            Target::Stderr => Output::Stderr(io::stderr()),
            Target::File(path) => Output::File(open_append(path)?),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.lock().write_all(bytes),
            Output::Stderr(out) => out.lock().write_all(bytes),
            Output::File(file) => file.write_all(bytes),
        }
    }
}

/// Opens a log file for appending, creating it with mode 0640 when missing.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
}

struct Writer {
    rx: Receiver<Vec<u8>>,
    out: Output,
    target: Target,
    shared: Arc<Shared>,
    /// Batches taken into the write being prepared.
    taken: u64,
    last_error_report: Option<Instant>,
}

impl Writer {
    fn run(mut self) {
        let mut buf = Vec::new();
        loop {
            match self.rx.recv_timeout(DROP_REPORT_EVERY) {
                Ok(batch) => {
                    self.take(&mut buf, batch);
                    while buf.len() < MAX_WRITE_BYTES {
                        match self.rx.try_recv() {
                            Ok(batch) => self.take(&mut buf, batch),
                            Err(_) => break,
                        }
                    }
                    self.reopen_if_asked();
                    self.write(&mut buf);
                }
                Err(RecvTimeoutError::Timeout) => self.reopen_if_asked(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.shared.report_drops();
        }
    }

    fn take(&mut self, buf: &mut Vec<u8>, batch: Vec<u8>) {
        self.shared.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        self.taken += 1;
        if buf.is_empty() {
            *buf = batch;
        } else {
            buf.extend_from_slice(&batch);
        }
    }

    fn write(&mut self, buf: &mut Vec<u8>) {
        if !buf.is_empty()
            && let Err(e) = self.out.write_all(buf)
        {
            let lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
            self.shared.dropped.fetch_add(lines, Ordering::Relaxed);
            let now = Instant::now();
            if self
                .last_error_report
                .is_none_or(|t| now.duration_since(t) >= ERROR_REPORT_EVERY)
            {
                self.last_error_report = Some(now);
                report(format_args!(
                    "tws: error: cannot write the {} to {}: {}; lines are dropped until it works again",
                    self.shared.what,
                    self.target.describe(),
                    crate::log::io_reason(&e)
                ));
            }
        }
        buf.clear();
        if buf.capacity() > MAX_WRITE_BYTES {
            *buf = Vec::new();
        }
        let taken = std::mem::take(&mut self.taken);
        self.shared.written.fetch_add(taken, Ordering::AcqRel);
    }

    fn reopen_if_asked(&mut self) {
        if !self.shared.reopen.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Target::File(path) = &self.target {
            match open_append(path) {
                Ok(file) => self.out = Output::File(file),
                Err(e) => report(format_args!(
                    "tws: error: cannot reopen the {} {}: {}; still writing to the old file",
                    self.shared.what,
                    path.display(),
                    crate::log::io_reason(&e)
                )),
            }
        }
    }
}

/// The sink behind `report`: stderr, through its own writer thread once `init_stderr` ran.
static STDERR: OnceLock<Sink> = OnceLock::new();

/// Starts the stderr sink that `report` uses from then on.
pub fn init_stderr() -> Result<()> {
    if STDERR.get().is_none() {
        let _ = STDERR.set(Sink::start(Target::Stderr, "error log")?);
    }
    Ok(())
}

/// Waits (at most `limit`) for the lines reported so far to reach stderr: at exit.
pub fn flush_stderr(limit: Duration) {
    if let Some(sink) = STDERR.get() {
        sink.flush(limit);
    }
}

/// Writes one line to stderr without waiting for it: through the stderr sink once started,
/// directly before that (at startup nothing is being served yet).
pub fn report(args: std::fmt::Arguments<'_>) {
    let mut line = Vec::with_capacity(128);
    let _ = line.write_fmt(args);
    line.push(b'\n');
    match STDERR.get() {
        Some(sink) => {
            sink.send(line, 1);
        }
        None => {
            let _ = io::stderr().write_all(&line);
        }
    }
}

/// `report!("tws: warning: ...")`: one line on stderr that never blocks the caller.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => { $crate::log::sink::report(format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sink_appends_batches_and_reopens_after_a_rename() {
        let dir = std::env::temp_dir().join(format!("tws-sink-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let sink = Sink::start(Target::File(path.clone()), "access log").unwrap();
        assert!(sink.send(b"one\n".to_vec(), 1));
        // Rotate: rename, then ask for a reopen; later lines go to a new file.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&path).unwrap().is_empty() {
            assert!(Instant::now() < deadline, "first line never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        sink.reopen();
        assert!(sink.send(b"two\nthree\n".to_vec(), 2));
        sink.flush(Duration::from_secs(10));
        assert_eq!(std::fs::read(dir.join("access.log.1")).unwrap(), b"one\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"two\nthree\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let sink = Sink::start(Target::Stdout, "test log").unwrap();
        // Pretend the writer is far behind.
        sink.shared
            .queued
            .store(MAX_QUEUED_BYTES, Ordering::Release);
        assert!(!sink.send(b"a\nb\n".to_vec(), 2));
        assert_eq!(sink.dropped(), 2);
        sink.shared.queued.store(0, Ordering::Release);
    }

    #[test]
    fn an_unopenable_file_is_a_startup_error_naming_it() {
        let err = Sink::start(
            Target::File("/nonexistent-folder/x.log".into()),
            "access log",
        )
        .err()
        .unwrap();
        assert!(
            format!("{err:#}").contains("cannot open access log /nonexistent-folder/x.log"),
            "{err:#}"
        );
    }
}
