//! Just enough DER to read what certificate verification looks at in a leaf certificate (its
//! SubjectPublicKeyInfo and its subject alternative names) and when a certificate expires.
//! Malformed input yields nothing, never a panic.

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
    let Some(mut fields) = tbs_fields(der) else {
        return LeafFacts::default();
    };
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

/// The fields of a DER certificate's TBSCertificate from its serial number on (past the
/// optional version): serial, signature, issuer, validity, subject, SPKI, extensions.
fn tbs_fields(der: &[u8]) -> Option<impl Iterator<Item = Tlv<'_>>> {
    let (cert, _) = tlv(der).filter(|(c, _)| c.tag == SEQUENCE)?;
    let tbs = children(cert.contents).next().filter(|t| t.tag == SEQUENCE)?;
    let mut fields = children(tbs.contents).peekable();
    if fields.peek().is_some_and(|f| f.tag == 0xa0) {
        fields.next();
    }
    Some(fields)
}

/// A DER certificate's serial number: the INTEGER's bytes, without leading zero bytes.
pub(crate) fn serial_number(der: &[u8]) -> Option<&[u8]> {
    let serial = tbs_fields(der)?.next().filter(|f| f.tag == INTEGER)?.contents;
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    Some(&serial[start..])
}

/// A DER certificate's validity, notBefore and notAfter, in seconds since the Unix epoch
/// (`None` when it cannot be parsed).
pub(crate) fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let validity = tbs_fields(der)?.nth(3).filter(|f| f.tag == SEQUENCE)?;
    let mut times = children(validity.contents).map(|t| asn1_time(t.tag, t.contents));
    Some((times.next()??, times.next()??))
}

const INTEGER: u8 = 0x02;

const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// A certificate's `Time` (RFC 5280, 4.1.2.5: UTCTime `YYMMDDHHMMSSZ`, years 1950–2049, or
/// GeneralizedTime `YYYYMMDDHHMMSSZ`) in seconds since the Unix epoch.
fn asn1_time(tag: u8, text: &[u8]) -> Option<i64> {
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0i64, |n, d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')))
    };
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = number(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => (number(&text[..4])?, &text[4..]),
        _ => return None,
    };
    let [month, day, hour, minute, second] = [0, 2, 4, 6, 8].map(|i| number(&rest[i..i + 2]));
    let (month, day, hour, minute, second) = (month?, day?, hour?, minute?, second?);
    let valid = rest[10] == b'Z' && (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60 && second < 61;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start in March, so the leap day ends them.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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
    fn reads_the_validity_and_serial_number() {
        for (date, unix) in [((2030, 1, 2), 1_893_542_400), ((2049, 12, 31), 2_524_521_600), ((2050, 3, 1), 2_529_705_600)] {
            let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
            params.not_after = rcgen::date_time_ymd(date.0, date.1, date.2);
            let cert = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
            assert_eq!(validity(cert.der()).map(|v| v.1), Some(unix), "{date:?}");
        }
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(1975, 6, 1);
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x8a, 0x01, 0x02]));
        let cert = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
        assert_eq!(validity(cert.der()).map(|v| v.0), Some(170_812_800));
        // The INTEGER has a leading zero byte (the serial's high bit is set); it is left out.
        assert_eq!(serial_number(cert.der()), Some(&[0x8a, 0x01, 0x02][..]));
        assert_eq!(asn1_time(UTC_TIME, b"700101000001Z"), Some(1));
        assert_eq!(asn1_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(asn1_time(GENERALIZED_TIME, b"20000229120000Z"), Some(951_825_600));
        for bad in [&b"700101000001"[..], b"7001010000Z", b"701301000000Z", b"70010100000xZ"] {
            assert_eq!(asn1_time(UTC_TIME, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn malformed_input_yields_nothing() {
        for der in [&[][..], &[0x30], &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], &[0x30, 0x03, 0x30, 0x01, 0x02], &[0x04, 0x00]] {
            assert_eq!(leaf_facts(der), LeafFacts::default());
            assert_eq!((validity(der), serial_number(der)), (None, None));
        }
    }
}
