//! Opening upstream connections: TCP within the cluster's `connect_timeout`, then TLS when the
//! cluster has a transport socket, counted in the cluster's connection stats; and the byte
//! streams they give (plain or TLS, and one that counts the bytes it carries).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use legate_config::model::UpstreamProtocol;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::host::Host;
use crate::UpstreamError;

/// What a new upstream connection will carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// HTTP/1.1 (`upstream_cx_http1_total`).
    Http1,
    /// HTTP/2 (`upstream_cx_http2_total`).
    Http2,
    /// Raw bytes (TCP proxy).
    Tcp,
    /// Chosen by ALPN once connected (`auto_config`): the adopting pool counts it.
    Alpn,
}

/// Connects to `host` within the cluster's `connect_timeout`, counting the connection
/// (`upstream_cx_total`, `upstream_cx_http{1,2}_total`, `upstream_cx_active`, connect failures and
/// timeouts, `upstream_cx_connect_ms`). Once connected, the caller owns the `cx_active` count.
/// `tls_name` is the request's host for a cluster's `auto_sni` / `auto_san_validation`.
pub(crate) async fn connect_tcp(cluster: &Cluster, host: &Host, codec: Codec, tls_name: Option<&str>) -> Result<UpstreamStream, UpstreamError> {
    let s = &cluster.stats;
    s.upstream_cx_total.inc();
    match codec {
        Codec::Http1 => s.upstream_cx_http1_total.inc(),
        Codec::Http2 => s.upstream_cx_http2_total.inc(),
        Codec::Tcp | Codec::Alpn => {}
    }
    s.upstream_cx_active.inc();
    host.stats.cx_total.fetch_add(1, Ordering::Relaxed);
    host.stats.cx_active.fetch_add(1, Ordering::Relaxed);
    let mut opening = Opening { cluster, host, settled: false };
    let start = Instant::now();
    let stream = match tokio::time::timeout(cluster.config.connect_timeout, TcpStream::connect(host.address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            opening.failed(false);
            return Err(UpstreamError::ConnectFailure { addr: host.address, source });
        }
        Err(_) => {
            s.upstream_cx_connect_timeout.inc();
            opening.failed(true);
            return Err(UpstreamError::ConnectTimeout);
        }
    };
    let _ = stream.set_nodelay(true);
    let stream = match &cluster.tls {
        None => UpstreamStream::Plain(stream),
        // The handshake is part of connecting: a failure is a connect failure, as in Envoy.
        Some(tls) => match tls.handshake(stream, tls_name).await {
            Ok(tls) => UpstreamStream::Tls(Box::new(tls)),
            Err(e) => {
                opening.failed(true);
                return Err(e);
            }
        },
    };
    opening.settled = true;
    s.upstream_cx_connect_ms.record(start.elapsed().as_millis() as u64);
    if cluster.config.http.protocol == UpstreamProtocol::Auto && codec != Codec::Tcp {
        // Envoy's ALPN pool counts each connection twice: as the TCP connection it opens, then
        // as the HTTP connection it becomes.
        s.upstream_cx_total.inc();
        host.stats.cx_total.fetch_add(1, Ordering::Relaxed);
    }
    Ok(stream)
}

/// A connection being opened, counted as active from the start. It ends as a connect failure,
/// as a connection handed to its user (who then owns the `cx_active` count), or, when the
/// opening is given up (its future dropped), as Legate's close: never left counted.
struct Opening<'a> {
    cluster: &'a Cluster,
    host: &'a Host,
    settled: bool,
}

impl Opening<'_> {
    /// Counts a connect that failed (refused, timed out, TLS handshake), closed by Legate
    /// (`local`) or by the upstream.
    fn failed(&mut self, local: bool) {
        self.cluster.stats.upstream_cx_connect_fail.inc();
        self.host.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
        self.closed(local);
    }

    fn closed(&mut self, local: bool) {
        self.settled = true;
        let s = &self.cluster.stats;
        s.upstream_cx_destroy.inc();
        if local { &s.upstream_cx_destroy_local } else { &s.upstream_cx_destroy_remote }.inc();
        s.upstream_cx_active.dec();
        self.host.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.closed(true);
        }
    }
}

/// An upstream connection's byte stream: plain TCP or TLS over it.
pub enum UpstreamStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (`transport_socket` on the cluster).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl UpstreamStream {
    /// The negotiated ALPN protocol, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(t) => t.get_ref().1.alpn_protocol(),
        }
    }
}

// === impl UpstreamStream ===

impl AsyncRead for UpstreamStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, data),
            Self::Tls(s) => Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The upstream TCP stream, counting bytes into the cluster's stats as they flow.
pub(crate) struct CountedStream {
    pub(crate) stream: UpstreamStream,
    pub(crate) cluster: Arc<Cluster>,
}

impl AsyncRead for CountedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.cluster.stats.upstream_cx_rx_bytes_total.add(n as u64);
        }
        r
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            this.cluster.stats.upstream_cx_tx_bytes_total.add(n as u64);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.cluster.stats.upstream_cx_tx_bytes_total.add(n as u64);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use legate_config::model::DiscoveryType;
    use legate_stats::Store;
    use tokio::net::TcpSocket;

    use super::*;
    use crate::test_support::cluster_config;

    #[tokio::test]
    async fn an_opening_given_up_is_counted_closed_by_legate() {
        // A listener whose backlog is full: further connects hang (until connect_timeout, 5 s).
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..3 {
            fillers.push(tokio::spawn(TcpStream::connect(addr)));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let store = Store::new();
        let cfg = cluster_config("c", DiscoveryType::Static, &[("127.0.0.1", addr.port(), 1, 0)]);
        let cluster = Cluster::new(0, &cfg, &store, store.counter("cluster_manager.cluster_updated")).unwrap();
        let host = cluster.hosts().hosts[0].clone();
        tokio::select! {
            r = connect_tcp(&cluster, &host, Codec::Http1, None) => panic!("connected past a full backlog: {:?}", r.is_ok()),
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
        let s = &cluster.stats;
        assert_eq!(s.upstream_cx_total.value(), 1);
        assert_eq!(s.upstream_cx_active.value(), 0, "a connection given up mid-connect stays counted");
        assert_eq!(s.upstream_cx_destroy_local.value(), 1);
        assert_eq!(s.upstream_cx_connect_fail.value(), 0);
        assert_eq!(host.stats.cx_active.load(Ordering::Relaxed), 0);
        drop(listener);
        for f in fillers {
            f.abort();
        }
    }
}
