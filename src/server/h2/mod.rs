//! HTTP/2 (RFC 9113) on one connection, framed by tws itself: a connection becomes HTTP/2 when
//! TLS negotiated `h2` with ALPN, or when a cleartext connection opens with the preface (prior
//! knowledge). `recv` reads frames (HPACK-decoding request heads into the shared request
//! model, bounding everything a peer controls), `send` writes answers (HPACK-encoded heads,
//! then DATA as both flow-control windows and the socket allow), and this module drives the
//! two: read while the output is not backed up, hand complete requests to the shared
//! exchange, produce DATA, write, and come back on readability, writability, a window update
//! or an answer. An idle HTTP/2 connection is a table entry, like an idle HTTP/1.1 one.

mod body;
pub mod frame;
mod head;
pub mod hpack;
mod recv;
mod send;
mod stream;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

use super::context::Ctx;
use super::exchange::Exchange;
use super::proto::Step;
use super::transport::{ReadOutcome, Transport};
use crate::http::Response;
use crate::http::response::Producer;
use crate::metrics::Timeout;
use frame::Code;
use stream::{Phase, Stream};

/// Streams open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
const MAX_STREAMS: usize = 100;
/// The receive window of each stream, and of the connection.
const STREAM_WINDOW: i64 = 256 * 1024;
const CONN_WINDOW: i64 = 2 * 1024 * 1024;
/// The receive window of a stream carrying an upload (its bytes go to disk, not memory).
const UPLOAD_WINDOW: i64 = 512 * 1024;
/// Output waiting for the wire past which no more input is read and no more DATA made, so
/// that a peer that sends much and reads nothing holds a bounded amount of our memory.
const OUT_HIGH: usize = 256 * 1024;
/// Input read per turn at most (whole frames of our maximum size fit).
const READ_CAP: usize = 64 * 1024;
/// Bytes written to one connection per drive before it yields to the others.
const TURN_BUDGET: u64 = 1 << 20;
/// Steps per drive before yielding.
const STEPS: usize = 16;

/// Stream ids are small integers handed out in order: hashing them is a waste.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

type Streams = HashMap<u32, Stream, BuildHasherDefault<IdHasher>>;

/// What the peer's SETTINGS allow us.
struct PeerSettings {
    max_frame: usize,
    initial_window: i64,
}

/// A header block arriving over HEADERS and CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

pub struct H2 {
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    peer: PeerSettings,
    /// The client preface was read.
    preface: bool,
    /// The peer's first SETTINGS was read.
    settings: bool,
    streams: Streams,
    /// The highest stream id the peer opened.
    last_stream: u32,
    /// What the peer lets us send on the connection.
    send_window: i64,
    /// What we let the peer send on the connection.
    recv_window: i64,
    block: Option<Block>,
    /// Streams with DATA to send, served in turn.
    sending: VecDeque<u32>,
    /// Streams whose request is complete, handed to the exchange after the frames read.
    ready: Vec<u32>,
    /// GOAWAY was sent (no new streams).
    goaway: bool,
    /// The peer sent GOAWAY.
    peer_goaway: bool,
    /// Empty DATA frames (without END_STREAM) in a row.
    empty_frames: u32,
    /// Streams the peer reset before their answer, and answers sent.
    peer_resets: u64,
    answered: u64,
    /// Request-body bytes held for the connection's streams.
    held: usize,
    /// When the connection last made progress (read or wrote).
    active: Instant,
    /// When it became HTTP/2.
    opened: Instant,
    /// A header block's scratch space, kept between answers.
    scratch: Vec<u8>,
}

impl H2 {
    /// Makes a connection HTTP/2; what it received so far (the preface, if it came) stays in
    /// its input. Our SETTINGS go out at once.
    pub fn start(t: &mut Transport, cx: &mut Ctx) -> H2 {
        let h2 = H2 {
            decoder: hpack::Decoder::new(hpack::DEFAULT_TABLE_SIZE),
            encoder: hpack::Encoder::new(),
            peer: PeerSettings {
                max_frame: frame::DEFAULT_MAX_FRAME,
                initial_window: frame::DEFAULT_WINDOW,
            },
            preface: false,
            settings: false,
            streams: Streams::default(),
            last_stream: 0,
            send_window: frame::DEFAULT_WINDOW,
            recv_window: CONN_WINDOW,
            block: None,
            sending: VecDeque::new(),
            ready: Vec::new(),
            goaway: false,
            peer_goaway: false,
            empty_frames: 0,
            peer_resets: 0,
            answered: 0,
            held: 0,
            active: cx.now,
            opened: cx.now,
            scratch: Vec::new(),
        };
        let max_list = cx.settings.limits.max_head_bytes as u32;
        frame::write_settings(
            &mut t.out.buf,
            &[
                (frame::MAX_CONCURRENT_STREAMS, MAX_STREAMS as u32),
                (frame::INITIAL_WINDOW_SIZE, STREAM_WINDOW as u32),
                (frame::MAX_HEADER_LIST_SIZE, max_list),
                (frame::ENABLE_PUSH, 0),
            ],
        );
        let grow = (CONN_WINDOW - frame::DEFAULT_WINDOW) as u32;
        frame::write_window_update(&mut t.out.buf, 0, grow);
        h2
    }

