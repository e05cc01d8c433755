//! One HTTP/2 stream: where its request and answer are (receiving the body, ready to be
//! answered, being answered elsewhere, sending), its two flow-control windows, and the body
//! it sends, taken a DATA frame at a time (memory copied, files read, streamed bodies asked
//! of a worker piece by piece, never made on the loop).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use crate::handlers::Routed;
use crate::http::Request;
use crate::http::response::{Body, Content, Feed, Flow, Producer};
use crate::server::exchange::Exchange;
use crate::server::upload::Upload;

/// A request on its way in.
pub struct Incoming {
    pub ex: Exchange,
    pub req: Request,
    pub routed: Routed,
    pub body: Vec<u8>,
    /// Content-Length, when the request declared one.
    pub declared: Option<u64>,
    /// Body bytes received (of an upload, most went to disk).
    pub received: u64,
    /// Where an upload's body goes.
    pub upload: Option<Upload>,
}

impl Incoming {
    /// True while as much of an upload waits as may: the stream's window stays shut.
    pub fn paused(&self) -> bool {
        self.upload
            .as_ref()
            .is_some_and(|u| u.full(self.body.len()))
    }
}

pub enum Phase {
    /// Receiving the request body.
    Receiving(Box<Incoming>),
    /// The request is complete; it goes to the exchange once this batch of frames is read.
    Ready(Box<Incoming>),
    /// The answer is being made elsewhere.
    Answering,
    /// Sending the answer's body.
    Sending(Outgoing),
}

pub struct Stream {
    pub phase: Phase,
    /// What the peer lets us send on this stream.
    pub send_window: i64,
    /// What we let the peer send on this stream.
    pub recv_window: i64,
    /// The peer ended its side (END_STREAM).
    pub remote_closed: bool,
    /// The stream is in the connection's queue of streams with DATA to send.
    pub queued: bool,
}

impl Stream {
    /// True when the stream's request has not been answered yet.
    pub fn unanswered(&self) -> bool {
        !matches!(self.phase, Phase::Sending(_))
    }

    /// Body bytes held for the request.
    pub fn held(&self) -> usize {
        match &self.phase {
            Phase::Receiving(incoming) | Phase::Ready(incoming) => incoming.body.capacity(),
            _ => 0,
        }
    }
}

/// A part of a body still to send.
enum Chunk {
    Memory(Bytes),
    File {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
}

/// The body a stream sends.
pub struct Outgoing {
    chunks: VecDeque<Chunk>,
    /// Makes the rest of a body of unknown length; away on a worker while `None` and
    /// `streaming`.
    producer: Option<Box<dyn Producer>>,
    /// The body is made by a producer that has not said it is done.
    streaming: bool,
    /// A body pushed by a feed (server-sent events) until it ends.
    feed: Option<Box<dyn Feed>>,
}

/// What a stream can send now.
pub enum Fill {
    /// `n` bytes were appended; `end`: the body is complete.
    Data { n: usize, end: bool },
    /// Nothing until a worker makes the next piece with this producer.
    NeedsPiece(Box<dyn Producer>),
    /// Nothing until the piece a worker is making comes back.
    Waiting,
}

impl Outgoing {
    pub fn new(body: Body) -> Outgoing {
        let mut chunks = VecDeque::new();
        let range = |content: &Content, offset: u64, len: u64| match content {
            Content::Memory(bytes) => {
                Chunk::Memory(bytes.slice(offset as usize..(offset + len) as usize))
            }
            Content::File(file) => Chunk::File {
                file: Arc::clone(file),
                offset,
                len,
            },
        };
        let mut producer = None;
        let mut feed = None;
        match body {
            Body::Empty => {}
            Body::Bytes(bytes) => chunks.push_back(Chunk::Memory(Bytes::from(bytes))),
            Body::Static(bytes) => chunks.push_back(Chunk::Memory(Bytes::from_static(bytes))),
            Body::Content {
                content,
                offset,
                len,
            } => chunks.push_back(range(&content, offset, len)),
            Body::Multipart {
                content,
                parts,
                tail,
            } => {
                for part in parts {
                    chunks.push_back(Chunk::Memory(Bytes::from(part.head)));
                    chunks.push_back(range(&content, part.offset, part.len));
                }
                chunks.push_back(Chunk::Memory(Bytes::from(tail)));
            }
            Body::Stream(p) => producer = Some(p),
            Body::Live(f) => feed = Some(f),
        }
        Outgoing {
            chunks,
            streaming: producer.is_some() || feed.is_some(),
            producer,
            feed,
        }
    }

    /// True for a live body with nothing to send until its feed wakes the stream.
    pub fn live_waiting(&self) -> bool {
        self.feed.is_some() && self.chunks.is_empty()
    }

