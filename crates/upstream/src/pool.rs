//! Per-worker upstream HTTP/1.1 connection pools with keep-alive.
//!
//! Each worker owns one [`Http1Pool`]; inside it, one hyper client per cluster keeps idle
//! connections per host. Connections are made by [`ClusterConnector`], which applies the
//! cluster's connect timeout and keeps the cluster and host connection stats.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::cluster::Cluster;
use crate::host::Host;
use crate::UpstreamError;

/// Boxed error of request bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Body type of requests sent upstream.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A worker's upstream connection pools, one per cluster, indexed by [`Cluster::index`].
#[derive(Default)]
pub struct Http1Pool {
    clients: Mutex<Vec<Option<Client<ClusterConnector, RequestBody>>>>,
}

impl Http1Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    fn client(&self, cluster: &Arc<Cluster>) -> Client<ClusterConnector, RequestBody> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() <= cluster.index {
            clients.resize_with(cluster.index + 1, || None);
        }
        clients[cluster.index]
            .get_or_insert_with(|| {
                let mut b = Client::builder(TokioExecutor::new());
                b.pool_timer(TokioTimer::new())
                    .pool_idle_timeout(cluster.config.http.idle_timeout)
                    .pool_max_idle_per_host(usize::MAX)
                    .set_host(false)
                    // The cluster's per-connection buffer limit bounds hyper's read buffer.
                    .http1_max_buf_size((cluster.config.per_connection_buffer_limit_bytes as usize).max(8192))
                    .http1_preserve_header_case(false);
                b.build(ClusterConnector { cluster: cluster.clone() })
            })
            .clone()
    }

    /// Sends `req` (origin-form URI) to `host` of `cluster`, reusing an idle connection if any.
    pub async fn send(
        &self,
        cluster: &Arc<Cluster>,
        host: &Arc<Host>,
        mut req: http::Request<RequestBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, UpstreamError> {
        let mut uri = std::mem::take(req.uri_mut()).into_parts();
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = Some(host.authority.clone());
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        *req.uri_mut() = http::Uri::from_parts(uri).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        self.client(cluster).request(req).await.map_err(classify)
    }
}

/// Maps a client error to Envoy's failure classes.
fn classify(err: hyper_util::client::legacy::Error) -> UpstreamError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    while let Some(e) = source {
        if let Some(connect) = e.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Refused(addr, io) => {
                    UpstreamError::ConnectFailure { addr: *addr, source: std::io::Error::new(io.kind(), io.to_string()) }
                }
                ConnectError::Timeout(addr) => UpstreamError::ConnectTimeout { addr: *addr },
                ConnectError::BadUri => UpstreamError::Protocol("bad upstream URI".into()),
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() {
                return UpstreamError::Protocol(h.to_string());
            }
            return UpstreamError::Reset(h.to_string());
        }
        source = e.source();
    }
    UpstreamError::Reset(err.to_string())
}

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The OS refused or failed the connect.
    #[error("connect to {0} failed: {1}")]
    Refused(SocketAddr, std::io::Error),
    /// connect_timeout elapsed.
    #[error("connect to {0} timed out")]
    Timeout(SocketAddr),
    /// The pool was handed a URI without an IP:port authority.
    #[error("upstream URI has no address")]
    BadUri,
}

/// Connects to hosts of one cluster with its timeout, counting connection stats.
#[derive(Clone)]
pub struct ClusterConnector {
    cluster: Arc<Cluster>,
}

impl tower_service::Service<http::Uri> for ClusterConnector {
    type Response = TokioIo<CountedStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<TokioIo<CountedStream>, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let cluster = self.cluster.clone();
        Box::pin(async move {
            let addr: SocketAddr = uri.authority().and_then(|a| a.as_str().parse().ok()).ok_or(ConnectError::BadUri)?;
            let host = cluster.hosts().get(&addr).cloned();
            let stats = &cluster.stats;
            let start = Instant::now();
            let result = tokio::time::timeout(cluster.config.connect_timeout, TcpStream::connect(addr)).await;
            let fail = |host: &Option<Arc<Host>>| {
                stats.upstream_cx_connect_fail.inc();
                if let Some(h) = host {
                    h.stats.cx_connect_fail.fetch_add(1, Ordering::Relaxed);
                }
            };
            let stream = match result {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    fail(&host);
                    return Err(ConnectError::Refused(addr, e));
                }
                Err(_) => {
                    stats.upstream_cx_connect_timeout.inc();
                    fail(&host);
                    return Err(ConnectError::Timeout(addr));
                }
            };
            let _ = stream.set_nodelay(true);
            stats.upstream_cx_connect_ms.record(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
            stats.upstream_cx_total.inc();
            stats.upstream_cx_http1_total.inc();
            stats.upstream_cx_active.inc();
            if let Some(h) = &host {
                h.stats.cx_total.fetch_add(1, Ordering::Relaxed);
                h.stats.cx_active.fetch_add(1, Ordering::Relaxed);
            }
            Ok(TokioIo::new(CountedStream {
                stream,
                guard: ConnectionGuard { cluster, host, opened: Instant::now(), rx: 0, tx: 0 },
            }))
        })
    }
}

/// Ends a connection's accounting when it is dropped.
struct ConnectionGuard {
    cluster: Arc<Cluster>,
    host: Option<Arc<Host>>,
    opened: Instant,
    rx: u64,
    tx: u64,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let s = &self.cluster.stats;
        s.upstream_cx_active.dec();
        s.upstream_cx_destroy.inc();
        s.upstream_cx_rx_bytes_total.add(self.rx);
        s.upstream_cx_tx_bytes_total.add(self.tx);
        s.upstream_cx_length_ms.record(u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX));
        if let Some(h) = &self.host {
            h.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An upstream TCP connection with byte and lifetime accounting.
pub struct CountedStream {
    stream: TcpStream,
    guard: ConnectionGuard,
}

impl Connection for CountedStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        this.guard.rx += (buf.filled().len() - before) as u64;
        r
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            this.guard.tx += n as u64;
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.guard.tx += n as u64;
        }
        r
    }
}
