//! Hosts and host sets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Per-host counters, as `/clusters` shows them.
#[derive(Debug, Default)]
pub struct HostStats {
    /// Connections opened.
    pub cx_total: AtomicU64,
    /// Connections open now.
    pub cx_active: AtomicU64,
    /// Failed connection attempts.
    pub cx_connect_fail: AtomicU64,
    /// Requests sent.
    pub rq_total: AtomicU64,
    /// Requests in flight.
    pub rq_active: AtomicU64,
    /// Requests with a non-5xx response.
    pub rq_success: AtomicU64,
    /// Requests that failed or got a 5xx.
    pub rq_error: AtomicU64,
    /// Requests that timed out.
    pub rq_timeout: AtomicU64,
}

/// One upstream host.
#[derive(Debug)]
pub struct Host {
    /// Address connections go to.
    pub address: SocketAddr,
    /// `address` as a URI authority, for building upstream request URIs without reparsing.
    pub authority: http::uri::Authority,
    /// Hostname (the DNS name for DNS clusters, the endpoint's `hostname` otherwise).
    pub hostname: String,
    /// Load-balancing weight.
    pub weight: u32,
    /// Priority level.
    pub priority: u32,
    /// Counters.
    pub stats: HostStats,
}

impl Host {
    /// A new host with zeroed stats.
    pub fn new(address: SocketAddr, hostname: String, weight: u32, priority: u32) -> Self {
        let authority = address.to_string().parse().expect("a socket address is a valid authority");
        Self { address, authority, hostname, weight: weight.max(1), priority, stats: HostStats::default() }
    }

    /// Envoy health flags; empty means healthy. Active health checking and outlier detection
    /// (which set `/failed_active_hc`, `/failed_outlier_check`) are not implemented yet, and the
    /// config parser refuses them, so every host is healthy.
    pub fn health_flags(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

/// An immutable membership snapshot of a cluster.
#[derive(Debug, Default)]
pub struct HostSet {
    /// All hosts, in discovery order.
    pub hosts: Vec<Arc<Host>>,
    by_address: HashMap<SocketAddr, usize>,
}

impl HostSet {
    /// Builds a set from `hosts`.
    pub fn new(hosts: Vec<Arc<Host>>) -> Self {
        let by_address = hosts.iter().enumerate().map(|(i, h)| (h.address, i)).collect();
        Self { hosts, by_address }
    }

    /// The host at `address`, if a member.
    pub fn get(&self, address: &SocketAddr) -> Option<&Arc<Host>> {
        self.by_address.get(address).map(|i| &self.hosts[*i])
    }

    /// Hosts of the lowest priority level that has any (all hosts are healthy).
    pub fn active_priority(&self) -> Vec<Arc<Host>> {
        let Some(p) = self.hosts.iter().map(|h| h.priority).min() else { return Vec::new() };
        self.hosts.iter().filter(|h| h.priority == p).cloned().collect()
    }
}
