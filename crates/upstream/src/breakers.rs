//! A cluster's circuit breakers at the default priority, as Envoy's `ResourceManagerImpl` keeps
//! them: one counted resource per threshold (connections, pending requests, requests, retries),
//! its `circuit_breakers.default.*_open` gauge (1 while the count is at its maximum) and, with
//! `track_remaining`, its `remaining_*` gauge. A `retry_budget` replaces `max_retries` as the
//! retry limit; as in Envoy, `rq_retry_open` still compares with `max_retries` then, and
//! `remaining_retries` reads 0 once the budget has been consulted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use legate_config::model::{CircuitBreakerThresholds, RetryBudget};
use legate_stats::{Gauge, GaugeMode, Store};

use crate::cluster::Cluster;
use crate::stats::ClusterStats;

/// One counted resource with its maximum and gauges (Envoy's `ManagedResourceImpl`).
pub(crate) struct Limit {
    count: AtomicU64,
    max: u64,
    open: Gauge,
    remaining: Option<Gauge>,
}

impl Limit {
    fn new(max: u32, open: Gauge, remaining: Option<Gauge>) -> Self {
        let max = u64::from(max);
        if let Some(r) = &remaining {
            r.set(max);
        }
        Self { count: AtomicU64::new(0), max, open, remaining }
    }

    /// Whether one more fits under the maximum.
    pub(crate) fn can_create(&self) -> bool {
        self.count() < self.max
    }

    /// How many are in use.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Counts one more in use.
    pub(crate) fn inc(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
        self.publish();
    }

    /// Counts one fewer in use.
    pub(crate) fn dec(&self) {
        // Never below zero, even if a release came without its admission.
        let _ = self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.publish();
    }

    fn publish(&self) {
        let count = self.count();
        self.open.set(u64::from(count >= self.max));
        if let Some(r) = &self.remaining {
            r.set(self.max.saturating_sub(count));
        }
    }
}

/// The default priority's resources of one cluster.
pub(crate) struct Breakers {
    /// `max_connections`: upstream connections, open or being opened.
    pub(crate) connections: Limit,
    /// `max_pending_requests`: requests waiting for a connection.
    pub(crate) pending: Limit,
    /// `max_requests`: requests in flight.
    pub(crate) requests: Limit,
    /// Retries in their back-off (`max_retries`, or the budget's count).
    retries: Limit,
    retry_budget: Option<RetryBudget>,
}

impl Breakers {
    /// The resources of `thresholds`, publishing to the cluster's `circuit_breakers.default.*`
    /// gauges (`remaining_*` created only with `track_remaining`, as Envoy does).
    pub(crate) fn new(thresholds: &CircuitBreakerThresholds, stats: &ClusterStats, store: &Store, stat_name: &str) -> Self {
        let remaining = |name: &str| {
            thresholds.track_remaining.then(|| {
                store.gauge(&format!("cluster.{stat_name}.circuit_breakers.default.{name}"), GaugeMode::NeverImport)
            })
        };
        // Indexes in `circuit_breakers_open`: cx_open, cx_pool_open, rq_open, rq_pending_open,
        // rq_retry_open.
        let open = |i: usize| stats.circuit_breakers_open[i].clone();
        Self {
            connections: Limit::new(thresholds.max_connections, open(0), remaining("remaining_cx")),
            pending: Limit::new(thresholds.max_pending_requests, open(3), remaining("remaining_pending")),
            requests: Limit::new(thresholds.max_requests, open(2), remaining("remaining_rq")),
            retries: Limit::new(thresholds.max_retries, open(4), remaining("remaining_retries")),
            retry_budget: thresholds.retry_budget,
        }
    }

    /// Whether a retry may start: under `max_retries`, or under the retry budget's limit of
    /// `max(min_retry_concurrency, budget_percent% of active + pending requests)`.
    pub(crate) fn retry_allowed(&self) -> bool {
        self.retries.count() < self.retry_max()
    }

    /// The retry limit now: `max_retries`, or the budget's limit (consulting the budget zeroes
    /// `remaining_retries`, as in Envoy).
    pub(crate) fn retry_max(&self) -> u64 {
        match &self.retry_budget {
            None => self.retries.max,
            Some(budget) => {
                self.clear_remaining_retries();
                self.retry_limit(budget)
            }
        }
    }

    /// Counts a retry that started.
    pub(crate) fn retry_started(&self) {
        self.retries.inc();
        self.clear_remaining_retries();
    }

    /// Counts a retry that ended its back-off.
    pub(crate) fn retry_ended(&self) {
        self.retries.dec();
        self.clear_remaining_retries();
    }

