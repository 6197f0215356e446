//! LEAST_REQUEST, as Envoy does it: with equal weights, the host with the fewest active
//! requests among `choice_count` random picks; with unequal weights, hosts weighted by
//! `weight / (active_requests + 1)` (Envoy's default `active_request_bias` of 1.0). Envoy feeds
//! those dynamic weights to its EDF scheduler; Legate draws by them at random, which gives the
//! same shares without a mutable shared scheduler.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::weights_equal;
use crate::host::Host;

/// Least-request state of one priority level.
pub struct LeastRequest {
    choice_count: u32,
    weighted: bool,
}

impl LeastRequest {
    /// Configures the policy for `hosts`.
    pub fn new(hosts: &[Arc<Host>], choice_count: u32) -> Self {
        Self { choice_count: choice_count.max(1), weighted: !weights_equal(hosts) }
    }

    /// The index of the chosen host; `hosts` is not empty.
    pub fn pick(&self, hosts: &[Arc<Host>]) -> usize {
        let active = |i: usize| hosts[i].stats.rq_active.load(Ordering::Relaxed);
        if !self.weighted {
            let mut best: Option<usize> = None;
            for _ in 0..self.choice_count {
                let candidate = (rand::random::<u64>() % hosts.len() as u64) as usize;
                best = match best {
                    Some(b) if active(candidate) >= active(b) => Some(b),
                    _ => Some(candidate),
                };
            }
            return best.unwrap_or(0);
        }
        let weight = |i: usize| f64::from(hosts[i].weight) / (active(i).saturating_add(1)) as f64;
        let total: f64 = (0..hosts.len()).map(weight).sum();
        let mut point = rand::random::<f64>() * total;
        for i in 0..hosts.len() {
            point -= weight(i);
            if point < 0.0 {
                return i;
            }
        }
        hosts.len() - 1
    }
}
