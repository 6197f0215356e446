//! TLS contexts (downstream and upstream) and circuit-breaker thresholds of the internal model.

/// Where certificate or key bytes come from (`DataSource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// `filename`: read when the listener is created.
    File(std::path::PathBuf),
    /// `inline_string` / `inline_bytes`.
    Inline(Vec<u8>),
}

/// A certificate chain and its private key (`TlsCertificate`), PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCertificate {
    /// `certificate_chain`.
    pub certificate_chain: DataSource,
    /// `private_key`.
    pub private_key: DataSource,
}

/// A TLS protocol version (`TlsParameters.TlsProtocol`); rustls speaks 1.2 and 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLSv1_2`.
    Tls12,
    /// `TLSv1_3`.
    Tls13,
}

/// `common_tls_context.tls_params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    /// `tls_minimum_protocol_version` (Envoy's server default: TLS 1.2).
    pub min_version: TlsVersion,
    /// `tls_maximum_protocol_version` (default TLS 1.3).
    pub max_version: TlsVersion,
    /// `cipher_suites` for TLS 1.2, BoringSSL names (`ECDHE-RSA-AES128-GCM-SHA256`); empty =
    /// the default set.
    pub cipher_suites: Vec<String>,
}

impl Default for TlsParams {
    fn default() -> Self {
        Self { min_version: TlsVersion::Tls12, max_version: TlsVersion::Tls13, cipher_suites: Vec::new() }
    }
}

/// Circuit-breaker limits of one priority (Envoy's defaults: 1024 / 1024 / 1024 / 3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakerThresholds {
    /// `max_connections`: upstream connections of the cluster, over all workers.
    pub max_connections: u32,
    /// `max_pending_requests`: requests waiting for a connection.
    pub max_pending_requests: u32,
    /// `max_requests`: requests in flight to the cluster.
    pub max_requests: u32,
    /// `max_retries`: retries in flight (replaced by `retry_budget` when that is set).
    pub max_retries: u32,
    /// `retry_budget`: retries in flight as a share of the active and pending requests.
    pub retry_budget: Option<RetryBudget>,
    /// `track_remaining`: publish the `circuit_breakers.<priority>.remaining_*` gauges.
    pub track_remaining: bool,
}

impl Default for CircuitBreakerThresholds {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None,
            track_remaining: false,
        }
    }
}

/// `circuit_breakers.thresholds[].retry_budget`: at most `max(min_retry_concurrency,
/// budget_percent% of the active and pending requests)` retries in flight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// `budget_percent.value` (default 20).
    pub budget_percent: f64,
    /// `min_retry_concurrency` (default 3).
    pub min_retry_concurrency: u32,
}

/// An `UpstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// `sni`: the server name sent (none when empty, as in Envoy).
    pub sni: Option<String>,
    /// `common_tls_context.tls_certificates`: the client certificate for mutual TLS.
    pub client_certificate: Option<TlsCertificate>,
    /// `common_tls_context.validation_context.trusted_ca`: without it, Envoy does not verify
    /// the upstream's certificate, and neither does Legate.
    pub trusted_ca: Option<DataSource>,
    /// `common_tls_context.alpn_protocols`.
    pub alpn_protocols: Vec<String>,
    /// `common_tls_context.tls_params`.
    pub params: TlsParams,
}

/// A `DownstreamTlsContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamTls {
    /// `common_tls_context.tls_certificates` (exactly one).
    pub certificate: TlsCertificate,
    /// `common_tls_context.alpn_protocols` (empty: no ALPN).
    pub alpn_protocols: Vec<String>,
    /// `common_tls_context.tls_params`.
    pub params: TlsParams,
    /// `common_tls_context.validation_context.trusted_ca`: client certificates are verified
    /// against it.
    pub trusted_ca: Option<DataSource>,
    /// `require_client_certificate`.
    pub require_client_certificate: bool,
}
