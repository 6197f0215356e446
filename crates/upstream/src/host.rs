//! Hosts and immutable host-set snapshots.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Per-host counters, as Envoy's `/clusters` shows them.
#[derive(Debug, Default)]
pub struct HostStats {
    /// Connections opened (counted when the connect starts, as Envoy does).
    pub cx_total: AtomicU64,
    /// Connections open now.
    pub cx_active: AtomicU64,
    /// Failed connection attempts (refused or timed out).
    pub cx_connect_fail: AtomicU64,
    /// Requests sent on a connection to this host.
    pub rq_total: AtomicU64,
    /// Requests in flight (read by LEAST_REQUEST).
    pub rq_active: AtomicU64,
    /// Requests with a non-5xx response.
    pub rq_success: AtomicU64,
    /// Requests that failed or got a 5xx.
    pub rq_error: AtomicU64,
    /// Requests that timed out.
    pub rq_timeout: AtomicU64,
}

/// One upstream host (an endpoint, or one address a DNS name resolved to).
#[derive(Debug)]
pub struct Host {
    /// Address connections go to.
    pub address: SocketAddr,
    /// Hostname: the endpoint's `hostname`, else the DNS name for DNS clusters, else empty.
    pub hostname: String,
    /// Load-balancing weight (at least 1).
    pub weight: u32,
    /// Priority level (0 is the highest).
    pub priority: u32,
    /// Counters.
    pub stats: HostStats,
    /// Health flags ([`Host::FAILED_ACTIVE_HC`], [`Host::ACTIVE_HC_TIMEOUT`]), shared by the
    /// health checker (main thread) and the load balancers (workers).
    flags: AtomicU32,
    /// Outlier detection counters.
    pub(crate) outlier: crate::outlier::HostMonitor,
    /// Whether the host is in its cluster's current membership: cleared when a membership
    /// without it is published, so that its idle connections are not reused.
    member: AtomicBool,
}

impl Host {
    /// The host failed active health checking (or has not passed its first check yet).
    pub const FAILED_ACTIVE_HC: u32 = 1;
    /// The host's last failed active health check timed out (informational).
    pub const ACTIVE_HC_TIMEOUT: u32 = 1 << 1;
    /// The host is ejected by outlier detection.
    pub const FAILED_OUTLIER_CHECK: u32 = 1 << 2;
    /// Flags that keep a host out of load balancing outside panic mode.
    const UNHEALTHY: u32 = Self::FAILED_ACTIVE_HC | Self::FAILED_OUTLIER_CHECK;

    /// A new host with zeroed stats and no health flag.
    pub fn new(address: SocketAddr, hostname: String, weight: u32, priority: u32) -> Self {
        Self { address, hostname, weight: weight.max(1), priority, stats: HostStats::default(), flags: AtomicU32::new(0), outlier: crate::outlier::HostMonitor::new(), member: AtomicBool::new(true) }
    }

    /// Whether the host is in its cluster's current membership.
    pub(crate) fn is_member(&self) -> bool {
        self.member.load(Ordering::Acquire)
    }

    /// Records whether the host is in the membership its cluster publishes.
    pub(crate) fn set_member(&self, member: bool) {
        self.member.store(member, Ordering::Release);
    }

    /// Envoy's health flags for `/clusters` (`healthy` when empty).
    pub fn health_flags(&self) -> Vec<&'static str> {
        let flags = self.flags.load(Ordering::Acquire);
        [
            (Self::FAILED_ACTIVE_HC, "/failed_active_hc"),
            (Self::FAILED_OUTLIER_CHECK, "/failed_outlier_check"),
            (Self::ACTIVE_HC_TIMEOUT, "/active_hc_timeout"),
        ]
            .into_iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, name)| name)
            .collect()
    }

    /// Whether `flag` (one of the `Host::*` flag constants) is set.
    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    /// Sets `flag`.
    pub fn set_flag(&self, flag: u32) {
        self.flags.fetch_or(flag, Ordering::AcqRel);
    }

    /// Clears `flag`.
    pub fn clear_flag(&self, flag: u32) {
        self.flags.fetch_and(!flag, Ordering::AcqRel);
    }

    /// Outlier detection's success rates of the last interval (external origin, local origin),
    /// when computed (`/clusters`).
    pub fn outlier_success_rates(&self) -> (Option<f64>, Option<f64>) {
        self.outlier.success_rates()
    }

    /// Whether the load balancer may pick this host outside panic mode.
    pub fn is_healthy(&self) -> bool {
        self.flags.load(Ordering::Acquire) & Self::UNHEALTHY == 0
    }
}

