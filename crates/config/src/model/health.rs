//! Active health checking (`Cluster.health_checks`).

use std::time::Duration;

use super::AppendAction;

/// One `envoy.config.core.v3.HealthCheck` with Envoy's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// `timeout`: how long one check may take.
    pub timeout: Duration,
    /// `interval` between checks of a host.
    pub interval: Duration,
    /// `initial_jitter`: a random delay of up to this much before a host's first check.
    pub initial_jitter: Duration,
    /// `interval_jitter`: up to this much random time added to every interval.
    pub interval_jitter: Duration,
    /// `interval_jitter_percent`: up to this percentage of the interval added to it.
    pub interval_jitter_percent: u32,
    /// `unhealthy_threshold`: consecutive network failures (connect, reset, timeout) that make
    /// a healthy host unhealthy. Any other failed check fails the host at once, as in Envoy.
    pub unhealthy_threshold: u32,
    /// `healthy_threshold`: consecutive successes that make an unhealthy host healthy (the
    /// first check of a host only needs one).
    pub healthy_threshold: u32,
    /// `alt_port`: checks go to this port instead of the host's.
    pub alt_port: Option<u16>,
    /// `reuse_connection` (default true): keep the connection between checks.
    pub reuse_connection: bool,
    /// `no_traffic_interval` (default 60 s): the interval while the cluster has never opened an
    /// upstream connection for traffic.
    pub no_traffic_interval: Duration,
    /// `no_traffic_healthy_interval` (default `no_traffic_interval`): the same, after a
    /// successful check of a healthy host.
    pub no_traffic_healthy_interval: Duration,
    /// `unhealthy_interval` (default `interval`): the interval after a failed check.
    pub unhealthy_interval: Duration,
    /// `unhealthy_edge_interval` (default `unhealthy_interval`): the interval after a failed
    /// check that did not change the host's state yet.
    pub unhealthy_edge_interval: Duration,
    /// `healthy_edge_interval` (default `interval`): the interval after a successful check
    /// that did not change the host's state yet.
    pub healthy_edge_interval: Duration,
    /// The protocol of the check.
    pub checker: HealthChecker,
}

/// The `health_checker` oneof.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthChecker {
    /// `http_health_check`.
    Http(HttpHealthCheck),
    /// `tcp_health_check`.
    Tcp(TcpHealthCheck),
    /// `grpc_health_check`.
    Grpc(GrpcHealthCheck),
}

/// `HealthCheck.GrpcHealthCheck`: the `grpc.health.v1.Health/Check` call over HTTP/2.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GrpcHealthCheck {
    /// `service_name`: the `service` of the `HealthCheckRequest` (empty: none).
    pub service_name: String,
    /// `authority`: the `:authority`; empty means the cluster's name.
    pub authority: String,
    /// `initial_metadata`: headers added to the request (literal values only).
    pub initial_metadata: Vec<HealthCheckHeader>,
}

/// `HealthCheck.HttpHealthCheck`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpHealthCheck {
    /// `host`: the Host header; empty means the cluster's name.
    pub host: String,
    /// `path`.
    pub path: String,
    /// `method` (default GET).
    pub method: String,
    /// `expected_statuses` as half-open `[start, end)` ranges (default `[200, 201)`).
    pub expected_statuses: Vec<(u16, u16)>,
    /// `retriable_statuses`: failures with these statuses count toward `unhealthy_threshold`
    /// instead of failing the host at once.
    pub retriable_statuses: Vec<(u16, u16)>,
    /// `request_headers_to_add` (literal values only).
    pub request_headers_to_add: Vec<HealthCheckHeader>,
    /// `request_headers_to_remove` (lower-cased), applied before the additions.
    pub request_headers_to_remove: Vec<String>,
    /// `codec_client_type: HTTP2`: the check speaks HTTP/2 (prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
}

/// One `request_headers_to_add` entry of an HTTP health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckHeader {
    /// Header name, lower-cased.
    pub name: String,
    /// Literal value.
    pub value: String,
    /// `append_action`.
    pub append_action: AppendAction,
    /// `keep_empty_value`: add the header even when its value is empty.
    pub keep_empty_value: bool,
}

/// `HealthCheck.TcpHealthCheck`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TcpHealthCheck {
    /// `send`: bytes written after connecting (empty: none).
    pub send: Vec<u8>,
    /// `receive`: blocks that must all arrive, in this order, for the check to pass (empty:
    /// connecting is enough).
    pub receive: Vec<Vec<u8>>,
}
