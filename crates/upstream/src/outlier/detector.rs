//! The detector task: ejections, unejections and the per-interval success-rate and
//! failure-percentage detections.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Detector, Ejection, EjectionRequest};
use crate::cluster::Cluster;
use crate::host::Host;

/// Runs the cluster's outlier detection until the cluster is dropped.
pub(crate) async fn run(cluster: Weak<Cluster>, mut rx: mpsc::UnboundedReceiver<EjectionRequest>) {
    let Some(interval) = cluster.upgrade().and_then(|c| c.outlier.as_ref().map(|d| d.config.interval)) else { return };
    let mut next = tokio::time::Instant::now() + interval;
    loop {
        tokio::select! {
            msg = rx.recv() => {
                let (Some((host, kind)), Some(c)) = (msg, cluster.upgrade()) else { return };
                on_consecutive_error(&c, &host, kind);
            }
            () = tokio::time::sleep_until(next) => {
                let Some(c) = cluster.upgrade() else { return };
                on_interval(&c, Instant::now());
                next += interval;
            }
        }
    }
}

/// Envoy's `onConsecutiveErrorWorker`.
pub(crate) fn on_consecutive_error(c: &Cluster, host: &Arc<Host>, kind: Ejection) {
    let Some(d) = c.outlier.as_ref() else { return };
    if !c.hosts().contains(host) || host.has_flag(Host::FAILED_OUTLIER_CHECK) {
        return;
    }
    d.stats.detected(kind).inc();
    eject(c, d, host, kind);
    let m = &host.outlier;
    match kind {
        Ejection::Consecutive5xx => {
            d.stats.ejections_consecutive_5xx.inc();
            m.consecutive_5xx.store(0, Ordering::Relaxed);
        }
        Ejection::ConsecutiveGatewayFailure => m.consecutive_gateway.store(0, Ordering::Relaxed),
        _ => m.consecutive_local.store(0, Ordering::Relaxed),
    }
}

/// Envoy's `ejectHost`: within `max_ejection_percent` (or the one host `always_eject_one_host`
/// allows), and with the `enforcing_*` odds.
fn eject(c: &Cluster, d: &Detector, host: &Arc<Host>, kind: Ejection) {
    let total = c.hosts().hosts.len().max(1) as f64;
    let active = d.stats.ejections_active.value();
    let ejected_percent = 100.0 * (active + 1) as f64 / total;
    let allowed = ejected_percent <= f64::from(d.config.max_ejection_percent.min(100))
        || (d.config.always_eject_one_host && active == 0);
    if !allowed {
        d.stats.ejections_overflow.inc();
        return;
    }
    if matches!(kind, Ejection::Consecutive5xx | Ejection::SuccessRate) {
        d.stats.ejections_total.inc();
    }
    if rand::random::<u32>() % 100 >= kind.enforcing(&d.config) {
        return;
    }
    d.stats.ejections_enforced_total.inc();
    d.stats.enforced(kind).inc();
    {
        let mut s = host.outlier.lock();
        s.last_ejection = Some(Instant::now());
        let base = d.config.base_ejection_time;
        if base.saturating_mul(s.backoff) < d.config.max_ejection_time + base {
            s.backoff += 1;
        }
        let jitter_ms = d.config.max_ejection_time_jitter.as_millis() as u64;
        s.jitter = Duration::from_millis(rand::random::<u64>() % (jitter_ms + 1));
    }
    host.set_flag(Host::FAILED_OUTLIER_CHECK);
    // Rebuilding the balancer also recounts `ejections_active`.
    c.health_changed();
}

/// Returns an ejected host to service (Envoy's `unejectHost`), e.g. after a successful active
/// health check.
pub(crate) fn uneject(c: &Cluster, host: &Host, now: Instant) {
    if c.outlier.is_none() || !host.has_flag(Host::FAILED_OUTLIER_CHECK) {
        return;
    }
    host.clear_flag(Host::FAILED_OUTLIER_CHECK);
    host.outlier.reset_consecutive();
    host.outlier.lock().last_unejection = Some(now);
    c.health_changed();
}

