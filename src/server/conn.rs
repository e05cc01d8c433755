//! One client connection: its transport (socket, TLS, buffers, progress) and the protocol it
//! speaks (`H1`, or `H2` once it opened with the HTTP/2 preface or negotiated `h2`). The event
//! loop calls only the methods here; each passes the connection's own state and the loop's
//! shared context to the protocol, which owns everything about its requests.

use std::time::Instant;

use super::context::Ctx;
use super::exchange::Exchange;
use super::h1::H1;
use super::h2::H2;
use super::proto::Step;
use super::transport::Transport;
use super::upload::Back;
use crate::http::Response;
use crate::http::response::Producer;
use crate::metrics::Timeout;

enum Proto {
    H1(H1),
    H2(Box<H2>),
}

pub struct Conn {
    pub t: Transport,
    proto: Proto,
}

/// Whether the connection goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Wait,
    Close,
}

impl Conn {
    /// A new connection, which has until `deadline` to send its first request.
    pub fn new(t: Transport, deadline: Instant, now: Instant) -> Conn {
        Conn {
            t,
            proto: Proto::H1(H1::new(deadline, now)),
        }
    }

    /// Runs the connection until it must wait for readiness, a worker or the next turn.
    pub fn drive(&mut self, cx: &mut Ctx) -> Next {
        loop {
            let step = match &mut self.proto {
                Proto::H1(h1) => h1.drive(&mut self.t, cx),
                Proto::H2(h2) => h2.drive(&mut self.t, cx),
            };
            match step {
                Step::Wait => return Next::Wait,
                Step::Close => return Next::Close,
                Step::Upgrade => self.proto = Proto::H2(Box::new(H2::start(&mut self.t, cx))),
            }
        }
    }

    /// An answer made elsewhere (a worker, the store's writer, or another request's worker)
    /// for one of this connection's requests.
    pub fn answered(&mut self, ex: &Exchange, response: Response, cx: &mut Ctx) -> Next {
        match &mut self.proto {
            Proto::H1(h1) => h1.answered(&mut self.t, cx, ex, response),
            Proto::H2(h2) => h2.answered(&mut self.t, cx, ex, response),
        }
        self.drive(cx)
    }

    /// What came back to an upload of `stream` (its login's verdict, its sink after a
    /// write); a refusal answers it.
    pub fn upload_back(
        &mut self,
        stream: u32,
        back: Result<Back, Box<Response>>,
        cx: &mut Ctx,
    ) -> Next {
        match &mut self.proto {
            Proto::H1(h1) => h1.upload_back(&mut self.t, cx, back),
            Proto::H2(h2) => h2.upload_back(&mut self.t, cx, stream, back),
        }
        self.drive(cx)
    }

    /// The next piece of a streamed body (`None`: it is complete) for `stream`; an error
    /// ends the connection, so that the client sees the body incomplete.
    pub fn piece(
        &mut self,
        stream: u32,
        producer: Box<dyn Producer>,
        piece: std::io::Result<Option<Vec<u8>>>,
        cx: &mut Ctx,
    ) -> Next {
        let Ok(piece) = piece else {
            return Next::Close;
        };
        match &mut self.proto {
            Proto::H1(h1) => h1.piece(&mut self.t, producer, piece),
            Proto::H2(h2) => h2.piece(stream, producer, piece),
        }
        self.drive(cx)
    }

    /// The live body of `stream` has more to send.
    pub fn live(&mut self, stream: u32, cx: &mut Ctx) -> Next {
        if let Proto::H2(h2) = &mut self.proto {
            h2.live(stream);
        }
        self.drive(cx)
    }

    /// The server is stopping: true when the connection can close at once (nothing in
    /// flight); HTTP/2 says GOAWAY at its next step.
    pub fn stop(&mut self, cx: &mut Ctx) -> bool {
        match &mut self.proto {
            Proto::H1(h1) => h1.idle(&self.t),
            Proto::H2(_) => {
                cx.ready.push_back(self.t.key);
                false
            }
        }
    }

    /// True when no request is in flight and nothing is buffered: its buffers may be given
    /// back.
    pub fn idle(&self) -> bool {
        match &self.proto {
            Proto::H1(h1) => h1.idle(&self.t),
            Proto::H2(h2) => h2.idle(),
        }
    }

    /// The timeout the connection ran into, if any (checked by the sweep).
    pub fn overdue(&mut self, cx: &Ctx) -> Option<Timeout> {
        match &mut self.proto {
            Proto::H1(h1) => h1.overdue(&mut self.t, cx),
            Proto::H2(h2) => h2.overdue(&mut self.t, cx),
        }
    }

    /// Deals with a timeout `overdue` reported.
    pub fn expire(&mut self, kind: Timeout, cx: &mut Ctx) -> Next {
        let step = match &mut self.proto {
            Proto::H1(h1) => h1.expire(&mut self.t, cx, kind),
            Proto::H2(h2) => h2.expire(&mut self.t, cx),
        };
        match step {
            Step::Close => Next::Close,
            _ => Next::Wait,
        }
    }
}
