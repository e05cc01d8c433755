//! Test harness: starts the real `tws` binary on 127.0.0.1:0, reads the URL it prints, collects
//! its log, and speaks raw HTTP/1.1 to it.
#![allow(dead_code)]

pub mod acme;
pub mod browser;
pub mod fakeca;
pub mod forward;
pub mod h2raw;
pub mod pebble;
pub mod pg;
mod scratch;
pub mod sse;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use scratch::scratch;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The repository root, where the bundled routes.toml and site/ live.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `routes` as DIR/routes.toml under a `[server]` table serving DIR/site: to a
/// temporary name, then renamed, as editors do, so a running server never reads half a file.
pub fn write_routes(dir: &Path, routes: &str) {
    let tmp = dir.join("routes.toml.tmp");
    std::fs::write(&tmp, format!("[server]\nroot = \"site\"\n\n{routes}")).unwrap();
    std::fs::rename(tmp, dir.join("routes.toml")).unwrap();
}

/// A scratch folder with an empty `site/` and `routes` as its routes.toml.
pub fn config_site(name: &str, routes: &str) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(dir.join("site")).unwrap();
    write_routes(&dir, routes);
    dir
}

/// tws on the routes.toml of `dir` (see `config_site`).
pub fn start_config(dir: &Path) -> Server {
    Server::start(&["--config", dir.join("routes.toml").to_str().unwrap()])
}

pub fn tws() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tws"))
}

/// A running server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// For a server speaking HTTPS: the client configuration that trusts it.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Lines written to stdout (the banner and the access log) and to stderr.
    pub log: Arc<Mutex<Vec<String>>>,
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts tws with `args` plus `--port 0` and waits for its URL line.
    pub fn start(args: &[&str]) -> Server {
        let mut command = tws();
        command.args(args).args(["--port", "0"]).current_dir(repo());
        Server::spawn(command)
    }

    /// Starts a prepared command and waits for the URL line on its stdout.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tws");
        let (tx, rx) = channel();
        let log = drain(child.stdout.take().unwrap(), Some(tx));
        let errors = drain(child.stderr.take().unwrap(), None);
        let addr = wait_for_url(&rx, &mut child, &errors);
        Server {
            child,
            addr,
            tls: None,
            log,
            errors,
        }
    }

    /// Waits (bounded) for a line on stderr containing `text`.
    pub fn wait_error(&self, text: &str) -> String {
        wait_line(&self.errors, text)
    }

    /// The bundled routes.toml with its own data folder.
    pub fn bundled(data: &Path) -> Server {
        Server::start(&["--config", "routes.toml", "--data", data.to_str().unwrap()])
    }

    /// Starts tws with `args` plus `--port 0` and the certificate, speaking HTTPS; the
    /// harness's client trusts that certificate alone.
    pub fn start_tls(args: &[&str], cert: &tls::TestCert) -> Server {
        let mut all = args.to_vec();
        all.extend(["--tls-cert", cert.cert.to_str().unwrap()]);
        all.extend(["--tls-key", cert.key.to_str().unwrap()]);
        let mut server = Server::start(&all);
        server.tls = Some(tls::client(
            &[&cert.der],
            rustls::DEFAULT_VERSIONS,
            &[b"http/1.1"],
        ));
        server
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// A connection speaking the server's protocol (TLS when it serves HTTPS).
    pub fn stream(&self) -> tls::Stream {
        let tcp = self.connect();
        match &self.tls {
            None => tls::Stream::Plain(tcp),
            Some(config) => tls::Stream::tls(tcp, Arc::clone(config)).expect("TLS handshake"),
        }
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect_timeout(&self.addr, WAIT).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        stream
    }

    /// Sends raw bytes on a new connection and reads every response until the server closes.
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        let mut stream = self.stream();
        stream.write_all(bytes).unwrap();
        read_to_close(&mut stream)
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Sends the server a signal (`libc::SIGTERM`, `SIGINT`, `SIGHUP`).
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill only sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "cannot signal tws");
    }

    /// Stops the server abruptly (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let lines = self
                .errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for line in lines.iter() {
                eprintln!("tws stderr: {line}");
            }
        }
    }
}

/// Waits (bounded) for a collected line containing `text`.
pub fn wait_line(lines: &Mutex<Vec<String>>, text: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let seen = lines.lock().unwrap().clone();
        if let Some(line) = seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        assert!(started.elapsed() < WAIT, "no line with {text:?}: {seen:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Collects a pipe's lines for the server's whole life, so writing never blocks it; the first
/// `http://HOST:PORT/` (or `https://`) seen goes to `url`.
pub fn drain(
    pipe: impl Read + Send + 'static,
    url: Option<Sender<String>>,
) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let scheme = ["https://", "http://"]
                .iter()
                .find_map(|s| line.find(s).map(|at| at + s.len()));
            if let (Some(tx), Some(at)) = (&url, scheme) {
                let rest = &line[at..];
                let _ = tx.send(rest[..rest.find('/').unwrap_or(rest.len())].to_owned());
            }
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

fn wait_for_url(
    rx: &Receiver<String>,
    child: &mut Child,
    errors: &Mutex<Vec<String>>,
) -> SocketAddr {
    match rx.recv_timeout(WAIT) {
        Ok(addr) => addr.parse().expect("a socket address in the URL line"),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            // What it said on stderr, once that is read to its end (bounded).
            let until = std::time::Instant::now() + Duration::from_secs(2);
            while errors.lock().unwrap().is_empty() && std::time::Instant::now() < until {
                std::thread::yield_now();
            }
            let said = errors.lock().unwrap().join("\n");
            panic!("tws did not print its URL within {WAIT:?}: {said}");
        }
    }
}

/// Reads until EOF (the server closed) or the read timeout fails the test.
pub fn read_to_close(stream: &mut impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => out,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => out,
        Err(e) => panic!("reading a response: {e} after {} bytes", out.len()),
    }
}

