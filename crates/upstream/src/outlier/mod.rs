//! Outlier detection (Envoy's `Outlier::DetectorImpl`): passive ejection of hosts from the
//! results of proxied requests.
//!
//! Workers report each upstream result with [`crate::Cluster::outlier_result`]; the per-host
//! [`HostMonitor`] counts consecutive 5xx, gateway failures (502/503/504) and, with
//! `split_external_local_origin_errors`, local-origin failures (connect failures, resets,
//! timeouts), plus per-interval success-rate counters. A streak reaching its threshold is sent
//! to the cluster's detector task (cluster manager runtime), which ejects the host
//! (`/failed_outlier_check`) within `max_ejection_percent` and the `enforcing_*` odds. Every
//! `interval` the task unejects hosts whose ejection time (`base_ejection_time` × backoff, capped
//! by `max_ejection_time`, plus jitter) is over, and runs the success-rate and
//! failure-percentage detections.

mod detector;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use legate_config::model::OutlierDetection;
use legate_stats::{Counter, Gauge, GaugeMode, Store};
use tokio::sync::mpsc;

use crate::host::Host;

pub(crate) use detector::{run, uneject};

/// What became of one upstream request, as the router reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// Response headers arrived with this status.
    Response(u16),
    /// No connection could be made (refused or connect timeout).
    ConnectFailed,
    /// The connection was made, then reset or closed before a complete response head.
    Reset,
    /// The route timeout expired while waiting for the response. The connection is taken as
    /// made (so with the local/external split the timeout follows a local-origin success, as
    /// in Envoy when the connect finished before the route timeout).
    Timeout,
}

/// Why a host is ejected (Envoy's `OutlierEjectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ejection {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
    ConsecutiveLocalOriginFailure,
    SuccessRate,
    LocalOriginSuccessRate,
    FailurePercentage,
    LocalOriginFailurePercentage,
}

impl Ejection {
    const ALL: [Ejection; 7] = [
        Ejection::Consecutive5xx,
        Ejection::ConsecutiveGatewayFailure,
        Ejection::ConsecutiveLocalOriginFailure,
        Ejection::SuccessRate,
        Ejection::LocalOriginSuccessRate,
        Ejection::FailurePercentage,
        Ejection::LocalOriginFailurePercentage,
    ];

    fn stat_suffix(self) -> &'static str {
        match self {
            Ejection::Consecutive5xx => "consecutive_5xx",
            Ejection::ConsecutiveGatewayFailure => "consecutive_gateway_failure",
            Ejection::ConsecutiveLocalOriginFailure => "consecutive_local_origin_failure",
            Ejection::SuccessRate => "success_rate",
            Ejection::LocalOriginSuccessRate => "local_origin_success_rate",
            Ejection::FailurePercentage => "failure_percentage",
            Ejection::LocalOriginFailurePercentage => "local_origin_failure_percentage",
        }
    }

    /// The `enforcing_*` percentage of this kind.
    fn enforcing(self, c: &OutlierDetection) -> u32 {
        match self {
            Ejection::Consecutive5xx => c.enforcing_consecutive_5xx,
            Ejection::ConsecutiveGatewayFailure => c.enforcing_consecutive_gateway_failure,
            Ejection::ConsecutiveLocalOriginFailure => c.enforcing_consecutive_local_origin_failure,
            Ejection::SuccessRate => c.enforcing_success_rate,
            Ejection::LocalOriginSuccessRate => c.enforcing_local_origin_success_rate,
            Ejection::FailurePercentage => c.enforcing_failure_percentage,
            Ejection::LocalOriginFailurePercentage => c.enforcing_failure_percentage_local_origin,
        }
    }
}

/// `cluster.<name>.outlier_detection.*` stats (Envoy 1.40's set).
pub(crate) struct OutlierStats {
    ejections_active: Gauge,
    ejections_overflow: Counter,
    ejections_enforced_total: Counter,
    ejections_total: Counter,
    ejections_consecutive_5xx: Counter,
    ejections_success_rate: Counter,
    detected: [Counter; 7],
    enforced: [Counter; 7],
}

impl OutlierStats {
    fn new(store: &Store, stat_name: &str) -> Self {
        let name = |n: &str| format!("cluster.{stat_name}.outlier_detection.{n}");
        // Degraded-host detection is not implemented (refused by the parser): zero is true.
        store.counter(&name("ejections_detected_degradation"));
        Self {
            ejections_active: store.gauge(&name("ejections_active"), GaugeMode::Accumulate),
            ejections_overflow: store.counter(&name("ejections_overflow")),
            ejections_enforced_total: store.counter(&name("ejections_enforced_total")),
            ejections_total: store.counter(&name("ejections_total")),
            ejections_consecutive_5xx: store.counter(&name("ejections_consecutive_5xx")),
            ejections_success_rate: store.counter(&name("ejections_success_rate")),
            detected: Ejection::ALL.map(|e| store.counter(&name(&format!("ejections_detected_{}", e.stat_suffix())))),
            enforced: Ejection::ALL.map(|e| store.counter(&name(&format!("ejections_enforced_{}", e.stat_suffix())))),
        }
    }

    /// Sets `ejections_active` to the number of ejected hosts of `set` (so hosts that leave
    /// the cluster while ejected stop counting, as in Envoy).
    pub(crate) fn count_ejected(&self, set: &crate::host::HostSet) {
        let n = set.hosts.iter().filter(|h| h.has_flag(Host::FAILED_OUTLIER_CHECK)).count();
        self.ejections_active.set(n as u64);
    }

