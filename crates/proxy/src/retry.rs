//! Route retries (`retry_policy`): which outcomes are retriable, the accounting of an attempt
//! that is retried, and Envoy's jittered exponential back-off.
//!
//! Requests with a body are sent once: Legate keeps no replay buffer yet.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use legate_config::model::RetryPolicy;
use legate_upstream::{Cluster, Host, RequestResult, UpstreamError};

/// The outcome of one attempt while waiting for response headers.
pub enum Attempt {
    /// The upstream answered, or the request failed.
    Done(Result<http::Response<hyper::body::Incoming>, UpstreamError>),
    /// A limit of the stream fired (route timeout, idle timeout, connection manager deadline).
    Timeout(crate::timeouts::Expiry),
    /// The policy's `per_try_timeout` fired.
    PerTryTimeout,
}

/// Whether `outcome` may be retried under `policy`.
pub fn retriable(policy: &RetryPolicy, outcome: &Attempt) -> bool {
    let on = &policy.retry_on;
    match outcome {
        Attempt::Done(Ok(resp)) => {
            let s = resp.status().as_u16();
            (on.server_error && s >= 500)
                || (on.gateway_error && (502..=504).contains(&s))
                || (on.retriable_4xx && s == 409)
                || (on.retriable_status_codes && policy.retriable_status_codes.contains(&s))
        }
        Attempt::Done(Err(UpstreamError::Overflow)) => false,
        Attempt::Done(Err(e)) if e.is_connect_failure() => on.server_error || on.gateway_error || on.reset || on.connect_failure,
        Attempt::Done(Err(_)) => on.server_error || on.gateway_error || on.reset || on.refused_stream,
        Attempt::PerTryTimeout => on.server_error || on.gateway_error || on.reset,
        Attempt::Timeout(_) => false,
    }
}

/// Accounts an attempt that is retried: outlier detection and the end of its request. As in
/// Envoy, its response code is not charged to the cluster (only the final attempt's is, by the
/// stream).
pub fn account_retried(cluster: &Cluster, host: &Arc<Host>, outcome: &Attempt) {
    match outcome {
        Attempt::Done(Ok(resp)) => {
            let status = resp.status().as_u16();
            cluster.outlier_result(host, RequestResult::Response(status));
            host.stats.rq_error.fetch_add(1, Ordering::Relaxed);
        }
        Attempt::Done(Err(e)) => {
            let result = if e.is_connect_failure() { RequestResult::ConnectFailed } else { RequestResult::Reset };
            cluster.outlier_result(host, result);
            host.stats.rq_error.fetch_add(1, Ordering::Relaxed);
        }
        Attempt::PerTryTimeout | Attempt::Timeout(_) => {
            cluster.outlier_result(host, RequestResult::Timeout);
            host.stats.rq_timeout.fetch_add(1, Ordering::Relaxed);
        }
    }
    cluster.release_request();
    host.stats.rq_active.fetch_sub(1, Ordering::Relaxed);
}

/// Envoy's back-off before retry `n` (1-based): a random duration in
/// `[0, base * 2^(n-1))`, capped at `max`.
pub fn backoff(policy: &RetryPolicy, n: u32) -> Duration {
    let ceiling = policy.base_interval.saturating_mul(1u32 << (n.saturating_sub(1)).min(16)).min(policy.max_interval);
    let ms = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::random::<u64>() % ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::retry::parse_retry_on;

    fn policy(on: &str) -> RetryPolicy {
        RetryPolicy {
            retry_on: parse_retry_on(on).unwrap(),
            num_retries: 2,
            per_try_timeout: None,
            retriable_status_codes: vec![418],
            base_interval: Duration::from_millis(25),
            max_interval: Duration::from_millis(250),
            previous_hosts: false,
            host_selection_retry_max_attempts: 1,
        }
    }

    fn reset() -> Attempt {
        Attempt::Done(Err(UpstreamError::Reset { detail: "x".into() }))
    }

    fn refused() -> Attempt {
        Attempt::Done(Err(UpstreamError::ConnectTimeout))
    }

    #[test]
    fn conditions_follow_envoy() {
        assert!(retriable(&policy("5xx"), &reset()) && retriable(&policy("5xx"), &refused()));
        assert!(retriable(&policy("connect-failure"), &refused()) && !retriable(&policy("connect-failure"), &reset()));
        assert!(retriable(&policy("reset"), &reset()) && retriable(&policy("reset"), &Attempt::PerTryTimeout));
        assert!(!retriable(&policy("retriable-4xx"), &refused()));
        assert!(!retriable(&policy("5xx"), &Attempt::Timeout(crate::timeouts::Expiry::Route)));
        assert!(!retriable(&policy("5xx"), &Attempt::Done(Err(UpstreamError::Overflow))));
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        let p = policy("5xx");
        for n in 1..10 {
            let cap = Duration::from_millis(25 * (1 << (n - 1))).min(Duration::from_millis(250));
            assert!(backoff(&p, n) < cap.max(Duration::from_millis(1)));
        }
    }
}
