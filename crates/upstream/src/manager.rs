//! The cluster manager: every cluster of the bootstrap, DNS discovery tasks and Envoy's
//! initialization barrier.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use legate_config::model::{self, DiscoveryType};
use legate_stats::{GaugeMode, Store};

use crate::cluster::Cluster;
use crate::dns::DnsResolver;
use crate::stats::ManagerStats;
use crate::UpstreamError;

/// All clusters of the process, shared (via `Arc`) by the workers and the admin.
pub struct ClusterManager {
    clusters: Vec<Arc<Cluster>>,
    by_name: foldhash::HashMap<String, usize>,
    store: Store,
    started: AtomicBool,
    /// One resolver per distinct resolver set (empty = system configuration).
    resolvers: Mutex<HashMap<Vec<SocketAddr>, Arc<DnsResolver>>>,
}

impl ClusterManager {
    /// Builds every cluster (STATIC ones get their hosts at once) and the `cluster_manager.*`
    /// stats. Fails on what Envoy refuses at startup: duplicate names, STATIC names that are
    /// not IPs, LOGICAL_DNS without exactly one endpoint, bad hash balancer sizes.
    pub fn new(clusters: &[model::Cluster], stats: &Store) -> Result<Arc<Self>, UpstreamError> {
        let manager_stats = ManagerStats::new(stats);
        let mut by_name = foldhash::HashMap::with_capacity_and_hasher(clusters.len(), Default::default());
        let mut built = Vec::with_capacity(clusters.len());
        for (i, c) in clusters.iter().enumerate() {
            if by_name.insert(c.name.clone(), i).is_some() {
                return Err(UpstreamError::InvalidConfig(format!("cluster manager: duplicate cluster '{}'", c.name)));
            }
            built.push(Arc::new(Cluster::new(i, c, stats, manager_stats.cluster_updated.clone())?));
        }
        let n = built.len() as u64;
        manager_stats.cluster_added.add(n);
        manager_stats.active_clusters.set(n);
        stats.gauge("thread_local_cluster_manager.main_thread.clusters_inflated", GaugeMode::NeverImport).set(n);
        Ok(Arc::new(Self {
            clusters: built,
            by_name,
            store: stats.clone(),
            started: AtomicBool::new(false),
            resolvers: Mutex::new(HashMap::new()),
        }))
    }

    /// Spawns the DNS discovery tasks (one per STRICT_DNS/LOGICAL_DNS endpoint) and the active
    /// health checkers and outlier detectors (one per cluster that has them) on the current
    /// tokio runtime. Idempotent. The tasks stop when the manager is dropped.
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        for cluster in &self.clusters {
            if cluster.config.health_check.is_some() {
                tokio::spawn(crate::health::run(Arc::downgrade(cluster)));
            }
            if let Some(rx) = cluster.outlier.as_ref().and_then(|d| d.take_receiver()) {
                tokio::spawn(crate::outlier::run(Arc::downgrade(cluster), rx));
            }
            if cluster.config.discovery == DiscoveryType::Static || cluster.config.endpoints.is_empty() {
                continue;
            }
            let resolver = match self.resolver(&cluster.config.dns_resolvers) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(cluster = %cluster.config.name, "no DNS resolver: {e}");
                    for _ in &cluster.config.endpoints {
                        cluster.stats.update_attempt.inc();
                        cluster.stats.update_failure.inc();
                    }
                    cluster.mark_initialized();
                    continue;
                }
            };
            for target in 0..cluster.config.endpoints.len() {
                tokio::spawn(resolve_loop(Arc::downgrade(cluster), target, resolver.clone()));
            }
        }
    }

    fn resolver(&self, servers: &[SocketAddr]) -> Result<Arc<DnsResolver>, String> {
        let mut resolvers = self.resolvers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = resolvers.get(servers) {
            return Ok(r.clone());
        }
        let r = Arc::new(DnsResolver::new(servers)?);
        resolvers.insert(servers.to_vec(), r.clone());
        Ok(r)
    }

    /// Resolves once every cluster is initialized: STATIC ones at once, DNS ones after the
    /// first answer or failure of any of their names, and clusters with active health checking
    /// after every host's first check (Envoy's init manager, before listeners start).
    pub async fn wait_initialized(&self) {
        for c in &self.clusters {
            c.wait_initialized().await;
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

    /// Records that worker `index` has its per-worker view of the clusters
    /// (`thread_local_cluster_manager.worker_<index>.clusters_inflated`, as Envoy reports).
    pub fn worker_started(&self, index: usize) {
        self.store
            .gauge(&format!("thread_local_cluster_manager.worker_{index}.clusters_inflated"), GaugeMode::NeverImport)
            .set(self.clusters.len() as u64);
    }

    #[cfg(test)]
    pub(crate) fn resolver_count(&self) -> usize {
        self.resolvers.lock().unwrap().len()
    }
}

/// Resolves endpoint `target` of the cluster forever, at the refresh rate Envoy would use.
async fn resolve_loop(cluster: std::sync::Weak<Cluster>, target: usize, resolver: Arc<DnsResolver>) {
    loop {
        let next = {
            let Some(cluster) = cluster.upgrade() else { return };
            let Some(endpoint) = cluster.config.endpoints.get(target) else { return };
            cluster.stats.update_attempt.inc();
            let result = resolver.resolve(&endpoint.address, cluster.config.dns_lookup_family).await;
            let next = cluster.apply_resolution(target, result);
            cluster.mark_initialized();
            next
        };
        tokio::time::sleep(next).await;
    }
}

#[cfg(test)]
mod tests;
