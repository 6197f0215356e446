//! RING_HASH: Envoy's ketama-style ring. Each host gets entries hashed with xxHash64 of
//! `"<address>_<i>"`, in proportion to its normalized weight, scaled so that the lightest host
//! gets a whole number of entries and the ring holds at least `minimum_ring_size` (at most
//! `maximum_ring_size`) entries. A request goes to the first entry at or after its hash.

use std::sync::Arc;

use xxhash_rust::xxh64::xxh64;

use crate::host::Host;

/// A built ring: sorted (hash, host index) entries.
pub struct Ring {
    entries: Vec<(u64, u32)>,
    ring_size: u64,
    per_host: (u64, u64),
}

impl Ring {
    /// Builds the ring for `hosts` (Envoy's `RingHashLoadBalancer::Ring`).
    pub fn new(hosts: &[Arc<Host>], min_ring_size: u64, max_ring_size: u64) -> Self {
        if hosts.is_empty() {
            return Self { entries: Vec::new(), ring_size: 0, per_host: (0, 0) };
        }
        let total: f64 = hosts.iter().map(|h| f64::from(h.weight)).sum();
        let normalized: Vec<f64> = hosts.iter().map(|h| f64::from(h.weight) / total).collect();
        let min_normalized = normalized.iter().copied().fold(f64::INFINITY, f64::min);
        let scale = ((min_normalized * min_ring_size as f64).ceil() / min_normalized).min(max_ring_size as f64);
        let ring_size = scale.ceil() as u64;
        let mut entries = Vec::with_capacity(ring_size as usize);
        let (mut current, mut target) = (0.0f64, 0.0f64);
        let (mut min_per_host, mut max_per_host) = (ring_size, 0u64);
        let mut key = String::new();
        for (index, (host, weight)) in hosts.iter().zip(&normalized).enumerate() {
            let prefix = format!("{}_", host.address);
            target += scale * weight;
            let mut i = 0u64;
            while current < target {
                key.clear();
                key.push_str(&prefix);
                key.push_str(&i.to_string());
                entries.push((xxh64(key.as_bytes(), 0), index as u32));
                i += 1;
                current += 1.0;
            }
            min_per_host = min_per_host.min(i);
            max_per_host = max_per_host.max(i);
        }
        entries.sort_by_key(|e| e.0);
        Self { entries, ring_size, per_host: (min_per_host, max_per_host) }
    }

    /// The planned ring size Envoy reports as `ring_hash_lb.size`.
    pub fn size(&self) -> u64 {
        self.ring_size
    }

    /// (min, max) entries per host.
    pub fn hashes_per_host(&self) -> (u64, u64) {
        self.per_host
    }

    /// The host index for `hash`: Envoy's port of ketama's binary search (the first entry
    /// whose hash is >= `hash`, wrapping to the first entry).
    pub fn pick(&self, hash: u64) -> usize {
        let ring = &self.entries;
        if ring.is_empty() {
            return 0;
        }
        let (mut low, mut high) = (0i64, ring.len() as i64);
        let mid = loop {
            let mid = (low + high) / 2;
            if mid == ring.len() as i64 {
                break 0;
            }
            let midval = ring[mid as usize].0;
            let midval1 = if mid == 0 { 0 } else { ring[mid as usize - 1].0 };
            if hash <= midval && hash > midval1 {
                break mid;
            }
            if midval < hash {
                low = mid + 1;
            } else {
                high = mid - 1;
            }
            if low > high {
                break 0;
            }
        };
        ring[mid as usize].1 as usize
    }
}
