//! A listener's choice among several `tls_certificates`, as Envoy's default certificate
//! selector makes it: by the ClientHello's server name (exact, then `*.` wildcard names of the
//! certificates' DNS SANs, or their subject CN without SANs) and by key type (an ECDSA
//! certificate when the client can verify its curve, else an RSA one); without a match, the
//! first certificate for a server name, or the first compatible one without a server name.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use super::x509::{ec_curve, leaf_facts, EcCurve, GeneralName};

/// One certificate and what selection looks at.
#[derive(Debug)]
struct Candidate {
    key: Arc<CertifiedKey>,
    /// `None`: not ECDSA (RSA), which any client takes.
    curve: Option<EcCurve>,
}

/// Selects the certificate of a handshake.
#[derive(Debug)]
pub struct CertificateSelector {
    certificates: Vec<Candidate>,
    /// Server name pattern (`a.test`, or `.b.test` for `*.b.test`) -> certificates, the first
    /// of each key kind only, RSA before ECDSA (Envoy's map is ordered by key type).
    names: HashMap<String, Vec<usize>>,
}

impl CertificateSelector {
    /// A selector over `keys`, in configuration order (at least one).
    pub fn new(keys: Vec<Arc<CertifiedKey>>) -> Self {
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        let mut certificates = Vec::new();
        for key in keys {
            let (curve, server_names) = identity(&key);
            let i = certificates.len();
            certificates.push(Candidate { key, curve });
            for name in server_names {
                let pattern = name.strip_prefix('*').filter(|rest| rest.starts_with('.')).map_or(name.clone(), str::to_string);
                let entry = names.entry(pattern).or_default();
                // When names repeat, the earlier certificate of a key kind wins.
                if !entry.iter().any(|j| certificates[*j].curve.is_some() == curve.is_some()) {
                    entry.push(i);
                    entry.sort_by_key(|j| certificates[*j].curve.is_some());
                }
            }
        }
        Self { certificates, names }
    }

    /// The index of the certificate for a client asking for `sni` and able to verify ECDSA
    /// signatures on `ecdsa_curves`.
    fn select(&self, sni: Option<&str>, ecdsa_curves: &[EcCurve]) -> usize {
        let mut choice = Choice { ecdsa_curves, selected: None, candidate: None };
        if let Some(sni) = sni.filter(|s| !s.is_empty()) {
            choice.scan(self.names.get(sni).into_iter().flatten().copied(), &self.certificates);
            if choice.selected.is_none() && choice.candidate.is_none() {
                // `.example.com` for `www.example.com`.
                if let Some(pos) = sni.get(1..).and_then(|s| s.find('.')).map(|p| p + 1).filter(|p| *p < sni.len() - 1) {
                    choice.scan(self.names.get(&sni[pos..]).into_iter().flatten().copied(), &self.certificates);
                }
            }
            return choice.selected.or(choice.candidate).unwrap_or(0);
        }
        choice.scan(0..self.certificates.len(), &self.certificates);
        choice.selected.or(choice.candidate).unwrap_or(0)
    }
}

/// A certificate's key curve (`None`: not ECDSA) and the server names it answers for: its DNS
/// SANs, or its subject CN when it has no SAN extension.
fn identity(key: &CertifiedKey) -> (Option<EcCurve>, Vec<String>) {
    let facts = leaf_facts(key.cert.first().map(|c| c.as_ref()).unwrap_or_default());
    let names = if facts.has_san_extension {
        facts.names.iter().filter_map(|n| if let GeneralName::Dns(d) = n { Some(d.as_slice()) } else { None }).collect()
    } else {
        facts.common_name.into_iter().collect::<Vec<_>>()
    };
    (facts.spki.and_then(ec_curve), names.into_iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect())
}

/// Envoy's `selected` lambda: an ECDSA certificate whose curve the client takes wins; an RSA
/// one wins for a client without ECDSA and is the fallback candidate for one with it.
struct Choice<'a> {
    ecdsa_curves: &'a [EcCurve],
    selected: Option<usize>,
    candidate: Option<usize>,
}

impl Choice<'_> {
    fn scan(&mut self, indexes: impl Iterator<Item = usize>, certificates: &[Candidate]) {
        for i in indexes {
            let Some(c) = certificates.get(i) else { continue };
            match c.curve {
                Some(curve) if self.ecdsa_curves.contains(&curve) => {
                    self.selected = Some(i);
                    return;
                }
                None if self.ecdsa_curves.is_empty() => {
                    self.selected = Some(i);
                    return;
                }
                None if self.candidate.is_none() => self.candidate = Some(i),
                _ => {}
            }
        }
    }
}

/// The curves the client can verify ECDSA signatures on, from its signature schemes.
fn ecdsa_curves(schemes: &[SignatureScheme]) -> Vec<EcCurve> {
    schemes
        .iter()
        .filter_map(|s| match s {
            SignatureScheme::ECDSA_NISTP256_SHA256 => Some(EcCurve::P256),
            SignatureScheme::ECDSA_NISTP384_SHA384 => Some(EcCurve::P384),
            SignatureScheme::ECDSA_NISTP521_SHA512 => Some(EcCurve::P521),
            _ => None,
        })
        .collect()
}

impl ResolvesServerCert for CertificateSelector {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let i = self.select(hello.server_name(), &ecdsa_curves(hello.signature_schemes()));
        self.certificates.get(i).map(|c| c.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(names: &[&str], alg: &'static rcgen::SignatureAlgorithm) -> Arc<CertifiedKey> {
        let params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let pair = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = params.self_signed(&pair).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::try_from(pair.serialize_der()).unwrap();
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        Arc::new(CertifiedKey::from_der(vec![cert.der().clone()], der, &provider).unwrap())
    }

    #[test]
    fn selects_by_name_then_key_type_like_envoy() {
        let (p256, p384) = (&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384);
        let s = CertificateSelector::new(vec![key(&["a.test"], p256), key(&["*.b.test"], p256), key(&["a.test"], p384), key(&["c.test"], p384)]);
        let p256_only = [EcCurve::P256];
        assert_eq!(s.select(Some("a.test"), &p256_only), 0);
        assert_eq!(s.select(Some("x.b.test"), &p256_only), 1);
        assert_eq!(s.select(Some("y.x.b.test"), &p256_only), 0, "one label only; no match: the first");
        assert_eq!(s.select(Some("c.test"), &p256_only), 0, "a name whose certificate the client cannot take: the first");
        assert_eq!(s.select(Some("c.test"), &[EcCurve::P384]), 3);
        assert_eq!(s.select(Some("a.test"), &[EcCurve::P384]), 0, "the second a.test certificate is the same key kind");
        assert_eq!(s.select(None, &[EcCurve::P384]), 2, "no name: the first the client takes");
        assert_eq!(s.select(None, &[]), 0, "nothing fits: the first");
    }
}
