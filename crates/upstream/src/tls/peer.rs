//! Peer certificate verification of a `CertificateValidationContext`, both directions, with the
//! semantics of Envoy's default certificate validator: the chain against `trusted_ca` (if set),
//! then `match_typed_subject_alt_names` (one SAN satisfying one matcher; an `exact` DNS matcher
//! follows DNS wildcard rules), then the pins (`verify_certificate_hash` or
//! `verify_certificate_spki`: either list matching is enough). Pins work without a CA.

use std::sync::Arc;

use legate_config::model::{CertificateValidation, SanType, StringMatch};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme};

use super::x509::{leaf_facts, GeneralName};
use crate::string_match::StrMatcher;

/// Why a certificate whose chain is fine was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeafCheckFailure {
    /// No SAN satisfies the matchers (`ssl.fail_verify_san`).
    #[error("verify cert failed: SAN matcher")]
    San,
    /// Neither pin list matches (`ssl.fail_verify_cert_hash`).
    #[error("verify cert failed: cert hash and spki")]
    CertificateHash,
}

/// The `ssl.*` counter a failed handshake counts for its certificate: `fail_verify_san`,
/// `fail_verify_cert_hash` or `fail_verify_error`; `None` when the failure is not about the
/// peer's certificate.
pub fn verify_failure_stat(error: &rustls::Error) -> Option<&'static str> {
    let rustls::Error::InvalidCertificate(e) = error else { return None };
    Some(match e {
        CertificateError::Other(OtherError(inner)) => match inner.downcast_ref::<LeafCheckFailure>() {
            Some(LeafCheckFailure::San) => "fail_verify_san",
            Some(LeafCheckFailure::CertificateHash) => "fail_verify_cert_hash",
            None => "fail_verify_error",
        },
        _ => "fail_verify_error",
    })
}

/// A compiled `SubjectAltNameMatcher`.
#[derive(Debug)]
struct SanCheck {
    san_type: SanType,
    matcher: StrMatcher,
    /// The `exact` value of a DNS matcher, compared with DNS wildcard rules instead.
    dns_exact: Option<String>,
}

impl SanCheck {
    fn matches(&self, name: &GeneralName) -> bool {
        let value = match (self.san_type, name) {
            (SanType::Dns, GeneralName::Dns(v)) => {
                if let Some(exact) = &self.dns_exact {
                    return dns_name_match(exact.as_bytes(), v);
                }
                v.clone()
            }
            (SanType::Uri, GeneralName::Uri(v)) | (SanType::Email, GeneralName::Email(v)) => v.clone(),
            (SanType::IpAddress, GeneralName::Ip(ip)) => ip.to_string().into_bytes(),
            _ => return false,
        };
        self.matcher.matches(&value)
    }
}

/// Envoy's `dnsNameMatch`: `dns_name` equals `pattern` ignoring ASCII case, or `pattern`'s first
/// label holds one `*` (not in an A-label `xn--`) matching `dns_name`'s first label and the
/// rest of both names are equal.
pub fn dns_name_match(dns_name: &[u8], pattern: &[u8]) -> bool {
    let (name, pattern) = (dns_name.to_ascii_lowercase(), pattern.to_ascii_lowercase());
    if name == pattern {
        return true;
    }
    let split = |s: &[u8]| s.iter().position(|&b| b == b'.').map(|i| (s[..i].to_vec(), s[i + 1..].to_vec()));
    let (Some((name_label, name_rest)), Some((label, rest))) = (split(&name), split(&pattern)) else {
        return false;
    };
    if !label.contains(&b'*') || rest.contains(&b'*') || label.starts_with(b"xn--") || name_rest != rest {
        return false;
    }
    label_wildcard_match(&name_label, &label)
}