/// An immutable membership snapshot of a cluster, swapped in whole on every change.
#[derive(Debug, Default)]
pub struct HostSet {
    /// All hosts of all priorities, in discovery order (config order, then DNS answer order).
    pub hosts: Vec<Arc<Host>>,
    priorities: Vec<Vec<Arc<Host>>>,
    by_address: foldhash::HashMap<SocketAddr, usize>,
}

impl HostSet {
    /// Builds a set from `hosts` with at least `levels` priority levels (levels without hosts
    /// exist as empty ones, as Envoy creates a host set per configured priority).
    pub fn new(hosts: Vec<Arc<Host>>, levels: usize) -> Self {
        let max = hosts.iter().map(|h| h.priority as usize + 1).max().unwrap_or(0);
        let mut priorities = vec![Vec::new(); levels.max(max).max(1)];
        for h in &hosts {
            priorities[h.priority as usize].push(h.clone());
        }
        let mut by_address = foldhash::HashMap::with_capacity_and_hasher(hosts.len(), Default::default());
        for (i, h) in hosts.iter().enumerate() {
            by_address.entry(h.address).or_insert(i);
        }
        Self { hosts, priorities, by_address }
    }

    /// The (first) host at `address`, if a member.
    pub fn get(&self, address: &SocketAddr) -> Option<&Arc<Host>> {
        self.by_address.get(address).map(|i| &self.hosts[*i])
    }

    /// Whether this very host (not just its address) is a member.
    pub fn contains(&self, host: &Arc<Host>) -> bool {
        match self.get(&host.address) {
            Some(h) if Arc::ptr_eq(h, host) => true,
            // Several endpoints may resolve to the same address: look further.
            Some(_) => self.hosts.iter().any(|h| Arc::ptr_eq(h, host)),
            None => false,
        }
    }

    /// Hosts per priority level, index = priority.
    pub fn priorities(&self) -> &[Vec<Arc<Host>>] {
        &self.priorities
    }

    /// Number of healthy hosts.
    pub fn healthy_count(&self) -> usize {
        self.hosts.iter().filter(|h| h.is_healthy()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(addr: &str, priority: u32) -> Arc<Host> {
        Arc::new(Host::new(addr.parse().unwrap(), String::new(), 0, priority))
    }

    #[test]
    fn levels_and_lookup() {
        let set = HostSet::new(vec![host("10.0.0.1:80", 2), host("10.0.0.2:80", 0)], 1);
        assert_eq!(set.priorities().len(), 3);
        assert_eq!(set.priorities()[1].len(), 0);
        assert_eq!(set.get(&"10.0.0.1:80".parse().unwrap()).unwrap().priority, 2);
        assert_eq!(set.hosts[0].weight, 1, "weight 0 is raised to 1");
        assert!(HostSet::new(vec![], 0).priorities().len() == 1);
        assert!(set.contains(&set.hosts[1].clone()));
        assert!(!set.contains(&host("10.0.0.2:80", 0)));
    }

    #[test]
    fn health_flags() {
        let h = host("10.0.0.1:80", 0);
        assert!(h.is_healthy() && h.health_flags().is_empty());
        h.set_flag(Host::ACTIVE_HC_TIMEOUT);
        h.set_flag(Host::FAILED_ACTIVE_HC);
        assert!(!h.is_healthy());
        assert_eq!(h.health_flags(), vec!["/failed_active_hc", "/active_hc_timeout"]);
        h.clear_flag(Host::FAILED_ACTIVE_HC);
        assert!(h.is_healthy(), "a timeout alone does not make a host unhealthy");
        assert!(h.has_flag(Host::ACTIVE_HC_TIMEOUT) && !h.has_flag(Host::FAILED_ACTIVE_HC));
        h.set_flag(Host::FAILED_OUTLIER_CHECK);
        assert!(!h.is_healthy());
        assert_eq!(h.health_flags(), vec!["/failed_outlier_check", "/active_hc_timeout"]);
    }
}
