//! Reading an HTTP/2 connection's frames (RFC 9113 §5-6): the preface and SETTINGS first,
//! header blocks over HEADERS and CONTINUATION (bodies: `body`), and the
//! control frames. What a peer controls is bounded, each bound with the answer the RFC or
//! common practice gives: a header block's size (CONTINUATION floods), the decoded list
//! (HPACK bombs, 431), streams at once (REFUSED_STREAM), resets before answers (Rapid Reset,
//! ENHANCE_YOUR_CALM), empty DATA frames, window overflows (FLOW_CONTROL_ERROR), and,
//! through the output bound of `drive`, control frames whose answers nobody reads.

use super::frame::{self, Code, Head};
use super::stream::{Incoming, Phase, Stream};
use super::{Block, H2, MAX_STREAMS, OUT_HIGH, STREAM_WINDOW, head};
use crate::handlers::Dispatch;
use crate::http::HttpError;
use crate::http::request::Framing;
use crate::server::context::Ctx;
use crate::server::exchange::{self, Exchange};
use crate::server::transport::Transport;
use crate::server::upload;

/// The largest frame we accept (our SETTINGS_MAX_FRAME_SIZE: the default).
const MAX_FRAME: usize = frame::DEFAULT_MAX_FRAME;
/// Most bytes of one header block (HEADERS plus CONTINUATION frames), compressed.
const MAX_BLOCK: usize = 64 * 1024;
/// Streams the peer may reset before their answer, past which (unless most of its streams
/// were answered) the connection is closed with ENHANCE_YOUR_CALM.
const MAX_PEER_RESETS: u64 = 200;

impl H2 {
    /// Reads the complete frames that arrived; true if any was read. `Err`: a connection error.
    pub(super) fn receive(&mut self, t: &mut Transport, cx: &mut Ctx) -> Result<bool, Code> {
        let input = std::mem::take(&mut t.input);
        let mut at = 0;
        let result = self.frames(&input, &mut at, t, cx);
        t.input = input;
        t.input.drain(..at);
        self.credit(t, cx);
        result.map(|()| at > 0)
    }

    fn frames(
        &mut self,
        input: &[u8],
        at: &mut usize,
        t: &mut Transport,
        cx: &mut Ctx,
    ) -> Result<(), Code> {
        if !self.preface {
            if input.len() < frame::PREFACE.len() {
                return if frame::PREFACE.starts_with(input) {
                    Ok(())
                } else {
                    Err(Code::Protocol)
                };
            }
            if !input.starts_with(frame::PREFACE) {
                return Err(Code::Protocol);
            }
            self.preface = true;
            *at = frame::PREFACE.len();
        }
        // Stop while answers back up: the peer must read before it may send more.
        while t.out.queued() < OUT_HIGH {
            let rest = &input[*at..];
            if rest.len() < frame::HEADER_LEN {
                break;
            }
            let head = Head::read(rest);
            if head.len > MAX_FRAME {
                return Err(Code::FrameSize);
            }
            let Some(payload) = rest.get(frame::HEADER_LEN..frame::HEADER_LEN + head.len) else {
                break;
            };
            *at += frame::HEADER_LEN + head.len;
            if !self.settings && head.kind != frame::SETTINGS {
                return Err(Code::Protocol);
            }
            if self.block.is_some() && head.kind != frame::CONTINUATION {
                return Err(Code::Protocol);
            }
            self.frame(&head, payload, t, cx)?;
        }
        Ok(())
    }

    fn frame(
        &mut self,
        head: &Head,
        payload: &[u8],
        t: &mut Transport,
        cx: &mut Ctx,
    ) -> Result<(), Code> {
        match head.kind {
            frame::DATA => self.data(head, payload, t, cx),
            frame::HEADERS => self.headers(head, payload, t, cx),
            frame::CONTINUATION => self.continuation(head, payload, t, cx),
            frame::RST_STREAM => self.reset(head, payload),
            frame::SETTINGS => self.peer_settings(head, payload, t),
            frame::PING => {
                if head.stream != 0 {
                    return Err(Code::Protocol);
                }
                if payload.len() != 8 {
                    return Err(Code::FrameSize);
                }
                if !head.has(frame::ACK) {
                    frame::write_ping_ack(&mut t.out.buf, payload);
                }
                Ok(())
            }
            frame::GOAWAY => {
                if head.stream != 0 {
                    return Err(Code::Protocol);
                }
                self.peer_goaway = true;
                Ok(())
            }
            frame::WINDOW_UPDATE => self.window_update(head, payload, t),
            frame::PRIORITY => {
                if head.stream == 0 {
                    return Err(Code::Protocol);
                }
                if payload.len() != 5 {
                    self.refuse(t, head.stream, Code::FrameSize);
                }
                Ok(())
            }
            frame::PUSH_PROMISE => Err(Code::Protocol),
            // Unknown frame types are ignored (§4.1).
            _ => Ok(()),
        }
    }