    /// The budget's retry limit now (Envoy truncates the percentage to an integer).
    fn retry_limit(&self, budget: &RetryBudget) -> u64 {
        let active = self.requests.count() + self.pending.count();
        let share = (budget.budget_percent / 100.0 * active as f64) as u64;
        share.max(u64::from(budget.min_retry_concurrency))
    }

    /// With a budget, `remaining_retries` has no meaning and reads 0 (Envoy's
    /// `clearRemainingGauge`).
    fn clear_remaining_retries(&self) {
        if let (Some(_), Some(r)) = (&self.retry_budget, &self.retries.remaining) {
            r.set(0);
        }
    }
}

/// One upstream connection counted under `max_connections` from the moment it is being opened;
/// dropping it releases it.
pub(crate) struct ConnectionSlot {
    cluster: Arc<Cluster>,
}

impl ConnectionSlot {
    /// Counts a connection of `cluster` (whether the limit allows it is the caller's check).
    pub(crate) fn new(cluster: &Arc<Cluster>) -> Self {
        cluster.breakers.connections.inc();
        Self { cluster: cluster.clone() }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.cluster.breakers.connections.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers(thresholds: CircuitBreakerThresholds) -> (Breakers, Store) {
        let store = Store::new();
        let stats = ClusterStats::new(&store, "c");
        (Breakers::new(&thresholds, &stats, &store, "c"), store)
    }

    fn gauge(store: &Store, name: &str) -> u64 {
        store.gauge(&format!("cluster.c.circuit_breakers.default.{name}"), GaugeMode::NeverImport).value()
    }

    #[test]
    fn a_limit_opens_at_its_maximum_and_tracks_what_remains() {
        let thresholds = CircuitBreakerThresholds { max_connections: 2, track_remaining: true, ..Default::default() };
        let (b, store) = breakers(thresholds);
        assert_eq!(gauge(&store, "remaining_cx"), 2);
        assert_eq!(gauge(&store, "remaining_rq"), 1024);
        b.connections.inc();
        assert!(b.connections.can_create());
        assert_eq!((gauge(&store, "cx_open"), gauge(&store, "remaining_cx")), (0, 1));
        b.connections.inc();
        assert!(!b.connections.can_create());
        assert_eq!((gauge(&store, "cx_open"), gauge(&store, "remaining_cx")), (1, 0));
        b.connections.dec();
        b.connections.dec();
        b.connections.dec();
        assert_eq!((b.connections.count(), gauge(&store, "cx_open"), gauge(&store, "remaining_cx")), (0, 0, 2));
    }

    #[test]
    fn remaining_gauges_exist_only_when_tracked() {
        let (_b, store) = breakers(CircuitBreakerThresholds::default());
        assert!(!store.entries().iter().any(|e| e.name.contains("remaining")));
    }

    #[test]
    fn a_retry_budget_scales_with_active_and_pending_requests() {
        let budget = RetryBudget { budget_percent: 25.0, min_retry_concurrency: 1 };
        let thresholds = CircuitBreakerThresholds { retry_budget: Some(budget), track_remaining: true, max_retries: 2, ..Default::default() };
        let (b, store) = breakers(thresholds);
        // Before the budget is consulted, remaining_retries shows max_retries, as in Envoy.
        assert_eq!(gauge(&store, "remaining_retries"), 2);
        assert!(b.retry_allowed());
        assert_eq!(gauge(&store, "remaining_retries"), 0);
        b.retry_started();
        // 0 requests: the minimum concurrency (1) is the limit.
        assert!(!b.retry_allowed());
        // 25% of 7 is 1.75, truncated to 1; 25% of 8 is 2.
        for _ in 0..6 {
            b.requests.inc();
        }
        b.pending.inc();
        assert!(!b.retry_allowed());
        b.requests.inc();
        assert!(b.retry_allowed());
        b.retry_started();
        // rq_retry_open follows max_retries (2), not the budget.
        assert_eq!(gauge(&store, "rq_retry_open"), 1);
        b.retry_ended();
        assert_eq!((gauge(&store, "rq_retry_open"), gauge(&store, "remaining_retries")), (0, 0));
    }

    #[test]
    fn without_a_budget_max_retries_limits_retries() {
        let (b, _store) = breakers(CircuitBreakerThresholds { max_retries: 1, ..Default::default() });
        assert!(b.retry_allowed());
        b.retry_started();
        assert!(!b.retry_allowed());
        b.retry_ended();
        assert!(b.retry_allowed());
    }
}
