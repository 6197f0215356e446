//! Serving one downstream connection with the listener's codec.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use legate_config::model::CodecType;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::body::ms_since;
use crate::forwarding::Peer;
use crate::conn_state::{ClientCloseWatch, ConnectionState};
use crate::h1_guard::RequestGuard;
use crate::hcm::Hcm;
use crate::listener::{ListenerRuntime, TerminalFilter};
use crate::sniff::{sniff, unsupported_http_version, Detected, NoCodec, Prefixed};
use crate::stats::HcmStats;
use crate::tls::Negotiated;
use crate::worker::WorkerContext;

/// Serves `stream` until the peer closes it, an idle timeout fires or a protocol error occurs.
pub async fn serve_connection(
    listener: &ListenerRuntime,
    worker: Arc<WorkerContext>,
    stream: TcpStream,
    remote: SocketAddr,
) {
    let local = stream.local_addr().unwrap_or(listener.config.address);
    let limit = listener.config.per_connection_buffer_limit_bytes;
    let chain = if listener.config.tls_inspector {
        let Some(found) = crate::chain::inspect(&stream).await else { return };
        listener.select(found.sni.as_deref(), found.transport)
    } else {
        listener.select(None, "raw_buffer")
    };
    let Some(chain) = chain else {
        listener.stats.no_filter_chain_match.inc();
        return;
    };
    match (&chain.filter, &chain.tls) {
        (TerminalFilter::Http(hcm), None) => {
            let peer = Peer { remote, local, tls: false };
            serve_http(hcm.clone(), worker, peer, stream, limit, Negotiated::None).await
        }
        (TerminalFilter::Http(hcm), Some(tls)) => {
            let Some((stream, negotiated)) = tls.accept(stream).await else { return };
            let peer = Peer { remote, local, tls: true };
            serve_http(hcm.clone(), worker, peer, stream, limit, negotiated).await
        }
        (TerminalFilter::Tcp(tcp), None) => tcp.serve(stream, remote, local).await,
        (TerminalFilter::Tcp(tcp), Some(tls)) => {
            if let Some((stream, _)) = tls.accept(stream).await {
                tcp.serve(stream, remote, local).await
            }
        }
    }
}

/// Serves HTTP on `io` (plain TCP or decrypted TLS).
async fn serve_http<I>(
    hcm: Arc<Hcm>,
    worker: Arc<WorkerContext>,
    peer: Peer,
    io: I,
    listener_buffer_limit: u32,
    alpn: Negotiated,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let stats = hcm.stats.clone();
    let start = Instant::now();
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    if peer.tls {
        stats.downstream_cx_ssl_total.inc();
        stats.downstream_cx_ssl_active.inc();
    }
    // Shared with the streams: drain state, active streams, and who ends the connection.
    let connection = Arc::new(ConnectionState::default());
    let mut io = ClientCloseWatch::new(io, connection.clone());
    let cfg = &hcm.config;
    // The codec is created on the first bytes, as in Envoy.
    let (detected, head) = match sniff(&mut io, cfg.idle_timeout).await {
        Ok(found) => found,
        Err(reason) => {
            if matches!(reason, NoCodec::IdleTimeout) {
                stats.downstream_cx_idle_timeout.inc();
            }
            return connection_closed(&stats, start, &connection, peer.tls);
        }
    };
    let detected = match (cfg.codec_type, alpn) {
        (CodecType::Http1, _) => Detected::Http1,
        (CodecType::Http2, _) => Detected::Http2,
        (CodecType::Auto, Negotiated::Http2) => Detected::Http2,
        (CodecType::Auto, Negotiated::Http1) => Detected::Http1,
        (CodecType::Auto, Negotiated::None) => detected,
    };
    if detected == Detected::Http1 && unsupported_http_version(&head) {
        reply_upgrade_required(&hcm, &mut io).await;
        return connection_closed(&stats, start, &connection, peer.tls);
    }
    let io = Prefixed::new(head, io);
    // hyper's read buffer bound: the listener's per-connection buffer limit, but never below what
    // a maximal request head needs (the header limit is enforced separately, with 431).
    let max_buf = (listener_buffer_limit as usize).max(cfg.max_request_headers_kb as usize * 1024).max(8192);
    let result = match detected {
        Detected::Http1 => {
            stats.downstream_cx_http1_total.inc();
            stats.downstream_cx_http1_active.inc();
            let mut b = hyper::server::conn::http1::Builder::new();
            // The idle timeout is the connection's own (below), not a timer per request head.
            b.max_buf_size(max_buf).max_headers(cfg.max_headers_count as usize).header_read_timeout(None);
            // Request heads pass Envoy's framing rules before the codec reads them.
            let max_head = max_buf.max(cfg.max_request_headers_kb as usize * 1024 + 1024);
            let io = RequestGuard::new(io, max_head);
            let service = {
                let (hcm, connection) = (hcm.clone(), connection.clone());
                service_fn(move |req| hcm.clone().handle(worker.clone(), peer, req, connection.clone()))
            };
            let conn = b.serve_connection(TokioIo::new(io), service).with_upgrades();
            let r = match cfg.idle_timeout {
                None => conn.await,
                Some(idle) => serve_http1_with_idle_timeout(conn, &hcm, &connection, idle).await,
            };
            stats.downstream_cx_http1_active.dec();
            r
        }
        Detected::Http2 => {
            stats.downstream_cx_http2_total.inc();
            stats.downstream_cx_http2_active.inc();
            let mut b = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            b.timer(TokioTimer::new())
                .max_header_list_size((cfg.max_request_headers_kb * 1024).max(1024))
                .max_concurrent_streams(cfg.http2.max_concurrent_streams)
                .initial_stream_window_size(cfg.http2.initial_stream_window_size)
                .initial_connection_window_size(cfg.http2.initial_connection_window_size);
            let r = serve_http2(&b, TokioIo::new(io), hcm.clone(), worker, peer, connection.clone()).await;
            stats.downstream_cx_http2_active.dec();
            r
        }
    };
    if let Err(e) = result {
        if e.is_parse() || e.is_parse_too_large() {
            // hyper answered the request it could not parse (400/431); Envoy counts it as a
            // request and a protocol error.
            stats.downstream_cx_protocol_error.inc();
            stats.downstream_rq_total.inc();
            stats.downstream_rq_http1_total.inc();
            stats.record_response(if e.is_parse_too_large() { 431 } else { 400 });
        }
        tracing::debug!("downstream connection {}: {e}", peer.remote);
    }
    connection_closed(&stats, start, &connection, peer.tls);
}

