//! Per-worker upstream HTTP/2 connections: one multiplexed connection per host carries every
//! concurrent request of the worker to that host (Envoy's HTTP/2 pool with its default
//! `max_concurrent_streams`), re-established when the upstream closes it or sends GOAWAY.
//! Requests that arrive while the connection is being set up wait for it
//! (`upstream_rq_pending_*`) instead of opening connections of their own.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::body::UpstreamBody;
use crate::breakers::ConnectionSlot;
use crate::cluster::Cluster;
use crate::error::SharedError;
use crate::host::Host;
use crate::connect::{connect_tcp, Codec, CountedStream, UpstreamStream};
use crate::pool::{classify, Key, PendingGuard, RequestBody};
use crate::UpstreamError;

/// A connection being set up or established, shared by the requests waiting for it.
type Slot = Arc<OnceCell<Result<SendRequest<RequestBody>, SharedError>>>;

/// A worker's HTTP/2 connections to every host of every HTTP/2 cluster.
#[derive(Default)]
pub struct Http2Pool {
    slots: Mutex<foldhash::HashMap<Key, Slot>>,
}

// === impl Http2Pool ===

impl Http2Pool {
    /// Sends `req` to `host` over the worker's HTTP/2 connection to it, opening one if needed.
    /// `upstream_rq_total` and the host's `rq_total` count once a connection is assigned.
    ///
    /// An `async move` block rather than an `async fn`: its state holds one copy of the
    /// request, not two.
    pub fn send<'a>(
        &'a self,
        cluster: &'a Arc<Cluster>,
        host: &'a Arc<Host>,
        req: http::Request<RequestBody>,
        tls_name: Option<Arc<str>>,
    ) -> impl std::future::Future<Output = Result<http::Response<UpstreamBody>, UpstreamError>> + 'a {
        async move {
            let req = absolute_form(req);
            let key = (cluster.index, host.address, tls_name);
            // A connection found closed is replaced once; a second closed one fails the request.
            for _ in 0..2 {
                let slot = self.slot(&key);
                // Pending until the connection is there; a request dropped meanwhile is cancelled.
                let pending = if slot.initialized() { None } else { Some(PendingGuard::admit(cluster)?) };
                // The connect runs as its own task: a request that goes away meanwhile must not cut
                // a connection off half-open (its accounting would never close).
                let conn = slot
                    .get_or_init(|| {
                        let task = tokio::spawn(connect(cluster.clone(), host.clone(), key.2.clone()));
                        async move {
                            task.await.unwrap_or_else(|e| {
                                Err(SharedError::new(&UpstreamError::Reset { detail: format!("connect task ended: {e}") }))
                            })
                        }
                    })
                    .await;
                if let Some(p) = pending {
                    p.settle(conn.is_ok());
                }
                let mut sender = match conn {
                    Ok(sender) if !sender.is_closed() => sender.clone(),
                    Ok(_) => {
                        self.forget(&key, &slot);
                        continue;
                    }
                    Err(e) => {
                        self.forget(&key, &slot);
                        return Err(e.to_error());
                    }
                };
                cluster.stats.upstream_rq_total.inc();
                host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = sender.ready().await {
                    self.forget(&key, &slot);
                    return Err(classify(e));
                }
                // Given up before the response headers (timeout, client gone), the stream is reset.
                let mut waiting = ResetOnDrop(Some(cluster));
                let sent = sender.send_request(req).await;
                waiting.0 = None;
                return match sent {
                    Ok(resp) => Ok(resp.map(|body| UpstreamBody::stream(body, cluster.clone()))),
                    Err(e) => {
                        if sender.is_closed() {
                            self.forget(&key, &slot);
                        }
                        if reset_by_upstream(&e) {
                            cluster.stats.upstream_rq_rx_reset.inc();
                        }
                        Err(stream_error(e))
                    }
                };
            }
            Err(UpstreamError::Reset { detail: "HTTP/2 connection closed before the request was sent".into() })
        }
    }

    /// Adds `stream`, connected for an `auto_config` cluster whose upstream selected `h2` and
    /// counted under `max_connections` by `connection`, as the worker's connection to the host.
    pub(crate) async fn adopt(
        &self,
        cluster: &Arc<Cluster>,
        host: &Arc<Host>,
        key: &Key,
        stream: UpstreamStream,
        connection: ConnectionSlot,
    ) -> Result<(), UpstreamError> {
        cluster.stats.upstream_cx_http2_total.inc();
        let sender = start(cluster.clone(), host.clone(), connection, stream).await.map_err(|e| e.to_error())?;
        // Unless the slot is taken already (then this connection closes).
        let _ = self.slot(key).set(Ok(sender));
        Ok(())
    }

    fn slot(&self, key: &Key) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key.clone()).or_default().clone()
    }

    /// Drops `slot` for `key` unless another request already replaced it.
    fn forget(&self, key: &Key, slot: &Slot) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }
}

