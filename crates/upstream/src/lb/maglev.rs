//! MAGLEV: Envoy's weighted Maglev lookup table (Eisenbud et al., listing 1). Hosts are sorted
//! by address; each host's permutation starts at `xxh64(address, 0) % M` and steps by
//! `xxh64(address, 1) % (M - 1) + 1`; a host of normalized weight `w` claims a slot on every
//! `max_weight / w`-th round. A request goes to `table[hash % M]`.

use std::sync::Arc;

use xxhash_rust::xxh64::xxh64;

use crate::host::Host;

/// A built Maglev table of host indexes.
pub struct Maglev {
    table: Vec<u32>,
    per_host: (u64, u64),
}

struct BuildEntry {
    index: u32,
    offset: u64,
    skip: u64,
    weight: f64,
    target_weight: f64,
    next: u64,
    count: u64,
}

impl Maglev {
    /// Builds the table for `hosts` with `table_size` slots (a prime, validated at startup).
    pub fn new(hosts: &[Arc<Host>], table_size: u64) -> Self {
        let m = table_size.max(2);
        if hosts.is_empty() {
            return Self { table: Vec::new(), per_host: (0, 0) };
        }
        let total: f64 = hosts.iter().map(|h| f64::from(h.weight)).sum();
        let mut sorted: Vec<(String, u32, f64)> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.address.to_string(), i as u32, f64::from(h.weight) / total))
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let max_weight = sorted.iter().map(|s| s.2).fold(0.0, f64::max);
        let mut entries: Vec<BuildEntry> = sorted
            .into_iter()
            .map(|(key, index, weight)| BuildEntry {
                index,
                offset: xxh64(key.as_bytes(), 0) % m,
                skip: xxh64(key.as_bytes(), 1) % (m - 1) + 1,
                weight,
                target_weight: 0.0,
                next: 0,
                count: 0,
            })
            .collect();
        let permutation = |e: &BuildEntry| ((e.offset as u128 + e.skip as u128 * e.next as u128) % m as u128) as usize;
        let mut table = vec![u32::MAX; m as usize];
        let mut filled = 0u64;
        let mut iteration = 1u64;
        while filled < m {
            for e in entries.iter_mut() {
                if filled >= m {
                    break;
                }
                if (iteration as f64) * e.weight < e.target_weight {
                    continue;
                }
                e.target_weight += max_weight;
                let mut c = permutation(e);
                let mut tries = 0u64;
                while table[c] != u32::MAX {
                    e.next += 1;
                    c = permutation(e);
                    tries += 1;
                    if tries > m {
                        // Only reachable with a non-prime size (refused at startup): probe.
                        c = table.iter().position(|slot| *slot == u32::MAX).unwrap_or(0);
                        break;
                    }
                }
                table[c] = e.index;
                e.next += 1;
                e.count += 1;
                filled += 1;
            }
            iteration += 1;
        }
        let min = entries.iter().map(|e| e.count).min().unwrap_or(0);
        let max = entries.iter().map(|e| e.count).max().unwrap_or(0);
        Self { table, per_host: (min, max) }
    }

    /// (min, max) table entries per host.
    pub fn entries_per_host(&self) -> (u64, u64) {
        self.per_host
    }

    /// The host index for `hash`.
    pub fn pick(&self, hash: u64) -> usize {
        if self.table.is_empty() {
            return 0;
        }
        self.table[(hash % self.table.len() as u64) as usize] as usize
    }
}
