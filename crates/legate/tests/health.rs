//! Active health checking, the panic threshold and outlier detection, end to end: real
//! upstreams on loopback whose health endpoint and traffic answer statuses the test controls.

mod support;
#[path = "health/grpc.rs"]
mod grpc;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// An HTTP/1.1 upstream: `GET /healthz` answers `status`; anything else answers
/// `traffic_status` (initially 200) with the upstream's name. Counts health checks and traffic
/// requests.
struct Backend {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    traffic_status: Arc<AtomicU16>,
    checks: Arc<AtomicUsize>,
    traffic: Arc<AtomicUsize>,
}

impl Backend {
    fn start(name: &'static str, status: u16) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(status));
        let traffic_status = Arc::new(AtomicU16::new(200));
        let (checks, traffic) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, ts, c, t) = (status.clone(), traffic_status.clone(), checks.clone(), traffic.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, ts, c, t) = (s.clone(), ts.clone(), c.clone(), t.clone());
                thread::spawn(move || serve(name, stream, [&s, &ts], &c, &t));
            }
        });
        Backend { addr, status, traffic_status, checks, traffic }
    }
}

fn serve(name: &str, stream: TcpStream, [status, traffic_status]: [&AtomicU16; 2], checks: &AtomicUsize, traffic: &AtomicUsize) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => head.push_str(&line),
            }
        }
        let (code, body) = if head.starts_with("GET /healthz HTTP/1.1\r\n") {
            assert!(head.contains("host: svc\r\n"), "Host is the cluster name: {head}");
            assert!(head.contains("user-agent: Envoy/HC\r\n"), "{head}");
            checks.fetch_add(1, Ordering::SeqCst);
            (status.load(Ordering::SeqCst), String::new())
        } else {
            traffic.fetch_add(1, Ordering::SeqCst);
            (traffic_status.load(Ordering::SeqCst), name.to_string())
        };
        let reply = format!("HTTP/1.1 {code} X\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        if w.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn config(hosts: &[SocketAddr], health_checks: &str, panic_threshold: Option<u32>) -> String {
    config_with(hosts, &format!("health_checks: {health_checks}"), panic_threshold)
}

/// A bootstrap routing everything to cluster `svc` (the `hosts`), with `extra` cluster fields.
fn config_with(hosts: &[SocketAddr], extra: &str, panic_threshold: Option<u32>) -> String {
    let endpoints: String = hosts
        .iter()
        .map(|a| format!("        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}}}\n", a.port()))
        .collect();
    let common = panic_threshold
        .map(|p| format!("    common_lb_config: {{healthy_panic_threshold: {{value: {p}}}}}\n"))
        .unwrap_or_default();
    let cluster = format!(
        "  - name: svc\n    connect_timeout: 1s\n{common}    {extra}\n    load_assignment:\n      cluster_name: svc\n      endpoints:\n      - lb_endpoints:\n{endpoints}"
    );
    http_bootstrap("              - match: {prefix: \"/\"}\n                route: {cluster: svc}\n", &cluster)
}

const HTTP_CHECK: &str = "[{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, unhealthy_threshold: 2, healthy_threshold: 2, http_health_check: {path: /healthz}}]";

fn flags(legate: &Legate, addr: SocketAddr) -> String {
    let clusters = legate.admin_get("/clusters").text();
    let prefix = format!("svc::{addr}::health_flags::");
    clusters.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or("<missing>").to_string()
}