/// An HTTP/2 request needs `:scheme` and `:authority`: the URI becomes absolute, built from the
/// `Host` header, which HTTP/2 carries as `:authority` instead.
fn absolute_form(mut req: http::Request<RequestBody>) -> http::Request<RequestBody> {
    crate::pool::origin_form(&mut req);
    let authority = req
        .headers_mut()
        .remove(http::header::HOST)
        .and_then(|h| http::uri::Authority::try_from(h.as_bytes()).ok());
    if let Some(authority) = authority {
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTP);
        parts.authority = Some(authority);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    *req.version_mut() = http::Version::HTTP_2;
    req
}

/// Maps a failed HTTP/2 stream: a reset by the upstream reads like Envoy's stream reset.
/// Counts `upstream_rq_tx_reset` when dropped armed: Legate resets a stream it gave up.
struct ResetOnDrop<'a>(Option<&'a Arc<Cluster>>);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(cluster) = self.0 {
            cluster.stats.upstream_rq_tx_reset.inc();
        }
    }
}

/// Whether an HTTP/2 stream failed because the upstream reset it (RST_STREAM received).
pub(crate) fn reset_by_upstream(e: &hyper::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.to_string().starts_with("stream error received"))
}

fn stream_error(e: hyper::Error) -> UpstreamError {
    let text = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
    if text.contains("stream error") || text.contains("REFUSED_STREAM") || text.contains("reset") {
        return UpstreamError::Reset { detail: format!("{e}: {text}") };
    }
    classify(e)
}

/// Opens a connection and runs the HTTP/2 handshake.
///
/// The worker has no other connection to the host, so the connection is opened even when the
/// cluster is at `max_connections` (counted as `upstream_cx_overflow`), as Envoy's pools do.
async fn connect(cluster: Arc<Cluster>, host: Arc<Host>, tls_name: Option<Arc<str>>) -> Result<SendRequest<RequestBody>, SharedError> {
    // At the limit this only counts `upstream_cx_overflow`.
    let _ = cluster.connection_allowed();
    let slot = ConnectionSlot::new(&cluster);
    let stream = connect_tcp(&cluster, &host, Codec::Http2, tls_name.as_deref()).await.map_err(|e| SharedError::new(&e))?;
    start(cluster, host, slot, stream).await
}

