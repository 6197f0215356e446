//! The HTTP connection manager: per-request processing from downstream headers to the router.
//!
//! Invariant: every request that enters [`Hcm::handle`] is counted once in
//! `downstream_rq_total` and completed once (response class + `downstream_rq_completed`), and its
//! [`StreamGuard`] ends the active-request gauge when the response body ends or is dropped.

use std::sync::Arc;
use std::time::Instant;

use http::header::{HeaderValue, HOST, SERVER};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use legate_config::model::{HttpConnectionManager, ServerHeaderTransformation};
use legate_stats::Store;
use legate_upstream::headers::header_tokens;
use legate_upstream::ClusterManager;

use crate::access_log::{AccessLogs, WriterError};
use crate::body::{ClientGone, ProxyBody, StreamGuard};
use crate::conn_state::ConnectionState;
use crate::forwarding::{ForwardingPolicy, Peer};
use crate::local_reply::{local_reply, protocol_error, ResponseFlags};
use crate::route::RouteTable;
use crate::router::{self, RouteContext, UpgradeRequest};
use crate::stats::HcmStats;
use crate::validate::{check_header_size, check_http1, Rejection};

/// Shared, immutable state of one HTTP connection manager (one per listener filter chain).
pub struct Hcm {
    /// The configuration.
    pub config: HttpConnectionManager,
    /// The compiled route table.
    pub routes: RouteTable,
    /// Stats of this HCM (shared with every stream's guard).
    pub stats: Arc<HcmStats>,
    /// Header forwarding policy.
    pub forwarding: ForwardingPolicy,
    /// Clusters.
    pub clusters: Arc<ClusterManager>,
    /// `server` header value.
    pub server_name: HeaderValue,
    /// This machine's hostname, for `%HOSTNAME%`.
    pub hostname: String,
    /// The access loggers (`None` without `access_log`).
    pub access_logs: Option<Arc<AccessLogs>>,
    /// The listener's `per_connection_buffer_limit_bytes`: the most of a request body kept
    /// for retries.
    pub buffer_limit: u32,
}

impl Hcm {
    /// Builds the HCM for `config` on the listener whose stat scope is `listener_scope` and
    /// whose `per_connection_buffer_limit_bytes` is `buffer_limit`; access log files are
    /// flushed at least every `flush_interval`.
    pub fn new(
        config: &HttpConnectionManager,
        listener_scope: &str,
        buffer_limit: u32,
        clusters: Arc<ClusterManager>,
        store: &Store,
        flush_interval: std::time::Duration,
    ) -> Result<Self, WriterError> {
        let server_name =
            HeaderValue::from_str(&config.server_name).unwrap_or_else(|_| HeaderValue::from_static("envoy"));
        let hostname = hostname();
        let access_logs = AccessLogs::new(&config.access_log, &hostname, store, flush_interval)?;
        Ok(Self {
            routes: RouteTable::new(&config.route_config),
            stats: Arc::new(HcmStats::new(store, &config.stat_prefix, listener_scope)),
            forwarding: ForwardingPolicy {
                use_remote_address: config.use_remote_address,
                xff_num_trusted_hops: config.xff_num_trusted_hops,
                internal: config.internal_address_config.clone(),
                generate_request_id: config.generate_request_id,
                preserve_external_request_id: config.preserve_external_request_id,
                local_address: crate::forwarding::machine_local_address(),
            },
            clusters,
            server_name,
            hostname,
            access_logs,
            buffer_limit,
            config: config.clone(),
        })
    }

