//! Sockets and threads: binding the listener, one readiness loop per CPU that owns the
//! connections it accepts, and the worker pool the loops share for blocking work.

mod cache;
mod conn;
mod event_loop;
mod pool;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use mio::net::TcpListener;
use mio::{Poll, Waker};
use socket2::{Domain, Socket, Type};

use crate::cli::LogFormat;
use crate::config;
use crate::handlers::App;
use crate::http::Limits;
use crate::log::AccessLog;
use event_loop::{EventLoop, WAKER};
use pool::Pool;

/// Pending connections the kernel queues per listener before refusing more.
const BACKLOG: i32 = 1024;

/// How long a client may take at each stage before its connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request to the end of its head (408 after).
    pub header: Duration,
    /// To receive a whole request body (408 after).
    pub body: Duration,
    /// A keep-alive connection waiting for its next request.
    pub idle: Duration,
    /// Without any progress while sending a response.
    pub send: Duration,
    /// Reading and dropping input after the response before a closing connection is released.
    pub linger: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            send: Duration::from_secs(60),
            linger: Duration::from_secs(2),
        }
    }
}

/// A bound, not yet running server.
pub struct Server {
    /// One handle on the listening socket per event loop; whichever loop wakes first accepts.
    /// (The port stays exclusive: no SO_REUSEPORT, so a second server on it fails to start.)
    listeners: Vec<TcpListener>,
    addr: SocketAddr,
    app: Arc<App>,
    threads: usize,
    limits: Limits,
    timeouts: Timeouts,
    access_log: LogFormat,
}

impl Server {
    /// Binds the listening sockets; every failure names the address and the reason.
    pub fn bind(settings: &config::Server, app: App, access_log: LogFormat) -> Result<Server> {
        let host = settings.host.trim_start_matches('[').trim_end_matches(']');
        let shown = format!("{}:{}", settings.host, settings.port);
        let fail =
            |e: std::io::Error| anyhow!("cannot listen on {shown}: {}", crate::io_reason(&e));
        let addr = (host, settings.port)
            .to_socket_addrs()
            .map_err(|e| {
                anyhow!(
                    "cannot listen on {shown}: cannot resolve host: {}",
                    crate::io_reason(&e)
                )
            })?
            .next()
            .ok_or_else(|| anyhow!("cannot listen on {shown}: host has no address"))?;
        let socket = listen(addr).map_err(fail)?;
        let addr = socket
            .local_addr()
            .context("cannot read the listening address")?;
        let loops = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut listeners = Vec::with_capacity(loops);
        for _ in 1..loops {
            let handle = socket
                .try_clone()
                .context("cannot share the listening socket")?;
            listeners.push(TcpListener::from_std(handle));
        }
        listeners.push(TcpListener::from_std(socket));
        Ok(Server {
            listeners,
            addr,
            app: Arc::new(app),
            threads: settings.threads,
            limits: settings.limits,
            timeouts: Timeouts::default(),
            access_log,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process ends: one event loop per listener, each on its own thread.
    pub fn run(self) -> Result<()> {
        let workers = pool::workers(self.threads)?;
        let mut handles = Vec::new();
        for (i, listener) in self.listeners.into_iter().enumerate() {
            let poll = Poll::new().context("cannot create an event loop")?;
            let waker =
                Waker::new(poll.registry(), WAKER).context("cannot create an event loop")?;
            let pool = Pool::new(Arc::clone(&workers), Arc::clone(&self.app), waker);
            let event_loop = EventLoop::new(
                poll,
                listener,
                pool,
                Arc::clone(&self.app),
                self.limits,
                self.timeouts,
                AccessLog::new(self.access_log),
            );
            let handle = std::thread::Builder::new()
                .name(format!("tws-loop-{i}"))
                .spawn(move || event_loop.run())
                .context("cannot start an event loop")?;
            handles.push(handle);
        }
        for handle in handles {
            match handle.join() {
                Ok(result) => result.context("event loop failed")?,
                Err(_) => return Err(anyhow!("an event loop panicked")),
            }
        }
        Ok(())
    }
}

/// A non-blocking listening socket with SO_REUSEADDR and a deep accept queue.
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
