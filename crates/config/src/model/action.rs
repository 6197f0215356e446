//! What a route does (`Route.route`, `redirect`, `direct_response`) in the internal model.

use std::time::Duration;

use super::{HeaderMutations, MaxStreamDuration, RegexMatcher, RetryPolicy};

/// What a route does.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// `route`: forward to a cluster.
    Forward(Box<ForwardAction>),
    /// `redirect`.
    Redirect(RedirectAction),
    /// `direct_response`.
    DirectResponse {
        /// `status`.
        status: u16,
        /// `body` (inline).
        body: Option<String>,
    },
}

/// `route` action.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardAction {
    /// `cluster` or `weighted_clusters`.
    pub target: ClusterTarget,
    /// `prefix_rewrite`.
    pub prefix_rewrite: Option<String>,
    /// `regex_rewrite` (pattern, substitution); applies to the path without the query.
    pub regex_rewrite: Option<(RegexMatcher, String)>,
    /// `host_rewrite_literal` / `auto_host_rewrite`.
    pub host_rewrite: HostRewrite,
    /// `timeout` (default 15 s; `None` when set to 0 = disabled).
    pub timeout: Option<Duration>,
    /// `idle_timeout`: replaces the HCM's `stream_idle_timeout` (zero disables it); `None`
    /// when unset.
    pub idle_timeout: Option<Duration>,
    /// `max_stream_duration`.
    pub max_stream_duration: Option<MaxStreamDuration>,
    /// `hash_policy`, for RING_HASH / MAGLEV clusters.
    pub hash_policy: Vec<HashPolicy>,
    /// `retry_policy` of the route, else of its virtual host.
    pub retry_policy: Option<RetryPolicy>,
    /// `per_request_buffer_limit_bytes` of the route, else of its virtual host: how much of a
    /// request body is kept for retries (`None`: the listener's buffer limit).
    pub retry_buffer_limit: Option<u32>,
    /// The virtual host's `x-envoy-attempt-count` options.
    pub attempt_count: AttemptCount,
}

/// `include_request_attempt_count` and `include_attempt_count_in_response` of a virtual host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptCount {
    /// `include_request_attempt_count`: `x-envoy-attempt-count` on upstream requests.
    pub request: bool,
    /// `include_attempt_count_in_response`: `x-envoy-attempt-count` on responses.
    pub response: bool,
}

/// Which cluster(s) a route forwards to.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterTarget {
    /// `cluster`.
    Cluster(String),
    /// `cluster_header`: the cluster named by this request header.
    ClusterHeader(String),
    /// `weighted_clusters.clusters`.
    Weighted(Vec<WeightedCluster>),
}

/// One entry of `weighted_clusters.clusters`.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedCluster {
    /// `name`.
    pub name: String,
    /// `weight`.
    pub weight: u32,
    /// Per-cluster header manipulation.
    pub headers: HeaderMutations,
}

/// Host header rewriting.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum HostRewrite {
    /// Keep the downstream authority.
    #[default]
    None,
    /// `host_rewrite_literal`.
    Literal(String),
    /// `auto_host_rewrite: true`: the chosen host's hostname (DNS clusters) or address.
    Auto,
}

/// `hash_policy` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HashPolicy {
    /// What is hashed.
    pub source: HashSource,
    /// `terminal`.
    pub terminal: bool,
}

/// Input of a hash policy.
#[derive(Debug, Clone, PartialEq)]
pub enum HashSource {
    /// `header.header_name`.
    Header(String),
    /// `cookie.name` (no cookie generation: `ttl` is refused).
    Cookie(String),
    /// `connection_properties.source_ip: true`.
    SourceIp,
    /// `query_parameter.name`.
    QueryParameter(String),
}

/// `redirect` action.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RedirectAction {
    /// `https_redirect` / `scheme_redirect`.
    pub scheme: Option<String>,
    /// `host_redirect`.
    pub host: Option<String>,
    /// `port_redirect`.
    pub port: Option<u16>,
    /// `path_redirect` or `prefix_rewrite`.
    pub path: Option<PathRedirect>,
    /// `response_code` as a status: 301 (default), 302, 303, 307, 308.
    pub status: u16,
    /// `strip_query`.
    pub strip_query: bool,
}

/// Path part of a redirect.
#[derive(Debug, Clone, PartialEq)]
pub enum PathRedirect {
    /// `path_redirect`: replaces the path (and query, if it has one).
    Path(String),
    /// `prefix_rewrite`: replaces the matched prefix.
    PrefixRewrite(String),
}
