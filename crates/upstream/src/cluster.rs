//! Clusters and the cluster manager: membership (STATIC, STRICT_DNS, LOGICAL_DNS), its stats,
//! and the load balancer snapshot swapped in on every membership change.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use legate_config::model::{self, DiscoveryType};
use legate_stats::{GaugeMode, Store};
use tokio::sync::watch;

use crate::dns::DnsResolver;
use crate::host::{Host, HostSet};
use crate::lb::{LbContext, LbSnapshot};
use crate::stats::ClusterStats;
use crate::UpstreamError;

/// One upstream cluster.
pub struct Cluster {
    /// Position in the cluster manager (indexes per-worker state such as pools).
    pub index: usize,
    /// Configuration.
    pub config: model::Cluster,
    /// Stats.
    pub stats: ClusterStats,
    hosts: ArcSwap<HostSet>,
    lb: ArcSwap<LbSnapshot>,
    initialized: watch::Sender<bool>,
}

impl Cluster {
    fn new(index: usize, config: &model::Cluster, store: &Store) -> Self {
        let stats = ClusterStats::new(store, config.stat_name());
        let cluster = Self {
            index,
            hosts: ArcSwap::from_pointee(HostSet::default()),
            lb: ArcSwap::from_pointee(LbSnapshot::new(Vec::new(), config.lb_policy)),
            initialized: watch::channel(false).0,
            stats,
            config: config.clone(),
        };
        if config.discovery == DiscoveryType::Static {
            let hosts = config
                .endpoints
                .iter()
                .filter_map(|e| {
                    let ip = e.address.parse().ok()?;
                    Some(Arc::new(Host::new(SocketAddr::new(ip, e.port), e.hostname.clone(), e.weight, e.priority)))
                })
                .collect();
            cluster.set_hosts(hosts);
            cluster.initialized.send_replace(true);
        }
        cluster
    }

    /// Current membership.
    pub fn hosts(&self) -> Arc<HostSet> {
        self.hosts.load_full()
    }

    /// Picks a host; `None` means no healthy upstream.
    pub fn choose_host(&self, ctx: &LbContext) -> Option<Arc<Host>> {
        self.lb.load().choose(ctx)
    }

    /// Replaces the membership and rebuilds the load balancer.
    fn set_hosts(&self, hosts: Vec<Arc<Host>>) {
        let set = HostSet::new(hosts);
        let active = set.active_priority();
        let s = &self.stats;
        s.membership_total.set(set.hosts.len() as u64);
        s.membership_healthy.set(set.hosts.len() as u64);
        s.membership_degraded.set(0);
        s.membership_excluded.set(0);
        s.max_host_weight.set(set.hosts.iter().map(|h| u64::from(h.weight)).max().unwrap_or(0));
        s.membership_change.inc();
        self.lb.store(Arc::new(LbSnapshot::new(active, self.config.lb_policy)));
        self.hosts.store(Arc::new(set));
    }

    /// One DNS refresh; returns when to refresh next.
    async fn refresh_dns(&self, resolver: &DnsResolver) -> Duration {
        let cfg = &self.config;
        self.stats.update_attempt.inc();
        let current = self.hosts();
        let mut hosts = Vec::new();
        let mut failed = false;
        let mut ttl_deadline: Option<Instant> = None;
        for e in &cfg.endpoints {
            match resolver.resolve(&e.address).await {
                Ok(r) => {
                    ttl_deadline = Some(ttl_deadline.map_or(r.valid_until, |d| d.min(r.valid_until)));
                    let addrs: Vec<_> = match cfg.discovery {
                        DiscoveryType::LogicalDns => r.addresses.into_iter().take(1).collect(),
                        _ => r.addresses,
                    };
                    for ip in addrs {
                        let addr = SocketAddr::new(ip, e.port);
                        // Hosts that stay keep their identity and stats.
                        let host = current
                            .get(&addr)
                            .filter(|h| h.weight == e.weight.max(1) && h.priority == e.priority)
                            .cloned()
                            .unwrap_or_else(|| Arc::new(Host::new(addr, e.address.clone(), e.weight, e.priority)));
                        if !hosts.iter().any(|h: &Arc<Host>| h.address == addr) {
                            hosts.push(host);
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(cluster = %cfg.name, name = %e.address, "DNS resolution failed: {err}");
                    failed = true;
                }
            }
        }
        if failed {
            // Envoy keeps the previous hosts when resolution fails.
            self.stats.update_failure.inc();
        } else {
            self.stats.update_success.inc();
            if hosts.is_empty() {
                self.stats.update_empty.inc();
            }
            let same = hosts.len() == current.hosts.len()
                && hosts.iter().zip(current.hosts.iter()).all(|(a, b)| Arc::ptr_eq(a, b));
            if same {
                self.stats.update_no_rebuild.inc();
            } else {
                self.set_hosts(hosts);
            }
        }
        self.initialized.send_replace(true);
        match (cfg.respect_dns_ttl, ttl_deadline) {
            (true, Some(d)) if !failed => d.saturating_duration_since(Instant::now()).max(Duration::from_secs(1)),
            _ => cfg.dns_refresh_rate,
        }
    }
}

/// All clusters of the process.
pub struct ClusterManager {
    clusters: Vec<Arc<Cluster>>,
    by_name: std::collections::HashMap<String, usize>,
}

impl ClusterManager {
    /// Builds every cluster; STATIC clusters get their hosts at once.
    pub fn new(clusters: &[model::Cluster], stats: &Store) -> Result<Arc<Self>, UpstreamError> {
        let clusters: Vec<Arc<Cluster>> = clusters.iter().enumerate().map(|(i, c)| Arc::new(Cluster::new(i, c, stats))).collect();
        let n = clusters.len() as u64;
        stats.counter("cluster_manager.cluster_added").add(n);
        stats.gauge("cluster_manager.active_clusters", GaugeMode::NeverImport).set(n);
        stats.gauge("cluster_manager.warming_clusters", GaugeMode::NeverImport).set(0);
        let by_name = clusters.iter().enumerate().map(|(i, c)| (c.config.name.clone(), i)).collect();
        Ok(Arc::new(Self { clusters, by_name }))
    }

    /// Spawns DNS discovery for DNS clusters on the current tokio runtime.
    pub fn start(self: &Arc<Self>) {
        for cluster in &self.clusters {
            if cluster.config.discovery == DiscoveryType::Static {
                continue;
            }
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let resolver = match DnsResolver::new(&cluster.config.dns_resolvers, cluster.config.dns_lookup_family) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(cluster = %cluster.config.name, "no DNS resolver: {e}");
                        cluster.stats.update_failure.inc();
                        cluster.initialized.send_replace(true);
                        return;
                    }
                };
                loop {
                    let next = cluster.refresh_dns(&resolver).await;
                    tokio::time::sleep(next).await;
                }
            });
        }
    }

    /// Resolves once every cluster has its first membership (or a failed first resolution).
    pub async fn wait_initialized(&self) {
        for c in &self.clusters {
            let mut rx = c.initialized.subscribe();
            let _ = rx.wait_for(|ready| *ready).await;
        }
    }

    /// The cluster called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.by_name.get(name).map(|i| &self.clusters[*i])
    }

    /// All clusters in config order.
    pub fn clusters(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.clusters.iter()
    }
}
