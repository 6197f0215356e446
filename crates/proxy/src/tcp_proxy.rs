//! `envoy.filters.network.tcp_proxy`: each downstream connection gets a connection to a host of
//! the cluster and bytes flow both ways until both sides are done. A side that finishes sending
//! (EOF) half-closes the other direction, so half-closed protocols keep working; the session
//! ends on `idle_timeout` without traffic either way.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use legate_config::model::{TcpProxy, TcpProxyTarget};
use legate_stats::{Counter, Store};
use legate_upstream::{ClusterManager, LbContext, TcpConnection, UpstreamError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::access_log::{AccessLogs, LogRecord, WriterError};
use crate::local_reply::ResponseFlags;

/// A listener's TCP proxy.
pub struct TcpProxyRuntime {
    config: TcpProxy,
    clusters: Arc<ClusterManager>,
    stats: TcpProxyStats,
    access_logs: Option<Arc<AccessLogs>>,
}

/// `tcp.<stat_prefix>.*`.
struct TcpProxyStats {
    downstream_cx_total: Counter,
    downstream_cx_no_route: Counter,
    downstream_cx_rx_bytes_total: Counter,
    downstream_cx_tx_bytes_total: Counter,
    idle_timeout: Counter,
}

impl TcpProxyRuntime {
    /// Instantiates the filter; access log files are flushed at least every `flush_interval`.
    pub fn new(
        config: &TcpProxy,
        clusters: Arc<ClusterManager>,
        store: &Store,
        flush_interval: Duration,
    ) -> Result<Self, WriterError> {
        let c = |n: &str| store.counter(&format!("tcp.{}.{n}", config.stat_prefix));
        let stats = TcpProxyStats {
            downstream_cx_total: c("downstream_cx_total"),
            downstream_cx_no_route: c("downstream_cx_no_route"),
            downstream_cx_rx_bytes_total: c("downstream_cx_rx_bytes_total"),
            downstream_cx_tx_bytes_total: c("downstream_cx_tx_bytes_total"),
            idle_timeout: c("idle_timeout"),
        };
        let access_logs = AccessLogs::new(&config.access_log, &crate::hcm::hostname(), store, flush_interval)?;
        Ok(Self { config: config.clone(), clusters, stats, access_logs })
    }

    /// Proxies `downstream` (from `remote`, accepted on `local`) until both directions are
    /// finished or the session idles out.
    pub async fn serve<D>(&self, downstream: D, remote: SocketAddr, local: SocketAddr)
    where
        D: AsyncRead + AsyncWrite + Unpin,
    {
        let stats = &self.stats;
        stats.downstream_cx_total.inc();
        let activity = Arc::new(Activity { start: Instant::now(), last_ms: AtomicU64::new(0), rx: AtomicU64::new(0), tx: AtomicU64::new(0) });
        let mut log = SessionLog {
            record: self.access_logs.as_ref().map(|l| l.tcp_record(activity.start.into_std(), remote, local)),
            activity: activity.clone(),
        };
        let Some((name, cluster)) = self.pick_cluster().and_then(|name| Some((name, self.clusters.get(name)?))) else {
            stats.downstream_cx_no_route.inc();
            if let Some(r) = log.record() {
                r.flag(ResponseFlags::NO_CLUSTER);
            }
            return;
        };
        if let Some(r) = log.record() {
            r.cluster(name);
        }
        let mut upstream = None;
        for _ in 0..self.config.max_connect_attempts {
            // As in Envoy, a session over the cluster's `max_connections` is closed at once.
            if !cluster.connection_allowed() {
                if let Some(r) = log.record() {
                    r.flag(ResponseFlags::UPSTREAM_OVERFLOW);
                }
                return;
            }
            let Some(host) = cluster.choose_host(&LbContext::default()) else {
                if let Some(r) = log.record() {
                    r.flag(ResponseFlags::NO_HEALTHY_UPSTREAM);
                }
                return;
            };
            if let Some(r) = log.record() {
                r.host(host.address);
            }
            match TcpConnection::connect(cluster, &host).await {
                Ok(c) => {
                    upstream = Some(c);
                    break;
                }
                // A breaker overflow in the pool fails the attempt without a flag (Envoy's
                // local close while connecting).
                Err(UpstreamError::Overflow) => {}
                Err(e) => {
                    tracing::debug!("tcp_proxy {}: {e}", self.config.stat_prefix);
                    if let Some(r) = log.record() {
                        r.flag(e.response_flag());
                        r.transport_failure(e.transport_failure_reason());
                    }
                }
            }
        }
        let Some(mut upstream) = upstream else {
            // Envoy flags a session whose connect attempts all failed with URX too, even with
            // a single attempt (verified against Envoy 1.40).
            if let Some(r) = log.record() {
                r.flag(ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED);
            }
            cluster.stats.upstream_cx_connect_attempts_exceeded.inc();
            return;
        };
        let mut down = Metered {
            io: downstream,
            activity: activity.clone(),
            read: stats.downstream_cx_rx_bytes_total.clone(),
            written: stats.downstream_cx_tx_bytes_total.clone(),
        };
        let copy = tokio::io::copy_bidirectional(&mut down, &mut upstream);
        let outcome = match self.config.idle_timeout {
            None => Some(copy.await),
            Some(limit) => tokio::select! {
                r = copy => Some(r),
                () = activity.idle_for(limit) => None,
            },
        };
        if outcome.is_none() {
            stats.idle_timeout.inc();
        }
    }

    fn pick_cluster(&self) -> Option<&str> {
        match &self.config.target {
            TcpProxyTarget::Cluster(name) => Some(name),
            TcpProxyTarget::Weighted(clusters) => {
                let total: u64 = clusters.iter().map(|(_, w)| u64::from(*w)).sum();
                let mut pick = rand::random::<u64>() % total.max(1);
                clusters.iter().find_map(|(name, w)| {
                    if pick < u64::from(*w) {
                        Some(name.as_str())
                    } else {
                        pick -= u64::from(*w);
                        None
                    }
                })
            }
        }
    }
}

/// When bytes last moved, in ms since the session started, and the session's byte counts.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    /// Bytes received from downstream.
    rx: AtomicU64,
    /// Bytes sent downstream.
    tx: AtomicU64,
}

