//! The certificates of every TLS context Legate builds (listeners and clusters), for Envoy's
//! `/certs` and `server.days_until_first_cert_expiring`. As Envoy, a context shows the leaf of
//! each of its certificate chains and every certificate of its `trusted_ca`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use legate_config::model::DataSource;

use super::x509;

/// What `/certs` shows of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The file it was read from, or `<inline>`.
    pub path: String,
    /// The serial number in lower-case hex, without leading zero bytes.
    pub serial_number: String,
    /// The subject alternative names Envoy shows, DNS names first, then URIs, then IPs.
    pub subject_alt_names: Vec<SubjectAltName>,
    /// notBefore, in seconds since the Unix epoch.
    pub valid_from: i64,
    /// notAfter, in seconds since the Unix epoch.
    pub expiration_time: i64,
}

/// A subject alternative name as `/certs` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    /// `dns`.
    Dns(String),
    /// `uri`.
    Uri(String),
    /// `ip_address`.
    IpAddress(IpAddr),
}

/// The certificates of one TLS context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextFacts {
    /// Its trusted CAs (`ca_cert`).
    pub ca_cert: Vec<CertificateFacts>,
    /// The leaf of each of its certificate chains (`cert_chain`).
    pub cert_chain: Vec<CertificateFacts>,
}

/// One TLS context's entry, set again when the context reloads.
#[derive(Debug, Clone, Default)]
pub struct ContextCertificates(Arc<Mutex<ContextFacts>>);

// === impl ContextCertificates ===