    fn detected(&self, e: Ejection) -> &Counter {
        &self.detected[e as usize]
    }

    fn enforced(&self, e: Ejection) -> &Counter {
        &self.enforced[e as usize]
    }
}

/// Ejection bookkeeping of one host (touched by the detector task only).
#[derive(Debug, Default)]
struct EjectState {
    last_ejection: Option<Instant>,
    last_unejection: Option<Instant>,
    backoff: u32,
    jitter: Duration,
}

/// Per-host outlier counters, updated lock-free by the workers.
#[derive(Debug, Default)]
pub struct HostMonitor {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    consecutive_local: AtomicU32,
    external_total: AtomicU64,
    external_success: AtomicU64,
    local_total: AtomicU64,
    local_success: AtomicU64,
    /// Last computed success rates (f64 bits; negative = not computed), for `/clusters`.
    external_rate: AtomicU64,
    local_rate: AtomicU64,
    state: Mutex<EjectState>,
}

impl HostMonitor {
    /// A monitor with nothing recorded.
    pub fn new() -> Self {
        let m = Self::default();
        m.external_rate.store((-1f64).to_bits(), Ordering::Relaxed);
        m.local_rate.store((-1f64).to_bits(), Ordering::Relaxed);
        m
    }

    /// The success rates of the last interval (external, local origin), if computed.
    pub fn success_rates(&self) -> (Option<f64>, Option<f64>) {
        let get = |a: &AtomicU64| Some(f64::from_bits(a.load(Ordering::Relaxed))).filter(|r| *r >= 0.0);
        (get(&self.external_rate), get(&self.local_rate))
    }

    fn reset_consecutive(&self) {
        self.consecutive_5xx.store(0, Ordering::Relaxed);
        self.consecutive_gateway.store(0, Ordering::Relaxed);
        self.consecutive_local.store(0, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EjectState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `++counter == threshold` (Envoy compares for equality, so 0 never triggers).
fn bump(counter: &AtomicU32, threshold: u32) -> bool {
    counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1) == threshold
}

/// A host whose streak reached a threshold, sent from a worker to the detector task.
pub(crate) type EjectionRequest = (Arc<Host>, Ejection);

/// The outlier detector of one cluster.
pub(crate) struct Detector {
    config: OutlierDetection,
    pub(crate) stats: OutlierStats,
    tx: mpsc::UnboundedSender<EjectionRequest>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<EjectionRequest>>>,
    /// (average, ejection threshold) of the last success-rate round, external then local
    /// origin; -1 when not computed.
    pub(crate) success_rate_numbers: Mutex<[(f64, f64); 2]>,
}

impl Detector {
    /// A detector for `config`, with stats under `cluster.<stat_name>.outlier_detection.`.
    pub fn new(config: &OutlierDetection, store: &Store, stat_name: &str) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            config: config.clone(),
            stats: OutlierStats::new(store, stat_name),
            tx,
            rx: Mutex::new(Some(rx)),
            success_rate_numbers: Mutex::new([(-1.0, -1.0); 2]),
        }
    }

    /// Takes the receiving end of the ejection requests (once, for the detector task).
    pub fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<EjectionRequest>> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Records one request's result on `host` (any thread), as Envoy's `putResult` with or
    /// without the local/external split.
    pub fn put(&self, host: &Arc<Host>, result: RequestResult) {
        if self.config.split_external_local_origin_errors {
            match result {
                RequestResult::Response(code) => {
                    self.local_origin(host, true);
                    self.http_code(host, code);
                }
                RequestResult::ConnectFailed => self.local_origin(host, false),
                RequestResult::Reset | RequestResult::Timeout => {
                    self.local_origin(host, true);
                    self.local_origin(host, false);
                }
            }
        } else {
            let code = match result {
                RequestResult::Response(code) => code,
                RequestResult::ConnectFailed | RequestResult::Reset => 503,
                RequestResult::Timeout => 504,
            };
            self.http_code(host, code);
        }
    }

    fn http_code(&self, host: &Arc<Host>, code: u16) {
        let m = &host.outlier;
        m.external_total.fetch_add(1, Ordering::Relaxed);
        if (500..600).contains(&code) {
            if (502..=504).contains(&code) {
                if bump(&m.consecutive_gateway, self.config.consecutive_gateway_failure) {
                    self.report(host, Ejection::ConsecutiveGatewayFailure);
                }
            } else {
                m.consecutive_gateway.store(0, Ordering::Relaxed);
            }
            if bump(&m.consecutive_5xx, self.config.consecutive_5xx) {
                self.report(host, Ejection::Consecutive5xx);
            }
        } else {
            m.external_success.fetch_add(1, Ordering::Relaxed);
            m.consecutive_5xx.store(0, Ordering::Relaxed);
            m.consecutive_gateway.store(0, Ordering::Relaxed);
        }
    }

    fn local_origin(&self, host: &Arc<Host>, success: bool) {
        let m = &host.outlier;
        m.local_total.fetch_add(1, Ordering::Relaxed);
        if success {
            m.local_success.fetch_add(1, Ordering::Relaxed);
            m.consecutive_local.store(0, Ordering::Relaxed);
        } else if bump(&m.consecutive_local, self.config.consecutive_local_origin_failure) {
            self.report(host, Ejection::ConsecutiveLocalOriginFailure);
        }
    }

    fn report(&self, host: &Arc<Host>, kind: Ejection) {
        // The receiver only goes away with the cluster.
        let _ = self.tx.send((host.clone(), kind));
    }
}

#[cfg(test)]
mod tests;
