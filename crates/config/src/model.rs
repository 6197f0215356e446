//! Legate's internal configuration model.
//!
//! Every configuration input (bootstrap file, `--config-yaml`, later xDS) converts into these
//! types. They hold only what Legate implements: the Envoy parser refuses anything else with a
//! path-named error, so a value here always has an effect. Defaults are Envoy 1.40's and are
//! applied by the parser, so consumers never guess.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

mod action;
mod health;
mod outlier;
mod retry;
mod timeouts;
mod tls;

pub use action::{
    AttemptCount, ClusterTarget, ForwardAction, HashPolicy, HashSource, HostRewrite, PathRedirect, RedirectAction, RouteAction,
    WeightedCluster,
};
pub use health::{GrpcHealthCheck, HealthCheck, HealthCheckHeader, HealthChecker, HttpHealthCheck, TcpHealthCheck};
pub use outlier::OutlierDetection;
pub use retry::{RetryOn, RetryPolicy};
pub use timeouts::MaxStreamDuration;
pub use tls::{
    CertificateValidation, CircuitBreakerThresholds, DataSource, DownstreamTls, RetryBudget, SanMatcher, SanType, TlsCertificate,
    TlsParams, TlsVersion, UpstreamTls,
};

/// The whole static configuration of one Legate process.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// Node identity (`node`, overridden by `--service-node` / `--service-cluster`).
    pub node: Node,
    /// Admin listener, if configured.
    pub admin: Option<Admin>,
    /// Listeners from `static_resources.listeners`.
    pub listeners: Vec<Listener>,
    /// Clusters from `static_resources.clusters`.
    pub clusters: Vec<Cluster>,
    /// `stats_flush_interval` (default 5 s): how often histogram intervals close.
    pub stats_flush_interval: Duration,
}

/// `node`: identity of this proxy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
}

/// `admin`: the admin HTTP endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// `admin.address.socket_address`.
    pub address: SocketAddr,
}

/// One listener (`static_resources.listeners[i]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// `name`; Envoy generates a UUID when empty, the parser does too.
    pub name: String,
    /// `address.socket_address`.
    pub address: SocketAddr,
    /// `filter_chains`, matched per connection by their `filter_chain_match`.
    pub filter_chains: Vec<FilterChain>,
    /// `default_filter_chain`: used when no chain matches.
    pub default_filter_chain: Option<FilterChain>,
    /// `listener_filters` has `envoy.filters.listener.tls_inspector` (or a chain matches on SNI or
    /// transport protocol, which adds it, as in Envoy): the ClientHello's SNI and
    /// whether the connection is TLS are known before a chain is chosen.
    pub tls_inspector: bool,
    /// `per_connection_buffer_limit_bytes` (default 1 MiB).
    pub per_connection_buffer_limit_bytes: u32,
}

impl Listener {
    /// The listener's stat scope as Envoy names it: `0.0.0.0_8080`, `[::]_8080`.
    pub fn stat_prefix(&self) -> String {
        match self.address {
            SocketAddr::V4(a) => format!("{}_{}", a.ip(), a.port()),
            // Envoy replaces ':' with '_' in stat names.
            SocketAddr::V6(a) => format!("[{}]_{}", a.ip(), a.port()).replace(':', "_"),
        }
    }
}

/// A filter chain: the network filters applied to a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterChain {
    /// `name` of the chain (may be empty).
    pub name: String,
    /// The terminal network filter of this chain.
    pub terminal: NetworkFilter,
    /// `transport_socket` `envoy.transport_sockets.tls`: TLS termination (`None` = plain TCP).
    pub tls: Option<DownstreamTls>,
    /// `filter_chain_match`.
    pub matcher: FilterChainMatch,
}

/// `filter_chain_match`: the connections a filter chain takes. Empty fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterChainMatch {
    /// `server_names` (lower-cased): exact names and `*.suffix` wildcards, matched against SNI.
    pub server_names: Vec<String>,
    /// `transport_protocol`: `tls` or `raw_buffer`.
    pub transport_protocol: Option<String>,
}


/// A terminal network filter.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkFilter {
    /// `envoy.filters.network.http_connection_manager`.
    HttpConnectionManager(Box<HttpConnectionManager>),
    /// `envoy.filters.network.tcp_proxy`.
    TcpProxy(TcpProxy),
}

