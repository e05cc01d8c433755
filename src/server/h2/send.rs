//! Writing answers on an HTTP/2 connection: each answer, after `exchange::finish`, as an
//! HPACK-encoded HEADERS block (split into CONTINUATION frames past the peer's frame size),
//! then its body as DATA frames, made only while both flow-control windows are open and the
//! output is not backed up, one frame per stream in turn so that no download starves the
//! others. A stream ends with its last frame; if the peer has not finished sending by then,
//! RST_STREAM(NO_ERROR) tells it to stop (RFC 9113 §8.1).

use super::frame::{self, Code};
use super::hpack::Indexing;
use super::stream::{Fill, Outgoing, Phase};
use super::{H2, OUT_HIGH};
use crate::http::response::{HeadContext, head_fields};
use crate::http::{Request, Response, Version};
use crate::server::context::Ctx;
use crate::server::exchange::{self, Exchange};
use crate::server::transport::Transport;

/// Field values longer than this are not added to the dynamic table.
const MAX_INDEXED_VALUE: usize = 256;

impl H2 {
    /// Sends an answer on stream `id`.
    pub(super) fn respond(
        &mut self,
        t: &mut Transport,
        cx: &mut Ctx,
        id: u32,
        ex: &Exchange,
        req: Option<&Request>,
        mut response: Response,
    ) {
        exchange::finish(cx, ex, req, &mut response);
        self.answered += 1;
        let head_only = req.is_some_and(Request::is_head);
        let end = head_only || (!response.body.is_stream() && response.body.is_empty());
        let mut block = std::mem::take(&mut self.scratch);
        block.clear();
        self.encoder.begin(&mut block);
        self.encoder.status(response.status, &mut block);
        let ctx = HeadContext {
            date: cx.date.now(),
            keep_alive: true,
            request_version: Version::Http2,
        };
        let encoder = &mut self.encoder;
        head_fields(&response, &ctx, |name, value| {
            let mut lower = [0u8; 64];
            let name = name.as_bytes();
            let owned;
            let name: &[u8] = if name.len() <= lower.len() {
                for (l, c) in lower.iter_mut().zip(name) {
                    *l = c.to_ascii_lowercase();
                }
                &lower[..name.len()]
            } else {
                owned = name.to_ascii_lowercase();
                &owned
            };
            encoder.field(name, value.as_bytes(), indexing(name, value), &mut block);
        });
        frame::write_headers(&mut t.out.buf, id, &block, end, self.peer.max_frame);
        self.scratch = block;
        if end {
            self.finish_stream(t, id);
            return;
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.phase = Phase::Sending(Outgoing::new(response.body));
        if self.sending.is_empty() {
            t.start_sending(cx.now);
        }
        self.queue(id);
    }

    /// Puts stream `id` in the queue of streams with DATA to send, once.
    pub(super) fn queue(&mut self, id: u32) {
        if let Some(stream) = self.streams.get_mut(&id)
            && !stream.queued
        {
            stream.queued = true;
            self.sending.push_back(id);
        }
    }

    /// Makes DATA frames while the windows and the output bound allow; true if any was made.
    /// A stream whose window is shut leaves the queue until a WINDOW_UPDATE brings it back; a
    /// streamed body's next piece is asked of a worker, and its arrival brings it back.
    pub(super) fn produce(&mut self, t: &mut Transport, cx: &mut Ctx) -> bool {
        let mut made = false;
        while t.out.queued() < OUT_HIGH && self.send_window > 0 {
            let Some(id) = self.sending.pop_front() else {
                break;
            };
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            stream.queued = false;
            let Phase::Sending(body) = &mut stream.phase else {
                continue;
            };
            if stream.send_window <= 0 {
                continue;
            }
            let max = stream
                .send_window
                .min(self.send_window)
                .min(self.peer.max_frame as i64) as usize;
            let at = t.out.buf.len();
            frame::write_head(&mut t.out.buf, 0, frame::DATA, 0, id);
            let fill = body.fill(&mut t.out.buf, max);
            match fill {
                Ok(Fill::Data { n, end }) => {
                    let len = (n as u32).to_be_bytes();
                    t.out.buf[at..at + 3].copy_from_slice(&len[1..]);
                    if end {
                        t.out.buf[at + 4] = frame::END_STREAM;
                    }
                    stream.send_window -= n as i64;
                    self.send_window -= n as i64;
                    made = true;
                    if end {
                        self.finish_stream(t, id);
                    } else {
                        self.queue(id);
                    }
                }
                Ok(Fill::NeedsPiece(producer)) => {
                    t.out.buf.truncate(at);
                    cx.pool.produce(t.origin(id), producer);
                }
                Ok(Fill::Waiting) => t.out.buf.truncate(at),
                // The body cannot be finished (a file that shrank): the stream is reset, so
                // the client sees it incomplete.
                Err(_) => {
                    t.out.buf.truncate(at);
                    self.refuse(t, id, Code::Internal);
                }
            }
        }
        made
    }

    /// Ends stream `id` after its last frame: forgotten, and the peer told to stop sending if
    /// it has not finished.
    fn finish_stream(&mut self, t: &mut Transport, id: u32) {
        if let Some(stream) = self.streams.remove(&id) {
            self.held -= stream.held();
            if !stream.remote_closed {
                frame::write_rst(&mut t.out.buf, id, Code::NoError);
            }
        }
    }
}

/// Whether a response field goes into the dynamic table: values that repeat across answers
/// do (Server, Content-Type, ETag, Date, ...), long ones and secrets do not.
fn indexing(name: &[u8], value: &str) -> Indexing {
    match name {
        b"set-cookie" | b"authorization" | b"proxy-authenticate" => Indexing::Never,
        _ if value.len() > MAX_INDEXED_VALUE => Indexing::Without,
        _ => Indexing::Incremental,
    }
}
