//! Just enough DER to read what certificate verification looks at in a leaf certificate: its
//! SubjectPublicKeyInfo and its subject alternative names. Malformed input yields nothing,
//! never a panic.

use std::net::IpAddr;

/// A subject alternative name (`GeneralName`) of the kinds Legate matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GeneralName {
    /// `[2] dNSName`.
    Dns(Vec<u8>),
    /// `[6] uniformResourceIdentifier`.
    Uri(Vec<u8>),
    /// `[1] rfc822Name`.
    Email(Vec<u8>),
    /// `[7] iPAddress` (4 or 16 bytes).
    Ip(IpAddr),
}

/// What verification reads from a certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LeafFacts<'a> {
    /// The DER `SubjectPublicKeyInfo` (tag and length included), as Envoy hashes it.
    pub(crate) spki: Option<&'a [u8]>,
    /// The subjectAltName extension's names, in certificate order.
    pub(crate) names: Vec<GeneralName>,
    /// Whether the certificate has a subjectAltName extension at all.
    pub(crate) has_san_extension: bool,
    /// The subject's first commonName (2.5.4.3) value.
    pub(crate) common_name: Option<&'a [u8]>,
}

/// The elliptic curve of an EC public key, by its OID (the AlgorithmIdentifier's parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EcCurve {
    /// secp256r1, 1.2.840.10045.3.1.7.
    P256,
    /// secp384r1, 1.3.132.0.34.
    P384,
    /// secp521r1, 1.3.132.0.35.
    P521,
}

/// The curve of an EC SubjectPublicKeyInfo; `None` for other keys (RSA, Ed25519).
pub(crate) fn ec_curve(spki: &[u8]) -> Option<EcCurve> {
    let (spki, _) = tlv(spki)?;
    let algorithm = children(spki.contents).next()?;
    let mut parts = children(algorithm.contents);
    if parts.next()?.contents != EC_PUBLIC_KEY {
        return None;
    }
    match parts.next()?.contents {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => Some(EcCurve::P256),
        [0x2b, 0x81, 0x04, 0x00, 0x22] => Some(EcCurve::P384),
        [0x2b, 0x81, 0x04, 0x00, 0x23] => Some(EcCurve::P521),
        _ => None,
    }
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const EXTENSIONS: u8 = 0xa3;
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// 2.5.4.3, commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 1.2.840.10045.2.1, id-ecPublicKey.
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// One TLV: its tag, its contents and everything (tag and length included).
struct Tlv<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
}

/// Reads the TLV at the start of `input`; returns it and what follows.
fn tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    Some((Tlv { tag, contents: &rest[..len], whole: &input[..header + len] }, &rest[len..]))
}

/// The TLVs inside a constructed value's contents.
fn children(mut contents: &[u8]) -> impl Iterator<Item = Tlv<'_>> {
    std::iter::from_fn(move || {
        let (item, rest) = tlv(contents)?;
        contents = rest;
        Some(item)
    })
}

/// Reads the SPKI and SANs of a DER certificate (empty facts when it cannot be parsed).
pub(crate) fn leaf_facts(der: &[u8]) -> LeafFacts<'_> {
    let Some((cert, _)) = tlv(der).filter(|(c, _)| c.tag == SEQUENCE) else {
        return LeafFacts::default();
    };
    let Some(tbs) = children(cert.contents).next().filter(|t| t.tag == SEQUENCE) else {
        return LeafFacts::default();
    };
    let mut fields = children(tbs.contents).peekable();
    // [0] version is optional; then serial, signature, issuer, validity, subject, SPKI.
    if fields.peek().is_some_and(|f| f.tag == 0xa0) {
        fields.next();
    }
    // serial, signature, issuer, validity, then subject and SPKI.
    let subject = fields.nth(4).filter(|f| f.tag == SEQUENCE);
    let common_name = subject.and_then(|s| children(s.contents).flat_map(|set| children(set.contents)).find_map(common_name));
    let spki = fields.next().filter(|f| f.tag == SEQUENCE).map(|f| f.whole);
    let names = fields
        .find(|f| f.tag == EXTENSIONS)
        .and_then(|ext| children(ext.contents).next())
        .and_then(|list| children(list.contents).find_map(subject_alt_names));
    LeafFacts { spki, has_san_extension: names.is_some(), names: names.unwrap_or_default(), common_name }
}

/// The value of an `AttributeTypeAndValue` when it is commonName.
fn common_name(attribute: Tlv<'_>) -> Option<&[u8]> {
    let mut parts = children(attribute.contents);
    if parts.next().filter(|p| p.tag == OID)?.contents != COMMON_NAME {
        return None;
    }
    parts.next().map(|v| v.contents)
}

/// The names of an `Extension` when it is subjectAltName.
fn subject_alt_names(extension: Tlv<'_>) -> Option<Vec<GeneralName>> {
    let mut parts = children(extension.contents);
    let oid = parts.next().filter(|p| p.tag == OID)?;
    if oid.contents != SUBJECT_ALT_NAME {
        return None;
    }
    let value = parts.find(|p| p.tag == OCTET_STRING)?;
    let (names, _) = tlv(value.contents).filter(|(n, _)| n.tag == SEQUENCE)?;
    Some(children(names.contents).filter_map(general_name).collect())
}

fn general_name(name: Tlv<'_>) -> Option<GeneralName> {
    let bytes = || name.contents.to_vec();
    Some(match name.tag {
        0x81 => GeneralName::Email(bytes()),
        0x82 => GeneralName::Dns(bytes()),
        0x86 => GeneralName::Uri(bytes()),
        0x87 => match name.contents.len() {
            4 => GeneralName::Ip(IpAddr::from(<[u8; 4]>::try_from(name.contents).ok()?)),
            16 => GeneralName::Ip(IpAddr::from(<[u8; 16]>::try_from(name.contents).ok()?)),
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::PublicKeyData;

    #[test]
    fn reads_the_names_and_key_of_an_rcgen_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string(), "*.b.test".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI("spiffe://td/ns/x".try_into().unwrap()));
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name("ops@a.test".try_into().unwrap()));
        params.subject_alt_names.push(rcgen::SanType::IpAddress("10.1.2.3".parse().unwrap()));
        params.subject_alt_names.push(rcgen::SanType::IpAddress("::1".parse().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let facts = leaf_facts(cert.der());
        assert_eq!(
            facts.names,
            [
                GeneralName::Dns(b"a.test".to_vec()),
                GeneralName::Dns(b"*.b.test".to_vec()),
                GeneralName::Uri(b"spiffe://td/ns/x".to_vec()),
                GeneralName::Email(b"ops@a.test".to_vec()),
                GeneralName::Ip("10.1.2.3".parse().unwrap()),
                GeneralName::Ip("::1".parse().unwrap()),
            ]
        );
        assert_eq!(facts.spki, Some(&key.subject_public_key_info()[..]));
        assert!(facts.has_san_extension);
        assert_eq!(facts.spki.and_then(ec_curve), Some(EcCurve::P256));
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Legate");
        params.distinguished_name.push(rcgen::DnType::CommonName, "cn.test");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let facts = leaf_facts(cert.der());
        assert_eq!((facts.has_san_extension, facts.common_name), (false, Some(&b"cn.test"[..])));
        assert_eq!(facts.spki.and_then(ec_curve), Some(EcCurve::P384));
    }

    #[test]
    fn malformed_input_yields_nothing() {
        for der in [&[][..], &[0x30], &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], &[0x30, 0x03, 0x30, 0x01, 0x02], &[0x04, 0x00]] {
            assert_eq!(leaf_facts(der), LeafFacts::default());
        }
    }
}
