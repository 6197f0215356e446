//! Tests of the pool choice, with ALPN against TLS upstreams.

use std::net::SocketAddr;

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use legate_config::model::{CircuitBreakerThresholds, DiscoveryType, TlsParams, UpstreamTls};
use legate_stats::{GaugeMode, Store};
use rustls::pki_types::PrivateKeyDer;

use super::*;

#[test]
fn the_request_host_drops_the_port() {
    let host = |h: &str| {
        let req = http::Request::builder().header("host", h).body(RequestBody::default()).unwrap();
        request_host(&req).map(|s| s.to_string())
    };
    assert_eq!(host("API.test:8443").as_deref(), Some("api.test"));
    assert_eq!(host("api.test").as_deref(), Some("api.test"));
    assert_eq!(host("10.0.0.1:80").as_deref(), Some("10.0.0.1"));
    assert_eq!(host("[::1]:80").as_deref(), Some("::1"));
    assert_eq!(host(""), None);
}

#[test]
fn only_h2_selects_http2() {
    assert!(selects_http2(Some(b"h2")));
    assert!(!selects_http2(Some(b"http/1.1")));
    assert!(!selects_http2(None));
}

/// A TLS upstream selecting among `alpn` (none: no ALPN), answering with the request's version.
async fn tls_upstream(alpn: &[&str]) -> SocketAddr {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(sock).await else { return };
                let service = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    let body = bytes::Bytes::from(format!("{:?}", req.version()));
                    Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(body)))
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    addr
}

/// An `auto_config` cluster over TLS (no verification set up) of the one host `addr`.
fn auto_tls_cluster(addr: SocketAddr, thresholds: CircuitBreakerThresholds) -> (Arc<Cluster>, Store) {
    let store = Store::new();
    let mut cfg = crate::test_support::cluster_config("c", DiscoveryType::Static, &[("127.0.0.1", addr.port(), 1, 0)]);
    cfg.http.protocol = UpstreamProtocol::Auto;
    cfg.tls = Some(UpstreamTls {
        sni: None,
        client_certificate: None,
        validation: Default::default(),
        alpn_protocols: Vec::new(),
        params: TlsParams::default(),
    });
    cfg.circuit_breakers = thresholds;
    let cluster = Arc::new(Cluster::new(0, &cfg, &store, store.counter("cluster_manager.cluster_updated")).unwrap());
    (cluster, store)
}

/// Sends two requests, one after the other, to an `auto_config` cluster of the upstream
/// (`max_connections` 1, which the connection fills);
/// returns the versions the upstream saw and `(upstream_cx_total, http1_total, http2_total)`
/// (Envoy counts an `auto_config` connection twice in `upstream_cx_total`).
async fn two_requests(alpn: &[&str]) -> (Vec<String>, (u64, u64, u64)) {
    let addr = tls_upstream(alpn).await;
    let (cluster, store) = auto_tls_cluster(addr, CircuitBreakerThresholds { max_connections: 1, ..Default::default() });
    let host = cluster.hosts().hosts[0].clone();
    let pools = UpstreamPools::new();
    let mut versions = Vec::new();
    for _ in 0..2 {
        let body: RequestBody = http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync();
        let req = http::Request::builder().uri("/").header("host", "c").body(body).unwrap();
        let resp = pools.send(&cluster, &host, req, http::Version::HTTP_11).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        versions.push(String::from_utf8_lossy(&body).into_owned());
        // Let the HTTP/1.1 connection return to the pool.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The adopted connection counts under `max_connections`.
    assert_eq!(store.gauge("cluster.c.circuit_breakers.default.cx_open", GaugeMode::NeverImport).value(), 1);
    let s = &cluster.stats;
    (versions, (s.upstream_cx_total.value(), s.upstream_cx_http1_total.value(), s.upstream_cx_http2_total.value()))
}

#[tokio::test]
async fn an_upstream_selecting_h2_gets_http2_on_one_connection() {
    assert_eq!(two_requests(&["h2", "http/1.1"]).await, (vec!["HTTP/2.0".into(), "HTTP/2.0".into()], (2, 0, 1)));
}

#[tokio::test]
async fn an_upstream_selecting_http11_or_no_alpn_gets_http1_on_one_connection() {
    let http1 = vec!["HTTP/1.1".to_string(), "HTTP/1.1".to_string()];
    assert_eq!(two_requests(&["http/1.1"]).await, (http1.clone(), (2, 1, 0)));
    assert_eq!(two_requests(&[]).await, (http1, (2, 1, 0)));
}

#[tokio::test]
async fn a_request_dropped_while_its_first_connection_opens_leaves_nothing_counted() {
    // A TLS upstream that accepts and never answers the ClientHello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            socks.push(sock);
        }
    });
    let (cluster, _store) = auto_tls_cluster(addr, CircuitBreakerThresholds::default());
    let host = cluster.hosts().hosts[0].clone();
    let pools = UpstreamPools::new();
    let req = http::Request::builder().uri("/").header("host", "c").body(RequestBody::default()).unwrap();
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(100), pools.send(&cluster, &host, req, http::Version::HTTP_11)).await;
    assert!(gave_up.is_err(), "the request is still waiting for its connection");
    let s = &cluster.stats;
    assert_eq!((s.upstream_rq_pending_active.value(), s.upstream_rq_cancelled.value()), (0, 1));
    // The half-open connection was given up with the request: counted as closed by Legate.
    assert_eq!((s.upstream_cx_active.value(), s.upstream_cx_destroy_local.value()), (0, 1));
    held.abort();
}