/// Envoy's HCM `drain_timeout` and `delayed_close_timeout` (their defaults; setting either is
/// refused): an HTTP/1 connection idle after a request closes this long after its idle timeout.
const HTTP1_IDLE_DRAIN: Duration = Duration::from_secs(5 + 1);

/// Serves an HTTP/1 connection that has had no active request for `idle`
/// (`downstream_cx_idle_timeout`), as Envoy does: one that never started a request (perhaps
/// only part of its head arrived) closes then; otherwise the connection drains: a request
/// still arriving is answered with `connection: close`, and the connection closes after the
/// drain and delayed-close timeouts.
async fn serve_http1_with_idle_timeout(
    conn: impl std::future::Future<Output = hyper::Result<()>>,
    hcm: &Hcm,
    connection: &ConnectionState,
    idle: Duration,
) -> hyper::Result<()> {
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return r,
        () = connection.idle_for(idle) => hcm.stats.downstream_cx_idle_timeout.inc(),
    }
    if !connection.used() {
        return Ok(());
    }
    connection.close();
    tokio::time::timeout(HTTP1_IDLE_DRAIN, conn).await.unwrap_or(Ok(()))
}

/// Serves an HTTP/2 connection; with the HCM `idle_timeout`, a connection without active
/// streams for that long is drained gracefully (GOAWAY) and counted in
/// `downstream_cx_idle_timeout`; so is one that `connection` marks as closing because the
/// server drains.
async fn serve_http2<I>(
    builder: &hyper::server::conn::http2::Builder<TokioExecutor>,
    io: I,
    hcm: Arc<Hcm>,
    worker: Arc<WorkerContext>,
    peer: Peer,
    connection: Arc<ConnectionState>,
) -> hyper::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = {
        let (hcm, connection) = (hcm.clone(), connection.clone());
        service_fn(move |req| hcm.clone().handle(worker.clone(), peer, req, connection.clone()))
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let idle = async {
        match hcm.config.idle_timeout {
            Some(idle) => connection.idle_for(idle).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = conn.as_mut() => return r,
        () = idle => hcm.stats.downstream_cx_idle_timeout.inc(),
        // Draining: GOAWAY, then the streams in flight complete.
        () = connection.wait() => {}
    }
    conn.as_mut().graceful_shutdown();
    conn.await
}

/// Connection-level accounting at close.
fn connection_closed(stats: &HcmStats, start: Instant, state: &ConnectionState, tls: bool) {
    stats.downstream_cx_active.dec();
    if tls {
        stats.downstream_cx_ssl_active.dec();
    }
    stats.downstream_cx_destroy.inc();
    state.count_close(stats);
    stats.downstream_cx_length_ms.record(ms_since(start));
}

/// Envoy's answer to a request line with an HTTP version other than 1.x: 426, then close.
async fn reply_upgrade_required<I: AsyncWrite + Unpin>(hcm: &Hcm, io: &mut I) {
    let stats = &hcm.stats;
    stats.downstream_cx_http1_total.inc();
    stats.downstream_cx_protocol_error.inc();
    stats.downstream_rq_total.inc();
    stats.downstream_rq_http1_total.inc();
    stats.record_response(426);
    let mut head = format!(
        "HTTP/1.1 426 Upgrade Required\r\ncontent-length: 16\r\ncontent-type: text/plain\r\ndate: {}\r\n",
        httpdate::fmt_http_date(std::time::SystemTime::now())
    )
    .into_bytes();
    if let Some(server) = hcm.server_header() {
        head.extend_from_slice(b"server: ");
        head.extend_from_slice(server.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"connection: close\r\n\r\nUpgrade Required");
    let _ = io.write_all(&head).await;
    let _ = io.shutdown().await;
}