/// Envoy's `labelWildcardMatch`: `*` alone matches any label; one `*` matches what lies
/// between its prefix and suffix.
fn label_wildcard_match(label: &[u8], pattern: &[u8]) -> bool {
    if pattern == b"*" {
        return true;
    }
    if pattern.iter().filter(|&&b| b == b'*').count() != 1 {
        return false;
    }
    let star = pattern.iter().position(|&b| b == b'*').unwrap_or_default();
    let (prefix, suffix) = (&pattern[..star], &pattern[star + 1..]);
    pattern.len() <= label.len() + 1 && label.starts_with(prefix) && label.ends_with(suffix)
}

/// The checks on the leaf certificate after its chain: SAN matchers and pins.
#[derive(Debug)]
pub struct LeafChecks {
    sans: Vec<SanCheck>,
    certificate_hashes: Vec<[u8; 32]>,
    spki_hashes: Vec<[u8; 32]>,
}

impl LeafChecks {
    /// Compiles the checks of a validation context.
    pub fn new(validation: &CertificateValidation) -> Self {
        let sans = validation
            .san_matchers
            .iter()
            .map(|m| SanCheck {
                san_type: m.san_type,
                matcher: StrMatcher::new(&m.matcher),
                dns_exact: match (&m.san_type, &m.matcher.pattern) {
                    (SanType::Dns, StringMatch::Exact(s)) => Some(s.clone()),
                    _ => None,
                },
            })
            .collect();
        Self {
            sans,
            certificate_hashes: validation.certificate_hashes.clone(),
            spki_hashes: validation.spki_hashes.clone(),
        }
    }

    /// Whether `verify_certificate_hash` or `verify_certificate_spki` is set.
    pub fn has_pins(&self) -> bool {
        !self.certificate_hashes.is_empty() || !self.spki_hashes.is_empty()
    }

    /// Checks the leaf certificate; `expected_san` (`auto_san_validation`'s host) must be one of
    /// its SANs (a DNS SAN by DNS rules, others verbatim), before the matchers, as in Envoy.
    pub fn check(&self, leaf: &[u8], expected_san: Option<&str>) -> Result<(), LeafCheckFailure> {
        let facts = leaf_facts(leaf);
        if let Some(expected) = expected_san {
            if !facts.names.iter().any(|n| san_equals(n, expected)) {
                return Err(LeafCheckFailure::San);
            }
        }
        if !self.sans.is_empty() && !self.sans.iter().any(|m| facts.names.iter().any(|n| m.matches(n))) {
            return Err(LeafCheckFailure::San);
        }
        if !self.has_pins() {
            return Ok(());
        }
        let pinned = |hashes: &[[u8; 32]], der: Option<&[u8]>| der.is_some_and(|d| hashes.contains(&sha256(d)));
        if pinned(&self.certificate_hashes, Some(leaf)) || pinned(&self.spki_hashes, facts.spki) {
            Ok(())
        } else {
            Err(LeafCheckFailure::CertificateHash)
        }
    }

    fn verify(&self, leaf: &CertificateDer<'_>, expected_san: Option<&str>) -> Result<(), rustls::Error> {
        self.check(leaf, expected_san).map_err(|f| rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(f)))))
    }
}

/// Envoy's `verifySubjectAltName` comparison of one SAN with an expected name.
fn san_equals(name: &GeneralName, expected: &str) -> bool {
    match name {
        GeneralName::Dns(v) => dns_name_match(expected.as_bytes(), v),
        GeneralName::Uri(v) | GeneralName::Email(v) => v == expected.as_bytes(),
        GeneralName::Ip(ip) => ip.to_string() == expected,
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The handshake-signature methods shared by both verifier traits: the crypto provider's
/// algorithms, whatever the certificate checks.
macro_rules! handshake_signature_checks {
    () => {
        fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.algorithms)
        }

        fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

/// An upstream's certificate verifier: the chain (when `trusted_ca` is set; the name in the
/// certificate is not checked against the SNI, as in Envoy), then the leaf checks.
#[derive(Debug)]
pub(crate) struct UpstreamVerifier {
    pub(crate) chain: Option<Arc<WebPkiServerVerifier>>,
    pub(crate) checks: Arc<LeafChecks>,
    /// The request's host under `auto_san_validation`.
    pub(crate) expected_san: Option<String>,
    pub(crate) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chain) = &self.chain {
            match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
                // The chain verified; only the name differs (checked after the chain by webpki).
                Ok(_)
                | Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
                )) => {}
                Err(e) => return Err(e),
            }
        }
        self.checks.verify(end_entity, self.expected_san.as_deref())?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signature_checks!();
}

