//! TLS to upstream hosts (`UpstreamTlsContext`), with Envoy's verification semantics: without
//! `trusted_ca` the server certificate is not verified; with it the chain must lead to the CA,
//! and the name in it is not checked (Envoy checks names only when SAN matchers are configured,
//! which Legate refuses). Also Envoy's names of ciphers and curves, shared with the listeners.

use std::sync::Arc;

use legate_config::model::{DataSource, TlsParams, TlsVersion, UpstreamTls};
use legate_stats::{Counter, Store};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, CipherSuite, ClientConfig, DigitallySignedStruct, NamedGroup, RootCertStore, SignatureScheme,
    SupportedProtocolVersion,
};
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::UpstreamError;

/// A cluster's TLS client side.
pub(crate) struct UpstreamTlsConnector {
    connector: tokio_rustls::TlsConnector,
    /// For health check connections: only the configured ALPN protocols, without the `h2`
    /// fallback of HTTP/2 clusters (Envoy adds that fallback in its connection pools only).
    health_check_connector: tokio_rustls::TlsConnector,
    sni: Option<ServerName<'static>>,
    stats: ClusterSslStats,
}

impl UpstreamTlsConnector {
    /// Builds the client configuration; certificate files are read now.
    pub(crate) fn new(config: &UpstreamTls, http2: bool, store: &Store, scope: &str) -> Result<Self, UpstreamError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions = protocol_versions(&config.params);
        let verifier: Arc<dyn ServerCertVerifier> = match &config.trusted_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(ca, "trusted_ca")? {
                    roots.add(cert).map_err(|e| invalid("trusted_ca", e))?;
                }
                let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| invalid("validation_context", e))?;
                Arc::new(ChainOnly { inner })
            }
            None => Arc::new(Unverified { provider: provider.clone() }),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| invalid("tls_params", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut client = match &config.client_certificate {
            Some(cert) => {
                let chain = certificates(&cert.certificate_chain, "certificate_chain")?;
                let key = PrivateKeyDer::from_pem_slice(&read(&cert.private_key, "private_key")?)
                    .map_err(|e| invalid("private_key", e))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| invalid("tls_certificates", e))?
            }
            None => builder.with_no_client_auth(),
        };
        client.alpn_protocols = config.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        let health_check_connector = tokio_rustls::TlsConnector::from(Arc::new(client.clone()));
        if config.alpn_protocols.is_empty() && http2 {
            client.alpn_protocols = vec![b"h2".to_vec()];
        }
        let sni = match &config.sni {
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|e| invalid("sni", e))?),
            None => None,
        };
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            health_check_connector,
            sni,
            stats: ClusterSslStats::new(store, scope),
        })
    }

    /// Runs the handshake on a connected socket; the SNI is the configured one (none without).
    pub(crate) async fn handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, UpstreamError> {
        self.handshake_with(&self.connector, tcp).await
    }

    /// Runs the handshake of a health check connection (ALPN: the configured protocols only).
    pub(crate) async fn health_check_handshake(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, UpstreamError> {
        self.handshake_with(&self.health_check_connector, tcp).await
    }

    async fn handshake_with(&self, connector: &tokio_rustls::TlsConnector, tcp: TcpStream) -> Result<TlsStream<TcpStream>, UpstreamError> {
        // Without `sni` no name is sent: rustls sends no SNI for an IP address.
        let name = match (&self.sni, tcp.peer_addr()) {
            (Some(n), _) => n.clone(),
            (None, Ok(peer)) => ServerName::IpAddress(peer.ip().into()),
            (None, Err(e)) => return Err(UpstreamError::Reset { detail: e.to_string() }),
        };
        match connector.connect(name, tcp).await {
            Ok(tls) => {
                self.stats.handshake.inc();
                Ok(tls)
            }
            Err(e) => {
                let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
                match tls {
                    Some(rustls::Error::InvalidCertificate(_)) => self.stats.fail_verify_error.inc(),
                    _ => self.stats.connection_error.inc(),
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
}

impl ClusterSslStats {
    fn new(store: &Store, scope: &str) -> Self {
        let c = |n: &str| store.counter(&format!("{scope}ssl.{n}"));
        Self { handshake: c("handshake"), connection_error: c("connection_error"), fail_verify_error: c("fail_verify_error") }
    }
}

/// Verifies the chain against the trusted CA but not the name in the certificate.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // The chain verified; only the name differs (checked after the chain by webpki).
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }

    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// No `trusted_ca`: any certificate is accepted (Envoy's behaviour), but the handshake
/// signatures are still checked.
#[derive(Debug)]
struct Unverified {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
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
