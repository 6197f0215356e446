//! `common_tls_context.validation_context` (`CertificateValidationContext`): the trusted CA,
//! SAN matchers and certificate pins, with Envoy's checks of them.

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::model::{CertificateValidation, SanMatcher, SanType};
use crate::proto;
use crate::reader::Obj;

const SAN_TYPES: &[(&str, i64)] =
    &[("SAN_TYPE_UNSPECIFIED", 0), ("EMAIL", 1), ("DNS", 2), ("URI", 3), ("IP_ADDRESS", 4), ("OTHER_NAME", 5)];

/// Reads a `CertificateValidationContext`.
pub(crate) fn validation_context(mut vc: Obj<'_>) -> Result<CertificateValidation> {
    let ca_path = vc.at("trusted_ca");
    let trusted_ca = vc.take("trusted_ca").map(|v| super::data_source(v, &ca_path)).transpose()?;
    let san_matchers =
        vc.array("match_typed_subject_alt_names")?.into_iter().map(|(v, p)| san_matcher(v, &p)).collect::<Result<Vec<_>>>()?;
    let mut certificate_hashes = Vec::new();
    for (hash, p) in vc.strings("verify_certificate_hash")? {
        certificate_hashes.push(certificate_hash(&hash, &p)?);
    }
    let mut spki_hashes = Vec::new();
    for (hash, p) in vc.strings("verify_certificate_spki")? {
        spki_hashes.push(spki_hash(&hash, &p)?);
    }
    if trusted_ca.is_none() && !san_matchers.is_empty() {
        return Err(ConfigError::invalid(
            vc.path(),
            "SAN-based verification of peer certificates without trusted CA is insecure and not allowed",
        ));
    }
    vc.finish()?;
    Ok(CertificateValidation { trusted_ca, san_matchers, certificate_hashes, spki_hashes })
}

/// Reads a `SubjectAltNameMatcher` (OTHER_NAME is refused).
fn san_matcher(v: &Value, path: &str) -> Result<SanMatcher> {
    let mut o = Obj::new(v, path, proto::SUBJECT_ALT_NAME_MATCHER)?;
    let type_path = o.at("san_type");
    let san_type = match o.enumeration("san_type", SAN_TYPES)? {
        Some("DNS") => SanType::Dns,
        Some("URI") => SanType::Uri,
        Some("EMAIL") => SanType::Email,
        Some("IP_ADDRESS") => SanType::IpAddress,
        Some("OTHER_NAME") => return Err(ConfigError::unsupported_value(type_path, "OTHER_NAME")),
        _ => return Err(ConfigError::invalid(type_path, "value must not be in list [SAN_TYPE_UNSPECIFIED]")),
    };
    let matcher_path = o.at("matcher");
    let Some(matcher) = o.take("matcher") else {
        return Err(ConfigError::invalid(matcher_path, "value is required"));
    };
    let matcher = crate::matcher::string_matcher(matcher, &matcher_path)?;
    o.finish()?;
    Ok(SanMatcher { san_type, matcher })
}

/// A `verify_certificate_hash` entry: 64 hex digits, or 32 colon-separated pairs (95 chars).
fn certificate_hash(text: &str, path: &str) -> Result<[u8; 32]> {
    if text.len() < 64 {
        return Err(ConfigError::invalid(path, "value length must be at least 64 characters"));
    }
    let hex = if text.len() == 95 { text.replace(':', "") } else { text.to_string() };
    crate::health::hex_decode(&hex)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| ConfigError::invalid(path, format!("Invalid hex-encoded SHA-256 {hex}")))
}

/// A `verify_certificate_spki` entry: base64 of a SHA-256 digest.
fn spki_hash(text: &str, path: &str) -> Result<[u8; 32]> {
    if text.len() < 44 {
        return Err(ConfigError::invalid(path, "value length must be at least 44 characters"));
    }
    crate::action::base64_decode(text)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| ConfigError::invalid(path, format!("Invalid base64-encoded SHA-256 {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StringMatch;
    use serde_json::json;

    fn read(v: Value) -> Result<CertificateValidation> {
        validation_context(Obj::new(&v, "vc", proto::CERTIFICATE_VALIDATION_CONTEXT)?)
    }

    fn err(v: Value) -> String {
        read(v).unwrap_err().to_string()
    }

    #[test]
    fn reads_san_matchers_and_pins() {
        let hash = "AB:".repeat(31) + "AB";
        let v = read(json!({"trusted_ca": {"filename": "/ca.pem"},
            "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": "a.test"}},
                                              {"san_type": "URI", "matcher": {"prefix": "spiffe://", "ignore_case": true}}],
            "verify_certificate_hash": [hash, "cd".repeat(32)],
            "verify_certificate_spki": ["q83vq83vq83vq83vq83vq83vq83vq83vq83vq83vq80="]}))
        .unwrap();
        assert_eq!(v.san_matchers.len(), 2);
        assert_eq!(v.san_matchers[0].san_type, SanType::Dns);
        assert_eq!(v.san_matchers[0].matcher.pattern, StringMatch::Exact("a.test".into()));
        assert!(v.san_matchers[1].matcher.ignore_case);
        assert_eq!(v.certificate_hashes, [[0xab; 32], [0xcd; 32]]);
        let key_hash: Vec<u8> = [0xab, 0xcd, 0xef].repeat(11).into_iter().take(32).collect();
        assert_eq!(v.spki_hashes.iter().map(|h| h.to_vec()).collect::<Vec<_>>(), [key_hash]);
        assert!(v.checks_the_leaf());
        // Pins need no CA (Envoy accepts them alone).
        assert!(read(json!({"verify_certificate_hash": ["ab".repeat(32)]})).unwrap().has_pins());
    }

    #[test]
    fn refuses_what_envoy_refuses() {
        let san = json!([{"san_type": "DNS", "matcher": {"exact": "a"}}]);
        assert_eq!(err(json!({"match_typed_subject_alt_names": san})),
            "vc: SAN-based verification of peer certificates without trusted CA is insecure and not allowed");
        assert!(err(json!({"verify_certificate_hash": ["abcd"]})).contains("vc.verify_certificate_hash[0]: value length must be at least 64 characters"));
        assert!(err(json!({"verify_certificate_hash": ["zz".repeat(32)]})).contains("Invalid hex-encoded SHA-256 zzzz"));
        assert!(err(json!({"verify_certificate_spki": ["abcd"]})).contains("value length must be at least 44 characters"));
        assert!(err(json!({"verify_certificate_spki": ["a".repeat(44)]})).contains("Invalid base64-encoded SHA-256"));
        let ca = json!({"filename": "/ca"});
        assert!(err(json!({"trusted_ca": ca, "match_typed_subject_alt_names": [{"matcher": {"exact": "a"}}]}))
            .contains("match_typed_subject_alt_names[0].san_type: value must not be in list [SAN_TYPE_UNSPECIFIED]"));
        assert!(err(json!({"trusted_ca": ca, "match_typed_subject_alt_names": [{"san_type": "DNS"}]}))
            .contains("match_typed_subject_alt_names[0].matcher: value is required"));
        assert!(err(json!({"trusted_ca": ca, "match_typed_subject_alt_names": [{"san_type": "OTHER_NAME", "oid": "1.2", "matcher": {"exact": "a"}}]}))
            .contains("OTHER_NAME is not supported by legate"));
        assert!(err(json!({"trusted_ca": ca, "crl": {"filename": "/crl"}})).ends_with("vc.crl: not supported by legate"));
    }
}
