//! Envoy's load balancers over an immutable host snapshot. A snapshot is rebuilt whenever
//! membership changes and swapped in atomically; picking is lock-free.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use legate_config::model::LbPolicy;
use rand::Rng;
use xxhash_rust::xxh64::xxh64;

use crate::host::Host;

/// Per-request load-balancing input.
#[derive(Debug, Clone, Copy, Default)]
pub struct LbContext {
    /// Request hash from the route's hash policies (RING_HASH / MAGLEV); `None` picks at random.
    pub hash: Option<u64>,
}

/// A load balancer over one set of hosts.
pub struct LbSnapshot {
    hosts: Vec<Arc<Host>>,
    kind: Kind,
    cursor: AtomicU64,
}

enum Kind {
    Empty,
    /// Equal weights: plain rotation.
    RoundRobin,
    /// Unequal weights: a smooth weighted round-robin schedule of host indexes.
    WeightedRoundRobin(Vec<u32>),
    LeastRequest(u32),
    Random,
    /// Sorted (hash, host index).
    Ring(Vec<(u64, u32)>),
    /// Maglev lookup table of host indexes.
    Maglev(Vec<u32>),
}

/// Longest precomputed weighted schedule; larger weight sums are scaled down.
const MAX_SCHEDULE: u64 = 4096;

impl LbSnapshot {
    /// Builds the balancer for `hosts` with `policy`.
    pub fn new(hosts: Vec<Arc<Host>>, policy: LbPolicy) -> Self {
        let kind = if hosts.is_empty() {
            Kind::Empty
        } else {
            match policy {
                LbPolicy::RoundRobin => {
                    if hosts.iter().all(|h| h.weight == hosts[0].weight) {
                        Kind::RoundRobin
                    } else {
                        Kind::WeightedRoundRobin(smooth_schedule(&hosts))
                    }
                }
                LbPolicy::LeastRequest { choice_count } => Kind::LeastRequest(choice_count.max(1)),
                LbPolicy::Random => Kind::Random,
                LbPolicy::RingHash { minimum_ring_size, maximum_ring_size } => {
                    Kind::Ring(build_ring(&hosts, minimum_ring_size, maximum_ring_size))
                }
                LbPolicy::Maglev { table_size } => Kind::Maglev(build_maglev(&hosts, table_size)),
            }
        };
        let start = if hosts.is_empty() { 0 } else { rand::rng().random_range(0..hosts.len() as u64) };
        Self { hosts, kind, cursor: AtomicU64::new(start) }
    }

    /// The hosts this balancer picks from.
    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    /// Picks a host; `None` when there are none.
    pub fn choose(&self, ctx: &LbContext) -> Option<Arc<Host>> {
        let n = self.hosts.len();
        let idx = match &self.kind {
            Kind::Empty => return None,
            Kind::RoundRobin => (self.cursor.fetch_add(1, Ordering::Relaxed) % n as u64) as usize,
            Kind::WeightedRoundRobin(s) => {
                s[(self.cursor.fetch_add(1, Ordering::Relaxed) % s.len() as u64) as usize] as usize
            }
            Kind::Random => self.random_weighted(),
            Kind::LeastRequest(choices) => {
                let mut rng = rand::rng();
                let mut best = rng.random_range(0..n);
                for _ in 1..*choices {
                    let c = rng.random_range(0..n);
                    let active = |i: usize| self.hosts[i].stats.rq_active.load(Ordering::Relaxed);
                    if active(c) < active(best) {
                        best = c;
                    }
                }
                best
            }
            Kind::Ring(ring) => {
                let h = ctx.hash.unwrap_or_else(|| rand::rng().random());
                let i = ring.partition_point(|(rh, _)| *rh < h);
                ring[if i == ring.len() { 0 } else { i }].1 as usize
            }
            Kind::Maglev(table) => {
                let h = ctx.hash.unwrap_or_else(|| rand::rng().random());
                table[(h % table.len() as u64) as usize] as usize
            }
        };
        self.hosts.get(idx).cloned()
    }

    fn random_weighted(&self) -> usize {
        let total: u64 = self.hosts.iter().map(|h| u64::from(h.weight)).sum();
        let mut pick = rand::rng().random_range(0..total.max(1));
        for (i, h) in self.hosts.iter().enumerate() {
            if pick < u64::from(h.weight) {
                return i;
            }
            pick -= u64::from(h.weight);
        }
        0
    }
}

