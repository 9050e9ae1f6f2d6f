//! A session's connection: plain until STARTTLS, then TLS over the same socket.

use crate::compress::Deflated;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a peer may take over the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

pub enum Connection<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// After COMPRESS, over the plain or TLS connection it was.
    Deflate(Box<Deflated<Connection<S>>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Upgrades a plain connection. The caller has checked that the peer sent nothing after
    /// STARTTLS: bytes read before the handshake must never count as encrypted input.
    pub async fn start_tls(reader: BufReader<Self>, acceptor: &TlsAcceptor) -> io::Result<Self> {
        let Self::Plain(stream) = reader.into_inner() else {
            return Err(io::Error::other("TLS is already on"));
        };
        let handshake = acceptor.accept(stream);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(tls)) => Ok(Self::Tls(Box::new(tls))),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake took too long",
            )),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Compression from here on, both ways (the caller has checked nothing came after the
    /// command that asked for it, and that it is not on already).
    pub fn deflate(self) -> Self {
        Self::Deflate(Box::new(Deflated::new(self)))
    }

    /// The session waits for its peer: a compressor it holds can go (see `compress`).
    pub fn rest(&mut self) {
        if let Self::Deflate(deflated) = self {
            deflated.rest();
        }
    }

    pub fn is_deflated(&self) -> bool {
        matches!(self, Self::Deflate(_))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Connection<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Deflate(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Connection<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Deflate(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Self::Tls(stream) => Pin::new(stream).poll_flush(cx),
            Self::Deflate(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Deflate(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}
