//! Active health checking (Envoy's `HealthCheckerImplBase` for HTTP, TCP and gRPC checks).
//!
//! One task per cluster follows the membership and runs one session task per host on the
//! cluster manager's runtime. A session checks its host, applies Envoy's state machine to the
//! host's flags (hosts start as `/failed_active_hc`; the first successful check, or
//! `healthy_threshold` consecutive ones, make them healthy; a failed response fails them at
//! once, `unhealthy_threshold` consecutive network failures or timeouts do too), rebuilds the
//! cluster's load balancer when a host changes state, and sleeps for Envoy's interval. The
//! cluster is initialized once every host has had its first check.

mod grpc;
mod probe;

use std::sync::{Arc, Weak};
use std::time::Duration;

use legate_config::model::HealthCheck;
use legate_stats::{Counter, Gauge, GaugeMode, Store};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::cluster::Cluster;
use crate::host::Host;
use probe::Probe;

/// `cluster.<name>.health_check.*` stats.
pub(crate) struct HealthCheckStats {
    /// Checks started.
    pub attempt: Counter,
    /// Checks passed.
    pub success: Counter,
    /// Checks failed (any reason).
    pub failure: Counter,
    /// Checks failed by connection failure, reset or timeout.
    pub network_failure: Counter,
    /// Hosts passing active health checking.
    pub healthy: Gauge,
}

impl HealthCheckStats {
    /// Creates the stats Envoy's health checker creates (`passive_failure`, `verify_cluster`
    /// and `degraded` stay zero: Legate has no passive health-check failures (Envoy counts
    /// `x-envoy-immediate-health-check-fail` there), no cluster verification and no degraded
    /// hosts, so zero is their true value).
    pub fn new(store: &Store, stat_name: &str) -> Self {
        let name = |n: &str| format!("cluster.{stat_name}.health_check.{n}");
        store.counter(&name("passive_failure"));
        store.counter(&name("verify_cluster"));
        store.gauge(&name("degraded"), GaugeMode::NeverImport).set(0);
        Self {
            attempt: store.counter(&name("attempt")),
            success: store.counter(&name("success")),
            failure: store.counter(&name("failure")),
            network_failure: store.counter(&name("network_failure")),
            healthy: store.gauge(&name("healthy"), GaugeMode::NeverImport),
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The host answered as expected.
    Success,
    /// The host answered, but not as expected (e.g. an unexpected HTTP status). `retriable`
    /// failures (`retriable_statuses`) count toward `unhealthy_threshold` like network ones.
    Failed { retriable: bool },
    /// Connecting, sending or receiving failed.
    Network,
    /// The check did not finish within `timeout`.
    Timeout,
}

/// What a check did to the host's health (Envoy's `HealthTransition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// No change, none on the way.
    Unchanged,
    /// The host changed state.
    Changed,
    /// The host is on its way to a change (below a threshold).
    ChangePending,
}

/// Per-host counters of Envoy's `ActiveHealthCheckSession`.
#[derive(Debug)]
pub(crate) struct Session {
    num_healthy: u32,
    num_unhealthy: u32,
    first_check: bool,
}

impl Session {
    /// A session whose first check has not run yet.
    pub fn new() -> Self {
        Self { num_healthy: 0, num_unhealthy: 0, first_check: true }
    }