/// Runs the HTTP/2 handshake on a connected stream; the connection's driver task does the
/// closing accounting.
async fn start(cluster: Arc<Cluster>, host: Arc<Host>, slot: ConnectionSlot, stream: UpstreamStream) -> Result<SendRequest<RequestBody>, SharedError> {
    let opened = Instant::now();
    let io = TokioIo::new(CountedStream { stream, cluster: cluster.clone() });
    let h2 = cluster.config.http.http2;
    let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(h2.initial_stream_window_size)
        .initial_connection_window_size(h2.initial_connection_window_size)
        .max_concurrent_reset_streams(1024);
    let closed = |remote: bool| {
        let s = &cluster.stats;
        s.upstream_cx_destroy.inc();
        if remote { &s.upstream_cx_destroy_remote } else { &s.upstream_cx_destroy_local }.inc();
        s.upstream_cx_length_ms.record(opened.elapsed().as_millis() as u64);
        s.upstream_cx_active.dec();
        host.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
    };
    match builder.handshake(io).await {
        Ok((sender, conn)) => {
            let (c, h) = (cluster.clone(), host.clone());
            tokio::spawn(async move {
                let result = conn.await;
                drop(slot);
                let s = &c.stats;
                if result.is_err() {
                    s.upstream_cx_protocol_error.inc();
                }
                s.upstream_cx_destroy.inc();
                s.upstream_cx_destroy_remote.inc();
                s.upstream_cx_length_ms.record(opened.elapsed().as_millis() as u64);
                s.upstream_cx_active.dec();
                h.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
            });
            Ok(sender)
        }
        Err(e) => {
            cluster.stats.upstream_cx_protocol_error.inc();
            closed(true);
            Err(SharedError::new(&classify(e)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::net::SocketAddr;
    use legate_config::model::{CircuitBreakerThresholds, DiscoveryType, UpstreamProtocol};
    use legate_stats::{GaugeMode, Store};

    /// An HTTP/2 upstream answering `200 ok`.
    async fn h2_upstream() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"ok"))))
                });
                let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(sock), service);
                tokio::spawn(conn);
            }
        });
        addr
    }

    #[tokio::test]
    async fn max_connections_counts_http2_connections_and_each_worker_keeps_one() {
        let addr = h2_upstream().await;
        let store = Store::new();
        let mut cfg = crate::test_support::cluster_config("c", DiscoveryType::Static, &[("127.0.0.1", addr.port(), 1, 0)]);
        cfg.http.protocol = UpstreamProtocol::Http2;
        cfg.circuit_breakers = CircuitBreakerThresholds { max_connections: 1, ..Default::default() };
        let cluster = Arc::new(Cluster::new(0, &cfg, &store, store.counter("cluster_manager.cluster_updated")).unwrap());
        let host = cluster.hosts().hosts[0].clone();
        async fn status(pool: &Http2Pool, cluster: &Arc<Cluster>, host: &Arc<Host>) -> http::StatusCode {
            let body: RequestBody = http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync();
            let req = http::Request::builder().uri("/").header("host", "c").body(body).unwrap();
            pool.send(cluster, host, req, None).await.unwrap().status()
        }
        let get = |pool| status(pool, &cluster, &host);
        let (worker1, worker2) = (Http2Pool::default(), Http2Pool::default());
        // Streams of one worker share its connection.
        let (a, b) = tokio::join!(get(&worker1), get(&worker1));
        assert_eq!((a, b), (http::StatusCode::OK, http::StatusCode::OK));
        assert_eq!(cluster.stats.upstream_cx_total.value(), 1);
        assert_eq!(cluster.stats.upstream_cx_overflow.value(), 0);
        // Another worker with no connection to the host opens one over the limit, counted.
        assert_eq!(get(&worker2).await, http::StatusCode::OK);
        assert_eq!(cluster.stats.upstream_cx_total.value(), 2);
        assert_eq!(cluster.stats.upstream_cx_overflow.value(), 1);
        assert_eq!(store.gauge("cluster.c.circuit_breakers.default.cx_open", GaugeMode::NeverImport).value(), 1);
    }

    #[tokio::test]
    async fn a_request_dropped_while_its_connection_opens_leaves_no_active_connection() {
        // A TLS upstream that accepts, never answers the ClientHello, and closes after 100 ms.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    drop(sock);
                });
            }
        });
        let store = Store::new();
        let mut cfg = crate::test_support::cluster_config("c", DiscoveryType::Static, &[("127.0.0.1", addr.port(), 1, 0)]);
        cfg.http.protocol = UpstreamProtocol::Http2;
        cfg.tls = Some(legate_config::model::UpstreamTls {
            sni: None,
            client_certificate: None,
            validation: Default::default(),
            alpn_protocols: Vec::new(),
            params: Default::default(),
        });
        let cluster = Arc::new(Cluster::new(0, &cfg, &store, store.counter("cluster_manager.cluster_updated")).unwrap());
        let host = cluster.hosts().hosts[0].clone();
        let pool = Http2Pool::default();
        let body: RequestBody = http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync();
        let req = http::Request::builder().uri("/").header("host", "c").body(body).unwrap();
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(30), pool.send(&cluster, &host, req, None)).await;
        assert!(gave_up.is_err(), "the request is still waiting for its connection");
        // It stopped being pending when it went away (or the max_pending_requests slot leaks).
        assert_eq!(cluster.stats.upstream_rq_pending_active.value(), 0);
        assert_eq!(cluster.stats.upstream_rq_cancelled.value(), 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while cluster.stats.upstream_cx_active.value() != 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(cluster.stats.upstream_cx_active.value(), 0);
        assert_eq!(cluster.stats.upstream_cx_destroy.value(), 1);
    }

    #[test]
    fn requests_become_absolute_with_the_host_as_authority() {
        let body: RequestBody = http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync();
        let req = http::Request::builder().uri("/a?b=1").header("host", "films:5000").body(body).unwrap();
        let req = absolute_form(req);
        assert_eq!(req.uri(), "http://films:5000/a?b=1");
        assert!(req.headers().get("host").is_none());
        assert_eq!(req.version(), http::Version::HTTP_2);
    }
}
