//! One upstream cluster: its membership (STATIC, STRICT_DNS, LOGICAL_DNS) and the load
//! balancer snapshot swapped in on every membership change, with Envoy's update semantics and
//! stats.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use legate_config::model::{self, DiscoveryType, LbPolicy};
use legate_stats::{Counter, Store};
use tokio::sync::watch;

use crate::breakers::Breakers;
use crate::dns::Resolution;
use crate::health::HealthCheckStats;
use crate::host::{Host, HostSet};
use crate::lb::{HashLbStats, LbContext, LoadBalancer};
use crate::outlier::{Detector, RequestResult};
use crate::stats::ClusterStats;
use crate::UpstreamError;

/// One upstream cluster, shared by all workers.
pub struct Cluster {
    /// Position in the cluster manager (config order); indexes per-worker state.
    pub index: usize,
    /// Configuration.
    pub config: model::Cluster,
    /// `cluster.<stat_name>.*` stats.
    pub stats: ClusterStats,
    /// Circuit breakers (`circuit_breakers.thresholds` of the default priority).
    pub(crate) breakers: Breakers,
    /// TLS to the hosts (`transport_socket`).
    pub(crate) tls: Option<crate::tls::UpstreamTlsConnector>,
    /// `cluster.<stat_name>.health_check.*` stats, when the cluster has a health check.
    pub(crate) health_stats: Option<HealthCheckStats>,
    /// Outlier detection, when configured.
    pub(crate) outlier: Option<Detector>,
    hosts: ArcSwap<HostSet>,
    lb: ArcSwap<LoadBalancer>,
    hash_stats: HashLbStats,
    levels: usize,
    /// Per endpoint (DNS resolve target): its current hosts.
    targets: Mutex<Vec<Target>>,
    /// Membership known (STATIC at once, DNS after the first answers).
    initialized: watch::Sender<bool>,
    /// The first round of active health checks is done (true without health checking).
    hc_ready: watch::Sender<bool>,
    /// Bumped on every membership change (the health checker follows it).
    members: watch::Sender<u64>,
    cluster_updated: Counter,
}

/// What one configured endpoint currently contributes.
#[derive(Default)]
struct Target {
    hosts: Vec<Arc<Host>>,
    /// LOGICAL_DNS: the resolved address list the logical host was made from.
    logical: Option<Vec<SocketAddr>>,
}

impl Cluster {
    /// Builds a cluster, refusing what Envoy refuses at startup. STATIC clusters (and DNS
    /// clusters without endpoints) are initialized at once.
    pub(crate) fn new(index: usize, config: &model::Cluster, store: &Store, cluster_updated: Counter) -> Result<Self, UpstreamError> {
        validate(config)?;
        let stats = ClusterStats::new(store, config.stat_name());
        let tls = config
            .tls
            .as_ref()
            .map(|t| crate::tls::UpstreamTlsConnector::new(t, &config.http, store, &format!("cluster.{}.", config.stat_name())))
            .transpose()?;
        let hash_stats = HashLbStats::new(store, &format!("cluster.{}.", config.stat_name()), config.lb_policy);
        let levels = match config.discovery {
            DiscoveryType::LogicalDns => 1,
            _ => config.endpoints.iter().map(|e| e.priority as usize + 1).max().unwrap_or(1),
        };
        let empty = HostSet::new(Vec::new(), levels);
        let lb = LoadBalancer::new(&empty, config.lb_policy, config.healthy_panic_threshold, &hash_stats);
        let health_stats = config.health_check.as_ref().map(|_| HealthCheckStats::new(store, config.stat_name()));
        let cluster = Self {
            index,
            health_stats,
            outlier: config.outlier_detection.as_ref().map(|o| Detector::new(o, store, config.stat_name())),
            hosts: ArcSwap::from_pointee(empty),
            lb: ArcSwap::from_pointee(lb),
            hash_stats,
            levels,
            targets: Mutex::new(config.endpoints.iter().map(|_| Target::default()).collect()),
            initialized: watch::channel(false).0,
            hc_ready: watch::channel(config.health_check.is_none()).0,
            members: watch::channel(0).0,
            cluster_updated,
            tls,
            breakers: Breakers::new(&config.circuit_breakers, &stats, store, config.stat_name()),
            stats,
            config: config.clone(),
        };
        if config.discovery == DiscoveryType::Static {
            let mut targets = cluster.lock_targets();
            for (target, e) in targets.iter_mut().zip(&config.endpoints) {
                let ip: IpAddr = e.address.parse().map_err(|_| invalid_address(config, &e.address))?;
                let hostname = e.hostname.clone();
                target.hosts.push(cluster.new_host(SocketAddr::new(ip, e.port), hostname, e.weight, e.priority));
            }
            let changed = !config.endpoints.is_empty();
            cluster.rebuild(&targets, changed);
        }
        if config.discovery == DiscoveryType::Static || config.endpoints.is_empty() {
            cluster.initialized.send_replace(true);
        }
        Ok(cluster)
    }

