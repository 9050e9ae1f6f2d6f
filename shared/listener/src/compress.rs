//! COMPRESS=DEFLATE (RFC 4978): both directions of a connection as raw DEFLATE streams, the
//! way mobile clients save bandwidth. Every flush of the writer is a sync flush, so what the
//! session sends reaches the peer whole, however little it is.
//!
//! A compressor holds about 300 KB; a session waiting for its next command (or idling for
//! hours) need not: after a sync flush the output is byte-aligned and later output need not
//! refer back to it, so `rest` drops the compressor and the next write starts a fresh one, its
//! blocks simply continuing the one stream. The inflater's 32 KB window cannot go: the peer's
//! stream may refer back to anything it sent.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_compression::Level;
use async_compression::tokio::bufread::DeflateDecoder;
use async_compression::tokio::write::DeflateEncoder;
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf, ReadHalf, WriteHalf};

/// A stream whose reads are inflated and whose writes are deflated.
pub struct Deflated<T> {
    reader: DeflateDecoder<BufReader<ReadHalf<T>>>,
    writer: Writer<WriteHalf<T>>,
}

enum Writer<W> {
    /// Between the last flush and the next write: no compressor held.
    Resting(W),
    /// `unflushed`: written since the last completed flush.
    Deflating {
        encoder: Box<DeflateEncoder<W>>,
        unflushed: bool,
    },
    /// Only while changing from one to the other.
    Changing,
}

impl<T: AsyncRead + AsyncWrite> Deflated<T> {
    pub fn new(stream: T) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self {
            // The compressed input is small: a small buffer for it.
            reader: DeflateDecoder::new(BufReader::with_capacity(4 * 1024, read)),
            writer: Writer::Resting(write),
        }
    }

    /// Lets the compressor go if everything written was flushed (otherwise keeps it).
    pub fn rest(&mut self) {
        if let Writer::Deflating {
            unflushed: false, ..
        } = &self.writer
            && let Writer::Deflating { encoder, .. } =
                std::mem::replace(&mut self.writer, Writer::Changing)
        {
            self.writer = Writer::Resting(encoder.into_inner());
        }
    }

    fn encoder(&mut self) -> io::Result<Pin<&mut DeflateEncoder<WriteHalf<T>>>> {
        if let Writer::Resting(_) = &self.writer
            && let Writer::Resting(write) = std::mem::replace(&mut self.writer, Writer::Changing)
        {
            self.writer = Writer::Deflating {
                // Mail compresses well already at a low level, for a fraction of the CPU.
                encoder: Box::new(DeflateEncoder::with_quality(write, Level::Precise(3))),
                unflushed: false,
            };
        }
        match &mut self.writer {
            Writer::Deflating { encoder, .. } => Ok(Pin::new(encoder.as_mut())),
            _ => Err(io::Error::other("the compressor was lost")),
        }
    }

    fn mark(&mut self, unflushed: bool) {
        if let Writer::Deflating {
            unflushed: mark, ..
        } = &mut self.writer
        {
            *mark = unflushed;
        }
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncRead for Deflated<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncWrite for Deflated<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = this.encoder()?.poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            this.mark(true);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = match &mut this.writer {
            Writer::Resting(write) => return Pin::new(write).poll_flush(cx),
            Writer::Deflating { encoder, .. } => Pin::new(encoder.as_mut()).poll_flush(cx),
            Writer::Changing => {
                return Poll::Ready(Err(io::Error::other("the compressor was lost")));
            }
        };
        if matches!(flushed, Poll::Ready(Ok(()))) {
            this.mark(false);
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The stream's final block: from a fresh compressor if the last one rested.
        self.get_mut().encoder()?.poll_shutdown(cx)
    }
}
