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
}

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const EXTENSIONS: u8 = 0xa3;
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

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
    let spki = fields.nth(5).filter(|f| f.tag == SEQUENCE).map(|f| f.whole);
    let names = fields
        .find(|f| f.tag == EXTENSIONS)
        .and_then(|ext| children(ext.contents).next())
        .map(|list| children(list.contents).find_map(subject_alt_names).unwrap_or_default())
        .unwrap_or_default();
    LeafFacts { spki, names }
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
    }

    #[test]
    fn malformed_input_yields_nothing() {
        for der in [&[][..], &[0x30], &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], &[0x30, 0x03, 0x30, 0x01, 0x02], &[0x04, 0x00]] {
            assert_eq!(leaf_facts(der), LeafFacts::default());
        }
    }
}