/// Writes the session's access log lines when the session ends, however it ends.
struct SessionLog {
    record: Option<Box<LogRecord>>,
    activity: Arc<Activity>,
}

impl SessionLog {
    fn record(&mut self) -> Option<&mut LogRecord> {
        self.record.as_deref_mut()
    }
}

impl Drop for SessionLog {
    fn drop(&mut self) {
        if let Some(mut r) = self.record.take() {
            r.add_received(self.activity.rx.load(Ordering::Relaxed));
            r.sent(self.activity.tx.load(Ordering::Relaxed) as usize);
            r.finish();
        }
    }
}

impl Activity {
    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// The downstream side: counts bytes and records activity.
struct Metered<D> {
    io: D,
    activity: Arc<Activity>,
    read: Counter,
    written: Counter,
}

impl<D: AsyncRead + Unpin> AsyncRead for Metered<D> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.read.add(n as u64);
            self.activity.rx.fetch_add(n as u64, Ordering::Relaxed);
            self.activity.touch();
        }
        r
    }
}

impl<D: AsyncWrite + Unpin> AsyncWrite for Metered<D> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            if n > 0 {
                self.written.add(n as u64);
                self.activity.tx.fetch_add(n as u64, Ordering::Relaxed);
                self.activity.touch();
            }
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_timer_restarts_on_activity() {
        let a = Activity { start: Instant::now(), last_ms: AtomicU64::new(0), rx: AtomicU64::new(0), tx: AtomicU64::new(0) };
        let idle = a.idle_for(Duration::from_secs(10));
        tokio::pin!(idle);
        tokio::time::advance(Duration::from_secs(6)).await;
        a.touch();
        tokio::select! {
            biased;
            () = &mut idle => panic!("fired although bytes moved 4 s ago"),
            () = tokio::time::sleep(Duration::from_secs(9)) => {}
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        idle.await;
        assert!(a.start.elapsed() >= Duration::from_secs(16));
    }
}
