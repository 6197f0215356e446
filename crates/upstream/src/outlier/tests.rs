//! Outlier detection tests on clusters without network traffic: results are fed directly and
//! the detector's steps are run with synthetic times.

use std::time::{Duration, Instant};

use legate_config::model::{DiscoveryType, OutlierDetection};
use legate_stats::{GaugeMode, Store};

use super::detector::{on_consecutive_error, on_interval, success_rate_threshold};
use super::*;
use crate::cluster::Cluster;
use crate::test_support::cluster_config;
use crate::LbContext;

fn od() -> OutlierDetection {
    let s = Duration::from_secs;
    OutlierDetection {
        consecutive_5xx: 3,
        interval: s(1),
        base_ejection_time: s(10),
        max_ejection_percent: 100,
        enforcing_consecutive_5xx: 100,
        enforcing_success_rate: 100,
        success_rate_minimum_hosts: 5,
        success_rate_request_volume: 100,
        success_rate_stdev_factor: 1900,
        consecutive_gateway_failure: 5,
        enforcing_consecutive_gateway_failure: 0,
        split_external_local_origin_errors: false,
        consecutive_local_origin_failure: 2,
        enforcing_consecutive_local_origin_failure: 100,
        enforcing_local_origin_success_rate: 100,
        failure_percentage_threshold: 85,
        enforcing_failure_percentage: 0,
        enforcing_failure_percentage_local_origin: 0,
        failure_percentage_minimum_hosts: 5,
        failure_percentage_request_volume: 50,
        max_ejection_time: s(25),
        max_ejection_time_jitter: Duration::ZERO,
        successful_active_health_check_uneject_host: true,
        always_eject_one_host: false,
    }
}

fn build(hosts: usize, od: OutlierDetection) -> (Cluster, Store, mpsc::UnboundedReceiver<EjectionRequest>) {
    let endpoints: Vec<(&str, u16, u32, u32)> = (0..hosts).map(|i| ("127.0.0.1", 1000 + i as u16, 1, 0)).collect();
    let mut cfg = cluster_config("o", DiscoveryType::Static, &endpoints);
    cfg.outlier_detection = Some(od);
    let store = Store::new();
    let cluster = Cluster::new(0, &cfg, &store, store.counter("cluster_manager.cluster_updated")).unwrap();
    let rx = cluster.outlier.as_ref().unwrap().take_receiver().unwrap();
    (cluster, store, rx)
}

fn stat(store: &Store, name: &str) -> u64 {
    store.counter(&format!("cluster.o.outlier_detection.{name}")).value()
}

fn active(store: &Store) -> u64 {
    store.gauge("cluster.o.outlier_detection.ejections_active", GaugeMode::Accumulate).value()
}

fn put(c: &Cluster, host: &Arc<Host>, result: RequestResult, times: usize) {
    for _ in 0..times {
        c.outlier_result(host, result);
    }
}

#[test]
fn consecutive_5xx_ejects_and_the_interval_unejects_with_backoff() {
    let (c, store, mut rx) = build(2, od());
    let bad = c.hosts().hosts[1].clone();
    put(&c, &bad, RequestResult::Response(500), 2);
    put(&c, &bad, RequestResult::Response(404), 1);
    put(&c, &bad, RequestResult::Response(500), 2);
    assert!(rx.try_recv().is_err(), "a non-5xx breaks the streak");
    put(&c, &bad, RequestResult::Response(500), 1);
    let (host, kind) = rx.try_recv().unwrap();
    assert!(Arc::ptr_eq(&host, &bad) && kind == Ejection::Consecutive5xx);
    on_consecutive_error(&c, &host, kind);
    assert_eq!(bad.health_flags(), vec!["/failed_outlier_check"]);
    assert_eq!(active(&store), 1);
    for n in ["ejections_enforced_total", "ejections_enforced_consecutive_5xx", "ejections_detected_consecutive_5xx", "ejections_total", "ejections_consecutive_5xx"] {
        assert_eq!(stat(&store, n), 1, "{n}");
    }
    assert_eq!(store.gauge("cluster.o.membership_healthy", GaugeMode::Accumulate).value(), 1);
    for _ in 0..10 {
        assert_eq!(c.choose_host(&LbContext::default()).unwrap().address.port(), 1000);
    }

    // Uneject after base_ejection_time (10 s), checked by the interval timer.
    let t0 = Instant::now();
    on_interval(&c, t0 + Duration::from_secs(9));
    assert!(!bad.is_healthy());
    on_interval(&c, t0 + Duration::from_secs(11));
    assert!(bad.is_healthy());
    assert_eq!(active(&store), 0);

    // The second ejection lasts twice as long; the cap is max_ejection_time (25 s).
    put(&c, &bad, RequestResult::Response(503), 3);
    let (host, kind) = rx.try_recv().unwrap();
    on_consecutive_error(&c, &host, kind);
    assert!(!bad.is_healthy());
    on_interval(&c, Instant::now() + Duration::from_secs(15));
    assert!(!bad.is_healthy(), "2 x 10 s");
    on_interval(&c, Instant::now() + Duration::from_secs(21));
    assert!(bad.is_healthy());
}

