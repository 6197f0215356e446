//! Health checker tests: the state machine and intervals (pure), then real checks against
//! loopback servers through a cluster manager.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use legate_config::model::{DiscoveryType, HealthChecker, HttpHealthCheck, TcpHealthCheck};
use legate_stats::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::probe::payloads_match;
use super::*;
use crate::test_support::cluster_config;
use crate::{ClusterManager, LbContext};

fn hc(checker: HealthChecker) -> HealthCheck {
    let ms = Duration::from_millis;
    HealthCheck {
        timeout: ms(200),
        interval: ms(30),
        initial_jitter: Duration::ZERO,
        interval_jitter: Duration::ZERO,
        interval_jitter_percent: 0,
        unhealthy_threshold: 3,
        healthy_threshold: 2,
        alt_port: None,
        reuse_connection: true,
        no_traffic_interval: ms(40),
        no_traffic_healthy_interval: ms(50),
        unhealthy_interval: ms(60),
        unhealthy_edge_interval: ms(70),
        healthy_edge_interval: ms(80),
        checker,
    }
}

pub(crate) fn http_hc() -> HealthCheck {
    hc(HealthChecker::Http(HttpHealthCheck {
        host: String::new(),
        path: "/healthz".into(),
        method: "GET".into(),
        expected_statuses: vec![(200, 201)],
        retriable_statuses: vec![(500, 501)],
        request_headers_to_add: vec![],
        request_headers_to_remove: vec![],
        http2: false,
    }))
}

fn failed_host() -> Host {
    let h = Host::new("127.0.0.1:1".parse().unwrap(), String::new(), 1, 0);
    h.set_flag(Host::FAILED_ACTIVE_HC);
    h
}

#[test]
fn first_success_makes_a_new_host_healthy_at_once() {
    let (store, hc) = (Store::new(), http_hc());
    let stats = HealthCheckStats::new(&store, "c");
    let host = failed_host();
    let mut s = Session::new();
    assert_eq!(s.apply(&host, Outcome::Success, &hc, &stats), Transition::Changed);
    assert!(host.is_healthy());
    assert_eq!(s.apply(&host, Outcome::Success, &hc, &stats), Transition::Unchanged);
    assert_eq!((stats.success.value(), stats.failure.value()), (2, 0));
}

#[test]
fn failed_responses_fail_at_once_network_failures_need_the_threshold() {
    let (store, hc) = (Store::new(), http_hc());
    let stats = HealthCheckStats::new(&store, "c");
    let host = failed_host();
    let mut s = Session::new();
    s.apply(&host, Outcome::Success, &hc, &stats);
    assert_eq!(s.apply(&host, Outcome::Failed { retriable: false }, &hc, &stats), Transition::Changed);
    assert!(!host.is_healthy());

    // Recovery takes healthy_threshold (2) successes after the first check.
    assert_eq!(s.apply(&host, Outcome::Success, &hc, &stats), Transition::ChangePending);
    assert_eq!(s.apply(&host, Outcome::Success, &hc, &stats), Transition::Changed);
    assert!(host.is_healthy());

    // Network failures, timeouts and retriable statuses count toward unhealthy_threshold (3).
    assert_eq!(s.apply(&host, Outcome::Network, &hc, &stats), Transition::ChangePending);
    assert_eq!(s.apply(&host, Outcome::Failed { retriable: true }, &hc, &stats), Transition::ChangePending);
    assert!(host.is_healthy());
    assert_eq!(s.apply(&host, Outcome::Timeout, &hc, &stats), Transition::Changed);
    assert!(!host.is_healthy());
    assert_eq!(host.health_flags(), vec!["/failed_active_hc", "/active_hc_timeout"]);
    assert_eq!(s.apply(&host, Outcome::Network, &hc, &stats), Transition::Unchanged, "already unhealthy");
    assert_eq!(host.health_flags(), vec!["/failed_active_hc"], "the last failure was no timeout");
    assert_eq!(stats.failure.value(), 5);
    assert_eq!(stats.network_failure.value(), 3);

    // A failure in between restarts the count of successes; recovery clears the timeout flag.
    s.apply(&host, Outcome::Success, &hc, &stats);
    s.apply(&host, Outcome::Network, &hc, &stats);
    assert_eq!(s.apply(&host, Outcome::Success, &hc, &stats), Transition::ChangePending);
    assert_eq!(s.apply(&host, Outcome::Success, &hc, &stats), Transition::Changed);
    assert!(host.health_flags().is_empty());

    // A timeout below the threshold does not flag a healthy host.
    assert_eq!(s.apply(&host, Outcome::Timeout, &hc, &stats), Transition::ChangePending);
    assert!(host.health_flags().is_empty());
    s.apply(&host, Outcome::Success, &hc, &stats);

    // A success resets the count of failures.
    s.apply(&host, Outcome::Network, &hc, &stats);
    s.apply(&host, Outcome::Network, &hc, &stats);
    s.apply(&host, Outcome::Success, &hc, &stats);
    assert_eq!(s.apply(&host, Outcome::Network, &hc, &stats), Transition::ChangePending);
    assert!(host.is_healthy());
}

