//! The in-memory transport an HTTP/2 session runs over: h2 reads what the wire delivered
//! from it and writes its frames into it, through tokio's I/O traits, without a socket or a
//! runtime. The event loop fills the input and drains the output.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes of h2 output held before h2 is told to wait (the wire drains it).
const OUTPUT_LIMIT: usize = 256 * 1024;

/// What the loop and h2 share: input the wire delivered, output for the wire.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) input: BytesMut,
    pub(super) output: Vec<u8>,
    /// The peer closed its side: reads end.
    pub(super) eof: bool,
}

/// The transport h2 reads from and writes to.
#[derive(Clone, Default)]
pub(super) struct Transport(Arc<Mutex<Buffers>>);

impl Transport {
    pub(super) fn lock(&self) -> MutexGuard<'_, Buffers> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut b = self.lock();
        if b.input.is_empty() {
            // The loop polls again when more arrives.
            return if b.eof {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
        let n = buf.remaining().min(b.input.len());
        buf.put_slice(&b.input[..n]);
        b.input.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut b = self.lock();
        if b.output.len() >= OUTPUT_LIMIT {
            // The loop polls again once the wire took some.
            return Poll::Pending;
        }
        b.output.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
