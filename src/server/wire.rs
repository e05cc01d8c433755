//! The seam between a connection and the network: where its bytes go to and come from,
//! plain or through TLS. Above it, the connection's state machine and the response writer
//! see only plaintext and never ask which. A plain wire reads and writes the socket (files go
//! out with sendfile); a TLS wire feeds rustls's sans-IO `ServerConnection` with what the
//! socket delivers and writes out the records it produces, so the handshake runs in the
//! event loop without blocking; files are read and encrypted in record-sized chunks.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use mio::net::TcpStream;
use rustls::ServerConnection;

/// Most pieces gathered into one send.
pub const MAX_PIECES: usize = 8;
/// A file chunk read for encryption: one TLS record's worth.
const FILE_CHUNK: usize = 16 * 1024;

/// A connection's TLS state: rustls's connection, and whether the first bytes were looked at.
pub struct Tls {
    pub conn: ServerConnection,
    /// The first bytes were checked for a plain HTTP request.
    sniffed: bool,
}

impl Tls {
    pub fn new(conn: ServerConnection) -> Tls {
        Tls {
            conn,
            sniffed: false,
        }
    }
}

/// The socket as rustls reads it, noting whether a read returned less than asked for.
struct Noting<'a> {
    sock: &'a TcpStream,
    short: bool,
}

impl Read for Noting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.sock).read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// A connection's wire, borrowed for one operation.
pub struct Wire<'a> {
    pub sock: &'a TcpStream,
    pub tls: Option<&'a mut Tls>,
    /// The send buffer was sized for the path (plain wires, before the first file).
    pub sized: &'a mut bool,
}

/// What a read delivered.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// `n` plaintext bytes (at least one).
    Bytes(usize),
    WouldBlock,
    /// The peer closed (after a close_notify, or without one).
    Eof,
    /// The first bytes on a TLS port were a plain HTTP request.
    NotTls,
}