    /// True for a live body.
    pub fn is_live(&self) -> bool {
        self.feed.is_some()
    }

    /// Appends up to `max` bytes of the body to `out`.
    pub fn fill(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<Fill> {
        if self.chunks.is_empty()
            && let Some(feed) = &mut self.feed
        {
            let mut pieces = Vec::new();
            if feed.take(&mut pieces) == Flow::Ended {
                self.feed = None;
                self.streaming = false;
            }
            self.chunks.extend(pieces.into_iter().map(Chunk::Memory));
        }
        let mut n = 0;
        while n < max {
            let Some(chunk) = self.chunks.front_mut() else {
                break;
            };
            let room = max - n;
            let done = match chunk {
                Chunk::Memory(bytes) => {
                    let take = room.min(bytes.len());
                    out.extend_from_slice(&bytes.split_to(take));
                    n += take;
                    bytes.is_empty()
                }
                Chunk::File { file, offset, len } => {
                    let take = (room as u64).min(*len) as usize;
                    let at = out.len();
                    out.resize(at + take, 0);
                    if let Err(e) = file.read_exact_at(&mut out[at..], *offset) {
                        out.truncate(at);
                        return Err(e);
                    }
                    *offset += take as u64;
                    *len -= take as u64;
                    n += take;
                    *len == 0
                }
            };
            if done {
                self.chunks.pop_front();
            }
        }
        if n > 0 || !self.streaming {
            let end = self.chunks.is_empty() && !self.streaming;
            return Ok(Fill::Data { n, end });
        }
        Ok(match self.producer.take() {
            Some(producer) => Fill::NeedsPiece(producer),
            // A live body waits for its feed to wake the stream.
            None => Fill::Waiting,
        })
    }

    /// A worker made the next piece (`None`: the body is complete) with `producer`.
    pub fn put_piece(&mut self, producer: Box<dyn Producer>, piece: Option<Vec<u8>>) {
        match piece {
            None => self.streaming = false,
            Some(data) => {
                self.producer = Some(producer);
                if !data.is_empty() {
                    self.chunks.push_back(Chunk::Memory(Bytes::from(data)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Pieces(Vec<Vec<u8>>);

    impl Producer for Pieces {
        fn produce(&mut self) -> io::Result<Option<Vec<u8>>> {
            Ok((!self.0.is_empty()).then(|| self.0.remove(0)))
        }
    }

    fn data(fill: io::Result<Fill>) -> (usize, bool) {
        match fill.unwrap() {
            Fill::Data { n, end } => (n, end),
            Fill::NeedsPiece(_) => (usize::MAX, false),
            Fill::Waiting => (usize::MAX - 1, false),
        }
    }

    #[test]
    fn a_memory_body_goes_out_in_frames_of_the_size_asked() {
        let mut body = Outgoing::new(Body::Bytes(b"hello world".to_vec()));
        let mut out = Vec::new();
        assert_eq!(data(body.fill(&mut out, 5)), (5, false));
        assert_eq!(data(body.fill(&mut out, 100)), (6, true));
        assert_eq!(out, b"hello world");
        let mut empty = Outgoing::new(Body::Empty);
        assert_eq!(data(empty.fill(&mut out, 100)), (0, true));
    }

    #[test]
    fn a_file_range_is_read_where_it_lies() {
        let path = std::env::temp_dir().join(format!("tws-h2-stream-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let mut body = Outgoing::new(Body::Content {
            content: Content::File(file),
            offset: 2,
            len: 6,
        });
        let mut out = Vec::new();
        assert_eq!(data(body.fill(&mut out, 4)), (4, false));
        assert_eq!(data(body.fill(&mut out, 4)), (2, true));
        assert_eq!(out, b"234567");
    }

    #[test]
    fn a_streamed_body_asks_for_pieces_until_its_producer_is_done() {
        let mut body = Outgoing::new(Body::Stream(Box::new(Pieces(vec![b"ab".to_vec()]))));
        let mut out = Vec::new();
        let Ok(Fill::NeedsPiece(mut producer)) = body.fill(&mut out, 10) else {
            panic!("a piece is needed first")
        };
        assert_eq!(data(body.fill(&mut out, 10)), (usize::MAX - 1, false));
        let piece = producer.produce().unwrap();
        body.put_piece(producer, piece);
        assert_eq!(data(body.fill(&mut out, 10)), (2, false));
        let Ok(Fill::NeedsPiece(mut producer)) = body.fill(&mut out, 10) else {
            panic!("the next piece is needed")
        };
        let piece = producer.produce().unwrap();
        body.put_piece(producer, piece);
        assert_eq!(data(body.fill(&mut out, 10)), (0, true));
        assert_eq!(out, b"ab");
    }
}
