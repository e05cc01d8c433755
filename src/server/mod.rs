//! Sockets and threads: binding the listener, the readiness loop that owns every connection,
//! and the worker pool that runs routed requests.

mod conn;
mod event_loop;
mod pool;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use mio::net::TcpListener;
use mio::{Poll, Waker};

use crate::cli::LogFormat;
use crate::config;
use crate::handlers::App;
use crate::http::Limits;
use crate::log::AccessLog;
use event_loop::{EventLoop, WAKER};
use pool::Pool;

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
    listener: TcpListener,
    addr: SocketAddr,
    app: Arc<App>,
    threads: usize,
    limits: Limits,
    timeouts: Timeouts,
    access_log: LogFormat,
}

impl Server {
    /// Binds the listening socket; every failure names the address and the reason.
    pub fn bind(settings: &config::Server, app: App, access_log: LogFormat) -> Result<Server> {
        let host = settings.host.trim_start_matches('[').trim_end_matches(']');
        let shown = format!("{}:{}", settings.host, settings.port);
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
        let listener = TcpListener::bind(addr)
            .map_err(|e| anyhow!("cannot listen on {shown}: {}", crate::io_reason(&e)))?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        Ok(Server {
            listener,
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

    /// Serves until the process ends.
    pub fn run(self) -> Result<()> {
        let poll = Poll::new().context("cannot create the event loop")?;
        let waker = Waker::new(poll.registry(), WAKER).context("cannot create the event loop")?;
        let pool = Pool::new(self.threads, Arc::clone(&self.app), waker)?;
        let event_loop = EventLoop::new(
            poll,
            self.listener,
            pool,
            self.app,
            self.limits,
            self.timeouts,
            AccessLog::new(self.access_log),
        );
        event_loop.run().context("event loop failed")
    }
}
