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

/// The kind of subject alternative name a `SubjectAltNameMatcher` tests (`san_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanType {
    /// `DNS`: a dNSName.
    Dns,
    /// `URI`: a uniformResourceIdentifier.
    Uri,
    /// `EMAIL`: an rfc822Name.
    Email,
    /// `IP_ADDRESS`: an iPAddress, as text (`10.0.0.1`, `::1`).
    IpAddress,
}

/// `match_typed_subject_alt_names[]`: a SAN of `san_type` that satisfies `matcher`.
#[derive(Debug, Clone, PartialEq)]
pub struct SanMatcher {
    /// `san_type`.
    pub san_type: SanType,
    /// `matcher`; an `exact` DNS matcher follows DNS wildcard rules, as in Envoy.
    pub matcher: crate::model::StringMatcher,
}

/// `common_tls_context.validation_context`: how the peer's certificate is verified.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CertificateValidation {
    /// `trusted_ca`: the chain must lead to one of these certificates. Without it, Envoy does
    /// not verify the chain, and neither does Legate.
    pub trusted_ca: Option<DataSource>,
    /// `match_typed_subject_alt_names`: one of the certificate's SANs must satisfy one of these.
    pub san_matchers: Vec<SanMatcher>,
    /// `verify_certificate_hash`: SHA-256 digests of accepted DER certificates.
    pub certificate_hashes: Vec<[u8; 32]>,
    /// `verify_certificate_spki`: SHA-256 digests of accepted DER SubjectPublicKeyInfos.
    pub spki_hashes: Vec<[u8; 32]>,
}

impl CertificateValidation {
    /// Whether anything beyond the chain is checked (SANs or pins), which makes Envoy demand a
    /// peer certificate.
    pub fn checks_the_leaf(&self) -> bool {
        !self.san_matchers.is_empty() || self.has_pins()
    }

    /// Whether `verify_certificate_hash` or `verify_certificate_spki` is set.
    pub fn has_pins(&self) -> bool {
        !self.certificate_hashes.is_empty() || !self.spki_hashes.is_empty()
    }
}

/// An `UpstreamTlsContext`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTls {
    /// `sni`: the server name sent (none when empty, as in Envoy).
    pub sni: Option<String>,
    /// `common_tls_context.tls_certificates`: the client certificate for mutual TLS.
    pub client_certificate: Option<TlsCertificate>,
    /// `common_tls_context.validation_context`: how the upstream's certificate is verified.
    pub validation: CertificateValidation,
    /// `common_tls_context.alpn_protocols`.
    pub alpn_protocols: Vec<String>,
    /// `common_tls_context.tls_params`.
    pub params: TlsParams,
}

/// A `DownstreamTlsContext`.
#[derive(Debug, Clone, PartialEq)]
pub struct DownstreamTls {
    /// `common_tls_context.tls_certificates` (at least one), chosen per handshake by server
    /// name and key type.
    pub certificates: Vec<TlsCertificate>,
    /// `common_tls_context.alpn_protocols` (empty: no ALPN).
    pub alpn_protocols: Vec<String>,
    /// `common_tls_context.tls_params`.
    pub params: TlsParams,
    /// `common_tls_context.validation_context`: how client certificates are verified.
    pub validation: CertificateValidation,
    /// `require_client_certificate`.
    pub require_client_certificate: bool,
}
