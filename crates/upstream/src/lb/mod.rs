//! Envoy's load balancers over immutable snapshots.
//!
//! A [`LoadBalancer`] is built from a [`HostSet`] whenever membership changes and swapped in
//! atomically; picking never locks. As in Envoy, the load of each priority level is derived from
//! the share of healthy hosts (overprovisioning factor 1.4), levels below the
//! `healthy_panic_threshold` run in panic mode (all hosts, `lb_healthy_panic`), and within the
//! chosen level the cluster's policy picks the host.

mod least_request;
mod maglev;
mod random;
mod ring_hash;
mod round_robin;

use std::sync::Arc;

use legate_config::model::LbPolicy;
use legate_stats::{Gauge, GaugeMode, Store};

use crate::host::{Host, HostSet};
use crate::stats::ClusterStats;

pub use least_request::LeastRequest;
pub use maglev::Maglev;
pub use random::Random;
pub use ring_hash::Ring;
pub use round_robin::RoundRobin;

/// Per-request load-balancing input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LbContext {
    /// Request hash computed by the router from the route's `hash_policy` (RING_HASH, MAGLEV).
    /// `None` makes hash balancers pick a random host, as Envoy does.
    pub hash: Option<u64>,
}

/// Envoy's default overprovisioning factor (1.4), in percent.
const OVERPROVISIONING_FACTOR: u64 = 140;

/// `cluster.<name>.ring_hash_lb.*` / `maglev_lb.*` gauges.
pub(crate) enum HashLbStats {
    /// Not a hash balancer.
    None,
    /// `ring_hash_lb.size`, `min_hashes_per_host`, `max_hashes_per_host`.
    Ring([Gauge; 3]),
    /// `maglev_lb.min_entries_per_host`, `max_entries_per_host`.
    Maglev([Gauge; 2]),
}

impl HashLbStats {
    /// Creates the gauges Envoy creates for `policy` under `prefix` (`cluster.<name>.`).
    pub fn new(store: &Store, prefix: &str, policy: LbPolicy) -> Self {
        let g = |n: &str| store.gauge(&format!("{prefix}{n}"), GaugeMode::NeverImport);
        match policy {
            LbPolicy::RingHash { .. } => Self::Ring(
                ["size", "min_hashes_per_host", "max_hashes_per_host"].map(|n| g(&format!("ring_hash_lb.{n}"))),
            ),
            LbPolicy::Maglev { .. } => {
                Self::Maglev(["min_entries_per_host", "max_entries_per_host"].map(|n| g(&format!("maglev_lb.{n}"))))
            }
            _ => Self::None,
        }
    }
}

/// The policy-specific structure of one priority level.
enum Picker {
    RoundRobin(RoundRobin),
    LeastRequest(LeastRequest),
    Random(Random),
    Ring(Ring),
    Maglev(Maglev),
}

/// One priority level: the hosts the policy picks from (healthy ones, or all in panic mode).
struct Level {
    hosts: Vec<Arc<Host>>,
    panic: bool,
    picker: Picker,
}

/// An immutable load balancer over one membership snapshot.
pub struct LoadBalancer {
    levels: Vec<Level>,
    /// Percentage of traffic per level (sums to 100).
    load: Vec<u32>,
    hash_based: bool,
}

impl LoadBalancer {
    /// Builds the balancer for `set` with `policy` and the cluster's panic threshold (percent).
    pub(crate) fn new(set: &HostSet, policy: LbPolicy, panic_threshold: f64, stats: &HashLbStats) -> Self {
        let counts: Vec<(usize, usize)> =
            set.priorities().iter().map(|l| (l.iter().filter(|h| h.is_healthy()).count(), l.len())).collect();
        let threshold = if panic_threshold.is_nan() { 0 } else { panic_threshold.round().clamp(0.0, 100.0) as u64 };
        let (load, panic) = priority_loads(&counts, threshold);
        let levels = set
            .priorities()
            .iter()
            .zip(panic)
            .map(|(hosts, panic)| {
                let hosts: Vec<Arc<Host>> =
                    if panic { hosts.clone() } else { hosts.iter().filter(|h| h.is_healthy()).cloned().collect() };
                let picker = match policy {
                    LbPolicy::RoundRobin => Picker::RoundRobin(RoundRobin::new(&hosts)),
                    LbPolicy::LeastRequest { choice_count } => {
                        Picker::LeastRequest(LeastRequest::new(&hosts, choice_count))
                    }
                    LbPolicy::Random => Picker::Random(Random),
                    LbPolicy::RingHash { minimum_ring_size, maximum_ring_size } => {
                        let ring = Ring::new(&hosts, minimum_ring_size, maximum_ring_size);
                        if let (HashLbStats::Ring(g), false) = (stats, hosts.is_empty()) {
                            let (min, max) = ring.hashes_per_host();
                            g[0].set(ring.size());
                            g[1].set(min);
                            g[2].set(max);
                        }
                        Picker::Ring(ring)
                    }
                    LbPolicy::Maglev { table_size } => {
                        let table = Maglev::new(&hosts, table_size);
                        if let (HashLbStats::Maglev(g), false) = (stats, hosts.is_empty()) {
                            let (min, max) = table.entries_per_host();
                            g[0].set(min);
                            g[1].set(max);
                        }
                        Picker::Maglev(table)
                    }
                };
                Level { hosts, panic, picker }
            })
            .collect();
        let hash_based = matches!(policy, LbPolicy::RingHash { .. } | LbPolicy::Maglev { .. });
        Self { levels, load, hash_based }
    }