    /// Applies a check's outcome to `host`'s flags and the stats (Envoy's `handleSuccess` and
    /// `handleFailure`).
    pub fn apply(&mut self, host: &Host, outcome: Outcome, hc: &HealthCheck, stats: &HealthCheckStats) -> Transition {
        let mut transition = Transition::Unchanged;
        if outcome == Outcome::Success {
            self.num_unhealthy = 0;
            if host.has_flag(Host::FAILED_ACTIVE_HC) {
                self.num_healthy = self.num_healthy.saturating_add(1);
                if self.first_check || self.num_healthy == hc.healthy_threshold {
                    host.clear_flag(Host::ACTIVE_HC_TIMEOUT);
                    host.clear_flag(Host::FAILED_ACTIVE_HC);
                    transition = Transition::Changed;
                } else {
                    transition = Transition::ChangePending;
                }
            }
            stats.success.inc();
        } else {
            self.num_healthy = 0;
            let network = matches!(outcome, Outcome::Network | Outcome::Timeout);
            let counts = network || outcome == (Outcome::Failed { retriable: true });
            if !host.has_flag(Host::FAILED_ACTIVE_HC) {
                let reached = counts && {
                    self.num_unhealthy = self.num_unhealthy.saturating_add(1);
                    self.num_unhealthy == hc.unhealthy_threshold
                };
                if !counts || reached {
                    host.set_flag(Host::FAILED_ACTIVE_HC);
                    transition = Transition::Changed;
                } else {
                    transition = Transition::ChangePending;
                }
            }
            // `/active_hc_timeout` marks a host that is failed and whose last check timed out
            // (a healthy host below the threshold is not flagged; another failure clears it).
            if outcome == Outcome::Timeout && host.has_flag(Host::FAILED_ACTIVE_HC) {
                host.set_flag(Host::ACTIVE_HC_TIMEOUT);
            } else {
                host.clear_flag(Host::ACTIVE_HC_TIMEOUT);
            }
            stats.failure.inc();
            if network {
                stats.network_failure.inc();
            }
        }
        self.first_check = false;
        transition
    }
}

/// Envoy's `HealthCheckerImplBase::interval`: the wait before the next check, after a check
/// that passed (`passed`) or not, with the transition it caused; `had_traffic` tells whether the
/// cluster ever opened a connection for traffic. `random` feeds the jitter.
pub(crate) fn next_interval(hc: &HealthCheck, passed: bool, transition: Transition, had_traffic: bool, random: u64) -> Duration {
    let pending = transition == Transition::ChangePending;
    let base = match (had_traffic, passed, pending) {
        (true, false, true) => hc.unhealthy_edge_interval,
        (true, false, false) => hc.unhealthy_interval,
        (true, true, true) => hc.healthy_edge_interval,
        (true, true, false) => hc.interval,
        (false, true, false) => hc.no_traffic_healthy_interval,
        (false, _, _) => hc.no_traffic_interval,
    };
    let base_ms = base.as_millis() as u64;
    let mut ms = base_ms;
    let percent_range = u64::from(hc.interval_jitter_percent).saturating_mul(base_ms) / 100;
    if percent_range > 0 {
        ms += random % percent_range;
    }
    let jitter_ms = hc.interval_jitter.as_millis() as u64;
    if jitter_ms > 0 {
        ms += random.rotate_left(32) % jitter_ms;
    }
    Duration::from_millis(ms)
}

/// Aborts the tasks it holds when dropped.
struct Tasks(Vec<(Arc<Host>, AbortHandle)>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for (_, t) in &self.0 {
            t.abort();
        }
    }
}

/// Runs the cluster's health checking until the cluster is dropped: waits for its first
/// membership, checks every host once (then marks the cluster's health checks ready), and keeps
/// one session per member host.
pub(crate) async fn run(cluster: Weak<Cluster>) {
    let (mut members, hosts) = {
        let Some(c) = cluster.upgrade() else { return };
        c.wait_membership().await;
        (c.watch_members(), c.hosts())
    };
    let mut tasks = Tasks(Vec::new());
    let mut firsts = Vec::new();
    for host in &hosts.hosts {
        let (tx, rx) = oneshot::channel();
        firsts.push(rx);
        let handle = tokio::spawn(session(cluster.clone(), host.clone(), Some(tx)));
        tasks.0.push((host.clone(), handle.abort_handle()));
    }
    let ready = cluster.clone();
    tokio::spawn(async move {
        for first in firsts {
            let _ = first.await;
        }
        if let Some(c) = ready.upgrade() {
            c.mark_hc_ready();
        }
    });
    while members.changed().await.is_ok() {
        let Some(c) = cluster.upgrade() else { return };
        let set = c.hosts();
        tasks.0.retain(|(h, t)| {
            let keep = set.contains(h);
            if !keep {
                t.abort();
            }
            keep
        });
        for host in &set.hosts {
            if !tasks.0.iter().any(|(h, _)| Arc::ptr_eq(h, host)) {
                let handle = tokio::spawn(session(cluster.clone(), host.clone(), None));
                tasks.0.push((host.clone(), handle.abort_handle()));
            }
        }
    }
}

/// Checks one host forever (until aborted or the cluster is dropped). `first` is signalled after
/// the first check.
async fn session(cluster: Weak<Cluster>, host: Arc<Host>, mut first: Option<oneshot::Sender<()>>) {
    let mut state = Session::new();
    let mut probe = Probe::default();
    if let Some(c) = cluster.upgrade() {
        let jitter = c.config.health_check.as_ref().map_or(0, |hc| hc.initial_jitter.as_millis() as u64);
        drop(c);
        if jitter > 0 {
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % jitter)).await;
        }
    }
    loop {
        let wait = {
            let Some(c) = cluster.upgrade() else { return };
            let (Some(hc), Some(stats)) = (c.config.health_check.as_ref(), c.health_stats.as_ref()) else { return };
            stats.attempt.inc();
            let outcome = match tokio::time::timeout(hc.timeout, probe.check(hc, &c, &host)).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    probe.on_timeout(hc);
                    Outcome::Timeout
                }
            };
            let transition = state.apply(&host, outcome, hc, stats);
            tracing::debug!(cluster = %c.config.name, host = %host.address, ?outcome, ?transition, "health check");
            if transition == Transition::Changed {
                c.health_changed();
            }
            let uneject = c.config.outlier_detection.as_ref().is_some_and(|o| o.successful_active_health_check_uneject_host);
            if outcome == Outcome::Success && uneject && host.has_flag(Host::FAILED_OUTLIER_CHECK) {
                crate::outlier::uneject(&c, &host, std::time::Instant::now());
            }
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            let had_traffic = c.stats.upstream_cx_total.used();
            next_interval(hc, outcome == Outcome::Success, transition, had_traffic, rand::random())
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
pub(crate) mod tests;