/// A listener's client-certificate verifier: the chain (when `trusted_ca` is set), then the
/// leaf checks. A certificate is demanded when `mandatory` (`require_client_certificate`, or
/// SAN matchers or pins configured, as Envoy does).
#[derive(Debug)]
pub struct ClientVerifier {
    chain: Option<Arc<dyn ClientCertVerifier>>,
    checks: LeafChecks,
    algorithms: WebPkiSupportedAlgorithms,
    mandatory: bool,
}

impl ClientVerifier {
    /// A verifier; `chain` verifies the chain against the trusted CA.
    pub fn new(
        chain: Option<Arc<dyn ClientCertVerifier>>,
        validation: &CertificateValidation,
        provider: &CryptoProvider,
        require_client_certificate: bool,
    ) -> Self {
        let mandatory = require_client_certificate || validation.checks_the_leaf();
        Self { chain, checks: LeafChecks::new(validation), algorithms: provider.signature_verification_algorithms, mandatory }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.as_ref().map_or(&[], |c| c.root_hint_subjects())
    }

    fn verify_client_cert(&self, end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>], now: UnixTime) -> Result<ClientCertVerified, rustls::Error> {
        if let Some(chain) = &self.chain {
            chain.verify_client_cert(end_entity, intermediates, now)?;
        }
        self.checks.verify(end_entity, None)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signature_checks!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_config::model::{RegexMatcher, SanMatcher, StringMatcher};
    use rcgen::PublicKeyData;

    #[test]
    fn dns_names_match_like_envoy() {
        let m = |name: &str, pattern: &str| dns_name_match(name.as_bytes(), pattern.as_bytes());
        assert!(m("API.legate.test", "api.LEGATE.test"));
        assert!(m("api.legate.test", "*.legate.test"));
        assert!(m("api.legate.test", "a*.legate.test") && m("api.legate.test", "*i.legate.test") && m("api.legate.test", "a*i.legate.test"));
        assert!(!m("x.api.legate.test", "*.legate.test"), "a wildcard covers one label");
        assert!(!m("legate.test", "*.legate.test"));
        assert!(!m("api.legate.test", "ap*x.legate.test"));
        assert!(!m("api.legate.test", "**.legate.test"), "one wildcard only");
        assert!(!m("api.legate.test", "*.*.test"), "only in the first label");
        assert!(!m("xn--bcher-kva.test", "xn--*.test"), "not in an A-label");
        assert!(!m("test", "*"));
    }

    fn certificate(sans: Vec<rcgen::SanType>) -> (Vec<u8>, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.der().to_vec(), key.subject_public_key_info())
    }

    fn san(san_type: SanType, pattern: StringMatch, ignore_case: bool) -> SanMatcher {
        SanMatcher { san_type, matcher: StringMatcher { pattern, ignore_case } }
    }

    fn checks(san_matchers: Vec<SanMatcher>, certificate_hashes: Vec<[u8; 32]>, spki_hashes: Vec<[u8; 32]>) -> LeafChecks {
        LeafChecks::new(&CertificateValidation { trusted_ca: None, san_matchers, certificate_hashes, spki_hashes })
    }

    #[test]
    fn san_matchers_test_names_of_their_type() {
        let (der, _) = certificate(vec![
            rcgen::SanType::DnsName("*.legate.test".try_into().unwrap()),
            rcgen::SanType::URI("spiffe://legate.test/ns/web".try_into().unwrap()),
            rcgen::SanType::Rfc822Name("ops@legate.test".try_into().unwrap()),
            rcgen::SanType::IpAddress("2001:db8::1".parse().unwrap()),
        ]);
        let ok = |m: SanMatcher| checks(vec![m], vec![], vec![]).check(&der, None);
        assert_eq!(ok(san(SanType::Dns, StringMatch::Exact("API.legate.test".into()), false)), Ok(()));
        assert_eq!(ok(san(SanType::Dns, StringMatch::Suffix(".legate.test".into()), false)), Ok(()));
        assert_eq!(ok(san(SanType::Dns, StringMatch::Prefix("api.".into()), false)), Err(LeafCheckFailure::San), "only exact is DNS-aware");
        assert_eq!(ok(san(SanType::Uri, StringMatch::Prefix("SPIFFE://".into()), true)), Ok(()));
        assert_eq!(ok(san(SanType::Uri, StringMatch::Prefix("SPIFFE://".into()), false)), Err(LeafCheckFailure::San));
        assert_eq!(ok(san(SanType::Email, StringMatch::Contains("@legate".into()), false)), Ok(()));
        assert_eq!(ok(san(SanType::IpAddress, StringMatch::Exact("2001:db8::1".into()), false)), Ok(()));
        let regex = StringMatch::Regex(RegexMatcher::new(r"spiffe://legate\.test/ns/.*").unwrap());
        assert_eq!(ok(san(SanType::Uri, regex.clone(), false)), Ok(()));
        assert_eq!(ok(san(SanType::Dns, regex, false)), Err(LeafCheckFailure::San), "a URI matcher is not a DNS one");
        let (bare, _) = certificate(vec![]);
        let any_dns = checks(vec![san(SanType::Dns, StringMatch::Contains(String::new()), false)], vec![], vec![]);
        assert_eq!(any_dns.check(&bare, None), Err(LeafCheckFailure::San), "no SAN extension matches nothing");
    }

    #[test]
    fn either_pin_list_is_enough_and_sans_come_first() {
        let (der, spki) = certificate(vec![rcgen::SanType::DnsName("a.test".try_into().unwrap())]);
        let (cert_hash, key_hash, other) = (sha256(&der), sha256(&spki), [7; 32]);
        assert_eq!(checks(vec![], vec![other, cert_hash], vec![]).check(&der, None), Ok(()));
        assert_eq!(checks(vec![], vec![other], vec![key_hash]).check(&der, None), Ok(()));
        assert_eq!(checks(vec![], vec![other], vec![other]).check(&der, None), Err(LeafCheckFailure::CertificateHash));
        let wrong_san = san(SanType::Dns, StringMatch::Exact("b.test".into()), false);
        assert_eq!(checks(vec![wrong_san], vec![other], vec![]).check(&der, None), Err(LeafCheckFailure::San));
        assert_eq!(checks(vec![], vec![], vec![]).check(&der, None), Ok(()));
    }

    #[test]
    fn the_expected_san_of_auto_san_validation_comes_before_the_matchers() {
        let (der, _) = certificate(vec![
            rcgen::SanType::DnsName("*.legate.test".try_into().unwrap()),
            rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap()),
        ]);
        let none = checks(vec![], vec![], vec![]);
        assert_eq!(none.check(&der, Some("API.legate.test")), Ok(()));
        assert_eq!(none.check(&der, Some("10.0.0.1")), Ok(()));
        assert_eq!(none.check(&der, Some("x.y.legate.test")), Err(LeafCheckFailure::San));
        let uri = checks(vec![san(SanType::Uri, StringMatch::Prefix("spiffe://".into()), false)], vec![], vec![]);
        assert_eq!(uri.check(&der, Some("api.legate.test")), Err(LeafCheckFailure::San), "both must pass");
    }

    #[test]
    fn failures_name_their_stat() {
        let err = |f| rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(f))));
        assert_eq!(verify_failure_stat(&err(LeafCheckFailure::San)), Some("fail_verify_san"));
        assert_eq!(verify_failure_stat(&err(LeafCheckFailure::CertificateHash)), Some("fail_verify_cert_hash"));
        assert_eq!(verify_failure_stat(&rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)), Some("fail_verify_error"));
        assert_eq!(verify_failure_stat(&rustls::Error::HandshakeNotComplete), None);
    }
}