/// Smooth weighted round-robin (nginx's), precomputed over one period of the scaled weights.
fn smooth_schedule(hosts: &[Arc<Host>]) -> Vec<u32> {
    let total: u64 = hosts.iter().map(|h| u64::from(h.weight)).sum();
    let scale = total.div_ceil(MAX_SCHEDULE).max(1);
    let weights: Vec<i64> = hosts.iter().map(|h| (u64::from(h.weight) / scale).max(1) as i64).collect();
    let period: i64 = weights.iter().sum();
    let mut current = vec![0i64; hosts.len()];
    let mut schedule = Vec::with_capacity(period as usize);
    for _ in 0..period {
        let mut best = 0;
        for i in 0..weights.len() {
            current[i] += weights[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= period;
        schedule.push(best as u32);
    }
    schedule
}

/// Ketama-style ring: each host gets hashes of `"<address>_<i>"` in proportion to its weight.
fn build_ring(hosts: &[Arc<Host>], min_size: u64, max_size: u64) -> Vec<(u64, u32)> {
    let total: u64 = hosts.iter().map(|h| u64::from(h.weight)).sum();
    let min_weight = hosts.iter().map(|h| u64::from(h.weight)).min().unwrap_or(1);
    // Like Envoy: the smallest host gets at least one entry, the ring at least min_size entries.
    let scale = (min_size as f64 / total as f64).max(1.0 / min_weight as f64);
    let target = ((total as f64 * scale).ceil() as u64).clamp(1, max_size.max(1));
    let per_weight = target as f64 / total as f64;
    let mut ring = Vec::with_capacity(target as usize);
    for (i, h) in hosts.iter().enumerate() {
        let n = ((f64::from(h.weight) * per_weight).round() as u64).max(1);
        let key = h.address.to_string();
        for j in 0..n {
            ring.push((xxh64(format!("{key}_{j}").as_bytes(), 0), i as u32));
        }
    }
    ring.sort_unstable();
    ring
}

/// Maglev lookup table (Eisenbud et al.), weighted like Envoy's.
fn build_maglev(hosts: &[Arc<Host>], table_size: u64) -> Vec<u32> {
    let m = table_size.max(1);
    let keys: Vec<(u64, u64)> = hosts
        .iter()
        .map(|h| {
            let k = h.address.to_string();
            let offset = xxh64(k.as_bytes(), 0) % m;
            let skip = if m > 1 { xxh64(k.as_bytes(), 1) % (m - 1) + 1 } else { 1 };
            (offset, skip)
        })
        .collect();
    let max_weight = hosts.iter().map(|h| h.weight).max().unwrap_or(1) as f64;
    let mut next = vec![0u64; hosts.len()];
    let mut credit = vec![0f64; hosts.len()];
    let mut table = vec![u32::MAX; m as usize];
    let mut filled = 0u64;
    while filled < m {
        for (i, h) in hosts.iter().enumerate() {
            credit[i] += f64::from(h.weight) / max_weight;
            if credit[i] < 1.0 {
                continue;
            }
            credit[i] -= 1.0;
            let (offset, skip) = keys[i];
            loop {
                let c = ((offset + skip * next[i]) % m) as usize;
                next[i] += 1;
                if table[c] == u32::MAX {
                    table[c] = i as u32;
                    filled += 1;
                    break;
                }
            }
            if filled == m {
                break;
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn hosts(weights: &[u32]) -> Vec<Arc<Host>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Arc::new(Host::new(format!("10.0.0.{}:80", i + 1).parse().unwrap(), String::new(), *w, 0)))
            .collect()
    }

    fn counts(lb: &LbSnapshot, n: usize, hash: impl Fn(usize) -> Option<u64>) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for i in 0..n {
            *m.entry(lb.choose(&LbContext { hash: hash(i) }).unwrap().address.to_string()).or_default() += 1;
        }
        m
    }

    #[test]
    fn round_robin_rotates_exactly() {
        let lb = LbSnapshot::new(hosts(&[1, 1, 1]), LbPolicy::RoundRobin);
        let c = counts(&lb, 300, |_| None);
        assert!(c.values().all(|v| *v == 100), "{c:?}");
    }

    #[test]
    fn weighted_round_robin_follows_weights() {
        let lb = LbSnapshot::new(hosts(&[1, 3]), LbPolicy::RoundRobin);
        let c = counts(&lb, 400, |_| None);
        assert_eq!(c["10.0.0.1:80"], 100);
        assert_eq!(c["10.0.0.2:80"], 300);
    }

    #[test]
    fn least_request_prefers_idle_hosts() {
        let hs = hosts(&[1, 1]);
        hs[0].stats.rq_active.store(10, Ordering::Relaxed);
        let lb = LbSnapshot::new(hs, LbPolicy::LeastRequest { choice_count: 2 });
        let c = counts(&lb, 1000, |_| None);
        assert!(c["10.0.0.2:80"] > 700, "{c:?}");
    }

    #[test]
    fn empty_set_has_no_host() {
        let lb = LbSnapshot::new(vec![], LbPolicy::Random);
        assert!(lb.choose(&LbContext::default()).is_none());
    }

    fn consistency(policy: LbPolicy) {
        let lb = LbSnapshot::new(hosts(&[1, 1, 1, 1]), policy);
        let picks: Vec<_> = (0..1000u64).map(|h| lb.choose(&LbContext { hash: Some(h * 7919) }).unwrap().address).collect();
        let again: Vec<_> = (0..1000u64).map(|h| lb.choose(&LbContext { hash: Some(h * 7919) }).unwrap().address).collect();
        assert_eq!(picks, again, "same hash, same host");
        let c = counts(&lb, 4000, |i| Some(xxh64(&i.to_le_bytes(), 0)));
        assert!(c.values().all(|v| *v > 600), "spread: {c:?}");
        // Removing one host moves only (about) its own share.
        let smaller = LbSnapshot::new(hosts(&[1, 1, 1]), policy);
        let moved = (0..4000usize)
            .filter(|i| {
                let h = Some(xxh64(&i.to_le_bytes(), 0));
                let a = lb.choose(&LbContext { hash: h }).unwrap().address;
                let b = smaller.choose(&LbContext { hash: h }).unwrap().address;
                a != b && a.to_string() != "10.0.0.4:80"
            })
            .count();
        assert!(moved < 400, "{moved} keys moved between surviving hosts");
    }

    #[test]
    fn ring_hash_is_consistent() {
        consistency(LbPolicy::RingHash { minimum_ring_size: 1024, maximum_ring_size: 8 * 1024 * 1024 });
    }

    #[test]
    fn maglev_is_consistent() {
        consistency(LbPolicy::Maglev { table_size: 65537 });
    }
}