/// True while the connection is established in the kernel's view: a server's reset shows here
/// at once, even while unread data is still buffered for the reader.
pub fn established(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut info = [0u8; 8];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: TCP_INFO writes at most `len` bytes into `info` and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    rc == 0 && info[0] == 1 // TCP_ESTABLISHED
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits a byte stream into responses. `heads[i]` says whether the i-th answers a HEAD
/// (no body despite Content-Length); requests past the list are taken as not HEAD.
pub fn parse_replies(mut bytes: &[u8], heads: &[bool]) -> Vec<Reply> {
    let mut replies = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("incomplete head: {:?}", String::from_utf8_lossy(bytes)));
        let head = std::str::from_utf8(&bytes[..end]).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "status line {status_line:?}"
        );
        let status: u16 = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("name: value");
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        bytes = &bytes[end + 4..];
        let is_head = heads.get(replies.len()).copied().unwrap_or(false);
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
        let body_len = if is_head || status == 100 || status == 204 || status == 304 {
            0
        } else {
            len
        };
        assert!(
            bytes.len() >= body_len,
            "body shorter than Content-Length {len}"
        );
        let body = bytes[..body_len].to_vec();
        bytes = &bytes[body_len..];
        if status != 100 {
            replies.push(Reply {
                status,
                headers,
                body,
            });
        }
    }
    replies
}

/// Sends raw bytes on a new connection and reads one response (framed by Content-Length).
pub fn one(server: &Server, bytes: &[u8]) -> Reply {
    let mut stream = server.stream();
    stream.write_all(bytes).unwrap();
    read_one(&mut stream, bytes.starts_with(b"HEAD "))
}

/// Reads one response from a connection that may stay open.
pub fn read_one(stream: &mut impl Read, head: bool) -> Reply {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            other => panic!("connection ended inside a head ({other:?}): {buf:?}"),
        }
    }
    let head_text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head_text
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let status = &head_text[9..12];
    if !head && status != "204" && status != "304" {
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).unwrap();
        buf.extend_from_slice(&body);
    }
    parse_replies(&buf, &[head]).remove(0)
}

/// A GET with `Connection: close`.
pub fn get(server: &Server, path: &str) -> Reply {
    one(
        server,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// An HTTP client that reports every status instead of failing on 4xx/5xx.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(WAIT))
        .build()
        .into()
}

/// An argon2id hash of `password`, made by `tws hash-password`.
pub fn hash(password: &str) -> String {
    let mut child = tws()
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An `Authorization: Basic` header line for `user` and `password`.
pub fn basic(user: &str, password: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Authorization: Basic {out}\r\n")
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`: memory now, `VmHWM`: its peak).
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Incompressible bytes, the same for the same seed (xorshift), made a piece at a time.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fills `out` with the next bytes (a multiple of 8 long).
    pub fn fill(&mut self, out: &mut [u8]) {
        for word in out.chunks_exact_mut(8) {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
    }

    /// The first `len` bytes (a multiple of 8).
    pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        Pattern::new(seed).fill(&mut out);
        out
    }

    /// Writes the first `len` bytes (a multiple of 8) to a file, a MiB at a time.
    pub fn write_file(seed: u64, len: u64, path: &Path) {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut pattern = Pattern::new(seed);
        let mut piece = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(piece.len() as u64) as usize;
            pattern.fill(&mut piece[..n]);
            file.write_all(&piece[..n]).unwrap();
            left -= n as u64;
        }
        file.flush().unwrap();
    }
}

/// True when two files hold the same bytes (read a MiB at a time).
pub fn same_files(a: &Path, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ra, mut rb) = (BufReader::new(fa), BufReader::new(fb));
    let (mut pa, mut pb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = ra.read(&mut pa).unwrap();
        if n == 0 {
            return true;
        }
        rb.read_exact(&mut pb[..n]).unwrap();
        if pa[..n] != pb[..n] {
            return false;
        }
    }
}

/// True when `program` is installed; otherwise the test says it skips (or fails, when
/// `TWS_REQUIRE_TOOLS` is set, as in CI, where every tool is installed).
pub fn installed(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    if !found {
        assert!(
            std::env::var_os("TWS_REQUIRE_TOOLS").is_none(),
            "{program} is required (TWS_REQUIRE_TOOLS) but not installed"
        );
        eprintln!("skipped: {program} is not installed");
    }
    found
}