#[test]
fn zero_unhealthy_threshold_never_fails_on_network_errors() {
    let (store, mut hc) = (Store::new(), http_hc());
    hc.unhealthy_threshold = 0;
    let stats = HealthCheckStats::new(&store, "c");
    let host = failed_host();
    let mut s = Session::new();
    s.apply(&host, Outcome::Success, &hc, &stats);
    for _ in 0..5 {
        assert_eq!(s.apply(&host, Outcome::Network, &hc, &stats), Transition::ChangePending);
    }
    assert!(host.is_healthy());
}

#[test]
fn intervals_follow_envoy() {
    let hc = http_hc();
    let ms = Duration::from_millis;
    use Transition::*;
    assert_eq!(next_interval(&hc, true, Unchanged, true, 7), ms(30));
    assert_eq!(next_interval(&hc, true, Changed, true, 7), ms(30));
    assert_eq!(next_interval(&hc, true, ChangePending, true, 7), ms(80));
    assert_eq!(next_interval(&hc, false, Changed, true, 7), ms(60));
    assert_eq!(next_interval(&hc, false, ChangePending, true, 7), ms(70));
    assert_eq!(next_interval(&hc, true, Unchanged, false, 7), ms(50));
    assert_eq!(next_interval(&hc, true, ChangePending, false, 7), ms(40));
    assert_eq!(next_interval(&hc, false, Unchanged, false, 7), ms(40));

    let mut jittery = http_hc();
    jittery.interval = Duration::from_secs(1);
    jittery.interval_jitter_percent = 10;
    jittery.interval_jitter = ms(5);
    for random in [0, 1, 99, 12345, u64::MAX] {
        let d = next_interval(&jittery, true, Unchanged, true, random);
        assert!(d >= ms(1000) && d < ms(1105), "{d:?}");
    }
    assert_ne!(next_interval(&jittery, true, Unchanged, true, 50), ms(1000));
}

#[test]
fn request_headers_follow_envoy_order() {
    use legate_config::model::{AppendAction, HealthCheckHeader};
    let header = |name: &str, value: &str, append_action| HealthCheckHeader {
        name: name.into(),
        value: value.into(),
        append_action,
        keep_empty_value: false,
    };
    let HealthChecker::Http(mut h) = http_hc().checker else { unreachable!("http_hc is HTTP") };
    h.request_headers_to_remove = vec!["user-agent".into()];
    h.request_headers_to_add = vec![
        header("user-agent", "probe", AppendAction::AddIfAbsent),
        header("x-a", "1", AppendAction::AppendIfExistsOrAdd),
        header("x-a", "2", AppendAction::AppendIfExistsOrAdd),
        header("x-b", "1", AppendAction::OverwriteIfExists),
        header("x-c", "", AppendAction::AppendIfExistsOrAdd),
        header("x-a", "3", AppendAction::AddIfAbsent),
    ];
    let headers = super::probe::request_headers(&h, "svc").unwrap();
    assert_eq!(headers["host"], "svc");
    assert_eq!(headers["user-agent"], "probe", "removed first, then added");
    // ADD_IF_ABSENT looks at the headers before this batch of additions (checked with Envoy).
    assert_eq!(headers.get_all("x-a").iter().collect::<Vec<_>>(), vec!["1", "2", "3"]);
    assert!(!headers.contains_key("x-b") && !headers.contains_key("x-c"));
    h.request_headers_to_add = vec![header("x-d", "", AppendAction::AppendIfExistsOrAdd)];
    h.request_headers_to_add[0].keep_empty_value = true;
    assert_eq!(super::probe::request_headers(&h, "svc").unwrap()["x-d"], "");
    assert!(super::probe::request_headers(&h, "bad\nhost").is_none());
}

#[test]
fn tcp_payloads_match_in_order() {
    let p = |s: &[&str]| s.iter().map(|x| x.as_bytes().to_vec()).collect::<Vec<_>>();
    assert!(payloads_match(&p(&["PO", "NG"]), b"xxPOyyNG"));
    assert!(!payloads_match(&p(&["NG", "PO"]), b"POyyNG"));
    assert!(!payloads_match(&p(&["PONG"]), b"PON"));
    assert!(payloads_match(&p(&[]), b""));
}

