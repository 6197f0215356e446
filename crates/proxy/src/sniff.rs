//! The first bytes of a downstream connection: which codec to create (Envoy creates it on the
//! first data, so a connection that sends nothing counts no `downstream_cx_http1_total`), and
//! request lines with an HTTP version Envoy answers with 426.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// HTTP/1.x (anything that is not the HTTP/2 preface).
    Http1,
    /// The HTTP/2 connection preface (h2c prior knowledge).
    Http2,
}

/// Why no codec was created.
#[derive(Debug)]
pub enum NoCodec {
    /// The peer closed before sending a byte.
    Closed,
    /// Nothing arrived within the idle timeout.
    IdleTimeout,
    /// Reading failed.
    Io(io::Error),
}

/// Reads until the protocol is known; returns it and the bytes read, which the codec must see
/// first (see [`Prefixed`]).
pub async fn sniff<I: AsyncRead + Unpin>(io: &mut I, idle: Option<Duration>) -> Result<(Detected, Vec<u8>), NoCodec> {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = io.read(&mut chunk).await.map_err(NoCodec::Io)?;
            if n == 0 {
                return Err(NoCodec::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
            let len = buf.len().min(H2_PREFACE.len());
            if buf[..len] != H2_PREFACE[..len] {
                return Ok(Detected::Http1);
            }
            if len == H2_PREFACE.len() {
                return Ok(Detected::Http2);
            }
        }
    };
    let detected = match idle {
        Some(limit) => tokio::time::timeout(limit, read).await.map_err(|_| NoCodec::IdleTimeout)??,
        None => read.await?,
    };
    Ok((detected, buf))
}

/// Whether the first request line (when complete in `head`) names an HTTP version whose major
/// number is not 1 (`GET / HTTP/9.9`): Envoy answers those with 426 Upgrade Required.
pub fn unsupported_http_version(head: &[u8]) -> bool {
    let Some(end) = head.iter().position(|b| *b == b'\n') else {
        return false;
    };
    let line = head[..end].strip_suffix(b"\r").unwrap_or(&head[..end]);
    let Some(version) = line.rsplit(|b| *b == b' ').next() else {
        return false;
    };
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit() && *major != b'1')
}

pin_project_lite::pin_project! {
    /// An I/O stream whose reads first return `prefix`.
    pub struct Prefixed<I> {
        prefix: Vec<u8>,
        offset: usize,
        #[pin]
        inner: I,
    }
}

impl<I> Prefixed<I> {
    /// Wraps `inner` so that `prefix` is read before it.
    pub fn new(prefix: Vec<u8>, inner: I) -> Self {
        Self { prefix, offset: 0, inner }
    }
}

// === impl Prefixed ===

impl<I: AsyncRead> AsyncRead for Prefixed<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        if *this.offset < this.prefix.len() {
            let rest = &this.prefix[*this.offset..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            *this.offset += n;
            if *this.offset == this.prefix.len() {
                *this.prefix = Vec::new();
                *this.offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
        this.inner.poll_read(cx, buf)
    }
}

impl<I: AsyncWrite> AsyncWrite for Prefixed<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn detects_h2_preface_split_over_reads() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move { sniff(&mut server, None).await.map(|(d, b)| (d, b.len())) });
        use tokio::io::AsyncWriteExt;
        client.write_all(&H2_PREFACE[..10]).await.unwrap();
        tokio::task::yield_now().await;
        client.write_all(&H2_PREFACE[10..]).await.unwrap();
        let (detected, len) = task.await.unwrap().unwrap();
        assert_eq!((detected, len), (Detected::Http2, 24));
    }

    #[tokio::test]
    async fn http1_and_closed_connections() {
        let mut io = &b"GET / HTTP/1.1\r\n\r\n"[..];
        assert_eq!(sniff(&mut io, None).await.unwrap().0, Detected::Http1);
        let mut empty = &b""[..];
        assert!(matches!(sniff(&mut empty, None).await, Err(NoCodec::Closed)));
    }

    #[tokio::test(start_paused = true)]
    async fn silent_connection_times_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let r = sniff(&mut server, Some(Duration::from_secs(5))).await;
        assert!(matches!(r, Err(NoCodec::IdleTimeout)));
    }

    #[tokio::test]
    async fn prefixed_reads_prefix_then_inner() {
        let mut io = Prefixed::new(b"ab".to_vec(), &b"cd"[..]);
        let mut out = String::new();
        io.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "abcd");
    }

    #[test]
    fn versions_envoy_answers_426() {
        assert!(unsupported_http_version(b"GET / HTTP/9.9\r\nhost: x\r\n"));
        assert!(unsupported_http_version(b"GET / HTTP/2.0\r\n"));
        assert!(!unsupported_http_version(b"GET / HTTP/1.1\r\n"));
        assert!(!unsupported_http_version(b"GET / HTTP/1.0\r\n"));
        assert!(!unsupported_http_version(b"GET / HTTP/9.9"), "incomplete line");
        assert!(!unsupported_http_version(b"GET / HTTPS/9.9\r\n"));
    }
}
