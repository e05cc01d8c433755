//! An upload's body on its way to disk, for either protocol: the bytes that arrive wait in
//! the request's body buffer while the sink is away (its login being checked, or a write
//! of what came before running on a worker), go to a worker in one write when the sink is
//! free, and, once the body is whole, are put in place and answered there. The loop never
//! touches the disk; reading pauses while `UPLOAD_BUFFER` bytes wait. An upload holds two
//! buffers, allocated once: one filling on the loop, one being written on a worker.

use std::sync::Arc;

use super::context::Ctx;
use super::ticket::{Exchange, Origin, Ticket};
use crate::handlers::upload::BodySink;
use crate::handlers::{Reply, Routed};
use crate::http::{HttpError, Request, Response};

/// Most body bytes of an upload that wait while its sink is away; past it reading pauses.
pub const UPLOAD_BUFFER: usize = 256 * 1024;
/// Most bytes of an upload's body read from the socket at once.
pub const UPLOAD_READ: usize = 128 * 1024;
/// Fewest bytes worth a write on a worker: fewer wait for more (unless the body ended).
const UPLOAD_BATCH: usize = 128 * 1024;
/// What a buffer of an upload holds at most: a read may land on one just short of full.
const UPLOAD_HOLD: usize = UPLOAD_BUFFER + UPLOAD_READ;

/// An upload being received.
pub struct Upload {
    /// Where its body goes; `None` while it is on a worker writing what came before.
    sink: Option<Box<dyn BodySink>>,
    /// Its login is being checked: nothing is written yet.
    verifying: bool,
    /// The buffer that came back empty from the last write, to fill next.
    spare: Vec<u8>,
}

/// What comes back to an upload waiting on the loop.
pub enum Back {
    /// Its login passed.
    Verified,
    /// Its sink after a write, with the buffer written (emptied, to be filled again).
    Written(Box<dyn BodySink>, Vec<u8>),
}

impl Upload {
    /// True when what arrived can go to the sink now.
    pub fn free(&self) -> bool {
        !self.verifying && self.sink.is_some()
    }

    /// True when `waiting` bytes are as many as may wait: reading pauses.
    pub fn full(&self, waiting: usize) -> bool {
        !self.free() && waiting >= UPLOAD_BUFFER
    }

    /// Takes back what came back.
    pub fn back(&mut self, back: Back) {
        match back {
            Back::Verified => self.verifying = false,
            Back::Written(sink, spare) => {
                self.sink = Some(sink);
                self.spare = spare;
            }
        }
    }

    /// Sends what waits in `body` to the sink on a worker, when the sink is free and enough
    /// waits; `body` goes on filling the spare buffer. The sink and the written buffer come
    /// back as a `Done::Written` for `origin` (with a refusal if the write failed).
    pub fn write(&mut self, cx: &Ctx, origin: Origin, body: &mut Vec<u8>) {
        if body.len() < UPLOAD_BATCH || !self.free() {
            return;
        }
        let mut sink = self.sink.take().expect("a free upload has its sink");
        // Sized once (a small upload never gets here), so that filling it never moves what it
        // holds; the first buffer is sized when it comes back.
        let mut spare = std::mem::take(&mut self.spare);
        if spare.capacity() < UPLOAD_HOLD {
            spare.reserve_exact(UPLOAD_HOLD);
        }
        let mut bytes = std::mem::replace(body, spare);
        cx.pool.write(origin, move || {
            let refusal = sink.write(&bytes).err();
            bytes.clear();
            (sink, bytes, refusal)
        });
    }

    /// The body arrived whole (`rest`: what still waits; call when `free`): written, put in
    /// place and answered on a worker, like any request.
    pub fn finish(self, cx: &mut Ctx, mut ex: Exchange, req: Request, rest: Vec<u8>) {
        let mut sink = self.sink.expect("a free upload has its sink");
        ex.req = Some(Arc::new(req));
        let ticket = Ticket {
            ex,
            cache_key: None,
        };
        cx.pool
            .spawn(ticket, move |reply: Reply| match sink.write(&rest) {
                Err(refusal) => reply.send(*refusal),
                Ok(()) => reply.send(sink.finish()),
            });
    }
}

/// Where a routed request's body goes: `Some` for an upload (to disk as it arrives), `None`
/// for memory; a refusal answers before any of it is read. An upload whose login needs
/// checking starts that check now; its verdict comes back as a `Done::Verified`.
pub fn start(
    cx: &mut Ctx,
    ex: &Exchange,
    req: &Request,
    routed: &mut Routed,
) -> Result<Option<Upload>, Box<Response>> {
    let Some(sink) = cx.app.body_sink(req, routed)? else {
        return Ok(None);
    };
    let verifying = routed.needs_verification();
    if verifying {
        let mut login = cx.app.take_login(routed);
        let app = Arc::clone(&cx.app);
        let busy = cx.app.error_response(
            routed,
            HttpError::ServiceUnavailable("too many logins are being checked; retry shortly"),
        );
        cx.pool
            .verify(ex.origin, busy.header("Retry-After", "1"), move || {
                app.check_login(&mut login)
            });
    }
    Ok(Some(Upload {
        sink: Some(sink),
        verifying,
        spare: Vec::new(),
    }))
}