/// An HTTP/1.1 server answering every request with the status in `status` (read per request).
async fn http_server(status: &'static AtomicU16) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end + 2]).to_string();
                        buf.drain(..end + 4);
                        assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
                        assert!(head.contains("host: c\r\n") && head.contains("user-agent: Envoy/HC\r\n"), "{head}");
                        let code = status.load(Ordering::SeqCst);
                        let reply = format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\n\r\nok");
                        if s.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn http_checks_drive_host_health_and_load_balancing() {
    static GOOD: AtomicU16 = AtomicU16::new(200);
    static BAD: AtomicU16 = AtomicU16::new(503);
    let (good, bad) = (http_server(&GOOD).await, http_server(&BAD).await);
    let mut config = cluster_config(
        "c",
        DiscoveryType::Static,
        &[("127.0.0.1", good.port(), 1, 0), ("127.0.0.1", bad.port(), 1, 0), ("127.0.0.1", good.port(), 1, 0)],
    );
    config.health_check = Some(http_hc());
    config.healthy_panic_threshold = 0.0;
    let store = Store::new();
    let manager = ClusterManager::new(&[config], &store).unwrap();
    let cluster = manager.get("c").unwrap().clone();
    assert!(!cluster.is_initialized(), "waits for the first round of checks");
    assert!(cluster.hosts().hosts.iter().all(|h| h.health_flags() == vec!["/failed_active_hc"]));
    manager.start();
    tokio::time::timeout(Duration::from_secs(5), manager.wait_initialized()).await.expect("initialized");
    let flags: Vec<bool> = cluster.hosts().hosts.iter().map(|h| h.is_healthy()).collect();
    assert_eq!(flags, vec![true, false, true]);
    assert_eq!(store.gauge("cluster.c.membership_healthy", legate_stats::GaugeMode::NeverImport).value(), 2);
    assert_eq!(store.gauge("cluster.c.health_check.healthy", legate_stats::GaugeMode::NeverImport).value(), 2);
    for _ in 0..20 {
        let h = cluster.choose_host(&LbContext::default()).unwrap();
        assert_eq!(h.address.port(), good.port());
    }

    // The bad host recovers after healthy_threshold successes; then a 503 fails it at once.
    BAD.store(200, Ordering::SeqCst);
    eventually("bad host recovers", || cluster.hosts().hosts[1].is_healthy()).await;
    assert_eq!(store.gauge("cluster.c.membership_healthy", legate_stats::GaugeMode::NeverImport).value(), 3);
    GOOD.store(503, Ordering::SeqCst);
    eventually("good hosts fail", || cluster.hosts().hosts.iter().filter(|h| h.is_healthy()).count() == 1).await;
    for _ in 0..10 {
        assert_eq!(cluster.choose_host(&LbContext::default()).unwrap().address.port(), bad.port());
    }
    let attempts = store.counter("cluster.c.health_check.attempt").value();
    assert!(attempts >= 6, "{attempts}");
    assert!(store.counter("cluster.c.health_check.failure").value() >= 3);
    assert!(store.counter("cluster.c.health_check.success").value() >= 4);
    assert_eq!(store.counter("cluster.c.health_check.network_failure").value(), 0);

    // With no healthy host and panic disabled, nothing is chosen.
    BAD.store(500, Ordering::SeqCst);
    eventually("all hosts fail", || cluster.hosts().hosts.iter().all(|h| !h.is_healthy())).await;
    assert!(cluster.choose_host(&LbContext::default()).is_none());
    assert_eq!(store.counter("cluster.c.membership_change").value(), 1, "health changes are not membership changes");
}

#[tokio::test]
async fn tcp_checks_send_and_expect_payloads() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4];
                while s.read_exact(&mut buf).await.is_ok() {
                    let reply: &[u8] = if &buf == b"PING" { b"xPONG" } else { b"NOPE" };
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let mut config =
        cluster_config("t", DiscoveryType::Static, &[("127.0.0.1", addr.port(), 1, 0), ("127.0.0.1", closed.port(), 1, 0)]);
    config.health_check =
        Some(hc(HealthChecker::Tcp(TcpHealthCheck { send: b"PING".to_vec(), receive: vec![b"PO".to_vec(), b"NG".to_vec()] })));
    let store = Store::new();
    let manager = ClusterManager::new(&[config.clone()], &store).unwrap();
    manager.start();
    tokio::time::timeout(Duration::from_secs(5), manager.wait_initialized()).await.expect("initialized");
    let hosts = manager.get("t").unwrap().hosts();
    assert!(hosts.hosts[0].is_healthy());
    assert!(!hosts.hosts[1].is_healthy());
    assert!(store.counter("cluster.t.health_check.network_failure").value() >= 1);

    // A server answering the wrong payload never passes: the check times out.
    config.health_check =
        Some(hc(HealthChecker::Tcp(TcpHealthCheck { send: b"PANG".to_vec(), receive: vec![b"PONG".to_vec()] })));
    config.endpoints.truncate(1);
    let store = Store::new();
    let manager = ClusterManager::new(&[config], &store).unwrap();
    manager.start();
    tokio::time::timeout(Duration::from_secs(5), manager.wait_initialized()).await.expect("initialized");
    let host = manager.get("t").unwrap().hosts().hosts[0].clone();
    assert_eq!(host.health_flags(), vec!["/failed_active_hc", "/active_hc_timeout"]);
}