/// An `envoy.filters.network.tcp_proxy`: bytes both ways between the downstream connection and
/// a connection to a host of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpProxy {
    /// `stat_prefix`: stats live under `tcp.<stat_prefix>.`.
    pub stat_prefix: String,
    /// `cluster` or `weighted_clusters`.
    pub target: TcpProxyTarget,
    /// `idle_timeout` (default 1 h; `None` = disabled).
    pub idle_timeout: Option<Duration>,
    /// `max_connect_attempts` (default 1).
    pub max_connect_attempts: u32,
    /// `access_log`: loggers run when a session ends.
    pub access_log: Vec<crate::access_log::AccessLog>,
}

/// Where a TCP proxy sends its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpProxyTarget {
    /// One cluster.
    Cluster(String),
    /// Clusters picked per connection by weight.
    Weighted(Vec<(String, u32)>),
}

/// `codec_type` of the HTTP connection manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodecType {
    /// Detect HTTP/1.1 or HTTP/2 (prior knowledge preface).
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only.
    Http2,
}

/// A CIDR range (`address_prefix` / `prefix_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrRange {
    /// Network address.
    pub address: IpAddr,
    /// Prefix length in bits.
    pub prefix_len: u8,
}

impl CidrRange {
    /// Whether `ip` lies in this range. IPv4-mapped IPv6 addresses are not unmapped.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }
}

/// `internal_address_config`: which downstream addresses count as internal.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InternalAddressConfig {
    /// `unix_sockets`.
    pub unix_sockets: bool,
    /// `cidr_ranges`. Envoy 1.40 treats nothing as internal when the config is absent.
    pub cidr_ranges: Vec<CidrRange>,
}

/// `envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConnectionManager {
    /// `stat_prefix` (required).
    pub stat_prefix: String,
    /// `codec_type`.
    pub codec_type: CodecType,
    /// Inline `route_config`.
    pub route_config: RouteConfiguration,
    /// `use_remote_address` (default false).
    pub use_remote_address: bool,
    /// `xff_num_trusted_hops` (default 0).
    pub xff_num_trusted_hops: u32,
    /// `internal_address_config`.
    pub internal_address_config: InternalAddressConfig,
    /// `common_http_protocol_options.idle_timeout` (default 1 h; `None` = disabled).
    pub idle_timeout: Option<Duration>,
    /// `common_http_protocol_options.max_headers_count` (default 100).
    pub max_headers_count: u32,
    /// `max_request_headers_kb` (default 60).
    pub max_request_headers_kb: u32,
    /// `http2_protocol_options` of downstream HTTP/2 connections.
    pub http2: Http2Options,
    /// `upgrade_configs`: the enabled `upgrade_type`s, lower-cased (`websocket`); an HTTP/1.1
    /// `Upgrade` request of another type (but `h2c`) is answered 403 once a route matches.
    pub upgrade_types: Vec<String>,
    /// `stream_idle_timeout` (default 5 min; `None` = disabled).
    pub stream_idle_timeout: Option<Duration>,
    /// `request_timeout`: time to receive the whole request (default and 0: disabled).
    pub request_timeout: Option<Duration>,
    /// `common_http_protocol_options.max_stream_duration` (default and 0: disabled).
    pub max_stream_duration: Option<Duration>,
    /// `server_name` sent in the `server` response header (default `envoy`... Legate: see parser).
    pub server_name: String,
    /// `server_header_transformation`.
    pub server_header_transformation: ServerHeaderTransformation,
    /// `generate_request_id` (default true).
    pub generate_request_id: bool,
    /// `preserve_external_request_id` (default false).
    pub preserve_external_request_id: bool,
    /// `http_filters`: only the router is supported and it must be last.
    pub http_filters: Vec<HttpFilter>,
    /// `access_log`: loggers run when a stream completes.
    pub access_log: Vec<crate::access_log::AccessLog>,
}

/// `server_header_transformation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerHeaderTransformation {
    /// Always overwrite the upstream's `server` header (default).
    #[default]
    Overwrite,
    /// Set it only if the upstream sent none.
    AppendIfAbsent,
    /// Pass the upstream's header through, add none.
    PassThrough,
}

/// An HTTP filter in the HCM chain.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpFilter {
    /// `envoy.filters.http.router`.
    Router,
}

/// `route_config`: virtual hosts plus header manipulation at the top level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteConfiguration {
    /// `name`.
    pub name: String,
    /// `virtual_hosts`.
    pub virtual_hosts: Vec<VirtualHost>,
    /// Header manipulation at route-configuration level.
    pub headers: HeaderMutations,
}