    fn peer_settings(
        &mut self,
        head: &Head,
        payload: &[u8],
        t: &mut Transport,
    ) -> Result<(), Code> {
        if head.stream != 0 {
            return Err(Code::Protocol);
        }
        if head.has(frame::ACK) {
            return if payload.is_empty() {
                Ok(())
            } else {
                Err(Code::FrameSize)
            };
        }
        let entries = frame::settings(payload).ok_or(Code::FrameSize)?;
        for (id, value) in entries {
            match id {
                frame::HEADER_TABLE_SIZE => self
                    .encoder
                    .set_max_table_size((value as usize).min(super::hpack::DEFAULT_TABLE_SIZE)),
                frame::ENABLE_PUSH if value > 1 => return Err(Code::Protocol),
                frame::INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > frame::MAX_WINDOW {
                        return Err(Code::FlowControl);
                    }
                    let delta = value - self.peer.initial_window;
                    self.peer.initial_window = value;
                    for (id, stream) in self.streams.iter_mut() {
                        stream.send_window += delta;
                        if stream.send_window > frame::MAX_WINDOW {
                            return Err(Code::FlowControl);
                        }
                        if delta > 0 && matches!(stream.phase, Phase::Sending(_)) && !stream.queued
                        {
                            stream.queued = true;
                            self.sending.push_back(*id);
                        }
                    }
                }
                frame::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME as u32..=frame::MAX_MAX_FRAME).contains(&value) {
                        return Err(Code::Protocol);
                    }
                    self.peer.max_frame = value as usize;
                }
                _ => {}
            }
        }
        self.settings = true;
        frame::write_settings_ack(&mut t.out.buf);
        Ok(())
    }

    fn window_update(
        &mut self,
        head: &Head,
        payload: &[u8],
        t: &mut Transport,
    ) -> Result<(), Code> {
        if payload.len() != 4 {
            return Err(Code::FrameSize);
        }
        let increment = i64::from(frame::u31(payload));
        if head.stream == 0 {
            if increment == 0 {
                return Err(Code::Protocol);
            }
            self.send_window += increment;
            return if self.send_window > frame::MAX_WINDOW {
                Err(Code::FlowControl)
            } else {
                Ok(())
            };
        }
        if head.stream > self.last_stream {
            return Err(Code::Protocol);
        }
        let Some(stream) = self.streams.get_mut(&head.stream) else {
            return Ok(());
        };
        if increment == 0 {
            self.refuse(t, head.stream, Code::Protocol);
            return Ok(());
        }
        stream.send_window += increment;
        if stream.send_window > frame::MAX_WINDOW {
            self.refuse(t, head.stream, Code::FlowControl);
        } else if matches!(stream.phase, Phase::Sending(_)) && !stream.queued {
            stream.queued = true;
            self.sending.push_back(head.stream);
        }
        Ok(())
    }

    fn reset(&mut self, head: &Head, payload: &[u8]) -> Result<(), Code> {
        if head.stream == 0 {
            return Err(Code::Protocol);
        }
        if payload.len() != 4 {
            return Err(Code::FrameSize);
        }
        if head.stream > self.last_stream {
            return Err(Code::Protocol);
        }
        if let Some(stream) = self.streams.remove(&head.stream)
            && stream.unanswered()
        {
            self.held -= stream.held();
            self.peer_resets += 1;
            if self.peer_resets > MAX_PEER_RESETS && self.peer_resets > self.answered {
                return Err(Code::EnhanceYourCalm);
            }
        }
        Ok(())
    }

    fn headers(
        &mut self,
        head: &Head,
        payload: &[u8],
        t: &mut Transport,
        cx: &mut Ctx,
    ) -> Result<(), Code> {
        if head.stream == 0 {
            return Err(Code::Protocol);
        }
        let (mut start, end) = frame::unpad(head, payload).ok_or(Code::Protocol)?;
        if head.has(frame::PRIORITY_FLAG) {
            start += 5;
            if start > end {
                return Err(Code::FrameSize);
            }
        }
        let block = Block {
            stream: head.stream,
            end_stream: head.has(frame::END_STREAM),
            bytes: payload[start..end].to_vec(),
        };
        if head.has(frame::END_HEADERS) {
            self.header_block(block, t, cx)
        } else {
            self.block = Some(block);
            Ok(())
        }
    }

    fn continuation(
        &mut self,
        head: &Head,
        payload: &[u8],
        t: &mut Transport,
        cx: &mut Ctx,
    ) -> Result<(), Code> {
        let Some(block) = &mut self.block else {
            return Err(Code::Protocol);
        };
        if block.stream != head.stream {
            return Err(Code::Protocol);
        }
        if block.bytes.len() + payload.len() > MAX_BLOCK {
            return Err(Code::EnhanceYourCalm);
        }
        block.bytes.extend_from_slice(payload);
        if head.has(frame::END_HEADERS) {
            let block = self.block.take().expect("checked above");
            return self.header_block(block, t, cx);
        }
        Ok(())
    }

    /// A complete header block: trailers of an open stream, or a new request.
    fn header_block(&mut self, block: Block, t: &mut Transport, cx: &mut Ctx) -> Result<(), Code> {
        let id = block.stream;
        let limits = cx.settings.limits;
        if let Some(stream) = self.streams.get_mut(&id) {
            if stream.remote_closed || !block.end_stream {
                return Err(Code::Protocol);
            }
            if !head::trailers(&mut self.decoder, &block.bytes, &limits)? {
                self.refuse(t, id, Code::Protocol);
                return Ok(());
            }
            stream.remote_closed = true;
            if let Phase::Receiving(incoming) =
                std::mem::replace(&mut stream.phase, Phase::Answering)
            {
                if incoming
                    .declared
                    .is_some_and(|n| n != incoming.body.len() as u64)
                {
                    self.held -= incoming.body.capacity();
                    let e = HttpError::BadRequest("body length differs from Content-Length");
                    let response = cx.app.error_response(&incoming.routed, e);
                    self.respond(t, cx, id, &incoming.ex, Some(&incoming.req), response);
                } else {
                    stream.phase = Phase::Ready(incoming);
                    self.ready.push(id);
                }
            }
            return Ok(());
        }
        if id.is_multiple_of(2) {
            return Err(Code::Protocol);
        }
        if id <= self.last_stream {
            return Err(Code::StreamClosed);
        }
        self.last_stream = id;
        // Decoded even when refused: the peer's encoder counts on our table following it.
        let decoded = head::request(&mut self.decoder, &block.bytes, block.end_stream, &limits)?;
        if self.goaway || self.streams.len() >= MAX_STREAMS {
            self.refuse(t, id, Code::RefusedStream);
            return Ok(());
        }
        self.streams.insert(
            id,
            Stream {
                phase: Phase::Answering,
                send_window: self.peer.initial_window,
                recv_window: STREAM_WINDOW,
                remote_closed: block.end_stream,
                queued: false,
            },
        );
        let mut ex = Exchange::new(t, id, cx.now, cx);
        let req = match decoded {
            Ok(req) => req,
            Err(e) => {
                let response = cx.app.error(e, crate::http::response::ErrorFormat::Text);
                self.respond(t, cx, id, &ex, None, response);
                return Ok(());
            }
        };
        let mut routed = match exchange::route(cx, t, &mut ex, &req) {
            Dispatch::Answer(response, _) => {
                self.respond(t, cx, id, &ex, Some(&req), response);
                return Ok(());
            }
            Dispatch::Run(routed) => routed,
        };
        let upload = match upload::start(cx, &ex, &req, &mut routed) {
            Ok(upload) => upload,
            Err(refusal) => {
                self.respond(t, cx, id, &ex, Some(&req), *refusal);
                return Ok(());
            }
        };
        if upload.is_none()
            && let Err(e) = exchange::body_allowed(cx, &req)
        {
            let response = cx.app.error_response(&routed, e);
            self.respond(t, cx, id, &ex, Some(&req), response);
            return Ok(());
        }
        let declared = match req.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        let incoming = Box::new(Incoming {
            ex,
            req,
            routed,
            body: Vec::new(),
            declared,
            received: 0,
            upload,
        });
        let stream = self.streams.get_mut(&id).expect("inserted above");
        if block.end_stream {
            stream.phase = Phase::Ready(incoming);
            self.ready.push(id);
        } else {
            stream.phase = Phase::Receiving(incoming);
        }
        Ok(())
    }

    /// Resets a stream (a stream error), forgetting it.
    pub(super) fn refuse(&mut self, t: &mut Transport, id: u32, code: Code) {
        if let Some(stream) = self.streams.remove(&id) {
            self.held -= stream.held();
        }
        frame::write_rst(&mut t.out.buf, id, code);
    }
}