impl ContextCertificates {
    /// Notes the certificates the context now uses: its trusted CAs and the leaves of its
    /// chains.
    pub fn set(&self, facts: ContextFacts) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = facts;
    }

    fn facts(&self) -> ContextFacts {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

// === impl CertificateFacts ===

impl CertificateFacts {
    /// What `/certs` shows of the DER certificate `der` read from `source`; `None` when its
    /// validity cannot be read.
    pub fn read(source: &DataSource, der: &[u8]) -> Option<Self> {
        let (valid_from, expiration_time) = x509::validity(der)?;
        let serial_number = x509::serial_number(der).unwrap_or_default().iter().map(|b| format!("{b:02x}")).collect();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let mut subject_alt_names: Vec<SubjectAltName> = x509::leaf_facts(der)
            .names
            .iter()
            .filter_map(|name| match name {
                x509::GeneralName::Dns(d) => Some(SubjectAltName::Dns(text(d))),
                x509::GeneralName::Uri(u) => Some(SubjectAltName::Uri(text(u))),
                x509::GeneralName::Ip(ip) => Some(SubjectAltName::IpAddress(*ip)),
                x509::GeneralName::Email(_) => None,
            })
            .collect();
        // Envoy lists them by kind; the sort is stable, so certificate order holds within one.
        subject_alt_names.sort_by_key(|name| match name {
            SubjectAltName::Dns(_) => 0,
            SubjectAltName::Uri(_) => 1,
            SubjectAltName::IpAddress(_) => 2,
        });
        let path = match source {
            DataSource::File(path) => path.display().to_string(),
            DataSource::Inline(_) => "<inline>".to_string(),
        };
        Some(Self { path, serial_number, subject_alt_names, valid_from, expiration_time })
    }
}

/// Whole days from `now` until `expiration_time`, 0 once it has passed (Envoy's
/// `days_until_expiration`).
pub fn days_until(expiration_time: i64, now: SystemTime) -> u64 {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    u64::try_from(expiration_time.saturating_sub(now).max(0) / 86_400).unwrap_or(0)
}

/// The [`ContextCertificates`] of every TLS context built. Contexts are never removed:
/// listeners and clusters live as long as the process (there is no xDS).
#[derive(Debug, Default)]
pub struct CertificateRegistry {
    contexts: Mutex<Vec<ContextCertificates>>,
}

// === impl CertificateRegistry ===

impl CertificateRegistry {
    /// The process's contexts (listeners and clusters register theirs as they are built).
    pub fn global() -> &'static Self {
        static GLOBAL: OnceLock<CertificateRegistry> = OnceLock::new();
        GLOBAL.get_or_init(Self::default)
    }

    /// A new context's entry, without certificates until [`ContextCertificates::set`].
    pub fn register(&self) -> ContextCertificates {
        let context = ContextCertificates::default();
        self.contexts.lock().unwrap_or_else(|e| e.into_inner()).push(context.clone());
        context
    }

    /// The certificates of every context, in the order they were built.
    pub fn contexts(&self) -> Vec<ContextFacts> {
        self.contexts.lock().unwrap_or_else(|e| e.into_inner()).iter().map(ContextCertificates::facts).collect()
    }

    /// Envoy's `days_until_first_cert_expiring` at `now`: whole days until the earliest expiry
    /// of any context's certificate, 0 once it has passed, `u32::MAX` without any certificate.
    pub fn days_until_first(&self, now: SystemTime) -> u64 {
        let contexts = self.contexts.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = contexts
            .iter()
            .filter_map(|context| {
                let facts = context.0.lock().unwrap_or_else(|e| e.into_inner());
                facts.ca_cert.iter().chain(&facts.cert_chain).map(|c| c.expiration_time).min()
            })
            .min();
        earliest.map_or(u64::from(u32::MAX), |expiration| days_until(expiration, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn certificate(expires: (i32, u8, u8)) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::IpAddress("::1".parse().unwrap()));
        params.subject_alt_names.push(rcgen::SanType::URI("spiffe://td/x".try_into().unwrap()));
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(expires.0, expires.1, expires.2);
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xbc]));
        params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().der().to_vec()
    }

    #[test]
    fn days_until_the_earliest_expiry_of_any_context() {
        let registry = CertificateRegistry::default();
        // 2030-01-02 is 1_893_542_400; the other certificate expires a year later.
        let at = |days: u64, secs: u64| UNIX_EPOCH + Duration::from_secs(1_893_542_400 - days * 86_400 - secs);
        assert_eq!(registry.days_until_first(at(0, 0)), u64::from(u32::MAX), "no context");
        let first = registry.register();
        assert_eq!(registry.days_until_first(at(0, 0)), u64::from(u32::MAX), "no certificate yet");
        let (early, late) = (certificate((2030, 1, 2)), certificate((2031, 1, 2)));
        let read = |der: &[u8]| CertificateFacts::read(&DataSource::File("/c.pem".into()), der).unwrap();
        assert_eq!(CertificateFacts::read(&DataSource::Inline(Vec::new()), b"not a certificate"), None);
        first.set(ContextFacts { ca_cert: vec![read(&late)], cert_chain: vec![] });
        let second = registry.register();
        second.set(ContextFacts { ca_cert: vec![], cert_chain: vec![read(&late), read(&early)] });
        assert_eq!(registry.days_until_first(at(10, 0)), 10);
        assert_eq!(registry.days_until_first(at(10, 1)), 10);
        assert_eq!(registry.days_until_first(at(0, 86_399)), 0);
        assert_eq!(registry.days_until_first(UNIX_EPOCH + Duration::from_secs(1_900_000_000)), 0, "expired");
        // A reload that drops the early certificate.
        second.set(ContextFacts { ca_cert: vec![], cert_chain: vec![read(&late)] });
        assert_eq!(registry.days_until_first(at(10, 0)), 10 + 365);
    }

    #[test]
    fn what_certs_shows_of_each_context() {
        let registry = CertificateRegistry::default();
        let cert = certificate((2030, 1, 2));
        let (file, inline) = (DataSource::File("/ca.pem".into()), DataSource::Inline(Vec::new()));
        registry.register().set(ContextFacts {
            ca_cert: CertificateFacts::read(&file, &cert).into_iter().collect(),
            cert_chain: CertificateFacts::read(&inline, &cert).into_iter().collect(),
        });
        let facts = CertificateFacts {
            path: "/ca.pem".to_string(),
            serial_number: "0abc".to_string(),
            subject_alt_names: vec![
                SubjectAltName::Dns("a.test".to_string()),
                SubjectAltName::Uri("spiffe://td/x".to_string()),
                SubjectAltName::IpAddress("::1".parse().unwrap()),
            ],
            valid_from: 1_735_689_600,
            expiration_time: 1_893_542_400,
        };
        let inline = CertificateFacts { path: "<inline>".to_string(), ..facts.clone() };
        assert_eq!(registry.contexts(), [ContextFacts { ca_cert: vec![facts], cert_chain: vec![inline] }]);
    }
}
