//! What a loop accepts from: its listening sockets (the site's, plain or TLS, and an optional
//! plain listener that redirects to HTTPS) and their tokens, and the answer a connection past
//! the cap gets.

use std::io::Write;
use std::sync::Arc;

use mio::Token;
use mio::net::{TcpListener, TcpStream};

use super::transport::Role;
use super::wire::Tls;
use crate::http::response::{ErrorFormat, HeadContext, Response, write_head};
use crate::http::{HttpError, Version};

/// Most connections accepted per listener per turn of the loop.
pub const ACCEPTS_PER_TURN: usize = 128;
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

/// The TLS state of a connection accepted on a TLS listener; `Err` when rustls cannot start
/// one.
pub fn tls_session(config: &Arc<rustls::ServerConfig>) -> Result<Box<Tls>, rustls::Error> {
    rustls::ServerConnection::new(Arc::clone(config)).map(|conn| Box::new(Tls::new(conn)))
}

/// Past the connection cap: a best-effort 503 and an immediate close, costing no state.
/// Returns the body length sent, for the log.
pub fn refuse(mut sock: TcpStream, date: &str) -> u64 {
    let err = HttpError::ServiceUnavailable("too many connections; try again shortly");
    let response = Response::error(err, ErrorFormat::Text);
    let ctx = HeadContext {
        date,
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
    len
}
