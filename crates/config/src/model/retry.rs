//! A route's `retry_policy` in the internal model.

use std::time::Duration;

use super::HeaderMatcher;

/// `RetryPolicy` of a route (or of its virtual host, when the route has none).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// `retry_on`: the conditions, parsed.
    pub retry_on: RetryOn,
    /// `num_retries` (default 1).
    pub num_retries: u32,
    /// `per_try_timeout` (`None`: only the route timeout applies).
    pub per_try_timeout: Option<Duration>,
    /// `retriable_status_codes` (with `retriable-status-codes`).
    pub retriable_status_codes: Vec<u16>,
    /// `retriable_headers`: response headers that make a response retriable (with
    /// `retriable-headers`).
    pub retriable_headers: Vec<HeaderMatcher>,
    /// `retriable_request_headers`: when set, only requests matching one of them are retried.
    pub retriable_request_headers: Vec<HeaderMatcher>,
    /// `retry_back_off.base_interval` (default 25 ms).
    pub base_interval: Duration,
    /// `retry_back_off.max_interval` (default 10 × base).
    pub max_interval: Duration,
    /// `retry_host_predicate` `envoy.retry_host_predicates.previous_hosts`.
    pub previous_hosts: bool,
    /// `host_selection_retry_max_attempts` (default 1).
    pub host_selection_retry_max_attempts: u32,
}

impl Default for RetryPolicy {
    /// Envoy's policy for a request that asks for retries (`x-envoy-retry-on`) on a route
    /// without `retry_policy`: one retry, 25 ms base back-off.
    fn default() -> Self {
        Self {
            retry_on: RetryOn::default(),
            num_retries: 1,
            per_try_timeout: None,
            retriable_status_codes: Vec::new(),
            retriable_headers: Vec::new(),
            retriable_request_headers: Vec::new(),
            base_interval: Duration::from_millis(25),
            max_interval: Duration::from_millis(250),
            previous_hosts: false,
            host_selection_retry_max_attempts: 1,
        }
    }
}

/// The `retry_on` conditions Legate implements (the HTTP ones and the gRPC ones, which Envoy
/// reads from the same list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// `5xx`: 5xx responses, connect failures, resets and per-try timeouts.
    pub server_error: bool,
    /// `gateway-error`: 502/503/504, connect failures, resets and per-try timeouts.
    pub gateway_error: bool,
    /// `reset`: the upstream reset or closed before response headers.
    pub reset: bool,
    /// `connect-failure`.
    pub connect_failure: bool,
    /// `retriable-4xx`: 409.
    pub retriable_4xx: bool,
    /// `refused-stream`: an HTTP/2 stream the upstream refused.
    pub refused_stream: bool,
    /// `retriable-status-codes`.
    pub retriable_status_codes: bool,
    /// `retriable-headers`.
    pub retriable_headers: bool,
    /// `envoy-ratelimited`: responses carrying `x-envoy-ratelimited` (which are never retried
    /// otherwise).
    pub envoy_ratelimited: bool,
    /// gRPC `cancelled` (status 1 in the response headers).
    pub grpc_cancelled: bool,
    /// gRPC `deadline-exceeded` (4).
    pub grpc_deadline_exceeded: bool,
    /// gRPC `resource-exhausted` (8).
    pub grpc_resource_exhausted: bool,
    /// gRPC `internal` (13).
    pub grpc_internal: bool,
    /// gRPC `unavailable` (14).
    pub grpc_unavailable: bool,
}

impl RetryOn {
    /// Whether any condition is set.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// The union of two condition sets.
    pub fn union(self, other: Self) -> Self {
        Self {
            server_error: self.server_error || other.server_error,
            gateway_error: self.gateway_error || other.gateway_error,
            reset: self.reset || other.reset,
            connect_failure: self.connect_failure || other.connect_failure,
            retriable_4xx: self.retriable_4xx || other.retriable_4xx,
            refused_stream: self.refused_stream || other.refused_stream,
            retriable_status_codes: self.retriable_status_codes || other.retriable_status_codes,
            retriable_headers: self.retriable_headers || other.retriable_headers,
            envoy_ratelimited: self.envoy_ratelimited || other.envoy_ratelimited,
            grpc_cancelled: self.grpc_cancelled || other.grpc_cancelled,
            grpc_deadline_exceeded: self.grpc_deadline_exceeded || other.grpc_deadline_exceeded,
            grpc_resource_exhausted: self.grpc_resource_exhausted || other.grpc_resource_exhausted,
            grpc_internal: self.grpc_internal || other.grpc_internal,
            grpc_unavailable: self.grpc_unavailable || other.grpc_unavailable,
        }
    }

    /// Whether a gRPC status (from response headers) is retriable.
    pub fn grpc_status(&self, status: u32) -> bool {
        match status {
            1 => self.grpc_cancelled,
            4 => self.grpc_deadline_exceeded,
            8 => self.grpc_resource_exhausted,
            13 => self.grpc_internal,
            14 => self.grpc_unavailable,
            _ => false,
        }
    }
}