/// Request and response header manipulation at one level (route, virtual host, route config).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderMutations {
    /// `request_headers_to_add`.
    pub request_headers_to_add: Vec<HeaderValueOption>,
    /// `request_headers_to_remove` (lower-cased).
    pub request_headers_to_remove: Vec<String>,
    /// `response_headers_to_add`.
    pub response_headers_to_add: Vec<HeaderValueOption>,
    /// `response_headers_to_remove` (lower-cased).
    pub response_headers_to_remove: Vec<String>,
}

/// `HeaderValueOption`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderValueOption {
    /// Header name, lower-cased.
    pub key: String,
    /// Header value, possibly containing substitution commands.
    pub value: HeaderValueFormat,
    /// `append_action` (or the deprecated `append` bool mapped onto it).
    pub append_action: AppendAction,
    /// `keep_empty_value` (default false: an empty result is not added).
    pub keep_empty_value: bool,
}

/// A header value with Envoy substitution commands (`%DOWNSTREAM_REMOTE_ADDRESS%`...).
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderValueFormat {
    /// Literal and command pieces, in order.
    pub parts: Vec<FormatPart>,
}

/// One piece of a header value format.
#[derive(Debug, Clone, PartialEq)]
pub enum FormatPart {
    /// Literal text (`%%` already unescaped).
    Literal(String),
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`: ip:port of the downstream peer.
    DownstreamRemoteAddress,
    /// `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`.
    DownstreamRemoteAddressWithoutPort,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%`.
    DownstreamLocalAddress,
    /// `%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%`.
    DownstreamLocalAddressWithoutPort,
    /// `%DOWNSTREAM_LOCAL_PORT%`.
    DownstreamLocalPort,
    /// `%HOSTNAME%`.
    Hostname,
    /// `%PROTOCOL%`: `HTTP/1.1`, `HTTP/2`.
    Protocol,
    /// `%REQ(name)%`: a request header value (empty when absent).
    RequestHeader(String),
    /// `%UPSTREAM_REMOTE_ADDRESS%`: only meaningful in response headers.
    UpstreamRemoteAddress,
}

/// `header_append_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppendAction {
    /// `APPEND_IF_EXISTS_OR_ADD` (default).
    #[default]
    AppendIfExistsOrAdd,
    /// `ADD_IF_ABSENT`.
    AddIfAbsent,
    /// `OVERWRITE_IF_EXISTS_OR_ADD`.
    OverwriteIfExistsOrAdd,
    /// `OVERWRITE_IF_EXISTS`.
    OverwriteIfExists,
}

/// A virtual host.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualHost {
    /// `name` (required).
    pub name: String,
    /// `domains`, lower-cased, as written (port not stripped).
    pub domains: Vec<String>,
    /// `routes`, matched in order.
    pub routes: Vec<Route>,
    /// Header manipulation at virtual-host level.
    pub headers: HeaderMutations,
    /// `require_tls` (default NONE).
    pub require_tls: RequireTls,
}

/// `require_tls` on a virtual host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequireTls {
    /// No requirement.
    #[default]
    None,
    /// Redirect plain HTTP from external clients to https (301).
    ExternalOnly,
    /// Redirect all plain HTTP to https (301).
    All,
}

/// A route: a match and an action.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// `name` (optional).
    pub name: String,
    /// `match`.
    pub matcher: RouteMatch,
    /// `route` / `redirect` / `direct_response`.
    pub action: RouteAction,
    /// Header manipulation at route level.
    pub headers: HeaderMutations,
}

/// `match` of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch {
    /// Path specifier.
    pub path: PathMatch,
    /// `case_sensitive` (default true).
    pub case_sensitive: bool,
    /// `headers`: all must match.
    pub headers: Vec<HeaderMatcher>,
    /// `query_parameters`: all must match.
    pub query_parameters: Vec<QueryParameterMatcher>,
    /// `grpc: {}`: only gRPC requests (`content-type: application/grpc...`) match.
    pub grpc: bool,
}

/// The path specifier of a route match. Matching ignores the query string.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// `prefix`.
    Prefix(String),
    /// `path` (exact).
    Path(String),
    /// `safe_regex` (full match).
    Regex(RegexMatcher),
    /// `path_separated_prefix`.
    PathSeparatedPrefix(String),
}

impl PartialEq for PathMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Prefix(a), Self::Prefix(b)) => a == b,
            (Self::Path(a), Self::Path(b)) => a == b,
            (Self::PathSeparatedPrefix(a), Self::PathSeparatedPrefix(b)) => a == b,
            (Self::Regex(a), Self::Regex(b)) => a == b,
            _ => false,
        }
    }
}