fn wait_flags(legate: &Legate, addr: SocketAddr, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while flags(legate, addr) != want {
        assert!(Instant::now() < deadline, "{addr} never became {want}: {}", flags(legate, addr));
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_stat(legate: &Legate, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while legate.stat(name) != Some(want) {
        assert!(Instant::now() < deadline, "{name} never became {want}: {:?}", legate.stat(name));
        thread::sleep(Duration::from_millis(20));
    }
}

fn get(legate: &Legate) -> Response {
    request(legate.listener, "GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
}

#[test]
fn active_http_checks_steer_traffic_recover_and_panic() {
    let good = Backend::start("good", 200);
    let bad = Backend::start("bad", 503);
    let legate = Legate::start(&config(&[good.addr, bad.addr], HTTP_CHECK, None), &[]);

    // /ready answered 200: the first round of checks is done.
    assert!(good.checks.load(Ordering::SeqCst) >= 1 && bad.checks.load(Ordering::SeqCst) >= 1);
    assert_eq!(flags(&legate, good.addr), "healthy");
    assert_eq!(flags(&legate, bad.addr), "/failed_active_hc");
    assert_eq!(legate.stat("cluster.svc.membership_healthy"), Some(1));
    assert_eq!(legate.stat("cluster.svc.membership_total"), Some(2));
    assert_eq!(legate.stat("cluster.svc.health_check.healthy"), Some(1));
    assert_eq!(legate.stat("cluster.svc.health_check.network_failure"), Some(0));
    assert_eq!(legate.stat("cluster.svc.health_check.passive_failure"), Some(0));
    assert_eq!(legate.stat("cluster.svc.health_check.verify_cluster"), Some(0));
    assert_eq!(legate.stat("cluster.svc.health_check.degraded"), Some(0));
    for _ in 0..10 {
        let r = get(&legate);
        assert_eq!((r.status, r.text()), (200, "good".to_string()));
    }
    assert_eq!(bad.traffic.load(Ordering::SeqCst), 0);
    assert_eq!(legate.stat("cluster.svc.lb_healthy_panic"), Some(0));
    let attempts = legate.stat("cluster.svc.health_check.attempt").unwrap();
    let (success, failure) =
        (legate.stat("cluster.svc.health_check.success").unwrap(), legate.stat("cluster.svc.health_check.failure").unwrap());
    assert!(success >= 1 && failure >= 1, "success {success} failure {failure}");
    assert!(success + failure <= attempts);

    // The bad host recovers after healthy_threshold successes and takes traffic again.
    let checks_before = bad.checks.load(Ordering::SeqCst);
    bad.status.store(200, Ordering::SeqCst);
    wait_flags(&legate, bad.addr, "healthy");
    assert!(bad.checks.load(Ordering::SeqCst) >= checks_before + 2, "needs two successes");
    assert_eq!(legate.stat("cluster.svc.membership_healthy"), Some(2));
    for _ in 0..10 {
        assert_eq!(get(&legate).status, 200);
    }
    assert!(bad.traffic.load(Ordering::SeqCst) > 0 && good.traffic.load(Ordering::SeqCst) > 10);

    // A 503 fails a host at once; with no healthy host (0% < 50%) the balancer panics and
    // uses every host.
    good.status.store(503, Ordering::SeqCst);
    bad.status.store(503, Ordering::SeqCst);
    wait_flags(&legate, good.addr, "/failed_active_hc");
    wait_flags(&legate, bad.addr, "/failed_active_hc");
    assert_eq!(legate.stat("cluster.svc.membership_healthy"), Some(0));
    let (good_before, bad_before) = (good.traffic.load(Ordering::SeqCst), bad.traffic.load(Ordering::SeqCst));
    for _ in 0..10 {
        assert_eq!(get(&legate).status, 200);
    }
    assert!(good.traffic.load(Ordering::SeqCst) > good_before && bad.traffic.load(Ordering::SeqCst) > bad_before);
    assert_eq!(legate.stat("cluster.svc.lb_healthy_panic"), Some(10));
}

#[test]
fn panic_threshold_zero_means_no_healthy_upstream() {
    let bad = Backend::start("bad", 503);
    let legate = Legate::start(&config(&[bad.addr], HTTP_CHECK, Some(0)), &[]);
    assert_eq!(flags(&legate, bad.addr), "/failed_active_hc");
    let r = get(&legate);
    assert_eq!((r.status, r.text()), (503, "no healthy upstream".to_string()));
    assert_eq!(legate.stat("cluster.svc.upstream_cx_none_healthy"), Some(1));
    assert_eq!(legate.stat("cluster.svc.lb_healthy_panic"), Some(0));
    assert_eq!(bad.traffic.load(Ordering::SeqCst), 0);
}

#[test]
fn tcp_checks_and_timeouts() {
    // TCP: a listening host passes, a closed port fails.
    let up = Backend::start("up", 200);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let tcp = "[{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, unhealthy_threshold: 2, healthy_threshold: 2, tcp_health_check: {}}]";
    let legate = Legate::start(&config(&[up.addr, closed], tcp, None), &[]);
    assert_eq!(flags(&legate, up.addr), "healthy");
    assert_eq!(flags(&legate, closed), "/failed_active_hc");
    assert!(legate.stat("cluster.svc.health_check.network_failure").unwrap() >= 1);
    assert_eq!(up.checks.load(Ordering::SeqCst), 0, "a TCP check sends no HTTP request");
    drop(legate);

    // HTTP: a silent upstream times out (unhealthy from the start, flagged /active_hc_timeout).
    let silent = silent_upstream();
    let slow = "[{timeout: 0.2s, interval: 0.1s, no_traffic_interval: 0.1s, unhealthy_threshold: 2, healthy_threshold: 1, http_health_check: {path: /healthz}}]";
    let legate = Legate::start(&config(&[up.addr, silent], slow, None), &[]);
    assert_eq!(flags(&legate, silent), "/failed_active_hc/active_hc_timeout");
    assert_eq!(flags(&legate, up.addr), "healthy");
}

#[test]
fn outlier_detection_ejects_on_consecutive_5xx_then_unejects() {
    let good = Backend::start("good", 200);
    let bad = Backend::start("bad", 200);
    bad.traffic_status.store(500, Ordering::SeqCst);
    let od = "outlier_detection: {consecutive_5xx: 3, interval: 0.1s, base_ejection_time: 0.5s, max_ejection_percent: 50}";
    let legate = Legate::start(&config_with(&[good.addr, bad.addr], od, None), &[]);
    assert_eq!(legate.stat("cluster.svc.outlier_detection.ejections_active"), Some(0));
    // Round robin: the bad host answers every other request until its third 500.
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(get(&legate).status);
    }
    assert_eq!(codes.iter().filter(|c| **c == 500).count(), 3, "{codes:?}");
    wait_flags(&legate, bad.addr, "/failed_outlier_check");
    assert_eq!(flags(&legate, good.addr), "healthy");
    assert_eq!(legate.stat("cluster.svc.outlier_detection.ejections_active"), Some(1));
    assert_eq!(legate.stat("cluster.svc.outlier_detection.ejections_enforced_total"), Some(1));
    assert_eq!(legate.stat("cluster.svc.outlier_detection.ejections_enforced_consecutive_5xx"), Some(1));
    assert_eq!(legate.stat("cluster.svc.outlier_detection.ejections_detected_consecutive_5xx"), Some(1));
    assert_eq!(legate.stat("cluster.svc.membership_healthy"), Some(1));
    let before = bad.traffic.load(Ordering::SeqCst);
    for _ in 0..6 {
        let r = get(&legate);
        assert_eq!((r.status, r.text()), (200, "good".to_string()));
    }
    assert_eq!(bad.traffic.load(Ordering::SeqCst), before);
    let text = legate.admin_get("/clusters").text();
    assert!(text.contains("svc::outlier::success_rate_average::-1"), "{text}");

    // Unejected after base_ejection_time (0.5 s), at an interval tick.
    bad.traffic_status.store(200, Ordering::SeqCst);
    wait_flags(&legate, bad.addr, "healthy");
    assert_eq!(legate.stat("cluster.svc.outlier_detection.ejections_active"), Some(0));
    for _ in 0..4 {
        assert_eq!(get(&legate).status, 200);
    }
    assert!(bad.traffic.load(Ordering::SeqCst) > before);
}

#[test]
fn a_passing_active_health_check_unejects_an_outlier() {
    let good = Backend::start("good", 200);
    let bad = Backend::start("bad", 200);
    bad.traffic_status.store(503, Ordering::SeqCst);
    let extra = format!(
        "outlier_detection: {{consecutive_5xx: 2, base_ejection_time: 30s, max_ejection_percent: 50}}\n    health_checks: {HTTP_CHECK}"
    );
    let legate = Legate::start(&config_with(&[good.addr, bad.addr], &extra, None), &[]);
    for _ in 0..4 {
        get(&legate);
    }
    wait_stat(&legate, "cluster.svc.outlier_detection.ejections_enforced_total", 1);
    // The host passes its health checks, so it is back long before the 30 s ejection ends.
    wait_flags(&legate, bad.addr, "healthy");
    assert_eq!(legate.stat("cluster.svc.outlier_detection.ejections_active"), Some(0));
}
