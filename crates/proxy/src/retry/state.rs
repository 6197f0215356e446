//! The retry state of one request: the route's policy merged with the request's retry headers
//! (`x-envoy-retry-on`, `x-envoy-retry-grpc-on`, `x-envoy-max-retries`,
//! `x-envoy-retriable-status-codes`, `x-envoy-retriable-header-names`), as Envoy's
//! `RetryStateImpl` does. The HCM strips these headers from external requests, so only internal
//! clients can ask for retries.

use std::sync::LazyLock;

use http::header::{HeaderMap, HeaderName};
use legate_config::model::{RetryOn, RetryPolicy};
use legate_config::retry::parse_retry_on_header;

use super::Attempt;
use legate_upstream::UpstreamError;

/// The retry request headers, which Envoy consumes (they never reach the upstream).
pub struct RetryHeaders;

impl RetryHeaders {
    /// `x-envoy-retry-on`.
    pub const RETRY_ON: HeaderName = HeaderName::from_static("x-envoy-retry-on");
    /// `x-envoy-retry-grpc-on`.
    pub const RETRY_GRPC_ON: HeaderName = HeaderName::from_static("x-envoy-retry-grpc-on");
    /// `x-envoy-max-retries`.
    pub const MAX_RETRIES: HeaderName = HeaderName::from_static("x-envoy-max-retries");
    /// `x-envoy-retriable-status-codes`.
    pub const RETRIABLE_STATUS_CODES: HeaderName = HeaderName::from_static("x-envoy-retriable-status-codes");
    /// `x-envoy-retriable-header-names`.
    pub const RETRIABLE_HEADER_NAMES: HeaderName = HeaderName::from_static("x-envoy-retriable-header-names");
    /// `x-envoy-hedge-on-per-try-timeout` (consumed; Legate does not hedge).
    pub const HEDGE_ON_PER_TRY_TIMEOUT: HeaderName = HeaderName::from_static("x-envoy-hedge-on-per-try-timeout");
    /// `x-envoy-upstream-rq-per-try-timeout-ms`.
    pub const PER_TRY_TIMEOUT: HeaderName = HeaderName::from_static("x-envoy-upstream-rq-per-try-timeout-ms");

    /// Whether `name` is one of the retry headers [`RetryState::new`] consumes.
    fn is_retry_header(name: &HeaderName) -> bool {
        let n = name.as_str();
        n.starts_with("x-envoy-re") || n == "x-envoy-max-retries" || n == "x-envoy-hedge-on-per-try-timeout"
    }
}

/// `x-envoy-ratelimited`: a response of an upstream Envoy's rate limiter.
const RATELIMITED: HeaderName = HeaderName::from_static("x-envoy-ratelimited");
/// `grpc-status` of a trailers-only gRPC response.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The policy of a request that asks for retries on a route without `retry_policy`.
static HEADER_ONLY_POLICY: LazyLock<RetryPolicy> = LazyLock::new(RetryPolicy::default);

/// What decides the retries of one request.
pub struct RetryState<'p> {
    /// The route's policy (or Envoy's defaults when only headers asked for retries).
    pub policy: &'p RetryPolicy,
    on: RetryOn,
    remaining: u32,
    /// `x-envoy-retriable-status-codes`, added to the policy's.
    extra_status_codes: Vec<u16>,
    /// `x-envoy-retriable-header-names`, added to the policy's `retriable_headers`.
    extra_header_names: Vec<HeaderName>,
}

