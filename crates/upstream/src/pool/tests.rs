use std::time::Duration;

use http_body_util::BodyExt;
use legate_config::model::{CircuitBreakerThresholds, DiscoveryType};
use legate_stats::{GaugeMode, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::test_support::cluster_config;

/// An HTTP/1 upstream answering every request after `delay`, closing the connection after its
/// response when `close` is set.
async fn upstream(delay: Duration, close: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
                    buf.drain(..end);
                    tokio::time::sleep(delay).await;
                    let connection = if close { "close" } else { "keep-alive" };
                    let resp = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: {connection}\r\n\r\nok");
                    if sock.write_all(resp.as_bytes()).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn limited_cluster(addr: SocketAddr, thresholds: CircuitBreakerThresholds) -> (Arc<Cluster>, Store) {
    let store = Store::new();
    let mut cfg = cluster_config("c", DiscoveryType::Static, &[("127.0.0.1", addr.port(), 1, 0)]);
    cfg.circuit_breakers = thresholds;
    let cluster = Cluster::new(0, &cfg, &store, store.counter("cluster_manager.cluster_updated")).unwrap();
    (Arc::new(cluster), store)
}

fn request() -> http::Request<RequestBody> {
    let body: RequestBody = http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync();
    http::Request::builder().uri("/").header("host", "c").body(body).unwrap()
}

/// Sends a request and reads the whole response; the status, or the error.
async fn get(pool: &Http1Pool, cluster: &Arc<Cluster>) -> Result<u16, UpstreamError> {
    get_named(pool, cluster, None).await
}

/// [`get`] with the request's TLS name (`auto_sni` / `auto_san_validation`).
async fn get_named(pool: &Http1Pool, cluster: &Arc<Cluster>, tls_name: Option<&str>) -> Result<u16, UpstreamError> {
    let host = cluster.hosts().hosts[0].clone();
    let resp = pool.send(cluster, &host, request(), tls_name.map(Arc::from)).await?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

fn cx_open(store: &Store) -> u64 {
    store.gauge("cluster.c.circuit_breakers.default.cx_open", GaugeMode::NeverImport).value()
}

#[tokio::test]
async fn at_max_connections_requests_wait_for_the_connection() {
    let addr = upstream(Duration::from_millis(150), false).await;
    let (cluster, store) = limited_cluster(addr, CircuitBreakerThresholds { max_connections: 1, ..Default::default() });
    let pool = Http1Pool::new();
    let (a, b, c) = tokio::join!(get(&pool, &cluster), get(&pool, &cluster), get(&pool, &cluster));
    assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (200, 200, 200));
    let s = &cluster.stats;
    assert_eq!(s.upstream_cx_total.value(), 1);
    assert_eq!(s.upstream_cx_overflow.value(), 2);
    assert_eq!(s.upstream_rq_pending_total.value(), 3);
    assert_eq!(s.upstream_rq_pending_active.value(), 0);
    // The idle connection still counts.
    assert_eq!(cx_open(&store), 1);
}

#[tokio::test]
async fn a_waiting_request_opens_a_connection_when_the_busy_one_closes() {
    let addr = upstream(Duration::from_millis(100), true).await;
    let (cluster, store) = limited_cluster(addr, CircuitBreakerThresholds { max_connections: 1, ..Default::default() });
    let pool = Http1Pool::new();
    let (a, b) = tokio::join!(get(&pool, &cluster), get(&pool, &cluster));
    assert_eq!((a.unwrap(), b.unwrap()), (200, 200));
    assert_eq!(cluster.stats.upstream_cx_total.value(), 2);
    assert_eq!(cluster.stats.upstream_cx_overflow.value(), 1);
    tokio::time::timeout(Duration::from_secs(2), async {
        while cluster.stats.upstream_cx_active.value() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(cx_open(&store), 0);
}

#[tokio::test]
async fn waiting_counts_under_max_pending_requests() {
    let addr = upstream(Duration::from_millis(150), false).await;
    let thresholds = CircuitBreakerThresholds { max_connections: 1, max_pending_requests: 1, ..Default::default() };
    let (cluster, _store) = limited_cluster(addr, thresholds);
    let pool = Http1Pool::new();
    let first = get(&pool, &cluster);
    let later = async {
        // The first request is connected (no longer pending) when the others come.
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::join!(get(&pool, &cluster), get(&pool, &cluster))
    };
    let (a, (b, c)) = tokio::join!(first, later);
    assert_eq!(a.unwrap(), 200);
    assert_eq!(b.unwrap(), 200);
    assert!(matches!(c, Err(UpstreamError::Overflow)));
    assert_eq!(cluster.stats.upstream_rq_pending_overflow.value(), 1);
    assert_eq!(cluster.stats.upstream_cx_total.value(), 1);
}

#[tokio::test]
async fn a_request_that_gives_up_waiting_leaves_the_queue() {
    let addr = upstream(Duration::from_millis(200), false).await;
    let (cluster, _store) = limited_cluster(addr, CircuitBreakerThresholds { max_connections: 1, ..Default::default() });
    let pool = Http1Pool::new();
    let impatient = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        tokio::time::timeout(Duration::from_millis(50), get(&pool, &cluster)).await.is_err()
    };
    let (a, timed_out) = tokio::join!(get(&pool, &cluster), impatient);
    assert_eq!(a.unwrap(), 200);
    assert!(timed_out);
    assert_eq!(cluster.stats.upstream_rq_cancelled.value(), 1);
    assert_eq!(cluster.stats.upstream_rq_pending_active.value(), 0);
    // The connection went back to the pool, not to the request that left.
    assert_eq!(get(&pool, &cluster).await.unwrap(), 200);
    assert_eq!(cluster.stats.upstream_cx_total.value(), 1);
    let conns = pool.conns.lock().unwrap();
    assert!(conns.values().all(|h| h.waiters.is_empty() && h.live == 1));
}

#[tokio::test]
async fn a_failed_connect_fails_the_requests_waiting_for_it() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let (cluster, _store) = limited_cluster(closed, CircuitBreakerThresholds { max_connections: 1, ..Default::default() });
    let pool = Http1Pool::new();
    // The first request connects, the second waits for its connection: both get its failure.
    let (a, b) = tokio::join!(get(&pool, &cluster), get(&pool, &cluster));
    assert!(matches!(a, Err(UpstreamError::ConnectFailure { .. })), "{a:?}");
    assert!(matches!(b, Err(UpstreamError::ConnectFailure { .. })), "{b:?}");
    let s = &cluster.stats;
    assert_eq!((s.upstream_cx_total.value(), s.upstream_cx_overflow.value()), (1, 1));
    assert_eq!(s.upstream_rq_pending_failure_eject.value(), 2);
    assert_eq!(s.upstream_rq_pending_active.value(), 0);
}

#[tokio::test]
async fn each_tls_name_has_its_own_connections_under_max_connections() {
    let addr = upstream(Duration::from_millis(150), false).await;
    let (cluster, store) = limited_cluster(addr, CircuitBreakerThresholds { max_connections: 1, ..Default::default() });
    let pool = Http1Pool::new();
    let (a1, a2, b) = tokio::join!(
        get_named(&pool, &cluster, Some("a.test")),
        get_named(&pool, &cluster, Some("a.test")),
        get_named(&pool, &cluster, Some("b.test")),
    );
    assert_eq!((a1.unwrap(), a2.unwrap(), b.unwrap()), (200, 200, 200));
    let s = &cluster.stats;
    // The second a.test request waits for the first one's connection; b.test cannot use it
    // and, having none, opens its own over the limit (both count as overflow).
    assert_eq!(s.upstream_cx_total.value(), 2);
    assert_eq!(s.upstream_cx_overflow.value(), 2);
    assert_eq!(cx_open(&store), 1);
    // A later b.test request gets b.test's connection.
    assert_eq!(get_named(&pool, &cluster, Some("b.test")).await.unwrap(), 200);
    assert_eq!(s.upstream_cx_total.value(), 2);
    let conns = pool.conns.lock().unwrap();
    let names: std::collections::BTreeSet<_> = conns.keys().map(|k| k.2.as_deref().map(str::to_owned)).collect();
    assert_eq!(names, [Some("a.test".to_owned()), Some("b.test".to_owned())].into_iter().collect());
    assert!(conns.values().all(|h| h.waiters.is_empty() && h.live == 1));
}

#[test]
fn close_kinds_follow_envoys_destroy_counters() {
    let kind = |local, with_active_rq, protocol_error| CloseKind { local, with_active_rq, protocol_error };
    // The upstream closes while a request waits for headers: remote, with an active request.
    assert_eq!(close_kind(&Ok(()), AWAITING_HEADERS, false, false), kind(false, true, false));
    // An idle connection the upstream closes, and one Legate closes.
    assert_eq!(close_kind(&Ok(()), IDLE, false, false), kind(false, false, false));
    assert_eq!(close_kind(&Ok(()), IDLE, true, false), kind(true, false, false));
    // A request given up (timeout, client gone): local, with an active request.
    assert_eq!(close_kind(&Ok(()), AWAITING_HEADERS, false, true), kind(true, true, false));
    // `connection: close` honoured after the response.
    assert_eq!(close_kind(&Ok(()), READING_BODY, true, false), kind(true, false, false));
}

#[test]
fn upstream_closes_on_a_close_token_or_http10_without_keep_alive() {
    use http::Version;
    let resp = |version, connection: Option<&str>| {
        let mut b = http::Response::builder().version(version);
        if let Some(c) = connection {
            b = b.header("connection", c);
        }
        b.body(()).unwrap()
    };
    assert!(!upstream_closes(&resp(Version::HTTP_11, None)));
    assert!(!upstream_closes(&resp(Version::HTTP_11, Some("keep-alive"))));
    assert!(upstream_closes(&resp(Version::HTTP_11, Some("Keep-Alive, Close"))));
    assert!(upstream_closes(&resp(Version::HTTP_10, None)));
    assert!(!upstream_closes(&resp(Version::HTTP_10, Some(" Keep-Alive "))));
}
