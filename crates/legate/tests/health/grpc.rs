//! gRPC health checks and health checks over a cluster's TLS: a small HTTP/1.1 + HTTP/2
//! upstream (plain or TLS with a certificate made at test time) answers
//! `grpc.health.v1.Health/Check` with the serving status the test sets, and `GET /healthz`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU8, AtomicUsize};
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::*;

/// `HealthCheckResponse.ServingStatus` values.
const SERVING: u8 = 1;
const NOT_SERVING: u8 = 2;
/// Answers that are not valid replies (the message says SERVING): HTTP 503, no `grpc-status`
/// trailer, not a gRPC content type.
const HTTP_503: u8 = 0xf0;
const NO_GRPC_STATUS: u8 = 0xf1;
const NOT_GRPC: u8 = 0xf2;

/// The upstream: answers health checks with `status`, records the last check's request.
struct HealthServer {
    addr: SocketAddr,
    status: Arc<AtomicU8>,
    checks: Arc<AtomicUsize>,
    last_request: Arc<Mutex<String>>,
}

impl HealthServer {
    fn start(tls: bool) -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = HealthServer {
            addr,
            status: Arc::new(AtomicU8::new(SERVING)),
            checks: Arc::new(AtomicUsize::new(0)),
            last_request: Arc::new(Mutex::new(String::new())),
        };
        let acceptor = tls.then(tls_acceptor);
        let (status, checks, last) = (server.status.clone(), server.checks.clone(), server.last_request.clone());
        thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, status, checks, last) = (acceptor.clone(), status.clone(), checks.clone(), last.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |req| answer(req, status.clone(), checks.clone(), last.clone()));
                        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        match acceptor {
                            Some(a) => {
                                if let Ok(tls) = a.accept(tcp).await {
                                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                                }
                            }
                            None => {
                                let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                            }
                        }
                    });
                }
            });
        });
        server
    }

    fn set(&self, status: u8) {
        self.status.store(status, Ordering::SeqCst);
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let chain = vec![CertificateDer::from(cert.cert.der().to_vec())];
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    status: Arc<AtomicU8>,
    checks: Arc<AtomicUsize>,
    last: Arc<Mutex<String>>,
) -> Result<hyper::Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let serving = status.load(Ordering::SeqCst);
    checks.fetch_add(1, Ordering::SeqCst);
    let (head, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut headers: Vec<String> = head.headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect();
    headers.sort();
    *last.lock().unwrap() =
        format!("{:?} {} {} {} body={:?} {}", head.version, head.method, head.uri.path(), head.uri.authority().map_or("-", |a| a.as_str()), &body[..], headers.join(", "));
    if head.uri.path() != "/grpc.health.v1.Health/Check" {
        let code = if serving == SERVING { 200 } else { 503 };
        return Ok(hyper::Response::builder().status(code).body(Full::new(Bytes::new()).boxed()).unwrap());
    }
    let mut trailers = http::HeaderMap::new();
    if serving != NO_GRPC_STATUS {
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    }
    let message = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, if serving >= HTTP_503 { SERVING } else { serving }]);
    let body = Full::new(message).with_trailers(async move { Some(Ok(trailers)) }).boxed();
    let content_type = if serving == NOT_GRPC { "text/plain" } else { "application/grpc" };
    let code = if serving == HTTP_503 { 503 } else { 200 };
    Ok(hyper::Response::builder().status(code).header("content-type", content_type).body(body).unwrap())
}

const GRPC_CHECK: &str = "[{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, unhealthy_threshold: 3, healthy_threshold: 2, \
     grpc_health_check: {service_name: films, authority: grpc.test, initial_metadata: [{header: {key: x-check, value: \"yes\"}}]}}]";

