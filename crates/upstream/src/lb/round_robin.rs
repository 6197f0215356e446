//! ROUND_ROBIN: plain rotation when all weights are equal, otherwise Envoy's earliest deadline
//! first (EDF) order, precomputed over one period so picking is a single atomic increment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::weights_equal;
use crate::host::Host;

/// Longest precomputed EDF period; larger weight sums are scaled down to fit.
const MAX_SCHEDULE: u64 = 1 << 16;

/// Round-robin state of one priority level.
pub struct RoundRobin {
    /// Host indexes in EDF order over one period; `None` for plain rotation.
    schedule: Option<Box<[u32]>>,
    cursor: AtomicU64,
}

impl RoundRobin {
    /// Builds the rotation for `hosts`, starting at a random point (Envoy seeds each worker's
    /// index randomly so workers do not move in lockstep).
    pub fn new(hosts: &[Arc<Host>]) -> Self {
        let schedule = (!weights_equal(hosts)).then(|| edf_schedule(hosts));
        let len = schedule.as_ref().map_or(hosts.len(), |s| s.len()) as u64;
        let start = if len == 0 { 0 } else { rand::random::<u64>() % len };
        Self { schedule, cursor: AtomicU64::new(start) }
    }

    /// The index of the next host among `n` hosts.
    pub fn pick(&self, n: usize) -> usize {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        match &self.schedule {
            None => (i % n as u64) as usize,
            Some(s) => s[(i % s.len() as u64) as usize] as usize,
        }
    }
}

/// One EDF period: host `i`'s `k`-th pick has deadline `k / w_i`; picks are ordered by deadline
/// (ties by host order), which is exactly the order Envoy's EDF scheduler produces.
fn edf_schedule(hosts: &[Arc<Host>]) -> Box<[u32]> {
    let raw: Vec<u64> = hosts.iter().map(|h| u64::from(h.weight.max(1))).collect();
    let g = raw.iter().copied().fold(0, gcd).max(1);
    let mut weights: Vec<u64> = raw.iter().map(|w| w / g).collect();
    let sum: u64 = weights.iter().sum();
    if sum > MAX_SCHEDULE {
        weights = weights.iter().map(|w| (w * MAX_SCHEDULE / sum).max(1)).collect();
    }
    let mut picks: Vec<(u64, u64, u32)> = Vec::with_capacity(weights.iter().sum::<u64>() as usize);
    for (i, w) in weights.iter().enumerate() {
        for k in 1..=*w {
            picks.push((k, *w, i as u32));
        }
    }
    picks.sort_by(|a, b| (u128::from(a.0) * u128::from(b.1)).cmp(&(u128::from(b.0) * u128::from(a.1))).then(a.2.cmp(&b.2)));
    picks.into_iter().map(|p| p.2).collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
