//! Request bodies on an HTTP/2 connection: DATA frames under flow control (RFC 9113 §6.1,
//! §6.9), held in memory or written to an upload's sink as they arrive, window credit given
//! back while the body budget has room (never to an upload whose login is being checked),
//! and complete requests handed to the exchange.

use super::frame::{self, Code, Head};
use super::stream::{Incoming, Phase, Stream};
use super::{CONN_WINDOW, H2, STREAM_WINDOW, UPLOAD_WINDOW};
use crate::http::{HttpError, Response};
use crate::server::context::Ctx;
use crate::server::exchange::{self, Answer};
use crate::server::transport::Transport;
use crate::server::upload::Back;

/// Empty DATA frames in a row (without END_STREAM) past which the connection is closed.
const MAX_EMPTY_FRAMES: u32 = 100;

impl H2 {
    pub(super) fn data(
        &mut self,
        head: &Head,
        payload: &[u8],
        t: &mut Transport,
        cx: &mut Ctx,
    ) -> Result<(), Code> {
        if head.stream == 0 || head.stream > self.last_stream {
            return Err(Code::Protocol);
        }
        let (start, end) = frame::unpad(head, payload).ok_or(Code::Protocol)?;
        let len = payload.len() as i64;
        self.recv_window -= len;
        if self.recv_window < 0 {
            return Err(Code::FlowControl);
        }
        let data = &payload[start..end];
        if data.is_empty() && !head.has(frame::END_STREAM) {
            self.empty_frames += 1;
            if self.empty_frames > MAX_EMPTY_FRAMES {
                return Err(Code::EnhanceYourCalm);
            }
        } else {
            self.empty_frames = 0;
        }
        let limit = cx.settings.limits.max_body_bytes;
        let Some(stream) = self.streams.get_mut(&head.stream) else {
            // A stream we ended (answered early, or reset): its window is the connection's
            // to give back.
            return Ok(());
        };
        if stream.remote_closed {
            self.refuse(t, head.stream, Code::StreamClosed);
            return Ok(());
        }
        stream.recv_window -= len;
        if stream.recv_window < 0 {
            self.refuse(t, head.stream, Code::FlowControl);
            return Ok(());
        }
        let ended = head.has(frame::END_STREAM);
        stream.remote_closed = ended;
        let Phase::Receiving(incoming) = &mut stream.phase else {
            return Ok(());
        };
        let before = incoming.body.capacity();
        incoming.received += data.len() as u64;
        let total = incoming.received;
        // An upload's size is bounded by its route (its sink says), not by the body limit.
        let problem = if incoming.upload.is_none() && total > limit {
            Some(
                cx.app
                    .error_response(&incoming.routed, HttpError::PayloadTooLarge),
            )
        } else if incoming
            .declared
            .is_some_and(|n| total > n || (ended && total != n))
        {
            let e = HttpError::BadRequest("body length differs from Content-Length");
            Some(cx.app.error_response(&incoming.routed, e))
        } else {
            incoming.body.extend_from_slice(data);
            if let Some(upload) = &mut incoming.upload {
                upload.write(cx, incoming.ex.origin, &mut incoming.body);
            }
            None
        };
        self.held = self.held + incoming.body.capacity() - before;
        if let Some(response) = problem {
            let Phase::Receiving(incoming) = std::mem::replace(&mut stream.phase, Phase::Answering)
            else {
                unreachable!("matched above")
            };
            self.held -= incoming.body.capacity();
            self.respond(
                t,
                cx,
                head.stream,
                &incoming.ex,
                Some(&incoming.req),
                response,
            );
        } else if ended {
            let phase = std::mem::replace(&mut stream.phase, Phase::Answering);
            if let Phase::Receiving(incoming) = phase {
                stream.phase = Phase::Ready(incoming);
                self.ready.push(head.stream);
            }
        }
        Ok(())
    }