/// Envoy's interval timer: unejections, then the success-rate and failure-percentage rounds.
pub(crate) fn on_interval(c: &Cluster, now: Instant) {
    let Some(d) = c.outlier.as_ref() else { return };
    let set = c.hosts();
    let base = d.config.base_ejection_time;
    for host in &set.hosts {
        let due = {
            let mut s = host.outlier.lock();
            if host.has_flag(Host::FAILED_OUTLIER_CHECK) {
                let ejected_for = s.last_ejection.map_or(Duration::MAX, |t| now.saturating_duration_since(t));
                base.saturating_mul(s.backoff).min(d.config.max_ejection_time) + s.jitter <= ejected_for
            } else {
                // Healthy for a base ejection time since the last unejection: back off less.
                if s.last_unejection.is_some_and(|t| now.saturating_duration_since(t) >= base) && s.backoff > 0 {
                    s.backoff -= 1;
                }
                false
            }
        };
        if due {
            uneject(c, host, now);
        }
    }
    let rounds: &[(bool, Ejection, Ejection)] = if d.config.split_external_local_origin_errors {
        &[
            (false, Ejection::SuccessRate, Ejection::FailurePercentage),
            (true, Ejection::LocalOriginSuccessRate, Ejection::LocalOriginFailurePercentage),
        ]
    } else {
        &[(false, Ejection::SuccessRate, Ejection::FailurePercentage)]
    };
    // Swap every host's interval counters, even when a round cannot run.
    let samples: Vec<[(u64, u64); 2]> = set
        .hosts
        .iter()
        .map(|h| {
            let m = &h.outlier;
            let take = |total: &std::sync::atomic::AtomicU64, ok: &std::sync::atomic::AtomicU64| {
                (total.swap(0, Ordering::Relaxed), ok.swap(0, Ordering::Relaxed))
            };
            [take(&m.external_total, &m.external_success), take(&m.local_total, &m.local_success)]
        })
        .collect();
    // Host success rates show in /clusters only when a round computed them.
    for host in &set.hosts {
        host.outlier.external_rate.store((-1f64).to_bits(), Ordering::Relaxed);
        host.outlier.local_rate.store((-1f64).to_bits(), Ordering::Relaxed);
    }
    let n = set.hosts.len();
    let too_few = n < d.config.success_rate_minimum_hosts as usize && n < d.config.failure_percentage_minimum_hosts as usize;
    for &(local, sr_kind, fp_kind) in rounds {
        let which = usize::from(local);
        d.success_rate_numbers.lock().unwrap_or_else(|e| e.into_inner())[which] = (-1.0, -1.0);
        if too_few {
            continue;
        }
        let mut rates = Vec::new();
        let mut failures = Vec::new();
        for (host, sample) in set.hosts.iter().zip(&samples) {
            let (total, ok) = sample[which];
            if host.has_flag(Host::FAILED_OUTLIER_CHECK) || total == 0 {
                continue;
            }
            let rate = 100.0 * ok as f64 / total as f64;
            if total >= u64::from(d.config.success_rate_request_volume.max(1)) {
                rates.push((host.clone(), rate));
                let slot = if local { &host.outlier.local_rate } else { &host.outlier.external_rate };
                slot.store(rate.to_bits(), Ordering::Relaxed);
            }
            if total >= u64::from(d.config.failure_percentage_request_volume.max(1)) {
                failures.push((host.clone(), 100.0 - rate));
            }
        }
        if !rates.is_empty() && rates.len() >= d.config.success_rate_minimum_hosts as usize {
            let (mean, threshold) = success_rate_threshold(&rates, f64::from(d.config.success_rate_stdev_factor) / 1000.0);
            d.success_rate_numbers.lock().unwrap_or_else(|e| e.into_inner())[which] = (mean, threshold);
            for (host, rate) in &rates {
                if *rate < threshold {
                    if !local {
                        d.stats.ejections_success_rate.inc();
                    }
                    d.stats.detected(sr_kind).inc();
                    if !host.has_flag(Host::FAILED_OUTLIER_CHECK) {
                        eject(c, d, host, sr_kind);
                    }
                }
            }
        }
        if !failures.is_empty() && failures.len() >= d.config.failure_percentage_minimum_hosts as usize {
            for (host, failure) in &failures {
                if *failure >= f64::from(d.config.failure_percentage_threshold) {
                    d.stats.detected(fp_kind).inc();
                    if !host.has_flag(Host::FAILED_OUTLIER_CHECK) {
                        eject(c, d, host, fp_kind);
                    }
                }
            }
        }
    }
}

/// Envoy's `successRateEjectionThreshold`: (mean, mean − factor × population stdev).
pub(crate) fn success_rate_threshold(rates: &[(Arc<Host>, f64)], factor: f64) -> (f64, f64) {
    let n = rates.len() as f64;
    let mean = rates.iter().map(|r| r.1).sum::<f64>() / n;
    let variance = rates.iter().map(|r| (r.1 - mean).powi(2)).sum::<f64>() / n;
    (mean, mean - factor * variance.sqrt())
}
