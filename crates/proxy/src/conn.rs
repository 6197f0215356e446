//! Serving one downstream connection with the listener's codec.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use legate_config::model::CodecType;
use tokio::net::TcpStream;

use crate::body::ms_since;
use crate::forwarding::Peer;
use crate::hcm::Hcm;
use crate::listener::{ListenerRuntime, TerminalFilter};
use crate::worker::WorkerContext;

/// Serves `stream` until the peer closes it, an idle timeout fires or a protocol error occurs.
pub async fn serve_connection(
    listener: &ListenerRuntime,
    worker: Arc<WorkerContext>,
    stream: TcpStream,
    remote: SocketAddr,
) {
    let local = stream.local_addr().unwrap_or(listener.config.address);
    let peer = Peer { remote, local, tls: false };
    match &listener.filter {
        TerminalFilter::Http(hcm) => {
            serve_http(hcm.clone(), worker, peer, stream, listener.config.per_connection_buffer_limit_bytes).await
        }
    }
}

async fn serve_http(
    hcm: Arc<Hcm>,
    worker: Arc<WorkerContext>,
    peer: Peer,
    stream: TcpStream,
    listener_buffer_limit: u32,
) {
    let stats = hcm.stats.clone();
    let start = Instant::now();
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    let io = TokioIo::new(stream);
    let service = {
        let hcm = hcm.clone();
        service_fn(move |req| hcm.clone().handle(worker.clone(), peer, req))
    };
    let cfg = &hcm.config;
    // hyper's read buffer bound: the listener's per-connection buffer limit, but never below what
    // a maximal request head needs (the header limit is enforced separately, with 431).
    let max_buf = (listener_buffer_limit as usize).max(cfg.max_request_headers_kb as usize * 1024).max(8192);
    let max_headers = cfg.max_headers_count as usize;
    let result = match cfg.codec_type {
        CodecType::Http1 => {
            stats.downstream_cx_http1_total.inc();
            stats.downstream_cx_http1_active.inc();
            let mut b = hyper::server::conn::http1::Builder::new();
            b.max_buf_size(max_buf).max_headers(max_headers).timer(TokioTimer::new());
            b.header_read_timeout(cfg.idle_timeout);
            let r = b.serve_connection(io, service).with_upgrades().await;
            stats.downstream_cx_http1_active.dec();
            r.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        }
        CodecType::Http2 | CodecType::Auto => {
            let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if cfg.codec_type == CodecType::Http2 {
                b = b.http2_only();
            }
            b.http1()
                .max_buf_size(max_buf)
                .max_headers(max_headers)
                .timer(TokioTimer::new())
                .header_read_timeout(cfg.idle_timeout);
            b.http2().timer(TokioTimer::new()).max_header_list_size((cfg.max_request_headers_kb * 1024).max(1024));
            stats.downstream_cx_http1_total.inc();
            stats.downstream_cx_http1_active.inc();
            let r = b.serve_connection_with_upgrades(io, service).await;
            stats.downstream_cx_http1_active.dec();
            r
        }
    };
    if let Err(e) = result {
        if is_protocol_error(&*e) {
            stats.downstream_cx_protocol_error.inc();
        } else if e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
            // The header-read timer runs while the connection waits for its next request.
            stats.downstream_cx_idle_timeout.inc();
        }
        tracing::debug!("downstream connection {}: {e}", peer.remote);
    }
    stats.downstream_cx_active.dec();
    stats.downstream_cx_destroy.inc();
    stats.downstream_cx_length_ms.record(ms_since(start));
}

fn is_protocol_error(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<hyper::Error>().is_some_and(|h| h.is_parse() || h.is_parse_too_large())
}