    /// Runs the connection until it must wait: reads, answers, writes.
    pub fn drive(&mut self, t: &mut Transport, cx: &mut Ctx) -> Step {
        let sent_before = t.sent();
        for _ in 0..STEPS {
            if cx.stopping && !self.goaway {
                self.go_away(t, Code::NoError);
            }
            let mut progress = false;
            if t.out.queued() < OUT_HIGH && t.readable {
                match t.read_some(READ_CAP, &mut cx.scratch) {
                    Ok(ReadOutcome::Data) => progress = true,
                    Ok(ReadOutcome::WouldBlock) => {}
                    Ok(ReadOutcome::Eof | ReadOutcome::NotTls) | Err(_) => return Step::Close,
                }
            }
            match self.receive(t, cx) {
                Ok(read) => progress |= read,
                Err(code) => {
                    self.go_away(t, code);
                    let _ = t.flush(cx.now);
                    return Step::Close;
                }
            }
            progress |= self.dispatch(t, cx);
            progress |= self.produce(t, cx);
            let before = t.sent();
            let blocked = match t.flush(cx.now) {
                Err(_) => return Step::Close,
                Ok(flushed) => flushed == super::output::Flushed::Blocked,
            };
            // What went out makes room: more may be read and made.
            progress |= t.sent() > before;
            if progress {
                self.active = cx.now;
            }
            if self.over(t) {
                return Step::Close;
            }
            if blocked || !progress {
                return Step::Wait;
            }
            if t.sent() - sent_before >= TURN_BUDGET {
                break;
            }
        }
        // More to do than one turn allows: come back after the others had theirs.
        cx.ready.push_back(t.key);
        Step::Wait
    }

    /// True once the connection has nothing more to do: after GOAWAY (ours or the peer's),
    /// every stream finished and the output written.
    fn over(&mut self, t: &mut Transport) -> bool {
        (self.goaway || self.peer_goaway) && self.streams.is_empty() && t.flushed()
    }

    /// Says GOAWAY once: no new streams; those open finish.
    fn go_away(&mut self, t: &mut Transport, code: Code) {
        if !self.goaway {
            self.goaway = true;
            frame::write_goaway(&mut t.out.buf, self.last_stream, code);
        }
    }

    /// The answer made elsewhere for one of the connection's streams (dropped if the peer
    /// reset it meanwhile).
    pub fn answered(&mut self, t: &mut Transport, cx: &mut Ctx, ex: &Exchange, response: Response) {
        let id = ex.origin.stream;
        if self
            .streams
            .get(&id)
            .is_some_and(|s| matches!(s.phase, Phase::Answering))
        {
            self.respond(t, cx, id, ex, ex.req.as_deref(), response);
        }
    }

    /// The next piece of a streamed body for `stream`.
    pub fn piece(&mut self, id: u32, producer: Box<dyn Producer>, piece: Option<Vec<u8>>) {
        if let Some(stream) = self.streams.get_mut(&id)
            && let Phase::Sending(body) = &mut stream.phase
        {
            body.put_piece(producer, piece);
            self.queue(id);
        }
    }

    /// The live body of stream `id` has more to send.
    pub fn live(&mut self, id: u32) {
        self.queue(id);
    }

    /// True when no stream is open.
    pub fn idle(&self) -> bool {
        self.streams.is_empty()
    }

    /// The timeout the connection ran into, if any: a stalled or too slow reader of what is
    /// to be sent, a request body that stopped coming, an idle connection, or one that never
    /// finished its preface.
    pub fn overdue(&mut self, t: &mut Transport, cx: &Ctx) -> Option<Timeout> {
        let now = cx.now;
        let timeouts = &cx.settings.timeouts;
        if !self.settings {
            return (now >= self.opened + timeouts.header).then_some(Timeout::Header);
        }
        // A live body waiting for its feed is quiet, not stalled; one that has something to
        // send is judged by the send timeout alone (it sends little, so no rate applies).
        let sending = self
            .streams
            .values()
            .any(|s| matches!(&s.phase, Phase::Sending(body) if !body.live_waiting()));
        let live = self
            .streams
            .values()
            .any(|s| matches!(&s.phase, Phase::Sending(body) if body.is_live()));
        if sending || !t.flushed() {
            let rate = if live { 0 } else { cx.settings.min_send_rate };
            return t
                .send_stalled(now, timeouts.send, rate)
                .then_some(Timeout::Send);
        }
        if live {
            return None;
        }
        if self.streams.is_empty() {
            return (now >= self.active + timeouts.idle).then_some(Timeout::Idle);
        }
        let receiving = self
            .streams
            .values()
            .any(|s| matches!(s.phase, Phase::Receiving(_)));
        (receiving && now >= self.active + timeouts.body).then_some(Timeout::Body)
    }

    /// Closes a connection that timed out: GOAWAY first, as far as the wire takes it.
    pub fn expire(&mut self, t: &mut Transport, cx: &mut Ctx) -> Step {
        self.go_away(t, Code::NoError);
        let _ = t.flush(cx.now);
        Step::Close
    }
}