    /// Picks a host. Counts `lb_healthy_panic` when the chosen level is in panic mode; returns
    /// `None` when that level has no host (the caller counts `upstream_cx_none_healthy`).
    pub fn choose(&self, ctx: &LbContext, stats: &ClusterStats) -> Option<Arc<Host>> {
        let random: u64 = rand::random();
        let hash = if self.hash_based { ctx.hash.unwrap_or(random) } else { random };
        let level = &self.levels[choose_priority(hash, &self.load)];
        if level.panic {
            stats.lb_healthy_panic.inc();
        }
        if level.hosts.is_empty() {
            return None;
        }
        let hosts = &level.hosts;
        let index = match &level.picker {
            Picker::RoundRobin(p) => p.pick(hosts.len()),
            Picker::LeastRequest(p) => p.pick(hosts),
            Picker::Random(p) => p.pick(hosts.len()),
            Picker::Ring(p) => p.pick(hash),
            Picker::Maglev(p) => p.pick(hash),
        };
        hosts.get(index).cloned()
    }
}

/// Envoy's `choosePriority`: `hash % 100 + 1` walks the cumulative load.
fn choose_priority(hash: u64, load: &[u32]) -> usize {
    let target = (hash % 100 + 1) as u32;
    let mut acc = 0;
    for (i, l) in load.iter().enumerate() {
        acc += l;
        if target <= acc {
            return i;
        }
    }
    0
}

/// Envoy's per-priority load and panic computation (`recalculatePerPriorityState` and
/// `recalculatePerPriorityPanic`) from (healthy, total) host counts per level. Degraded and
/// excluded hosts do not exist yet (no health checking), so only healthy load is assigned.
fn priority_loads(counts: &[(usize, usize)], panic_threshold: u64) -> (Vec<u32>, Vec<bool>) {
    let n = counts.len().max(1);
    let mut load = vec![0u32; n];
    let health: Vec<u64> = counts
        .iter()
        .map(|&(healthy, total)| {
            if total == 0 {
                0
            } else {
                (OVERPROVISIONING_FACTOR * healthy as u64 / total as u64).min(100)
            }
        })
        .collect();
    let total_availability = health.iter().sum::<u64>().min(100);
    if total_availability > 0 {
        let mut remaining = 100u64;
        let mut first_available = None;
        for (i, h) in health.iter().enumerate() {
            if first_available.is_none() && *h > 0 {
                first_available = Some(i);
            }
            let l = remaining.min(h * 100 / total_availability);
            load[i] = l as u32;
            remaining -= l;
        }
        if let (Some(i), true) = (first_available, remaining > 0) {
            load[i] += remaining as u32;
        }
    }
    if panic_threshold == 0 && total_availability == 0 {
        load[0] = 100;
        return (load, vec![false; n]);
    }
    let panic: Vec<bool> = (0..n)
        .map(|i| {
            if total_availability == 100 {
                return false;
            }
            let (healthy, total) = counts.get(i).copied().unwrap_or((0, 0));
            let healthy_percent = if total == 0 { 0.0 } else { 100.0 * healthy as f64 / total as f64 };
            healthy_percent < panic_threshold as f64
        })
        .collect();
    if panic.iter().all(|p| *p) {
        // Total panic: load follows the number of hosts, whatever their health.
        let total_hosts: usize = counts.iter().map(|c| c.1).sum();
        load = vec![0; n];
        if total_hosts == 0 {
            load[0] = 100;
        } else {
            let mut remaining = 100u32;
            for (i, c) in counts.iter().enumerate() {
                load[i] = (100 * c.1 / total_hosts) as u32;
                remaining -= load[i];
            }
            if let Some(first) = counts.iter().position(|c| c.1 > 0) {
                load[first] += remaining;
            }
        }
    }
    (load, panic)
}

/// Whether all hosts have the same weight (Envoy's switch between unweighted and EDF picking).
fn weights_equal(hosts: &[Arc<Host>]) -> bool {
    hosts.windows(2).all(|w| w[0].weight == w[1].weight)
}

#[cfg(test)]
mod tests;
