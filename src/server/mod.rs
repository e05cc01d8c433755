//! Sockets and threads: binding the listener, one readiness loop per CPU that owns the
//! connections it accepts, the worker pool the loops share for blocking work, and the signals
//! that stop it all gracefully. A request's path through it: `transport` (socket, TLS,
//! buffers) → `h1` or `h2` (bytes or frames to the request model) → `exchange` (route,
//! caches, workers, site rules, log, metrics) → the protocol again → `transport`.

mod accept;
mod budget;
mod cache;
mod conn;
mod context;
mod control;
mod event_loop;
mod exchange;
mod h1;
pub mod h2;
mod output;
mod pool;
mod proto;
mod tcp;
mod ticket;
mod transport;
mod upload;
mod wire;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, anyhow};
use mio::net::TcpListener;
use mio::{Poll, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use socket2::{Domain, Socket, Type};

use crate::cli::LogFormat;
use crate::config;
use crate::log::AccessLog;
use crate::log::sink::Sink;
use crate::reload::{Live, Reloader};
use accept::Listening;
use control::Control;
use event_loop::{EventLoop, WAKER};
use pool::Pool;
use transport::Role;

/// Pending connections the kernel queues per listener before refusing more.
const BACKLOG: i32 = 1024;
/// Descriptors kept free for the process itself: stdio, the poll instances, the store, files
/// workers open while answering.
const RESERVED_FDS: usize = 128;

/// A bound, not yet running server.
pub struct Server {
    /// Per event loop, one handle on each listening socket; whichever loop wakes first
    /// accepts. (Ports stay exclusive: no SO_REUSEPORT, so a second server fails to start.)
    listeners: Vec<Vec<Listening>>,
    addr: SocketAddr,
    /// The plain listener that redirects to HTTPS, if any.
    redirect_addr: Option<SocketAddr>,
    /// True when the listener came from systemd (socket activation).
    activated: bool,
    live: Arc<Live>,
    settings: config::Server,
    control: Arc<Control>,
    /// Connections the open file limit allows.
    capacity: usize,
    /// The open file limit, raised to its hard limit.
    fd_limit: usize,
    log_format: LogFormat,
    /// Where access-log lines go; `None` when the log is off.
    access_sink: Option<Sink>,
    signals: Signals,
}

impl Server {
    /// Binds the listening socket (or takes the one systemd passed, see `activated_listener`)
    /// and takes over SIGTERM, SIGINT, SIGHUP and SIGUSR1; every failure names the address and
    /// the reason. Access-log lines go to `access_sink` in `log_format`.
    pub fn bind(
        live: Arc<Live>,
        log_format: LogFormat,
        access_sink: Option<Sink>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Server> {
        let settings = live.snapshot().server.clone();
        let (socket, activated) = match activated_listener()? {
            Some(socket) => (socket, true),
            None => (bind_configured(&settings.host, settings.port)?, false),
        };
        let addr = socket
            .local_addr()
            .context("cannot read the listening address")?;
        let redirect = match settings.redirect_http {
            Some(port) => Some(bind_configured(&settings.host, port)?),
            None => None,
        };
        let redirect_addr = match &redirect {
            Some(socket) => Some(
                socket
                    .local_addr()
                    .context("cannot read the listening address")?,
            ),
            None => None,
        };
        let loops = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut listeners = Vec::with_capacity(loops);
        for _ in 0..loops {
            let share = |socket: &std::net::TcpListener| {
                socket
                    .try_clone()
                    .map(TcpListener::from_std)
                    .context("cannot share the listening socket")
            };
            let mut mine = vec![Listening {
                listener: share(&socket)?,
                tls: tls.clone(),
                role: Role::Site,
            }];
            if let Some(redirect) = &redirect {
                mine.push(Listening {
                    listener: share(redirect)?,
                    tls: None,
                    role: Role::RedirectToHttps(addr.port()),
                });
            }
            listeners.push(mine);
        }
        let fd_limit = raise_fd_limit();
        let capacity = fd_limit
            .saturating_sub(RESERVED_FDS + loops * cache::MAX_OPEN_FILES)
            .max(1);
        let max_connections = match settings.max_connections {
            Some(max) if max > capacity => {
                eprintln!(
                    "tws: warning: max_connections = {max} is more than the open file limit ({fd_limit}) allows; using {capacity}"
                );
                capacity
            }
            Some(max) => max,
            None => capacity,
        };
        let signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
            .context("cannot handle SIGTERM, SIGINT, SIGHUP and SIGUSR1")?;
        Ok(Server {
            listeners,
            addr,
            redirect_addr,
            activated,
            live,
            settings,
            control: Arc::new(Control {
                max_connections: AtomicUsize::new(max_connections),
                signalled: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                body_held: AtomicUsize::new(0),
            }),
            capacity,
            fd_limit,
            log_format,
            access_sink,
            signals,
        })
    }

    /// True when systemd handed over the listening socket.
    pub fn activated(&self) -> bool {
        self.activated
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the plain listener that redirects to HTTPS.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect_addr
    }

    /// Most connections served at once: the configured cap, or what the descriptor limit allows.
    pub fn max_connections(&self) -> usize {
        self.control.max_connections.load(Ordering::Relaxed)
    }

    /// The open file limit in force (the soft limit is raised to the hard one at startup).
    pub fn fd_limit(&self) -> usize {
        self.fd_limit
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting, lets requests in flight finish
    /// (within the grace period) and returns. A second signal exits at once. SIGHUP, and with
    /// `watch` a change of the routes file, reload it through `reloader`.
    pub fn run(self, reloader: Option<Reloader>, watch: bool) -> Result<()> {
        let workers = pool::workers(self.settings.threads)?;
        let logins = pool::logins()?;
        let mut handles = Vec::new();
        let mut wakers = Vec::new();
        for (i, listener) in self.listeners.into_iter().enumerate() {
            let poll = Poll::new().context("cannot create an event loop")?;
            let waker =
                Waker::new(poll.registry(), WAKER).context("cannot create an event loop")?;
            let waker = Arc::new(waker);
            wakers.push(Arc::clone(&waker));
            let event_loop = EventLoop::new(
                poll,
                listener,
                Pool::new(Arc::clone(&workers), Arc::clone(&logins), waker),
                Arc::clone(&self.live),
                Arc::clone(&self.control),
                AccessLog::new(self.log_format, self.access_sink.clone()),
            );
            let handle = std::thread::Builder::new()
                .name(format!("tws-loop-{i}"))
                .spawn(move || event_loop.run())
                .context("cannot start an event loop")?;
            handles.push(handle);
        }
        let hup = match reloader {
            Some(mut reloader) => {
                let control = Arc::clone(&self.control);
                let capacity = self.capacity;
                reloader.on_change(capacity, move |server| {
                    let max = server.max_connections.unwrap_or(capacity);
                    control.max_connections.store(max, Ordering::Relaxed);
                });
                let trigger = reloader.trigger();
                std::thread::Builder::new()
                    .name("tws-reload".to_owned())
                    .spawn(move || reloader.run(watch))
                    .context("cannot start the reload thread")?;
                Some(trigger)
            }
            None => None,
        };
        let control = Arc::clone(&self.control);
        let grace = self.settings.timeouts.shutdown_grace;
        let drain = self.settings.timeouts.drain;
        let mut signals = self.signals;
        let access_sink = self.access_sink.clone();
        std::thread::Builder::new()
            .name("tws-signals".to_owned())
            .spawn(move || {
                for signal in signals.forever() {
                    if signal == SIGHUP {
                        match &hup {
                            Some(trigger) => {
                                let _ = trigger.send(());
                            }
                            None => crate::report!(
                                "tws: SIGHUP: nothing to reload (no routes file, no certificate files)"
                            ),
                        }
                        continue;
                    }
                    if signal == SIGUSR1 {
                        // logrotate renamed the file: write on in a new one.
                        if let Some(sink) = &access_sink {
                            sink.reopen();
                        }
                        continue;
                    }
                    if control.signalled.swap(true, Ordering::AcqRel) {
                        crate::report!("tws: second signal: exiting now");
                        crate::log::sink::flush_stderr(std::time::Duration::from_millis(200));
                        std::process::exit(130);
                    }
                    let stop = {
                        let (control, wakers) = (Arc::clone(&control), wakers.clone());
                        move || {
                            crate::report!(
                                "tws: stopping: no new connections; finishing requests in flight (up to {:.0}s; signal again to exit now)",
                                grace.as_secs_f64()
                            );
                            control.stopping.store(true, Ordering::Release);
                            for waker in &wakers {
                                let _ = waker.wake();
                            }
                        }
                    };
                    if drain.is_zero() {
                        stop();
                        continue;
                    }
                    // Serve on while /healthz says draining, so that a load balancer stops
                    // sending requests before the listener closes.
                    crate::actions::health::set_draining();
                    crate::report!(
                        "tws: draining: /healthz answers 503 for {:.1}s, then stopping",
                        drain.as_secs_f64()
                    );
                    let _ = std::thread::Builder::new()
                        .name("tws-drain".to_owned())
                        .spawn(move || {
                            std::thread::sleep(drain);
                            stop();
                        });
                }
            })
            .context("cannot start the signal thread")?;
        for handle in handles {
            match handle.join() {
                Ok(result) => result.context("event loop failed")?,
                Err(_) => return Err(anyhow!("an event loop panicked")),
            }
        }
        if let Some(sink) = &self.access_sink {
            sink.flush(std::time::Duration::from_secs(2));
        }
        crate::report!("tws: stopped");
        Ok(())
    }
}

/// Binds the configured host and a port.
fn bind_configured(host: &str, port: u16) -> Result<std::net::TcpListener> {
    let shown = format!("{host}:{port}");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            anyhow!(
                "cannot listen on {shown}: cannot resolve host: {}",
                crate::log::io_reason(&e)
            )
        })?
        .next()
        .ok_or_else(|| anyhow!("cannot listen on {shown}: host has no address"))?;
    listen(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another process listens there: stop it, or choose another port with --port)"
            }
            std::io::ErrorKind::PermissionDenied if port < 1024 => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE: use --port 8080, or run it as contrib/tws.service does)"
            }
            _ => "",
        };
        anyhow!(
            "cannot listen on {shown}: {}{hint}",
            crate::log::io_reason(&e)
        )
    })
}