    /// Hands the requests that became complete to the exchange; true if there were any.
    pub(super) fn dispatch(&mut self, t: &mut Transport, cx: &mut Ctx) -> bool {
        if self.ready.is_empty() {
            return false;
        }
        for id in std::mem::take(&mut self.ready) {
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            if let Phase::Ready(incoming) = &stream.phase
                && incoming.upload.as_ref().is_some_and(|u| !u.free())
            {
                // Its login's verdict hands it on (`verified`).
                continue;
            }
            let Phase::Ready(incoming) = std::mem::replace(&mut stream.phase, Phase::Answering)
            else {
                continue;
            };
            self.held -= incoming.body.capacity();
            let Incoming {
                ex,
                req,
                routed,
                body,
                upload,
                ..
            } = *incoming;
            if let Some(upload) = upload {
                upload.finish(cx, ex, req, body);
                continue;
            }
            let kept = ex.clone();
            if let Answer::Now(req, response) = exchange::answer(cx, ex, req, routed, body) {
                self.respond(t, cx, id, &kept, Some(&req), response);
            }
        }
        cx.charge_body(t, self.held);
        true
    }

    /// Gives the peer back the window of what was read, while the server's body budget has
    /// room (otherwise the peer waits, and the connection is driven again when it has).
    pub(super) fn credit(&mut self, t: &mut Transport, cx: &mut Ctx) {
        cx.charge_body(t, self.held);
        if self.recv_window > CONN_WINDOW / 2 && !self.streams.values().any(|s| wants(s).is_some())
        {
            return;
        }
        if self.held > 0 && !cx.may_read_body(t, STREAM_WINDOW as usize) {
            return;
        }
        if self.recv_window <= CONN_WINDOW / 2 {
            frame::write_window_update(&mut t.out.buf, 0, (CONN_WINDOW - self.recv_window) as u32);
            self.recv_window = CONN_WINDOW;
        }
        for (id, stream) in self.streams.iter_mut() {
            if let Some(window) = wants(stream) {
                let grow = (window - stream.recv_window) as u32;
                frame::write_window_update(&mut t.out.buf, *id, grow);
                stream.recv_window = window;
            }
        }
    }

    /// What came back to the upload of stream `id`: what waits goes to disk, and a
    /// complete request on to be finished; a refusal answers the stream.
    pub fn upload_back(
        &mut self,
        t: &mut Transport,
        cx: &mut Ctx,
        id: u32,
        back: Result<Back, Box<Response>>,
    ) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let ready = matches!(stream.phase, Phase::Ready(_));
        let (Phase::Receiving(incoming) | Phase::Ready(incoming)) = &mut stream.phase else {
            return;
        };
        match back {
            Ok(back) => {
                let Some(upload) = &mut incoming.upload else {
                    return;
                };
                upload.back(back);
                if ready {
                    self.ready.push(id);
                } else {
                    let before = incoming.body.capacity();
                    upload.write(cx, incoming.ex.origin, &mut incoming.body);
                    self.held = self.held + incoming.body.capacity() - before;
                }
            }
            Err(refusal) => {
                let (Phase::Receiving(incoming) | Phase::Ready(incoming)) =
                    std::mem::replace(&mut stream.phase, Phase::Answering)
                else {
                    unreachable!("matched above")
                };
                self.held -= incoming.body.capacity();
                self.respond(t, cx, id, &incoming.ex, Some(&incoming.req), *refusal);
            }
        }
    }
}

/// The window a stream receiving a body is to be given back, once half of it is used: an
/// upload's is larger (its bytes go to disk), and one with as much waiting as may gets none.
fn wants(stream: &Stream) -> Option<i64> {
    let Phase::Receiving(incoming) = &stream.phase else {
        return None;
    };
    if incoming.paused() {
        return None;
    }
    let window = match incoming.upload {
        Some(_) => UPLOAD_WINDOW,
        None => STREAM_WINDOW,
    };
    (stream.recv_window <= window / 2).then_some(window)
}
