//! Raw TCP connections to a cluster's hosts (the TCP proxy's upstream side), accounted as
//! Envoy's TCP connection pool accounts them: each session is one upstream request, pending
//! while its connection opens (`upstream_rq_pending_*`) and active while the connection lives
//! (`upstream_rq_total`, `upstream_rq_active`, the host's `rq_total`/`rq_active`, the
//! `max_requests` circuit breaker), and its close is `upstream_cx_destroy_*_with_active_rq`.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::breakers::ConnectionSlot;
use crate::cluster::Cluster;
use crate::host::Host;
use crate::connect::{connect_tcp, Codec, UpstreamStream};
use crate::pool::PendingGuard;
use crate::UpstreamError;

/// An open upstream TCP connection carrying one session; it reads and writes the upstream's
/// bytes. Dropping it accounts for the session's end and the connection's close.
pub struct TcpConnection {
    stream: UpstreamStream,
    accounting: CloseAccounting,
}

/// What dropping the connection counts.
struct CloseAccounting {
    /// Released after the accounting (`max_connections`).
    _slot: ConnectionSlot,
    cluster: Arc<Cluster>,
    host: Arc<Host>,
    opened: Instant,
    /// Legate shut down its sending side (forwarding the downstream's end of stream).
    shut_down: bool,
    /// The upstream ended the connection: it sent its end of stream after Legate's, or failed
    /// it (reset). An upstream end of stream before Legate's leaves the close to Legate, as
    /// Envoy counts it.
    closed_by_upstream: bool,
    /// A session is on the connection (counted as an active request until the close).
    with_session: bool,
}

// === impl TcpConnection ===

impl TcpConnection {
    /// Opens a session's connection to `host` within the cluster's `connect_timeout`. The
    /// session waits as a pending request (`max_pending_requests`), its connection counts under
    /// `max_connections` (the caller checked [`Cluster::connection_allowed`]), and once
    /// connected it is an active request under `max_requests`. An open breaker fails the
    /// attempt with [`UpstreamError::Overflow`] (`upstream_rq_pending_overflow`), as Envoy's
    /// TCP pool does.
    pub async fn connect(cluster: &Arc<Cluster>, host: &Arc<Host>) -> Result<Self, UpstreamError> {
        let pending = PendingGuard::admit(cluster)?;
        let slot = ConnectionSlot::new(cluster);
        let connected = connect_tcp(cluster, host, Codec::Tcp, None).await;
        pending.settle(connected.is_ok());
        let stream = connected?;
        let mut accounting = CloseAccounting {
            _slot: slot,
            cluster: cluster.clone(),
            host: host.clone(),
            opened: Instant::now(),
            shut_down: false,
            closed_by_upstream: false,
            with_session: false,
        };
        if !cluster.breakers.requests.can_create() {
            cluster.stats.upstream_rq_pending_overflow.inc();
            // The connection closes without a session on it.
            drop(accounting);
            return Err(UpstreamError::Overflow);
        }
        let s = &cluster.stats;
        s.upstream_rq_total.inc();
        s.upstream_rq_active.inc();
        cluster.breakers.requests.inc();
        host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
        host.stats.rq_active.fetch_add(1, Ordering::Relaxed);
        accounting.with_session = true;
        Ok(Self { stream, accounting })
    }

    /// Records that the upstream failed the connection (an I/O error on it).
    fn note_error<T>(&mut self, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(_)) = &r {
            self.accounting.closed_by_upstream = true;
        }
        r
    }
}

impl AsyncRead for TcpConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            if buf.filled().len() == before && buf.remaining() > 0 && self.accounting.shut_down {
                self.accounting.closed_by_upstream = true;
            }
        }
        self.note_error(r)
    }
}

impl AsyncWrite for TcpConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, data);
        self.note_error(r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.stream).poll_flush(cx);
        self.note_error(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.accounting.shut_down = true;
        let r = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.note_error(r)
    }
}

// === impl CloseAccounting ===

impl Drop for CloseAccounting {
    fn drop(&mut self) {
        let s = &self.cluster.stats;
        let local = !self.closed_by_upstream;
        s.upstream_cx_destroy.inc();
        if local { &s.upstream_cx_destroy_local } else { &s.upstream_cx_destroy_remote }.inc();
        if self.with_session {
            s.upstream_cx_destroy_with_active_rq.inc();
            if local { &s.upstream_cx_destroy_local_with_active_rq } else { &s.upstream_cx_destroy_remote_with_active_rq }
                .inc();
            s.upstream_rq_active.dec();
            self.cluster.breakers.requests.dec();
            self.host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
        }
        s.upstream_cx_length_ms.record(self.opened.elapsed().as_millis() as u64);
        s.upstream_cx_active.dec();
        self.host.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
    }
}
