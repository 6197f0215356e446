//! A route's `retry_policy` in the internal model.

use std::time::Duration;

/// `RetryPolicy` of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `retry_on`: the conditions, parsed.
    pub retry_on: RetryOn,
    /// `num_retries` (default 1).
    pub num_retries: u32,
    /// `per_try_timeout` (`None`: only the route timeout applies).
    pub per_try_timeout: Option<Duration>,
    /// `retriable_status_codes` (with `retriable-status-codes`).
    pub retriable_status_codes: Vec<u16>,
    /// `retry_back_off.base_interval` (default 25 ms).
    pub base_interval: Duration,
    /// `retry_back_off.max_interval` (default 10 × base).
    pub max_interval: Duration,
    /// `retry_host_predicate` `envoy.retry_host_predicates.previous_hosts`.
    pub previous_hosts: bool,
    /// `host_selection_retry_max_attempts` (default 1).
    pub host_selection_retry_max_attempts: u32,
}

/// The `retry_on` conditions Legate implements.
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
}