/// A compiled `safe_regex` (RE2 syntax, matched against the whole input).
#[derive(Debug, Clone)]
pub struct RegexMatcher {
    /// The regex as written in the config.
    pub source: String,
    /// The regex anchored for a full match: `^(?:source)$`.
    pub full: regex::Regex,
    /// The regex as written, for searching and replacing (`regex_rewrite`).
    pub unanchored: regex::Regex,
}

impl RegexMatcher {
    /// Compiles `source`, anchored for full matching.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            source: source.to_string(),
            full: regex::Regex::new(&format!("^(?:{source})$"))?,
            unanchored: regex::Regex::new(source)?,
        })
    }

    /// The unanchored regex, for search-and-replace.
    pub fn unanchored(&self) -> &regex::Regex {
        &self.unanchored
    }

    /// Whether the whole of `input` matches.
    pub fn is_full_match(&self, input: &str) -> bool {
        self.full.is_match(input)
    }
}

impl PartialEq for RegexMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// A string matcher (`StringMatcher`).
#[derive(Debug, Clone, PartialEq)]
pub enum StringMatch {
    /// `exact`.
    Exact(String),
    /// `prefix`.
    Prefix(String),
    /// `suffix`.
    Suffix(String),
    /// `contains`.
    Contains(String),
    /// `safe_regex` (full match).
    Regex(RegexMatcher),
}

/// `StringMatcher` with `ignore_case`.
#[derive(Debug, Clone, PartialEq)]
pub struct StringMatcher {
    /// The pattern.
    pub pattern: StringMatch,
    /// `ignore_case` (not applicable to regex).
    pub ignore_case: bool,
}

/// How a header matcher tests the header value.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderMatchSpec {
    /// `exact_match` (deprecated) or `string_match.exact`, etc.
    String(StringMatcher),
    /// `present_match`.
    Present(bool),
    /// `range_match` [start, end).
    Range {
        /// Inclusive start.
        start: i64,
        /// Exclusive end.
        end: i64,
    },
}

/// `HeaderMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatcher {
    /// Header name, lower-cased. `:authority`, `:path`, `:method`, `:scheme` are pseudo-headers.
    pub name: String,
    /// The test; `None` means "header present" (Envoy's behaviour with no specifier).
    pub spec: Option<HeaderMatchSpec>,
    /// `invert_match`.
    pub invert_match: bool,
    /// `treat_missing_header_as_empty`.
    pub treat_missing_header_as_empty: bool,
}

/// `QueryParameterMatcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParameterMatcher {
    /// Parameter name.
    pub name: String,
    /// `string_match`; `None` with `present_match: true` means present.
    pub string_match: Option<StringMatcher>,
}

/// Cluster discovery type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryType {
    /// `STATIC`.
    Static,
    /// `STRICT_DNS`: every resolved address is a host.
    StrictDns,
    /// `LOGICAL_DNS`: one logical host, the first address.
    LogicalDns,
}

/// `lb_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// `ROUND_ROBIN` (default), weighted.
    RoundRobin,
    /// `LEAST_REQUEST` with `choice_count` (default 2).
    LeastRequest {
        /// `least_request_lb_config.choice_count`.
        choice_count: u32,
    },
    /// `RANDOM`.
    Random,
    /// `RING_HASH` with ring sizes.
    RingHash {
        /// `ring_hash_lb_config.minimum_ring_size` (default 1024).
        minimum_ring_size: u64,
        /// `ring_hash_lb_config.maximum_ring_size` (default 8M).
        maximum_ring_size: u64,
    },
    /// `MAGLEV` with `table_size` (default 65537, prime).
    Maglev {
        /// `maglev_lb_config.table_size`.
        table_size: u64,
    },
}

/// `dns_lookup_family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsLookupFamily {
    /// `AUTO` (default): IPv6, falling back to IPv4.
    #[default]
    Auto,
    /// `V4_ONLY`.
    V4Only,
    /// `V6_ONLY`.
    V6Only,
    /// `V4_PREFERRED`.
    V4Preferred,
    /// `ALL`.
    All,
}

/// An upstream endpoint as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Address or DNS name.
    pub address: String,
    /// Port.
    pub port: u16,
    /// `hostname` (optional; used by auto_host_rewrite).
    pub hostname: String,
    /// `load_balancing_weight` (default 1).
    pub weight: u32,
    /// Priority of the locality this endpoint is in.
    pub priority: u32,
}

