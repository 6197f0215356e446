//! TLS to upstream hosts (`UpstreamTlsContext`), with Envoy's verification semantics: without
//! `trusted_ca` the chain is not verified; with it the chain must lead to the CA, and the name
//! in it is checked only by the SAN matchers (see [`peer`]). Also Envoy's names of ciphers and
//! curves, and the peer verification shared with the listeners.

use std::sync::Arc;

use legate_config::model::{DataSource, TlsParams, TlsVersion, UpstreamHttpOptions, UpstreamProtocol, UpstreamTls};
use legate_stats::{Counter, Store};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{CipherSuite, ClientConfig, NamedGroup, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::UpstreamError;

pub mod peer;
mod registry;
mod select;
mod x509;

pub use registry::{days_until, CertificateFacts, CertificateRegistry, ContextCertificates, ContextFacts, SubjectAltName};
pub use peer::{verify_failure_stat, ClientVerifier};
pub use select::CertificateSelector;

/// A cluster's TLS client side.
pub(crate) struct UpstreamTlsConnector {
    client: Arc<ClientConfig>,
    /// For health check connections: only the configured ALPN protocols, without the `h2`
    /// fallback of HTTP/2 clusters (`h2,http/1.1` for `auto_config`; Envoy adds that fallback
    /// in its connection pools only);
    /// the same certificate verification.
    health_check_client: Arc<ClientConfig>,
    sni: Option<ServerName<'static>>,
    stats: ClusterSslStats,
    /// `auto_sni`: the request's host is the server name.
    auto_sni: bool,
    /// `auto_san_validation` with something verifying the certificate (a CA or pins): the
    /// request's host must be a SAN.
    auto_san_validation: bool,
    chain: Option<Arc<WebPkiServerVerifier>>,
    checks: Arc<peer::LeafChecks>,
}

impl UpstreamTlsConnector {
    /// Builds the client configuration; certificate files are read now.
    pub(crate) fn new(config: &UpstreamTls, http: &UpstreamHttpOptions, store: &Store, scope: &str) -> Result<Self, UpstreamError> {
        let fallback: &[&[u8]] = match http.protocol {
            UpstreamProtocol::Http2 => &[b"h2"],
            UpstreamProtocol::Auto => &[b"h2", b"http/1.1"],
            UpstreamProtocol::Http1 | UpstreamProtocol::UseDownstream => &[],
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions = protocol_versions(&config.params);
        // What `/certs` shows of the context: every trusted CA, the client chain's leaf.
        let mut facts = ContextFacts::default();
        let chain = match &config.validation.trusted_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                let cas = certificates(ca, "trusted_ca")?;
                facts.ca_cert.extend(cas.iter().filter_map(|c| CertificateFacts::read(ca, c)));
                for cert in cas {
                    roots.add(cert).map_err(|e| invalid("trusted_ca", e))?;
                }
                let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| invalid("validation_context", e))?;
                Some(verifier)
            }
            None => None,
        };
        let checks = Arc::new(peer::LeafChecks::new(&config.validation));
        let auto_san_validation = http.auto_san_validation && (chain.is_some() || checks.has_pins());
        let verifier = Arc::new(peer::UpstreamVerifier {
            chain: chain.clone(),
            checks: checks.clone(),
            expected_san: None,
            algorithms: provider.signature_verification_algorithms,
        });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| invalid("tls_params", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut client = match &config.client_certificate {
            Some(cert) => {
                let chain = certificates(&cert.certificate_chain, "certificate_chain")?;
                facts.cert_chain.extend(chain.first().and_then(|c| CertificateFacts::read(&cert.certificate_chain, c)));
                let key = PrivateKeyDer::from_pem_slice(&read(&cert.private_key, "private_key")?)
                    .map_err(|e| invalid("private_key", e))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| invalid("tls_certificates", e))?
            }
            None => builder.with_no_client_auth(),
        };
        client.alpn_protocols = config.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        let health_check_client = Arc::new(client.clone());
        if config.alpn_protocols.is_empty() {
            client.alpn_protocols = fallback.iter().map(|p| p.to_vec()).collect();
        }
        CertificateRegistry::global().register().set(facts);
        let sni = match &config.sni {
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|e| invalid("sni", e))?),
            None => None,
        };
        Ok(Self {
            client: Arc::new(client),
            health_check_client,
            sni,
            stats: ClusterSslStats::new(store, scope),
            auto_sni: http.auto_sni,
            auto_san_validation,
            chain,
            checks,
        })
    }

    /// Whether connections depend on the request's host (`auto_sni`, `auto_san_validation`).
    pub(crate) fn uses_request_host(&self) -> bool {
        self.auto_sni || self.auto_san_validation
    }

    /// Runs the handshake on a connected socket; the SNI is the request's host under
    /// `auto_sni` (`request_host`, unless an address), else the configured one (none without);
    /// under `auto_san_validation` the host (address or name) must be a SAN.
    pub(crate) async fn handshake(&self, tcp: TcpStream, request_host: Option<&str>) -> Result<TlsStream<TcpStream>, UpstreamError> {
        self.handshake_with(&self.client, tcp, request_host).await
    }

    /// Runs the handshake of a health check connection (ALPN: the configured protocols only).
    /// There is no request, so the configured SNI is sent and no request host is checked; the
    /// validation context (CA, SAN matchers, pins) applies as to any connection.
    pub(crate) async fn health_check_handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, UpstreamError> {
        self.handshake_with(&self.health_check_client, tcp, None).await
    }

    async fn handshake_with(
        &self,
        client: &Arc<ClientConfig>,
        tcp: TcpStream,
        request_host: Option<&str>,
    ) -> Result<TlsStream<TcpStream>, UpstreamError> {
        // An address is no server name: the configured one is sent instead, as in Envoy.
        let auto_name = request_host
            .filter(|h| self.auto_sni && h.parse::<std::net::IpAddr>().is_err())
            .and_then(|h| ServerName::try_from(h.to_string()).ok());
        // Without a name none is sent: rustls sends no SNI for an IP address.
        let name = match (auto_name.or_else(|| self.sni.clone()), tcp.peer_addr()) {
            (Some(n), _) => n,
            (None, Ok(peer)) => ServerName::IpAddress(peer.ip().into()),
            (None, Err(e)) => return Err(UpstreamError::Reset { detail: e.to_string() }),
        };
        let client = match request_host.filter(|_| self.auto_san_validation) {
            Some(host) => {
                let mut client = (**client).clone();
                let algorithms = client.crypto_provider().signature_verification_algorithms;
                client.dangerous().set_certificate_verifier(Arc::new(peer::UpstreamVerifier {
                    chain: self.chain.clone(),
                    checks: self.checks.clone(),
                    expected_san: Some(host.to_string()),
                    algorithms,
                }));
                Arc::new(client)
            }
            None => client.clone(),
        };
        match tokio_rustls::TlsConnector::from(client).connect(name, tcp).await {
            Ok(tls) => {
                self.stats.handshake.inc();
                Ok(tls)
            }
            Err(e) => {
                let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
                match tls.and_then(verify_failure_stat) {
                    Some("fail_verify_san") => self.stats.fail_verify_san.inc(),
                    Some("fail_verify_cert_hash") => self.stats.fail_verify_cert_hash.inc(),
                    Some(_) => self.stats.fail_verify_error.inc(),
                    None => self.stats.connection_error.inc(),
                }
                Err(UpstreamError::Tls { detail: tls.map_or_else(|| e.to_string(), ToString::to_string) })
            }
        }
    }
}

