//! Circuit breakers end to end against a slow upstream on loopback: `max_connections` holds a
//! flood of requests to a few connections and pending requests (the rest overflow at once)
//! while another cluster keeps serving. (tcp_proxy sessions over `max_connections`: tcp_proxy.rs.)

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::thread;

use support::*;

fn http_config(slow: SocketAddr, ok: SocketAddr) -> String {
    let routes = concat!(
        "              - match: {prefix: \"/slow\"}\n                route: {cluster: slow, timeout: 1s}\n",
        "              - match: {prefix: \"/\"}\n                route: {cluster: ok}\n",
    );
    let slow = with_thresholds(&static_cluster("slow", slow), "{max_connections: 2, max_pending_requests: 3, track_remaining: true}");
    http_bootstrap(routes, &(slow + &static_cluster("ok", ok)))
}

#[test]
fn a_flood_over_max_connections_is_held_to_the_limits_and_other_clusters_keep_serving() {
    let (slow, accepted) = counting_silent_upstream();
    let ok = Upstream::start("ok");
    let legate = Legate::start(&http_config(slow, ok.addr), &["--concurrency", "1"]);
    let listener = legate.listener;
    let send = |i: usize| {
        thread::spawn(move || request(listener, &format!("GET /slow/{i} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")))
    };
    // Two requests take the two connections allowed...
    let mut flood: Vec<_> = (0..2).map(send).collect();
    legate.wait_stat("cluster.slow.upstream_rq_total", 2);
    // ...three more wait for them and the rest overflow.
    flood.extend((2..20).map(send));
    // Whatever overflows is answered at once; the others wait for the route timeout (1 s).
    legate.wait_stat("cluster.slow.upstream_rq_pending_overflow", 15);
    legate.wait_stat("cluster.slow.upstream_cx_overflow", 3);
    wait_until("two upstream connections", || accepted.load(Ordering::Relaxed) == 2);
    assert_eq!(legate.stat("cluster.slow.upstream_cx_active"), Some(2));
    assert_eq!(legate.stat("cluster.slow.upstream_rq_pending_active"), Some(3));
    assert_eq!(legate.stat("cluster.slow.circuit_breakers.default.cx_open"), Some(1));
    assert_eq!(legate.stat("cluster.slow.circuit_breakers.default.rq_pending_open"), Some(1));
    assert_eq!(legate.stat("cluster.slow.circuit_breakers.default.remaining_cx"), Some(0));
    assert_eq!(legate.stat("cluster.slow.circuit_breakers.default.remaining_pending"), Some(0));
    let other = request(listener, "GET /fine HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert_eq!(other.status, 200);
    let mut statuses: Vec<u16> = flood.into_iter().map(|t| t.join().unwrap().status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [[503; 15].as_slice(), &[504; 5]].concat());
    assert_eq!(legate.stat("cluster.slow.upstream_rq_pending_active"), Some(0));
}

#[test]
fn requests_abandoned_by_their_clients_free_their_max_requests_slot() {
    let (slow, _accepted) = counting_silent_upstream();
    let ok = Upstream::start("ok");
    let routes = concat!(
        "              - match: {prefix: \"/slow\"}\n                route: {cluster: slow, timeout: 0s}\n",
        "              - match: {prefix: \"/\"}\n                route: {cluster: ok}\n",
    );
    let slow_cluster = with_thresholds(&static_cluster("slow", slow), "{max_requests: 1}");
    let legate = Legate::start(&http_bootstrap(routes, &(slow_cluster + &static_cluster("ok", ok.addr))), &["--concurrency", "1"]);
    // Each client gives up while its request waits for the silent upstream: every one of them
    // must give its max_requests slot back, or the next would overflow.
    for i in 0..3 {
        let mut client = std::net::TcpStream::connect(legate.listener).unwrap();
        std::io::Write::write_all(&mut client, format!("GET /slow/{i} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).unwrap();
        legate.wait_stat("cluster.slow.upstream_rq_active", 1);
        assert_eq!(legate.stat("cluster.slow.circuit_breakers.default.rq_open"), Some(1));
        drop(client);
        legate.wait_stat("cluster.slow.upstream_rq_active", 0);
        assert_eq!(legate.stat("cluster.slow.circuit_breakers.default.rq_open"), Some(0));
    }
    assert_eq!(legate.stat("cluster.slow.upstream_rq_active_overflow"), Some(0));
    assert_eq!(legate.stat("http.ingress_http.downstream_rq_rx_reset"), Some(3));
    assert_eq!(legate.stat("http.ingress_http.downstream_cx_destroy_remote_active_rq"), Some(3));
}