impl<'p> RetryState<'p> {
    /// Reads and removes the retry headers of a request on a route with `policy`;
    /// `request_retriable` says whether the request matches the policy's
    /// `retriable_request_headers` (true when there are none). `None` when the request cannot
    /// be retried.
    pub fn new(policy: Option<&'p RetryPolicy>, headers: &mut HeaderMap, request_retriable: bool) -> Option<Self> {
        // Most requests carry none of the retry headers: one pass over the names instead of a
        // lookup of each.
        let has_retry_headers = headers.keys().any(|k| RetryHeaders::is_retry_header(k));
        if !has_retry_headers && policy.is_none() {
            return None;
        }
        let header_on = headers.get(RetryHeaders::RETRY_ON).and_then(|v| v.to_str().ok()).map(|v| parse_retry_on_header(v, false));
        let grpc_on = headers.get(RetryHeaders::RETRY_GRPC_ON).and_then(|v| v.to_str().ok()).map(|v| parse_retry_on_header(v, true));
        let state = if policy.is_some() || header_on.is_some() || grpc_on.is_some() {
            let policy = policy.unwrap_or(&HEADER_ONLY_POLICY);
            let mut on = policy.retry_on.union(header_on.unwrap_or_default()).union(grpc_on.unwrap_or_default());
            if !request_retriable {
                on = RetryOn::default();
            }
            let mut remaining = policy.num_retries;
            if let Some(n) = headers.get(RetryHeaders::MAX_RETRIES).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) {
                remaining = u32::try_from(n).unwrap_or(u32::MAX);
            }
            let extra_status_codes = list(headers, &RetryHeaders::RETRIABLE_STATUS_CODES)
                .filter_map(|c| c.parse::<u16>().ok())
                .collect();
            let extra_header_names = list(headers, &RetryHeaders::RETRIABLE_HEADER_NAMES)
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect();
            on.any().then_some(Self { policy, on, remaining, extra_status_codes, extra_header_names })
        } else {
            None
        };
        for name in has_retry_headers.then_some([
            RetryHeaders::RETRY_ON,
            RetryHeaders::RETRY_GRPC_ON,
            RetryHeaders::MAX_RETRIES,
            RetryHeaders::RETRIABLE_STATUS_CODES,
            RetryHeaders::RETRIABLE_HEADER_NAMES,
            RetryHeaders::HEDGE_ON_PER_TRY_TIMEOUT,
        ])
        .into_iter()
        .flatten()
        {
            headers.remove(name);
        }
        state
    }

    /// Whether `outcome` may be retried; `retriable_headers` tests the policy's
    /// `retriable_headers` against response headers.
    pub fn retriable(&self, outcome: &Attempt, retriable_headers: impl Fn(&HeaderMap) -> bool) -> bool {
        let on = &self.on;
        match outcome {
            Attempt::Done(Ok(resp)) => {
                let h = resp.headers();
                // Envoy retries a rate-limited response only under envoy-ratelimited, whatever
                // else the policy says.
                if h.contains_key(RATELIMITED) {
                    return on.envoy_ratelimited;
                }
                let s = resp.status().as_u16();
                (on.server_error && s >= 500)
                    || (on.gateway_error && (502..=504).contains(&s))
                    || (on.retriable_4xx && s == 409)
                    || (on.retriable_status_codes
                        && (self.policy.retriable_status_codes.contains(&s) || self.extra_status_codes.contains(&s)))
                    || (on.retriable_headers
                        && (retriable_headers(h) || self.extra_header_names.iter().any(|n| h.contains_key(n))))
                    || h.get(GRPC_STATUS).and_then(|v| v.to_str().ok()?.parse::<u32>().ok()).is_some_and(|g| on.grpc_status(g))
            }
            Attempt::Done(Err(UpstreamError::Overflow)) => false,
            Attempt::Done(Err(e)) if e.is_connect_failure() => {
                on.server_error || on.gateway_error || on.reset || on.connect_failure
            }
            Attempt::Done(Err(_)) => on.server_error || on.gateway_error || on.reset || on.refused_stream,
            Attempt::PerTryTimeout => on.server_error || on.gateway_error || on.reset,
            Attempt::Timeout(_) => false,
        }
    }

    /// Takes one retry from the budget of `num_retries` (or `x-envoy-max-retries`); `false`
    /// when none is left.
    pub fn take_retry(&mut self) -> bool {
        if self.remaining == 0 {
            return false;
        }
        self.remaining -= 1;
        true
    }
}

/// The comma-separated items of a header, trimmed.
fn list<'h>(headers: &'h HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::retry::parse_retry_on;

    fn policy(on: &str) -> RetryPolicy {
        RetryPolicy { retry_on: parse_retry_on(on).unwrap(), num_retries: 2, retriable_status_codes: vec![418], ..RetryPolicy::default() }
    }

    fn reset() -> Attempt {
        Attempt::Done(Err(UpstreamError::Reset { detail: "x".into() }))
    }

    fn refused() -> Attempt {
        Attempt::Done(Err(UpstreamError::ConnectTimeout))
    }

    fn state<'p>(p: &'p RetryPolicy, headers: &[(&'static str, &'static str)]) -> Option<RetryState<'p>> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, v.parse().unwrap());
        }
        RetryState::new(Some(p), &mut h, true)
    }

    #[test]
    fn conditions_follow_envoy() {
        let (p5, pc, pr) = (policy("5xx"), policy("connect-failure"), policy("reset"));
        let s = |p| state(p, &[]).unwrap();
        assert!(s(&p5).retriable(&reset(), |_| false) && s(&p5).retriable(&refused(), |_| false));
        assert!(s(&pc).retriable(&refused(), |_| false) && !s(&pc).retriable(&reset(), |_| false));
        assert!(s(&pr).retriable(&reset(), |_| false) && s(&pr).retriable(&Attempt::PerTryTimeout, |_| false));
        assert!(!s(&p5).retriable(&Attempt::Timeout(crate::timeouts::Expiry::Route), |_| false));
        assert!(!s(&p5).retriable(&Attempt::Done(Err(UpstreamError::Overflow)), |_| false));
    }

    #[test]
    fn headers_add_conditions_and_replace_the_retry_count() {
        let mut h = HeaderMap::new();
        h.insert("x-envoy-retry-on", "connect-failure,bogus".parse().unwrap());
        h.insert("x-envoy-max-retries", "5".parse().unwrap());
        h.insert("x-envoy-retriable-status-codes", "418, 419".parse().unwrap());
        let mut s = RetryState::new(None, &mut h, true).unwrap();
        assert!(h.is_empty(), "retry headers are consumed");
        assert!(s.retriable(&refused(), |_| false) && !s.retriable(&reset(), |_| false));
        assert!((0..5).all(|_| s.take_retry()) && !s.take_retry());
        let mut plain = HeaderMap::new();
        plain.insert("x-envoy-max-retries", "3".parse().unwrap());
        assert!(RetryState::new(None, &mut plain, true).is_none());
        assert!(plain.is_empty());
    }

    #[test]
    fn a_request_the_retriable_request_headers_refuse_is_not_retried() {
        let p = policy("5xx");
        let mut h = HeaderMap::new();
        h.insert("x-envoy-retry-on", "reset".parse().unwrap());
        assert!(RetryState::new(Some(&p), &mut h, false).is_none());
        assert!(RetryState::new(Some(&p), &mut h, true).is_some());
    }
}