/// `cluster.<name>.ssl.*`.
struct ClusterSslStats {
    handshake: Counter,
    connection_error: Counter,
    fail_verify_error: Counter,
    fail_verify_san: Counter,
    fail_verify_cert_hash: Counter,
}

impl ClusterSslStats {
    fn new(store: &Store, scope: &str) -> Self {
        let c = |n: &str| store.counter(&format!("{scope}ssl.{n}"));
        let stats = Self {
            handshake: c("handshake"),
            connection_error: c("connection_error"),
            fail_verify_error: c("fail_verify_error"),
            fail_verify_san: c("fail_verify_san"),
            fail_verify_cert_hash: c("fail_verify_cert_hash"),
        };
        // Created (at zero) like Envoy's: an upstream always presents a certificate.
        for n in ["fail_verify_no_cert", "no_certificate"] {
            c(n);
        }
        stats
    }
}

/// The rustls protocol versions between `params`' minimum and maximum (TLS 1.2 and 1.3).
pub fn protocol_versions(params: &TlsParams) -> Vec<&'static SupportedProtocolVersion> {
    [(TlsVersion::Tls12, &rustls::version::TLS12), (TlsVersion::Tls13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(v, _)| (params.min_version..=params.max_version).contains(v))
        .map(|(_, p)| p)
        .collect()
}

/// The PEM bytes of a data source (files are read now); the error is the whole message.
pub fn read_pem(source: &DataSource, what: &str) -> Result<Vec<u8>, String> {
    match source {
        DataSource::Inline(bytes) => Ok(bytes.clone()),
        DataSource::File(path) => std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display())),
    }
}

/// The certificates of a PEM data source; `prefix` starts the message of a PEM error
/// (`"TLS "` for listeners, `"upstream TLS "` for clusters).
pub fn pem_certificates(source: &DataSource, what: &str, prefix: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(source, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{prefix}{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}

fn read(source: &DataSource, what: &str) -> Result<Vec<u8>, UpstreamError> {
    read_pem(source, what).map_err(UpstreamError::InvalidConfig)
}

fn certificates(source: &DataSource, what: &str) -> Result<Vec<CertificateDer<'static>>, UpstreamError> {
    pem_certificates(source, what, "upstream TLS ").map_err(UpstreamError::InvalidConfig)
}

fn invalid(what: &str, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::InvalidConfig(format!("upstream TLS {what}: {e}"))
}

/// Envoy's (BoringSSL's) name of a cipher suite, as in `ssl.ciphers.<name>` stats.
pub fn cipher_name(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "unknown",
    }
}

/// Envoy's name of a key-exchange group, as in `ssl.curves.<name>` stats.
pub fn curve_name(group: NamedGroup) -> &'static str {
    match group {
        NamedGroup::X25519 => "X25519",
        NamedGroup::secp256r1 => "P-256",
        NamedGroup::secp384r1 => "P-384",
        NamedGroup::secp521r1 => "P-521",
        NamedGroup::X25519MLKEM768 => "X25519MLKEM768",
        _ => "unknown",
    }
}