/// A cluster (`static_resources.clusters[i]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// `name`.
    pub name: String,
    /// `alt_stat_name` (stats scope; defaults to name).
    pub alt_stat_name: Option<String>,
    /// `type`.
    pub discovery: DiscoveryType,
    /// `connect_timeout` (default 5 s).
    pub connect_timeout: Duration,
    /// `lb_policy`.
    pub lb_policy: LbPolicy,
    /// `load_assignment` endpoints, flattened, with priorities.
    pub endpoints: Vec<Endpoint>,
    /// `dns_refresh_rate` (default 5 s).
    pub dns_refresh_rate: Duration,
    /// `respect_dns_ttl` (default false).
    pub respect_dns_ttl: bool,
    /// `dns_lookup_family`.
    pub dns_lookup_family: DnsLookupFamily,
    /// DNS servers from `typed_dns_resolver_config` / `dns_resolution_config.resolvers`
    /// (empty: the system's resolv.conf).
    pub dns_resolvers: Vec<SocketAddr>,
    /// `common_lb_config.healthy_panic_threshold` in percent (default 50).
    pub healthy_panic_threshold: f64,
    /// `health_checks[0]`: active health checking (Legate supports one per cluster).
    pub health_check: Option<HealthCheck>,
    /// `outlier_detection`.
    pub outlier_detection: Option<OutlierDetection>,
    /// `per_connection_buffer_limit_bytes` (default 1 MiB).
    pub per_connection_buffer_limit_bytes: u32,
    /// Upstream HTTP/1 options.
    pub http: UpstreamHttpOptions,
    /// `transport_socket` `envoy.transport_sockets.tls`: TLS to the hosts (`None` = plain TCP).
    pub tls: Option<UpstreamTls>,
    /// `circuit_breakers.thresholds` of the DEFAULT priority (Legate routes at DEFAULT only).
    pub circuit_breakers: CircuitBreakerThresholds,
    /// `circuit_breakers.thresholds` of the HIGH priority: shown by the admin API; no Legate
    /// request uses them.
    pub circuit_breakers_high: CircuitBreakerThresholds,
}

impl Cluster {
    /// The name used in stats (`alt_stat_name` or `name`).
    pub fn stat_name(&self) -> &str {
        self.alt_stat_name.as_deref().unwrap_or(&self.name)
    }
}

/// Upstream HTTP protocol options (`typed_extension_protocol_options` HttpProtocolOptions).
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamHttpOptions {
    /// The protocol spoken to the upstream.
    pub protocol: UpstreamProtocol,
    /// `http2_protocol_options` for HTTP/2 upstreams.
    pub http2: Http2Options,
    /// `common_http_protocol_options.idle_timeout` for pooled connections (default 1 h).
    pub idle_timeout: Option<Duration>,
    /// `common_http_protocol_options.max_requests_per_connection` (`None` or 0 = unlimited,
    /// the default). The upstream pool closes a connection after this many requests.
    pub max_requests_per_connection: Option<u32>,
    /// `upstream_http_protocol_options.auto_sni`: the TLS server name is the request's host
    /// (after host rewrite, without the port; not for an IP address).
    pub auto_sni: bool,
    /// `upstream_http_protocol_options.auto_san_validation`: the upstream's certificate must
    /// carry the request's host as a SAN.
    pub auto_san_validation: bool,
}

impl Default for UpstreamHttpOptions {
    fn default() -> Self {
        Self {
            protocol: UpstreamProtocol::Http1,
            http2: Http2Options::default(),
            idle_timeout: Some(Duration::from_secs(3600)),
            max_requests_per_connection: None,
            auto_sni: false,
            auto_san_validation: false,
        }
    }
}

/// Which HTTP version a cluster speaks to its hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (the default; `explicit_http_config.http_protocol_options`).
    Http1,
    /// HTTP/2 with prior knowledge (`explicit_http_config.http2_protocol_options` or the
    /// cluster's legacy `http2_protocol_options`).
    Http2,
    /// The downstream request's version (`use_downstream_protocol_config`).
    UseDownstream,
    /// Chosen by ALPN (`auto_config`; needs TLS): HTTP/2 when the upstream selects `h2`,
    /// HTTP/1.1 otherwise.
    Auto,
}

/// `Http2ProtocolOptions` Legate applies (the rest is refused when set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Options {
    /// `max_concurrent_streams` (default 2147483647).
    pub max_concurrent_streams: u32,
    /// `initial_stream_window_size` (default 268435456).
    pub initial_stream_window_size: u32,
    /// `initial_connection_window_size` (default 268435456).
    pub initial_connection_window_size: u32,
}

impl Default for Http2Options {
    /// Envoy's defaults.
    fn default() -> Self {
        Self { max_concurrent_streams: 2_147_483_647, initial_stream_window_size: 268_435_456, initial_connection_window_size: 268_435_456 }
    }
}
