//! Accepting connections: each loop's listening sockets (the site's, plain or TLS, and an
//! optional plain listener that redirects to HTTPS), the connection cap, and a new
//! connection's first read.

use std::io::{self, Write};
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use super::conn::{Conn, Role};
use super::event_loop::EventLoop;
use super::wire::Tls;
use crate::http::response::{ErrorFormat, HeadContext, Response, write_head};
use crate::http::{HttpError, Version};

/// Most connections accepted per listener per turn of the loop.
const ACCEPTS_PER_TURN: usize = 128;
/// Tokens of listening sockets count down from here.
const FIRST_LISTENER: usize = usize::MAX - 16;
/// Most listening sockets per loop.
const MAX_LISTENERS: usize = 8;

/// A listening socket and what its connections get.
pub struct Listening {
    pub listener: TcpListener,
    /// Connections speak TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub role: Role,
}

pub fn listener_token(index: usize) -> Token {
    Token(FIRST_LISTENER - index)
}

/// The index of the listening socket a token names, if it names one.
pub fn listener_index(token: Token) -> Option<usize> {
    let index = FIRST_LISTENER.checked_sub(token.0)?;
    (token.0 <= FIRST_LISTENER && index < MAX_LISTENERS).then_some(index)
}

impl EventLoop {
    /// Accepts from every listening socket, a bounded number each.
    pub(super) fn accept_all(&mut self) {
        self.accept_paused = false;
        self.accept_more = false;
        for index in 0..self.listeners.len() {
            self.accept(index);
        }
    }

    fn accept(&mut self, index: usize) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listening) = self.listeners.get(index) else {
                return;
            };
            let (tls, role) = (listening.tls.clone(), listening.role);
            match listening.listener.accept() {
                Ok((sock, peer)) => self.admit(sock, peer, tls, role),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    // Out of descriptors or memory: try again shortly rather than spin.
                    crate::report!("tws: warning: cannot accept a connection: {e}");
                    self.accept_paused = true;
                    return;
                }
            }
        }
        // A flood of new connections must not starve the open ones: accept the rest next turn.
        self.accept_more = true;
    }

    fn admit(
        &mut self,
        sock: TcpStream,
        peer: std::net::SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        role: Role,
    ) {
        if !self.control.admit() {
            if tls.is_none() {
                self.refuse(sock, peer);
            }
            return;
        }
        let tls = match tls.map(rustls::ServerConnection::new) {
            None => None,
            Some(Ok(conn)) => Some(Box::new(Tls::new(conn))),
            Some(Err(e)) => {
                crate::report!("tws: error: cannot start a TLS connection: {e}");
                self.control.release();
                return;
            }
        };
        let _ = sock.set_nodelay(true);
        // A new connection has the header timeout to send its first request (and, on TLS,
        // to finish its handshake).
        let deadline = self.now + self.timeouts.header;
        let id = self.next_id;
        self.next_id += 1;
        let key = self
            .conns
            .insert(Conn::new(id, sock, peer, tls, role, deadline, self.now));
        // The request (or ClientHello) usually arrives with the handshake: answer it before
        // registering with epoll, so that a connection answered and closed at once costs no
        // registration, and the client's later packets to it wake nobody. Registering a ready
        // socket reports it at once, so nothing that arrived meanwhile is missed.
        self.drive(key);
        if let Some(conn) = self.conns.get_mut(key)
            && conn.id == id
        {
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut conn.sock, Token(key), interest)
                .is_err()
            {
                self.close(key);
            }
        }
    }

    /// Past the connection cap: a best-effort 503 and an immediate close, costing no state.
    fn refuse(&mut self, mut sock: TcpStream, peer: std::net::SocketAddr) {
        let err = HttpError::ServiceUnavailable("too many connections; try again shortly");
        let response = Response::error(err, ErrorFormat::Text);
        let ctx = HeadContext {
            date: self.date.now(),
            keep_alive: false,
            request_version: Version::Http11,
        };
        let mut bytes = Vec::with_capacity(256);
        write_head(&mut bytes, &response, &ctx);
        let len = response.body.len();
        if let crate::http::Body::Bytes(body) = response.body {
            bytes.extend_from_slice(&body);
        }
        let _ = sock.write(&bytes);
        self.log.record(peer, None, 503, len, None);
        self.count().refused();
    }
}