    /// Current membership (lock-free snapshot).
    pub fn hosts(&self) -> Arc<HostSet> {
        self.hosts.load_full()
    }

    /// Picks a host with the cluster's load balancer. `None` means no healthy upstream: the
    /// caller answers 503 `no healthy upstream` (flag UH); `upstream_cx_none_healthy` is
    /// counted here.
    pub fn choose_host(&self, ctx: &LbContext) -> Option<Arc<Host>> {
        let host = self.lb.load().choose(ctx, &self.stats);
        if host.is_none() {
            self.stats.upstream_cx_none_healthy.inc();
        }
        host
    }

    /// Records the result of a request proxied to `host` for outlier detection (no-op without
    /// `outlier_detection`).
    pub fn outlier_result(&self, host: &Arc<Host>, result: RequestResult) {
        if let Some(d) = &self.outlier {
            d.put(host, result);
        }
    }

    /// Outlier detection's last success-rate round as (average, ejection threshold) for the
    /// external and the local origin (-1 when not computed); `None` without outlier detection.
    pub fn outlier_success_rate_numbers(&self) -> Option<[(f64, f64); 2]> {
        self.outlier.as_ref().map(|d| *d.success_rate_numbers.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Admits a request to `host` under the `max_requests` circuit breaker: it counts in
    /// `upstream_rq_active`, the host's `rq_active` and `circuit_breakers.default.rq_open` until
    /// the returned [`ActiveRequest`] is dropped. `None` (overflow, nothing counted but
    /// `upstream_rq_active_overflow`, as in Envoy) when the breaker is open.
    pub fn admit_request(self: &Arc<Self>, host: &Arc<Host>) -> Option<ActiveRequest> {
        if !self.breakers.requests.can_create() {
            self.stats.upstream_rq_active_overflow.inc();
            return None;
        }
        self.stats.upstream_rq_active.inc();
        self.breakers.requests.inc();
        host.stats.rq_active.fetch_add(1, Ordering::Relaxed);
        Some(ActiveRequest { cluster: self.clone(), host: host.clone() })
    }

    /// Admits a request that must wait for a connection, under `max_pending_requests`.
    pub(crate) fn admit_pending(&self) -> bool {
        if !self.breakers.pending.can_create() {
            self.stats.upstream_rq_pending_overflow.inc();
            return false;
        }
        self.stats.upstream_rq_pending_total.inc();
        self.stats.upstream_rq_pending_active.inc();
        self.breakers.pending.inc();
        true
    }

    /// Ends a pending request [`Cluster::admit_pending`] admitted.
    pub(crate) fn release_pending(&self) {
        self.stats.upstream_rq_pending_active.dec();
        self.breakers.pending.dec();
    }

    /// Starts a retry's back-off under the `max_retries` circuit breaker, or the `retry_budget`
    /// when the cluster has one; it counts until the returned [`RetryBackoff`] is dropped.
    /// `None` (counted as `upstream_rq_retry_overflow`) when the breaker is open and the
    /// request must not be retried.
    pub fn admit_retry(self: &Arc<Self>) -> Option<RetryBackoff> {
        if !self.breakers.retry_allowed() {
            self.stats.upstream_rq_retry_overflow.inc();
            return None;
        }
        self.breakers.retry_started();
        Some(RetryBackoff { cluster: self.clone() })
    }

    /// The retry limit the admin API shows: `max_retries`, or the retry budget's limit for the
    /// requests now active and pending (which, as in Envoy, zeroes `remaining_retries`).
    pub fn retry_limit(&self) -> u64 {
        self.breakers.retry_max()
    }

    /// Whether one more upstream connection fits under `max_connections`; `false` counts
    /// `upstream_cx_overflow`. (A pool with no connection to its host opens one anyway, as
    /// Envoy's pools do, so that its pending requests are not stranded.)
    pub fn connection_allowed(&self) -> bool {
        let allowed = self.breakers.connections.can_create();
        if !allowed {
            self.stats.upstream_cx_overflow.inc();
        }
        allowed
    }

    /// Whether the cluster is initialized (Envoy's cluster initialization): it has its first
    /// membership and, with active health checking, every host has had its first check.
    pub fn is_initialized(&self) -> bool {
        *self.initialized.borrow() && *self.hc_ready.borrow()
    }

    /// Resolves once the cluster is initialized.
    pub(crate) async fn wait_initialized(&self) {
        self.wait_membership().await;
        let mut rx = self.hc_ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Resolves once the cluster has its first membership.
    pub(crate) async fn wait_membership(&self) {
        let mut rx = self.initialized.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// Marks the first round of health checks done.
    pub(crate) fn mark_hc_ready(&self) {
        self.hc_ready.send_if_modified(|ready| !std::mem::replace(ready, true));
    }

    /// Follows membership changes (the value is a change counter).
    pub(crate) fn watch_members(&self) -> watch::Receiver<u64> {
        self.members.subscribe()
    }

    /// A new host; with active health checking it starts as `/failed_active_hc` until its
    /// first successful check, as in Envoy.
    fn new_host(&self, address: SocketAddr, hostname: String, weight: u32, priority: u32) -> Arc<Host> {
        let host = Host::new(address, hostname, weight, priority);
        if self.config.health_check.is_some() {
            host.set_flag(Host::FAILED_ACTIVE_HC);
        }
        Arc::new(host)
    }

    /// Rebuilds the load balancer after a host's health changed (membership is unchanged).
    pub(crate) fn health_changed(&self) {
        let _targets = self.lock_targets();
        self.install(self.hosts.load_full());
    }

    /// Marks the cluster initialized (after the first answer or failure of any target, as
    /// Envoy's DNS clusters do).
    pub(crate) fn mark_initialized(&self) {
        self.initialized.send_if_modified(|ready| !std::mem::replace(ready, true));
    }

    fn lock_targets(&self) -> std::sync::MutexGuard<'_, Vec<Target>> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one DNS answer for endpoint `target` and returns the delay until its next
    /// resolution (Envoy's `DnsClusterImpl::ResolveTarget::startResolve` callback).
    pub(crate) fn apply_resolution(&self, target: usize, result: Result<Resolution, String>) -> Duration {
        let cfg = &self.config;
        let Some(endpoint) = cfg.endpoints.get(target) else { return cfg.dns_refresh_rate };
        let logical = cfg.discovery == DiscoveryType::LogicalDns;
        let resolution = match result {
            Ok(r) if !(logical && r.addresses.is_empty()) => r,
            Ok(_) => {
                // LOGICAL_DNS keeps its address when the name stops resolving.
                self.stats.update_failure.inc();
                return cfg.dns_refresh_rate;
            }
            Err(e) => {
                tracing::debug!(cluster = %cfg.name, name = %endpoint.address, "DNS resolution failed: {e}");
                self.stats.update_failure.inc();
                return cfg.dns_refresh_rate;
            }
        };
        self.stats.update_success.inc();
        let addresses: Vec<SocketAddr> = resolution.addresses.iter().map(|ip| SocketAddr::new(*ip, endpoint.port)).collect();
        let hostname = if endpoint.hostname.is_empty() { endpoint.address.clone() } else { endpoint.hostname.clone() };
        let mut targets = self.lock_targets();
        let Some(current) = targets.get_mut(target) else { return cfg.dns_refresh_rate };
        let changed = if logical {
            // A new logical host whenever the first address or the list changes.
            if current.logical.as_ref() != Some(&addresses) {
                current.hosts = vec![self.new_host(addresses[0], hostname, endpoint.weight, 0)];
                current.logical = Some(addresses);
                true
            } else {
                false
            }
        } else {
            // Envoy's updateDynamicHostList: hosts that stay keep their identity and stats.
            self.stats.max_host_weight.set(u64::from(endpoint.weight.max(1)));
            let same = addresses.len() == current.hosts.len()
                && addresses.iter().all(|a| current.hosts.iter().any(|h| h.address == *a));
            if !same {
                current.hosts = addresses
                    .iter()
                    .map(|a| {
                        current.hosts.iter().find(|h| h.address == *a).cloned().unwrap_or_else(|| {
                            self.new_host(*a, hostname.clone(), endpoint.weight, endpoint.priority)
                        })
                    })
                    .collect();
            }
            !same
        };
        if changed {
            self.rebuild(&targets, true);
        } else {
            self.stats.update_no_rebuild.inc();
        }
        if cfg.respect_dns_ttl && !resolution.addresses.is_empty() && !resolution.ttl.is_zero() {
            resolution.ttl
        } else {
            cfg.dns_refresh_rate
        }
    }

    /// Publishes the membership made of every target's hosts, in config order.
    fn rebuild(&self, targets: &[Target], changed: bool) {
        let hosts: Vec<Arc<Host>> = targets.iter().flat_map(|t| t.hosts.iter().cloned()).collect();
        self.install(Arc::new(HostSet::new(hosts, self.levels)));
        if changed {
            self.stats.membership_change.inc();
            self.members.send_modify(|n| *n += 1);
            if self.is_initialized() {
                self.cluster_updated.inc();
            }
        }
    }

    /// Publishes `set` with a load balancer built from its hosts' current health.
    fn install(&self, set: Arc<HostSet>) {
        let lb = LoadBalancer::new(&set, self.config.lb_policy, self.config.healthy_panic_threshold, &self.hash_stats);
        let s = &self.stats;
        s.membership_total.set(set.hosts.len() as u64);
        s.membership_healthy.set(set.healthy_count() as u64);
        s.membership_degraded.set(0);
        s.membership_excluded.set(0);
        if let Some(hs) = &self.health_stats {
            let passing = set.hosts.iter().filter(|h| !h.has_flag(Host::FAILED_ACTIVE_HC)).count();
            hs.healthy.set(passing as u64);
        }
        if let Some(d) = &self.outlier {
            d.stats.count_ejected(&set);
        }
        for gone in self.hosts.load().hosts.iter().filter(|h| !set.contains(h)) {
            gone.set_member(false);
        }
        for host in &set.hosts {
            host.set_member(true);
        }
        self.hosts.store(set);
        self.lb.store(Arc::new(lb));
    }
}

fn invalid_address(config: &model::Cluster, address: &str) -> UpstreamError {
    UpstreamError::InvalidConfig(format!(
        "cluster '{}': STATIC endpoint address '{address}' is not an IP address (use STRICT_DNS or LOGICAL_DNS for names)",
        config.name
    ))
}

/// Envoy's startup checks on what the upstream code consumes.
fn validate(config: &model::Cluster) -> Result<(), UpstreamError> {
    let err = |m: String| Err(UpstreamError::InvalidConfig(format!("cluster '{}': {m}", config.name)));
    if config.discovery == DiscoveryType::LogicalDns && config.endpoints.len() != 1 {
        return err("LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint".into());
    }
    match config.lb_policy {
        LbPolicy::Maglev { table_size } if !is_prime(table_size) => err("The table size of maglev must be prime number".into()),
        LbPolicy::RingHash { minimum_ring_size, maximum_ring_size } if minimum_ring_size > maximum_ring_size => {
            err(format!("ring hash: minimum_ring_size ({minimum_ring_size}) > maximum_ring_size ({maximum_ring_size})"))
        }
        _ => Ok(()),
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

#[cfg(test)]
mod tests;

/// A request in flight to a host, admitted by [`Cluster::admit_request`]; dropping it ends its
/// count, however the request ended (answered, failed, or abandoned when the client went away).
#[must_use = "dropping it ends the request's count at once"]
pub struct ActiveRequest {
    cluster: Arc<Cluster>,
    host: Arc<Host>,
}

impl ActiveRequest {
    /// The request's cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The host the request went to.
    pub fn host(&self) -> &Host {
        &self.host
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.cluster.stats.upstream_rq_active.dec();
        self.cluster.breakers.requests.dec();
        self.host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A retry's back-off, admitted by [`Cluster::admit_retry`]; dropping it ends its count.
#[must_use = "dropping it ends the back-off's count at once"]
pub struct RetryBackoff {
    cluster: Arc<Cluster>,
}

impl Drop for RetryBackoff {
    fn drop(&mut self) {
        self.cluster.breakers.retry_ended();
    }
}
