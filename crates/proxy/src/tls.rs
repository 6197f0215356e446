//! Downstream TLS termination (rustls): the server configuration built from a
//! `DownstreamTlsContext`, the handshake and Envoy's `listener.<addr>.ssl.*` stats.

use std::sync::Arc;

use arc_swap::ArcSwap;

use legate_config::model::{DataSource, DownstreamTls};
use legate_stats::{Counter, Store};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use legate_upstream::tls::{
    cipher_name, curve_name, pem_certificates, protocol_versions, read_pem, verify_failure_stat, CertificateFacts, CertificateRegistry,
    CertificateSelector, ClientVerifier, ContextCertificates, ContextFacts,
};
use rustls::sign::CertifiedKey;
use rustls::{ProtocolVersion, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::ProxyError;

/// What ALPN settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// `h2`.
    Http2,
    /// `http/1.1`.
    Http1,
    /// No ALPN: the codec decides from the first bytes.
    None,
}

/// How often certificate files are checked for changes.
const RELOAD_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// A listener's TLS termination: the acceptor and the `ssl.*` stats. The acceptor is replaced
/// when the certificate, key or CA files change, so renewed certificates apply to new
/// connections without a restart.
pub struct TlsTerminator {
    acceptor: Arc<ArcSwap<tokio_rustls::TlsAcceptor>>,
    stats: SslStats,
}

impl TlsTerminator {
    /// Builds the terminator of a filter chain; certificate files are read now, and watched
    /// from then on when a runtime is running (the data plane's start).
    pub fn new(config: &DownstreamTls, store: &Store, listener_scope: &str) -> Result<Self, ProxyError> {
        let registered = CertificateRegistry::global().register();
        let server = server_config(config, &registered)?;
        let acceptor = Arc::new(ArcSwap::from_pointee(tokio_rustls::TlsAcceptor::from(Arc::new(server))));
        let files = watched_files(config);
        if !files.is_empty() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let scope = listener_scope.to_string();
                runtime.spawn(reload_on_change(Arc::downgrade(&acceptor), config.clone(), files, store.clone(), scope, registered));
            }
        }
        Ok(Self { acceptor, stats: SslStats::new(store, listener_scope) })
    }

    /// Runs the handshake; `None` when it failed (counted as `ssl.connection_error` or a
    /// verification failure, and the connection is closed without an HTTP response, as in Envoy).
    pub async fn accept(&self, stream: TcpStream) -> Option<(TlsStream<TcpStream>, Negotiated)> {
        let acceptor = self.acceptor.load_full();
        match acceptor.accept(stream).await {
            Ok(tls) => {
                let (_, conn) = tls.get_ref();
                self.stats.handshake(&self.stats.store, conn);
                let negotiated = match conn.alpn_protocol() {
                    Some(b"h2") => Negotiated::Http2,
                    Some(b"http/1.1") => Negotiated::Http1,
                    _ => Negotiated::None,
                };
                Some((tls, negotiated))
            }
            Err(e) => {
                self.stats.failed(&e);
                tracing::debug!("TLS handshake failed: {e}");
                None
            }
        }
    }
}

/// The files a TLS context reads.
fn watched_files(config: &DownstreamTls) -> Vec<std::path::PathBuf> {
    config
        .certificates
        .iter()
        .flat_map(|c| [&c.certificate_chain, &c.private_key])
        .chain(config.validation.trusted_ca.as_ref())
        .filter_map(|s| match s {
            DataSource::File(p) => Some(p.clone()),
            DataSource::Inline(_) => None,
        })
        .collect()
}

/// What identifies a file's version: modification time and length.
fn fingerprint(files: &[std::path::PathBuf]) -> Vec<Option<(std::time::SystemTime, u64)>> {
    files.iter().map(|f| std::fs::metadata(f).ok().and_then(|m| Some((m.modified().ok()?, m.len())))).collect()
}

/// Rebuilds the acceptor whenever the files change; a broken new set keeps the old one in use
/// (logged, counted as `ssl.context_update_failed`), as Envoy keeps serving with the last good
/// certificate.
async fn reload_on_change(
    acceptor: std::sync::Weak<ArcSwap<tokio_rustls::TlsAcceptor>>,
    config: DownstreamTls,
    files: Vec<std::path::PathBuf>,
    store: Store,
    scope: String,
    registered: ContextCertificates,
) {
    let updated = store.counter(&format!("{scope}ssl.context_updated"));
    let failed = store.counter(&format!("{scope}ssl.context_update_failed"));
    let mut seen = fingerprint(&files);
    loop {
        tokio::time::sleep(RELOAD_CHECK_INTERVAL).await;
        let Some(acceptor) = acceptor.upgrade() else { return };
        let now = fingerprint(&files);
        if now == seen {
            continue;
        }
        seen = now;
        match server_config(&config, &registered) {
            Ok(server) => {
                acceptor.store(Arc::new(tokio_rustls::TlsAcceptor::from(Arc::new(server))));
                updated.inc();
                tracing::info!("TLS certificate reloaded from {}", files[0].display());
            }
            Err(e) => {
                failed.inc();
                tracing::error!("TLS certificate reload failed, keeping the previous one: {e}");
            }
        }
    }
}