#[test]
fn max_ejection_percent_overflows_and_gateway_failures_are_detected_not_enforced() {
    let mut config = od();
    config.max_ejection_percent = 10;
    let (c, store, mut rx) = build(2, config);
    let bad = c.hosts().hosts[0].clone();
    put(&c, &bad, RequestResult::Response(503), 3);
    let (host, kind) = rx.try_recv().unwrap();
    on_consecutive_error(&c, &host, kind);
    assert!(bad.is_healthy(), "1 of 2 hosts is 50% > 10%");
    assert_eq!(stat(&store, "ejections_overflow"), 1);
    assert_eq!(stat(&store, "ejections_detected_consecutive_5xx"), 1);
    assert_eq!(stat(&store, "ejections_enforced_total"), 0);

    let (c, store, mut rx) = build(2, od());
    let bad = c.hosts().hosts[0].clone();
    // Connect failures count as 503 without the split: gateway failures too (threshold 5).
    put(&c, &bad, RequestResult::ConnectFailed, 2);
    put(&c, &bad, RequestResult::Timeout, 1);
    let (host, kind) = rx.try_recv().unwrap();
    assert_eq!(kind, Ejection::Consecutive5xx);
    put(&c, &bad, RequestResult::Reset, 2);
    let (gw_host, gw_kind) = rx.try_recv().unwrap();
    assert_eq!(gw_kind, Ejection::ConsecutiveGatewayFailure);
    on_consecutive_error(&c, &gw_host, gw_kind);
    assert!(bad.is_healthy(), "enforcing_consecutive_gateway_failure defaults to 0");
    assert_eq!(stat(&store, "ejections_detected_consecutive_gateway_failure"), 1);
    assert_eq!(stat(&store, "ejections_enforced_consecutive_gateway_failure"), 0);
    on_consecutive_error(&c, &host, kind);
    assert!(!bad.is_healthy());
    on_consecutive_error(&c, &host, kind);
    assert_eq!(stat(&store, "ejections_detected_consecutive_5xx"), 1, "an ejected host is not ejected again");
}

#[test]
fn split_mode_counts_local_origin_failures_apart() {
    let mut config = od();
    config.split_external_local_origin_errors = true;
    let (c, store, mut rx) = build(2, config);
    let bad = c.hosts().hosts[0].clone();
    put(&c, &bad, RequestResult::ConnectFailed, 1);
    put(&c, &bad, RequestResult::Response(500), 1);
    put(&c, &bad, RequestResult::ConnectFailed, 1);
    put(&c, &bad, RequestResult::Response(500), 1);
    assert!(rx.try_recv().is_err(), "a response resets the local-origin streak; 2 x 5xx < 3");
    put(&c, &bad, RequestResult::Timeout, 3);
    put(&c, &bad, RequestResult::Reset, 3);
    assert!(rx.try_recv().is_err(), "each one follows a connect success");
    put(&c, &bad, RequestResult::ConnectFailed, 1);
    let (host, kind) = rx.try_recv().unwrap();
    assert_eq!(kind, Ejection::ConsecutiveLocalOriginFailure);
    on_consecutive_error(&c, &host, kind);
    assert!(!bad.is_healthy());
    assert_eq!(stat(&store, "ejections_enforced_consecutive_local_origin_failure"), 1);
}

