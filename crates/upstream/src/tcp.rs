//! Raw TCP connections to a cluster's hosts (the TCP proxy's upstream side), with the cluster's
//! connection stats.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;

use crate::breakers::ConnectionSlot;
use crate::cluster::Cluster;
use crate::host::Host;
use crate::pool::{connect_tcp, Codec, UpstreamStream};
use crate::UpstreamError;

/// An open upstream TCP connection; dropping it accounts for its close (`upstream_cx_destroy*`,
/// `upstream_cx_length_ms`, `upstream_cx_active`).
pub struct TcpConnection {
    /// The socket (TLS when the cluster has a transport socket).
    pub stream: UpstreamStream,
    accounting: CloseAccounting,
}

struct CloseAccounting {
    /// Released after the accounting (`max_connections`).
    _slot: ConnectionSlot,
    cluster: Arc<Cluster>,
    host: Arc<Host>,
    opened: Instant,
    /// Whether Legate closes it (idle timeout, downstream gone first) rather than the upstream.
    local: bool,
}

impl TcpConnection {
    /// Connects to `host` within the cluster's `connect_timeout`. The connection counts under
    /// the cluster's `max_connections` (the caller checked [`Cluster::connection_allowed`]).
    pub async fn connect(cluster: &Arc<Cluster>, host: &Arc<Host>) -> Result<Self, UpstreamError> {
        let slot = ConnectionSlot::new(cluster);
        let stream = connect_tcp(cluster, host, Codec::Tcp, None).await?;
        Ok(Self {
            stream,
            accounting: CloseAccounting { _slot: slot, cluster: cluster.clone(), host: host.clone(), opened: Instant::now(), local: true },
        })
    }

    /// Records that the upstream closed the connection (counted as `upstream_cx_destroy_remote`).
    pub fn closed_by_upstream(&mut self) {
        self.accounting.local = false;
    }
}

impl Drop for CloseAccounting {
    fn drop(&mut self) {
        let s = &self.cluster.stats;
        s.upstream_cx_destroy.inc();
        if self.local { &s.upstream_cx_destroy_local } else { &s.upstream_cx_destroy_remote }.inc();
        s.upstream_cx_length_ms.record(self.opened.elapsed().as_millis() as u64);
        s.upstream_cx_active.dec();
        self.host.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
    }
}