/// Builds the rustls server configuration; once it is built, `registered` notes its
/// certificates (for `/certs` and `server.days_until_first_cert_expiring`).
fn server_config(config: &DownstreamTls, registered: &ContextCertificates) -> Result<ServerConfig, ProxyError> {
    let provider = Arc::new(crypto_provider(&config.params.cipher_suites));
    let versions = protocol_versions(&config.params);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| tls_error("TLS parameters", e))?;
    let validation = &config.validation;
    // What `/certs` shows of the context: every trusted CA and each chain's leaf.
    let mut facts = ContextFacts::default();
    let chain = match &validation.trusted_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let cas = certificates(ca, "trusted_ca")?;
            facts.ca_cert.extend(cas.iter().filter_map(|c| CertificateFacts::read(ca, c)));
            for cert in cas {
                roots.add(cert).map_err(|e| tls_error("trusted_ca", e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).allow_unauthenticated();
            Some(verifier.build().map_err(|e| tls_error("validation_context", e))?)
        }
        None => None,
    };
    let builder = if chain.is_some() || validation.has_pins() {
        let verifier = ClientVerifier::new(chain, validation, &provider, config.require_client_certificate);
        builder.with_client_cert_verifier(Arc::new(verifier))
    } else {
        builder.with_no_client_auth()
    };
    let mut keys = Vec::new();
    for certificate in &config.certificates {
        let chain = certificates(&certificate.certificate_chain, "certificate_chain")?;
        facts.cert_chain.extend(chain.first().and_then(|c| CertificateFacts::read(&certificate.certificate_chain, c)));
        let key = PrivateKeyDer::from_pem_slice(&read(&certificate.private_key, "private_key")?)
            .map_err(|e| tls_error("private_key", e))?;
        keys.push(Arc::new(CertifiedKey::from_der(chain, key, &provider).map_err(|e| tls_error("tls_certificates", e))?));
    }
    let mut server = builder.with_cert_resolver(Arc::new(CertificateSelector::new(keys)));
    server.alpn_protocols = config.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
    registered.set(facts);
    Ok(server)
}

/// aws-lc-rs with the TLS 1.2 suites restricted to `names` (all TLS 1.3 suites stay).
fn crypto_provider(names: &[String]) -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !names.is_empty() {
        provider.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13 || names.iter().any(|n| n == cipher_name(s.suite()))
        });
    }
    provider
}

fn read(source: &DataSource, what: &str) -> Result<Vec<u8>, ProxyError> {
    read_pem(source, what).map_err(ProxyError::Config)
}

fn certificates(source: &DataSource, what: &str) -> Result<Vec<CertificateDer<'static>>, ProxyError> {
    pem_certificates(source, what, "TLS ").map_err(ProxyError::Config)
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Config(format!("TLS {what}: {e}"))
}

/// `listener.<addr>.ssl.*`.
struct SslStats {
    store: Store,
    scope: String,
    connection_error: Counter,
    handshake: Counter,
    no_certificate: Counter,
    fail_verify_no_cert: Counter,
    fail_verify_error: Counter,
    fail_verify_san: Counter,
    fail_verify_cert_hash: Counter,
}

impl SslStats {
    fn new(store: &Store, listener_scope: &str) -> Self {
        let scope = format!("{listener_scope}ssl.");
        let c = |n: &str| store.counter(&format!("{scope}{n}"));
        // Created (at zero) like Envoy's; Legate has no OCSP stapling.
        for n in ["session_reused", "ocsp_staple_failed", "ocsp_staple_omitted", "ocsp_staple_requests", "ocsp_staple_responses"] {
            c(n);
        }
        Self {
            connection_error: c("connection_error"),
            handshake: c("handshake"),
            no_certificate: c("no_certificate"),
            fail_verify_no_cert: c("fail_verify_no_cert"),
            fail_verify_error: c("fail_verify_error"),
            fail_verify_san: c("fail_verify_san"),
            fail_verify_cert_hash: c("fail_verify_cert_hash"),
            store: store.clone(),
            scope,
        }
    }

    fn handshake(&self, store: &Store, conn: &rustls::ServerConnection) {
        self.handshake.inc();
        if conn.peer_certificates().is_none_or(|c| c.is_empty()) {
            self.no_certificate.inc();
        }
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            _ => "TLSv1.2",
        };
        store.counter(&format!("{}versions.{version}", self.scope)).inc();
        if let Some(suite) = conn.negotiated_cipher_suite() {
            store.counter(&format!("{}ciphers.{}", self.scope, cipher_name(suite.suite()))).inc();
        }
        if let Some(group) = conn.negotiated_key_exchange_group() {
            store.counter(&format!("{}curves.{}", self.scope, curve_name(group.name()))).inc();
        }
    }

    fn failed(&self, e: &std::io::Error) {
        // A peer that closes before finishing the handshake is a remote close, not a TLS error.
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return;
        }
        let tls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
        // A client certificate that fails verification counts only its own stat, as in Envoy.
        match (tls, tls.and_then(verify_failure_stat)) {
            (Some(rustls::Error::NoCertificatesPresented), _) => self.fail_verify_no_cert.inc(),
            (_, Some("fail_verify_san")) => self.fail_verify_san.inc(),
            (_, Some("fail_verify_cert_hash")) => self.fail_verify_cert_hash.inc(),
            (_, Some(_)) => self.fail_verify_error.inc(),
            (_, None) => self.connection_error.inc(),
        }
    }
}