#[test]
fn success_rate_and_failure_percentage_rounds() {
    let mut config = od();
    config.enforcing_failure_percentage = 100;
    let (c, store, _rx) = build(5, config);
    let hosts = c.hosts().hosts.clone();
    for h in &hosts[..4] {
        put(&c, h, RequestResult::Response(200), 100);
    }
    put(&c, &hosts[4], RequestResult::Response(200), 50);
    put(&c, &hosts[4], RequestResult::Response(500), 50);
    assert!(c.hosts().hosts.iter().all(|h| h.is_healthy()), "streak reports are not processed in this test");
    on_interval(&c, Instant::now());
    // Mean 90, population stdev 20: threshold 90 - 1.9 x 20 = 52 > 50.
    assert!(!hosts[4].is_healthy());
    assert!(hosts[..4].iter().all(|h| h.is_healthy()));
    assert_eq!(stat(&store, "ejections_detected_success_rate"), 1);
    assert_eq!(stat(&store, "ejections_enforced_success_rate"), 1);
    let [(mean, threshold), local] = c.outlier_success_rate_numbers().unwrap();
    assert!((mean - 90.0).abs() < 1e-9 && (threshold - 52.0).abs() < 1e-9, "{mean} {threshold}");
    assert_eq!(local, (-1.0, -1.0));
    assert_eq!(hosts[4].outlier_success_rates(), (Some(50.0), None));

    // Failure percentage: 5 hosts with volume, one at 90% failures (>= 85%).
    let (c, store, _rx) = build(5, od_with_fp());
    let hosts = c.hosts().hosts.clone();
    for h in &hosts[..4] {
        put(&c, h, RequestResult::Response(200), 60);
    }
    put(&c, &hosts[0], RequestResult::Response(200), 1);
    for _ in 0..6 {
        put(&c, &hosts[4], RequestResult::Response(200), 1);
        put(&c, &hosts[4], RequestResult::Response(500), 9);
    }
    on_interval(&c, Instant::now());
    assert!(!hosts[4].is_healthy());
    assert_eq!(stat(&store, "ejections_detected_failure_percentage"), 1);
    assert_eq!(stat(&store, "ejections_enforced_failure_percentage"), 1);
    assert_eq!(stat(&store, "ejections_detected_success_rate"), 0, "volume 60 < 100");
    assert_eq!(hosts[1].outlier_success_rates(), (None, None), "below success_rate_request_volume");
}

fn od_with_fp() -> OutlierDetection {
    let mut c = od();
    c.consecutive_5xx = 0;
    c.enforcing_failure_percentage = 100;
    c
}

#[test]
fn success_rate_threshold_is_mean_minus_factor_stdev() {
    let h = Arc::new(Host::new("127.0.0.1:1".parse().unwrap(), String::new(), 1, 0));
    let rates: Vec<(Arc<Host>, f64)> = [100.0, 100.0, 100.0, 100.0, 50.0].iter().map(|r| (h.clone(), *r)).collect();
    assert_eq!(success_rate_threshold(&rates, 1.9), (90.0, 90.0 - 1.9 * 20.0));
}

#[test]
fn dns_hosts_leaving_while_ejected_stop_counting_and_new_ones_wait_for_health_checks() {
    use crate::dns::Resolution;
    let answer = |ips: &[&str]| {
        Ok(Resolution { addresses: ips.iter().map(|i| i.parse().unwrap()).collect(), ttl: Duration::from_secs(5) })
    };
    let mut cfg = cluster_config("o", DiscoveryType::StrictDns, &[("svc.test", 80, 1, 0)]);
    cfg.outlier_detection = Some(od());
    let store = Store::new();
    let c = Cluster::new(0, &cfg, &store, store.counter("cluster_manager.cluster_updated")).unwrap();
    let mut rx = c.outlier.as_ref().unwrap().take_receiver().unwrap();
    c.apply_resolution(0, answer(&["10.0.0.1", "10.0.0.2"]));
    let bad = c.hosts().hosts[1].clone();
    put(&c, &bad, RequestResult::Response(500), 3);
    let (host, kind) = rx.try_recv().unwrap();
    on_consecutive_error(&c, &host, kind);
    assert_eq!(active(&store), 1);
    c.apply_resolution(0, answer(&["10.0.0.1"]));
    assert_eq!(active(&store), 0, "the ejected host left the cluster");
    on_consecutive_error(&c, &host, kind);
    assert_eq!(stat(&store, "ejections_detected_consecutive_5xx"), 1, "results of removed hosts are ignored");

    let mut cfg = cluster_config("h", DiscoveryType::StrictDns, &[("svc.test", 80, 1, 0)]);
    cfg.health_check = Some(crate::health::tests::http_hc());
    let c = Cluster::new(0, &cfg, &store, store.counter("cluster_manager.cluster_updated")).unwrap();
    c.apply_resolution(0, answer(&["10.0.0.1"]));
    assert_eq!(c.hosts().hosts[0].health_flags(), vec!["/failed_active_hc"]);
    assert!(c.choose_host(&LbContext::default()).is_some(), "panic mode: all hosts");
}