/// The listening socket systemd passes with socket activation: `LISTEN_PID` names this process
/// and `LISTEN_FDS` counts descriptors from 3. The variables are removed once read.
fn activated_listener() -> Result<Option<std::net::TcpListener>> {
    use std::os::fd::FromRawFd;
    const FIRST_FD: i32 = 3;
    let pid = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok());
    if pid != Some(std::process::id()) || fds.unwrap_or(0) < 1 {
        return Ok(None);
    }
    // SAFETY: removing variables before any other thread is started (bind runs first).
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if fds > Some(1) {
        eprintln!("tws: warning: socket activation passed several sockets; using the first");
    }
    // SAFETY: systemd passes FIRST_FD open for this process, which now owns it.
    let socket = unsafe { Socket::from_raw_fd(FIRST_FD) };
    let usable = socket.r#type().is_ok_and(|t| t == Type::STREAM)
        && socket.local_addr().is_ok_and(|a| a.as_socket().is_some());
    if !usable {
        anyhow::bail!("socket activation: descriptor {FIRST_FD} is not a TCP socket");
    }
    socket
        .set_nonblocking(true)
        .context("socket activation: cannot make the socket non-blocking")?;
    Ok(Some(socket.into()))
}

/// A non-blocking listening socket with SO_REUSEADDR and a deep accept queue.
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    defer_accept(&socket);
    Ok(socket.into())
}

/// Seconds a connection may stay silent before the kernel hands it over anyway.
const DEFER_ACCEPT_SECONDS: libc::c_int = 1;

/// TCP_DEFER_ACCEPT: a connection is handed to `accept` when its first bytes arrive (or after
/// `DEFER_ACCEPT_SECONDS`), so accepting it and reading its request take one wake-up of the
/// loop, not two. Best effort: without it, connections are accepted on arrival.
fn defer_accept(socket: &Socket) {
    use std::os::fd::AsRawFd;
    let seconds = DEFER_ACCEPT_SECONDS;
    // SAFETY: setsockopt reads an int from a valid pointer, on a socket this function borrows.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Raises the soft limit on open files to the hard limit; returns the limit now in force.
fn raise_fd_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}
