//! `envoy.filters.network.tcp_proxy` end to end: bytes both ways, half-close, idle timeout,
//! weighted clusters, the tcp.* / cluster stats and `max_connections`, against real sockets on
//! loopback.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// A server that reads until EOF, then answers `<name>:<n bytes>` and closes.
fn counting_server(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || {
                let mut s = s;
                let mut buf = Vec::new();
                if s.read_to_end(&mut buf).is_ok() {
                    let _ = s.write_all(format!("{name}:{}", buf.len()).as_bytes());
                }
            });
        }
    });
    addr
}

fn config(clusters: &[(&str, SocketAddr)], target: &str, idle: &str) -> String {
    let mut out = format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {{admin_port}}}}}}
static_resources:
  listeners:
  - name: tcp
    address: {{socket_address: {{address: 127.0.0.1, port_value: {{listener_port}}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: db
          idle_timeout: {idle}
          {target}
  clusters:
"#
    );
    for (name, addr) in clusters {
        out.push_str(&static_cluster(name, *addr));
    }
    out
}

fn session(addr: SocketAddr, payload: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(payload).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn bytes_flow_both_ways_with_half_close() {
    let up = counting_server("pg");
    let legate = Legate::start(&config(&[("pg", up)], "cluster: pg", "10s"), &[]);
    let payload = vec![b'x'; 300_000];
    assert_eq!(session(legate.listener, &payload), "pg:300000");
    assert_eq!(session(legate.listener, b"hello"), "pg:5");
    let deadline = Instant::now() + Duration::from_secs(5);
    while legate.stat("cluster.pg.upstream_cx_destroy") != Some(2) {
        assert!(Instant::now() < deadline, "upstream connections were not closed");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(legate.stat("tcp.db.downstream_cx_total"), Some(2));
    assert_eq!(legate.stat("tcp.db.downstream_cx_rx_bytes_total"), Some(300_005));
    assert_eq!(legate.stat("tcp.db.downstream_cx_tx_bytes_total"), Some(("pg:300000".len() + "pg:5".len()) as u64));
    assert_eq!(legate.stat("cluster.pg.upstream_cx_total"), Some(2));
    assert_eq!(legate.stat("cluster.pg.upstream_cx_http1_total"), Some(0));
    assert_eq!(legate.stat("cluster.pg.upstream_cx_active"), Some(0));
    // Each session was one upstream request; the client's end of stream went first, so the
    // upstream's close ended each connection, as Envoy counts it.
    assert_eq!(legate.stat("cluster.pg.upstream_rq_total"), Some(2));
    assert_eq!(legate.stat("cluster.pg.upstream_rq_active"), Some(0));
    assert_eq!(legate.stat("cluster.pg.upstream_cx_destroy_remote_with_active_rq"), Some(2));
}

#[test]
fn idle_sessions_are_closed() {
    let up = silent_upstream();
    let legate = Legate::start(&config(&[("quiet", up)], "cluster: quiet", "0.3s"), &[]);
    let mut s = TcpStream::connect(legate.listener).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without data");
    assert!(start.elapsed() >= Duration::from_millis(250), "{:?}", start.elapsed());
    assert_eq!(legate.stat("tcp.db.idle_timeout"), Some(1));
    let deadline = Instant::now() + Duration::from_secs(5);
    while legate.stat("cluster.quiet.upstream_cx_destroy_local_with_active_rq") != Some(1) {
        assert!(Instant::now() < deadline, "the idle session's connection was not closed locally");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn weighted_clusters_and_unreachable_upstreams() {
    let a = counting_server("a");
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let target = "weighted_clusters: {clusters: [{name: a, weight: 1}, {name: gone, weight: 1}]}";
    let legate = Legate::start(&config(&[("a", a), ("gone", refused)], target, "10s"), &[]);
    let mut answered = 0;
    for _ in 0..20 {
        let mut s = TcpStream::connect(legate.listener).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"ab");
        let _ = s.shutdown(Shutdown::Write);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        match out.as_str() {
            "a:2" => answered += 1,
            "" => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(answered > 0 && answered < 20, "both clusters were picked: {answered}/20 answered");
    assert_eq!(legate.stat("cluster.gone.upstream_cx_connect_fail"), Some(20 - answered));
}

#[test]
fn sessions_over_max_connections_are_closed() {
    let (up, accepted) = counting_silent_upstream();
    let cfg = config(&[("one", up)], "cluster: one", "10s");
    let legate = Legate::start(&with_thresholds(&cfg, "{max_connections: 1}"), &[]);
    let mut first = TcpStream::connect(legate.listener).unwrap();
    first.write_all(b"hello").unwrap();
    legate.wait_stat("cluster.one.upstream_cx_active", 1);
    let mut second = TcpStream::connect(legate.listener).unwrap();
    second.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let start = Instant::now();
    // Closed at once, without a byte.
    assert!(matches!(second.read(&mut [0u8; 16]), Ok(0) | Err(_)));
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(legate.stat("cluster.one.upstream_cx_overflow"), Some(1));
    assert_eq!(legate.stat("cluster.one.circuit_breakers.default.cx_open"), Some(1));
    assert!(accepted.load(Ordering::Relaxed) <= 1);
    // Once the first session ends, a new one gets through.
    drop(first);
    legate.wait_stat("cluster.one.circuit_breakers.default.cx_open", 0);
    let _third = TcpStream::connect(legate.listener).unwrap();
    wait_until("the third session reaches the upstream", || accepted.load(Ordering::Relaxed) == 2);
}