impl Wire<'_> {
    /// Reads plaintext into `buf`. A TLS wire first reads records from the socket (all it can,
    /// since epoll reports only new arrivals), processes them, and writes out what the
    /// handshake answers; `readable` is cleared once the socket is drained, which a short
    /// read of the socket shows when `short_drains` (not after a hang-up, when epoll reports
    /// nothing more and only reading on shows the end).
    pub fn read(
        &mut self,
        buf: &mut [u8],
        readable: &mut bool,
        short_drains: bool,
    ) -> io::Result<Delivered> {
        let sock = self.sock;
        let Some(tls) = self.tls.as_deref_mut() else {
            return match (&*sock).read(buf) {
                Ok(0) => Ok(Delivered::Eof),
                Ok(n) => Ok(Delivered::Bytes(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *readable = false;
                    Ok(Delivered::WouldBlock)
                }
                Err(e) => Err(e),
            };
        };
        loop {
            match tls.conn.reader().read(buf) {
                Ok(0) => return Ok(Delivered::Eof),
                Ok(n) => return Ok(Delivered::Bytes(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The TCP stream ended without a close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Delivered::Eof),
                Err(e) => return Err(e),
            }
            if !*readable {
                return Ok(Delivered::WouldBlock);
            }
            if !tls.sniffed {
                match first_bytes(sock) {
                    FirstBytes::Tls => tls.sniffed = true,
                    FirstBytes::PlainHttp => return Ok(Delivered::NotTls),
                    // Garbage, or an alert before any handshake: close without a word.
                    FirstBytes::Other => return Err(io::ErrorKind::InvalidData.into()),
                    FirstBytes::Closed => return Ok(Delivered::Eof),
                    // Too little to tell yet: wait for more.
                    FirstBytes::Unknown => {
                        *readable = false;
                        return Ok(Delivered::WouldBlock);
                    }
                }
            }
            let mut source = Noting { sock, short: false };
            match tls.conn.read_tls(&mut source) {
                // The end of the stream: rustls notes it, and the reader says how it ended.
                Ok(0) => *readable = false,
                // Less than asked for: the socket is drained, and reading it again would only
                // say so (one system call per batch of requests saved).
                Ok(_) if source.short && short_drains => *readable = false,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => *readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = tls.conn.process_new_packets() {
                // Send the alert rustls queued, then give up on the connection.
                let _ = flush_tls(sock, &mut tls.conn);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            flush_tls(sock, &mut tls.conn)?;
            // A TLS-ALPN-01 validation ends with its handshake (RFC 8737 §3).
            if !tls.conn.is_handshaking()
                && tls.conn.alpn_protocol() == Some(crate::tls::ACME_TLS_ALPN)
            {
                tls.conn.send_close_notify();
                let _ = flush_tls(sock, &mut tls.conn);
                return Ok(Delivered::Eof);
            }
        }
    }

    /// Sends pieces of plaintext; returns how many bytes of them were taken (a TLS wire may
    /// hold some encrypted and unsent: `flush` pushes them out).
    pub fn send(&mut self, pieces: &[&[u8]], more: bool) -> io::Result<usize> {
        let sock = self.sock;
        let Some(tls) = self.tls.as_deref_mut() else {
            return send_gathered(sock, pieces, more);
        };
        if !flush_tls(sock, &mut tls.conn)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        let taken = tls.conn.writer().write_vectored(&slices)?;
        flush_tls(sock, &mut tls.conn)?;
        if taken == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// Sends up to `count` bytes of `file` from `offset`, of `left` still to send (when that is
    /// a large file, the socket's send buffer is first sized for the path, see `tcp`): sendfile
    /// on a plain wire; on TLS, read and encrypted a record at a time.
    pub fn send_file(
        &mut self,
        file: &File,
        offset: u64,
        count: u64,
        left: u64,
    ) -> io::Result<usize> {
        let sock = self.sock;
        if !*self.sized && left >= super::tcp::SIZED_FROM {
            *self.sized = true;
            super::tcp::size_send_buffer(sock);
        }
        let Some(tls) = self.tls.as_deref_mut() else {
            return sendfile(sock, file, offset, count);
        };
        // Records are encrypted until rustls's buffer is full, then written out together:
        // fewer, larger segments than a write per record.
        let mut sent = 0usize;
        let mut chunk = [0u8; FILE_CHUNK];
        let mut blocked = false;
        while (sent as u64) < count {
            let want = (count - sent as u64).min(FILE_CHUNK as u64) as usize;
            let n = file.read_at(&mut chunk[..want], offset + sent as u64)?;
            if n == 0 {
                break;
            }
            let taken = tls.conn.writer().write(&chunk[..n])?;
            sent += taken;
            if taken < n && !flush_tls(sock, &mut tls.conn)? {
                blocked = true;
                break;
            }
        }
        if !blocked {
            blocked = !flush_tls(sock, &mut tls.conn)?;
        }
        // Nothing taken because the socket was full is a wait, never the end of the file,
        // even if the socket drained meanwhile (the reader runs on another CPU): Ok(0) would
        // tell the caller the file shrank, and cut the response short.
        if sent == 0 && (blocked || tls.conn.wants_write()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(sent)
    }

    /// Writes out what the wire holds (TLS records); true when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        match self.tls.as_deref_mut() {
            None => Ok(true),
            Some(tls) => flush_tls(self.sock, &mut tls.conn),
        }
    }

    /// True when the wire holds bytes not yet written.
    pub fn pending(&self) -> bool {
        self.tls
            .as_deref()
            .is_some_and(|tls| tls.conn.wants_write())
    }

    /// Ends the sending side: a TLS wire says close_notify first.
    pub fn shutdown_write(&mut self) {
        self.close();
        let _ = self.sock.shutdown(Shutdown::Write);
    }

    /// Before the connection is dropped: a TLS wire whose handshake completed says
    /// close_notify (best effort).
    pub fn close(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut()
            && !tls.conn.is_handshaking()
        {
            tls.conn.send_close_notify();
            let _ = flush_tls(self.sock, &mut tls.conn);
        }
    }
}

/// Writes rustls's pending records; true when none are left.
fn flush_tls(sock: &TcpStream, tls: &mut ServerConnection) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(&mut &*sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// What the first bytes on a TLS port are.
enum FirstBytes {
    /// A TLS handshake record (content type 22).
    Tls,
    /// A plain HTTP request line.
    PlainHttp,
    Other,
    /// The peer closed before sending anything.
    Closed,
    /// Nothing, or too little to tell, has arrived yet.
    Unknown,
}

/// Looks at the first bytes waiting on the socket, without taking them.
fn first_bytes(sock: &TcpStream) -> FirstBytes {
    let mut head = [0u8; 8];
    // SAFETY: recv writes at most `head.len()` bytes into `head`.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            head.as_mut_ptr().cast(),
            head.len(),
            libc::MSG_PEEK,
        )
    };
    if n == 0 {
        return FirstBytes::Closed;
    }
    if n < 0 {
        return FirstBytes::Unknown;
    }
    let head = &head[..n as usize];
    if head[0] == 0x16 {
        return FirstBytes::Tls;
    }
    // A method token in capitals followed by a space: "GET ", "POST ", "PRI "...
    let word = head.iter().take_while(|b| b.is_ascii_uppercase()).count();
    match head.get(word) {
        Some(b' ') if (1..=7).contains(&word) => FirstBytes::PlainHttp,
        // Still within what could be a method: wait for more.
        None if word == head.len() && word < 8 => FirstBytes::Unknown,
        _ => FirstBytes::Other,
    }
}

/// One `sendmsg` of several pieces; `more` sets MSG_MORE. Never raises SIGPIPE.
fn send_gathered(sock: &TcpStream, pieces: &[&[u8]], more: bool) -> io::Result<usize> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; MAX_PIECES];
    for (slot, piece) in iov.iter_mut().zip(pieces) {
        slot.iov_base = piece.as_ptr() as *mut libc::c_void;
        slot.iov_len = piece.len();
    }
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = pieces.len().min(MAX_PIECES) as _;
    let flags = if more { libc::MSG_MORE } else { 0 } | libc::MSG_NOSIGNAL;
    // SAFETY: every iovec points into a buffer borrowed for the duration of the call, which
    // the kernel only reads.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Copies up to `count` bytes from `file` at `offset` to the socket in the kernel.
fn sendfile(sock: &TcpStream, file: &File, offset: u64, count: u64) -> io::Result<usize> {
    let mut off = offset as libc::off_t;
    // SAFETY: both descriptors are open for the duration of the call and `off` is a valid,
    // exclusively borrowed off_t that the kernel updates.
    let n = unsafe { libc::sendfile(sock.as_raw_fd(), file.as_raw_fd(), &mut off, count as usize) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