#[test]
fn grpc_checks_eject_on_not_serving_and_readmit_on_serving() {
    let server = HealthServer::start(false);
    let extra = format!("http2_protocol_options: {{}}\n    health_checks: {GRPC_CHECK}");
    let legate = Legate::start(&config_with(&[server.addr], &extra, Some(0)), &[]);
    assert_eq!(flags(&legate, server.addr), "healthy");
    let request = server.last_request.lock().unwrap().clone();
    assert!(
        request.starts_with("HTTP/2.0 POST /grpc.health.v1.Health/Check grpc.test body=[0, 0, 0, 0, 7, 10, 5, 102, 105, 108, 109, 115] "),
        "{request}"
    );
    assert!(!request.contains("content-length"), "{request}");
    for h in ["content-type: application/grpc", "te: trailers", "user-agent: Envoy/HC", "grpc-timeout: 1000m", "x-check: yes"] {
        assert!(request.contains(h), "{h} missing: {request}");
    }

    // NOT_SERVING fails the host at the next check, without waiting for unhealthy_threshold.
    server.set(NOT_SERVING);
    wait_flags(&legate, server.addr, "/failed_active_hc");
    assert_eq!(legate.stat("cluster.svc.health_check.network_failure"), Some(0));
    assert_eq!(legate.stat("cluster.svc.membership_healthy"), Some(0));
    let r = get(&legate);
    assert_eq!((r.status, r.text()), (503, "no healthy upstream".to_string()));

    // SERVING again: back after healthy_threshold (2) checks.
    server.set(SERVING);
    wait_flags(&legate, server.addr, "healthy");
    wait_stat(&legate, "cluster.svc.health_check.healthy", 1);
    assert_eq!(legate.stat("cluster.svc.membership_healthy"), Some(1));
}

#[test]
fn invalid_replies_eject_at_once() {
    let server = HealthServer::start(false);
    let extra = format!("http2_protocol_options: {{}}\n    health_checks: {GRPC_CHECK}");
    let legate = Legate::start(&config_with(&[server.addr], &extra, None), &[]);
    assert_eq!(flags(&legate, server.addr), "healthy");
    for answer in [HTTP_503, NO_GRPC_STATUS, NOT_GRPC] {
        server.set(answer);
        wait_flags(&legate, server.addr, "/failed_active_hc");
        server.set(SERVING);
        wait_flags(&legate, server.addr, "healthy");
    }
    assert_eq!(legate.stat("cluster.svc.health_check.network_failure"), Some(0));
}

#[test]
fn a_non_grpc_or_http1_host_fails_grpc_checks() {
    // An HTTP/1.1-only host: the HTTP/2 preface gets no HTTP/2 answer (a network failure).
    let h1 = Backend::start("h1", 200);
    let extra = format!("http2_protocol_options: {{}}\n    health_checks: {GRPC_CHECK}");
    let legate = Legate::start(&config_with(&[h1.addr], &extra, None), &[]);
    assert_eq!(flags(&legate, h1.addr), "/failed_active_hc");
    assert!(legate.stat("cluster.svc.health_check.network_failure").unwrap() >= 1);
}

/// A plain TCP server that closes every connection at once.
fn closing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    addr
}

/// The cluster fields of a TLS cluster (no validation context: any certificate is accepted).
fn tls_cluster(health_checks: &str) -> String {
    format!(
        "transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: localhost
    health_checks: {health_checks}"
    )
}

#[test]
fn checks_of_a_tls_cluster_go_over_tls() {
    let tls = HealthServer::start(true);
    let plain = closing_server();
    let hosts = [tls.addr, plain];
    let checks = [
        HTTP_CHECK.to_string(),
        "[{timeout: 1s, interval: 0.1s, no_traffic_interval: 0.1s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {}}]".to_string(),
        HTTP_CHECK.replace("path: /healthz", "path: /healthz, codec_client_type: HTTP2"),
        format!("{GRPC_CHECK}\n    http2_protocol_options: {{}}"),
    ];
    for check in checks {
        let legate = Legate::start(&config_with(&hosts, &tls_cluster(&check), None), &[]);
        // The TLS host passes; the plain host fails the handshake (a network failure).
        assert_eq!(flags(&legate, tls.addr), "healthy", "{check}");
        assert_eq!(flags(&legate, plain), "/failed_active_hc", "{check}");
        assert!(legate.stat("cluster.svc.ssl.handshake").unwrap() >= 1, "{check}");
        assert!(legate.stat("cluster.svc.ssl.connection_error").unwrap() >= 1, "{check}");
        if !check.contains("tcp_health_check") {
            let request = tls.last_request.lock().unwrap().clone();
            let version = if check.contains("HTTP2") || check.contains("grpc") { "HTTP/2.0" } else { "HTTP/1.1" };
            assert!(request.starts_with(version), "{check}: {request}");
        }
        // NOT_SERVING (or 503) over TLS fails the host too.
        if !check.contains("tcp_health_check") {
            tls.set(NOT_SERVING);
            wait_flags(&legate, tls.addr, "/failed_active_hc");
            tls.set(SERVING);
        }
    }
}