    /// Handles one downstream request and produces the downstream response; `connection` is
    /// the connection's shared state (closed after this response when the server drains; the
    /// stream counts among its active ones). A client
    /// that went away mid-request gets no response: the error resets the stream.
    ///
    /// A function returning an `async move` block rather than an `async fn`, so that the
    /// future's state holds one copy of each argument, not two (see [`router::route_and_forward`]).
    pub fn handle(
        self: Arc<Self>,
        worker: Arc<crate::worker::WorkerContext>,
        peer: Peer,
        req: Request<Incoming>,
        connection: Arc<ConnectionState>,
    ) -> impl std::future::Future<Output = Result<Response<ProxyBody>, ClientGone>> {
        async move {
            let start = Instant::now();
            let stats = &self.stats;
            stats.downstream_rq_total.inc();
            match req.version() {
                Version::HTTP_2 => stats.downstream_rq_http2_total.inc(),
                _ => stats.downstream_rq_http1_total.inc(),
            }
            let max_header_bytes = self.config.max_request_headers_kb as usize * 1024;
            if let Some(rejection) = check_header_size(&req, max_header_bytes) {
                stats.downstream_rq_too_large.inc();
                return Ok(self.reject(rejection, &req, start, &peer));
            }
            if let Some(rejection) = crate::h1_guard::refused(&req).or_else(|| check_http1(&req)) {
                if rejection == Rejection::PATH_WITH_FRAGMENT {
                    stats.downstream_rq_failed_path_normalization.inc();
                } else {
                    stats.downstream_cx_protocol_error.inc();
                }
                return Ok(self.reject(rejection, &req, start, &peer));
            }
            let log = self.access_logs.as_ref().map(|l| l.record(start, req.version(), peer.remote, peer.local));
            let guard = StreamGuard::new(stats.clone(), start, log, connection.clone());
            let grpc = crate::grpc::is_grpc(req.headers());
            let version = req.version();
            // Boxed: the routing future is large, and the codec moves the request future around
            // (HTTP/2 spawns it as a task); a box keeps those moves to a pointer.
            let mut resp = Box::pin(self.process(&worker, peer, req, guard, start)).await;
            if resp.extensions().get::<ClientGone>().is_some() {
                // The codec resets the stream (HTTP/1: closes the connection) without an answer.
                return Err(ClientGone);
            }
            if grpc && resp.status() != StatusCode::OK {
                resp = crate::grpc::to_grpc_reply(resp);
            }
            self.finish_headers(&mut resp);
            // Envoy's drain close: HTTP/1 responses get `connection: close`, HTTP/2 connections a
            // GOAWAY (sent by the connection task); counted once per connection.
            if !connection.closing() && worker.drain.drain_close() && connection.close() {
                stats.downstream_cx_drain_close.inc();
            }
            if connection.closing() && version != Version::HTTP_2 {
                resp.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            if self.access_logs.is_some() {
                let (parts, mut body) = resp.into_parts();
                if let Some(log) = body.log() {
                    log.capture_response(parts.status.as_u16(), &parts.headers);
                }
                resp = Response::from_parts(parts, body);
            }
            stats.record_response(resp.status().as_u16());
            Ok(resp)
        }
    }

    /// Routes and forwards a request that passed validation, received at `start` (an `async
    /// move` block, as [`Hcm::handle`]).
    fn process<'a>(
        &'a self,
        worker: &'a crate::worker::WorkerContext,
        peer: Peer,
        req: Request<Incoming>,
        mut guard: StreamGuard,
        start: Instant,
    ) -> impl std::future::Future<Output = Response<ProxyBody>> + 'a {
        async move {
            let (mut parts, body) = req.into_parts();
            // Absolute-form targets route by their authority, which replaces Host (as Envoy does).
            if let Some(authority) = parts.uri.authority() {
                if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
                    parts.headers.insert(HOST, v);
                }
            }
            let path_and_query = match parts.uri.path_and_query() {
                Some(pq) if pq.as_str().starts_with('/') => pq.as_str().to_string(),
                _ if parts.method == http::Method::OPTIONS && parts.uri.path() == "*" => "*".to_string(),
                _ => {
                    self.stats.downstream_rq_non_relative_path.inc();
                    if let Some(log) = guard.log() {
                        log.capture_request(&parts.method, parts.uri.path(), &parts.headers, http_body::Body::is_end_stream(&body));
                        log.fail(None, "absolute_path_rejected");
                    }
                    return local_reply(StatusCode::NOT_FOUND, "", Some(guard));
                }
            };
            let upgrade = self.upgrade_request(&parts);
            if upgrade == UpgradeRequest::Refused {
                // Envoy answers it and closes: the upgrade request's stream never ended.
                guard.close_connection();
            }
            let protocol = match upgrade {
                UpgradeRequest::Allowed => parts.headers.get(http::header::UPGRADE).cloned(),
                _ => None,
            };
            let classified = self.forwarding.mutate(&mut parts.headers, &peer);
            // An allowed upgrade keeps the headers the hop-by-hop removal just took.
            if let Some(protocol) = protocol {
                parts.headers.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
                parts.headers.insert(http::header::UPGRADE, protocol);
            }
            if let Some(log) = guard.log() {
                log.capture_request(&parts.method, &path_and_query, &parts.headers, http_body::Body::is_end_stream(&body));
            }
            let ctx = RouteContext {
                hcm: self,
                worker,
                peer,
                classified,
                path_and_query,
                upgrade,
                start,
            };
            router::route_and_forward(ctx, parts, body, guard).await
        }
    }

    /// Answers a request that failed validation and closes the connection; the access log
    /// line is written at once, the way Envoy logs a stream its codec refused.
    fn reject<B>(&self, rejection: Rejection, req: &Request<B>, start: Instant, peer: &Peer) -> Response<ProxyBody> {
        let mut resp = protocol_error(rejection.status, rejection.body);
        self.finish_headers(&mut resp);
        self.stats.record_response(rejection.status.as_u16());
        if let Some(logs) = &self.access_logs {
            // Envoy's HTTP/1 codec reports HTTP/1.1 for the HTTP/1.0 requests it refuses.
            let version = if req.version() == Version::HTTP_2 { Version::HTTP_2 } else { Version::HTTP_11 };
            let mut log = logs.record(start, version, peer.remote, peer.local);
            if rejection.is_codec_error() {
                log.fail(Some(ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR), rejection.details);
            } else {
                // A stand-in for a refused head logs that head's method and target.
                let (method, path) = match crate::h1_guard::refused_request(req) {
                    Some((method, target)) => (method, target),
                    None => (req.method().clone(), req.uri().path_and_query().map_or("", |p| p.as_str())),
                };
                log.capture_request(&method, path, req.headers(), true);
                log.details(rejection.details);
            }
            log.capture_response(rejection.status.as_u16(), resp.headers());
            log.sent(rejection.body.len());
            log.finish();
        }
        resp
    }

    /// Whether the request is an HTTP/1.1 upgrade (an `Upgrade` header and the `upgrade`
    /// token in `Connection`, as Envoy's `isUpgrade`), and whether `upgrade_configs` enables its
    /// type (the whole `Upgrade` value, any case). `h2c` is no upgrade: Envoy's HTTP/1 codec
    /// drops it, and its headers go as hop-by-hop ones.
    fn upgrade_request(&self, parts: &http::request::Parts) -> UpgradeRequest {
        let Some(protocol) = parts.headers.get(http::header::UPGRADE) else { return UpgradeRequest::None };
        if parts.version != http::Version::HTTP_11
            || protocol.as_bytes().eq_ignore_ascii_case(b"h2c")
            || !header_tokens(&parts.headers, &http::header::CONNECTION).any(|t| t.eq_ignore_ascii_case("upgrade"))
        {
            return UpgradeRequest::None;
        }
        let name = String::from_utf8_lossy(protocol.as_bytes()).trim().to_ascii_lowercase();
        if self.config.upgrade_types.contains(&name) {
            UpgradeRequest::Allowed
        } else {
            UpgradeRequest::Refused
        }
    }

    /// The `server` header a locally generated response carries (none with PASS_THROUGH).
    pub fn server_header(&self) -> Option<&HeaderValue> {
        match self.config.server_header_transformation {
            ServerHeaderTransformation::PassThrough => None,
            _ => Some(&self.server_name),
        }
    }

    /// Response headers every downstream response gets: `server` per the transformation.
    fn finish_headers(&self, resp: &mut Response<ProxyBody>) {
        let h = resp.headers_mut();
        match self.config.server_header_transformation {
            ServerHeaderTransformation::Overwrite => {
                h.insert(SERVER, self.server_name.clone());
            }
            ServerHeaderTransformation::AppendIfAbsent => {
                if !h.contains_key(SERVER) {
                    h.insert(SERVER, self.server_name.clone());
                }
            }
            ServerHeaderTransformation::PassThrough => {}
        }
    }
}

/// The machine's hostname (`HOSTNAME` env or /proc/sys/kernel/hostname).
pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()))
        .unwrap_or_default()
}
