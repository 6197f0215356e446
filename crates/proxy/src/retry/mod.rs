//! Route retries (`retry_policy` of the route or its virtual host, merged with the retry
//! headers of internal requests): which outcomes are retriable, the accounting of an attempt
//! that is retried, Envoy's jittered exponential back-off, and the replay of request bodies.

mod replay;
mod state;

pub use replay::{Replay, ReplayBody};
pub use state::{RetryHeaders, RetryState};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use legate_config::model::RetryPolicy;
use legate_upstream::{Cluster, Host, RequestResult, UpstreamError};

/// The outcome of one attempt while waiting for response headers.
pub enum Attempt {
    /// The upstream answered, or the request failed.
    Done(Result<http::Response<legate_upstream::UpstreamBody>, UpstreamError>),
    /// A limit of the stream fired (route timeout, idle timeout, connection manager deadline).
    Timeout(crate::timeouts::Expiry),
    /// The policy's `per_try_timeout` fired.
    PerTryTimeout,
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

    #[test]
    fn backoff_is_jittered_and_capped() {
        let p = RetryPolicy { max_interval: Duration::from_millis(250), ..RetryPolicy::default() };
        for n in 1..10 {
            let cap = Duration::from_millis(25 * (1 << (n - 1))).min(Duration::from_millis(250));
            assert!(backoff(&p, n) < cap.max(Duration::from_millis(1)));
        }
    }
}
