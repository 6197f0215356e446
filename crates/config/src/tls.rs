//! `transport_socket` `envoy.transport_sockets.tls` with a `DownstreamTlsContext`.

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::model::{CertificateValidation, DataSource, DownstreamTls, TlsCertificate, TlsParams, TlsVersion, UpstreamTls};
use crate::proto;
use crate::reader::Obj;

mod validation;

/// `@type` of the downstream TLS context.
pub(crate) const DOWNSTREAM_TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

/// `@type` of the upstream TLS context.
pub(crate) const UPSTREAM_TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

/// TLS 1.2 cipher suites Legate (rustls) offers, by their BoringSSL names.
pub const TLS12_CIPHER_SUITES: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

const TLS_PROTOCOLS: &[(&str, i64)] =
    &[("TLS_AUTO", 0), ("TLSv1_0", 1), ("TLSv1_1", 2), ("TLSv1_2", 3), ("TLSv1_3", 4)];

/// Reads a listener filter chain's `transport_socket`.
pub(crate) fn downstream_transport_socket(v: &Value, path: &str) -> Result<DownstreamTls> {
    let mut o = Obj::new(v, path, proto::TRANSPORT_SOCKET)?;
    let name = o.string("name")?;
    let config_path = o.at("typed_config");
    let Some(config) = o.take("typed_config") else {
        return Err(ConfigError::invalid(
            config_path,
            format!("Didn't find a registered implementation for '{name}' with type URL: ''"),
        ));
    };
    let (mut ctx, url) = Obj::any(config, &config_path, proto::DOWNSTREAM_TLS_CONTEXT)?;
    if url != DOWNSTREAM_TLS_TYPE {
        return Err(ConfigError::unsupported_value(config_path, format!("transport socket type {url}")));
    }
    let require_client_certificate = ctx.bool("require_client_certificate")?.unwrap_or(false);
    let common_path = ctx.at("common_tls_context");
    let Some(mut common) = ctx.obj("common_tls_context", proto::COMMON_TLS_CONTEXT)? else {
        return Err(ConfigError::invalid(common_path, "a TLS listener needs common_tls_context.tls_certificates"));
    };
    let certs_path = common.at("tls_certificates");
    let certificates = common.array("tls_certificates")?.into_iter().map(|(c, p)| tls_certificate(c, &p)).collect::<Result<Vec<_>>>()?;
    if certificates.is_empty() {
        return Err(ConfigError::invalid(certs_path, "No certificates configured"));
    }
    let alpn_protocols = common.strings("alpn_protocols")?.into_iter().map(|(s, _)| s).collect();
    let params = match common.obj("tls_params", proto::TLS_PARAMETERS)? {
        Some(p) => tls_params(p)?,
        None => TlsParams::default(),
    };
    let validation = match common.obj("validation_context", proto::CERTIFICATE_VALIDATION_CONTEXT)? {
        Some(vc) => validation::validation_context(vc)?,
        None => CertificateValidation::default(),
    };
    if require_client_certificate && validation.trusted_ca.is_none() && !validation.has_pins() {
        return Err(ConfigError::invalid(
            ctx.at("require_client_certificate"),
            "require_client_certificate needs common_tls_context.validation_context.trusted_ca",
        ));
    }
    common.finish()?;
    ctx.finish()?;
    o.finish()?;
    Ok(DownstreamTls { certificates, alpn_protocols, params, validation, require_client_certificate })
}

/// Reads a cluster's `transport_socket`.
pub(crate) fn upstream_transport_socket(v: &Value, path: &str) -> Result<UpstreamTls> {
    let mut o = Obj::new(v, path, proto::TRANSPORT_SOCKET)?;
    let name = o.string("name")?;
    let config_path = o.at("typed_config");
    let Some(config) = o.take("typed_config") else {
        return Err(ConfigError::invalid(
            config_path,
            format!("Didn't find a registered implementation for '{name}' with type URL: ''"),
        ));
    };
    let (mut ctx, url) = Obj::any(config, &config_path, proto::UPSTREAM_TLS_CONTEXT)?;
    if url != UPSTREAM_TLS_TYPE {
        return Err(ConfigError::unsupported_value(config_path, format!("transport socket type {url}")));
    }
    let sni = ctx.str("sni")?.filter(|s| !s.is_empty());
    let (mut client_certificate, mut alpn_protocols, mut params) = (None, Vec::new(), TlsParams::default());
    let mut validation = CertificateValidation::default();
    if let Some(mut common) = ctx.obj("common_tls_context", proto::COMMON_TLS_CONTEXT)? {
        let certs_path = common.at("tls_certificates");
        let mut certs = common.array("tls_certificates")?;
        if certs.len() > 1 {
            return Err(ConfigError::unsupported_value(crate::reader::index(&certs_path, 1), "a second certificate"));
        }
        if let Some((cert, cert_path)) = certs.pop() {
            client_certificate = Some(tls_certificate(cert, &cert_path)?);
        }
        alpn_protocols = common.strings("alpn_protocols")?.into_iter().map(|(s, _)| s).collect();
        if let Some(p) = common.obj("tls_params", proto::TLS_PARAMETERS)? {
            params = tls_params(p)?;
        }
        if let Some(vc) = common.obj("validation_context", proto::CERTIFICATE_VALIDATION_CONTEXT)? {
            validation = validation::validation_context(vc)?;
        }
        common.finish()?;
    }
    ctx.finish()?;
    o.finish()?;
    Ok(UpstreamTls { sni, client_certificate, validation, alpn_protocols, params })
}

fn tls_certificate(v: &Value, path: &str) -> Result<TlsCertificate> {
    let mut o = Obj::new(v, path, proto::TLS_CERTIFICATE)?;
    let mut source = |name: &'static str| {
        let p = o.at(name);
        match o.take(name) {
            Some(v) => data_source(v, &p),
            None => Err(ConfigError::invalid(p, format!("{name} is required"))),
        }
    };
    let certificate_chain = source("certificate_chain")?;
    let private_key = source("private_key")?;
    o.finish()?;
    Ok(TlsCertificate { certificate_chain, private_key })
}

fn tls_params(mut o: Obj<'_>) -> Result<TlsParams> {
    let mut version = |name: &'static str, default: TlsVersion| -> Result<TlsVersion> {
        let p = o.at(name);
        Ok(match o.enumeration(name, TLS_PROTOCOLS)? {
            None | Some("TLS_AUTO") => default,
            Some("TLSv1_2") => TlsVersion::Tls12,
            Some("TLSv1_3") => TlsVersion::Tls13,
            Some(old) => return Err(ConfigError::unsupported_value(p, format!("{old} (rustls speaks TLS 1.2 and 1.3 only)"))),
        })
    };
    let min_version = version("tls_minimum_protocol_version", TlsVersion::Tls12)?;
    let max_version = version("tls_maximum_protocol_version", TlsVersion::Tls13)?;
    if min_version > max_version {
        return Err(ConfigError::invalid(o.path(), "tls_minimum_protocol_version is above tls_maximum_protocol_version"));
    }
    let mut cipher_suites = Vec::new();
    for (entry, p) in o.strings("cipher_suites")? {
        // BoringSSL's equal-preference groups: [A|B].
        for name in entry.trim_start_matches('[').trim_end_matches(']').split('|') {
            if !TLS12_CIPHER_SUITES.contains(&name) {
                return Err(ConfigError::unsupported_value(
                    p,
                    format!("cipher suite {name} (available: {})", TLS12_CIPHER_SUITES.join(", ")),
                ));
            }
            cipher_suites.push(name.to_string());
        }
    }
    o.finish()?;
    Ok(TlsParams { min_version, max_version, cipher_suites })
}

/// Reads a `DataSource` holding PEM (kept as a file name or bytes; files are read by the proxy).
fn data_source(v: &Value, path: &str) -> Result<DataSource> {
    let mut o = Obj::new(v, path, proto::DATA_SOURCE)?;
    let which = o.oneof(&["filename", "inline_bytes", "inline_string", "environment_variable"])?;
    let source = match which {
        Some("filename") => {
            let file = o.string("filename")?;
            if file.is_empty() {
                return Err(ConfigError::invalid(o.at("filename"), "empty file name"));
            }
            DataSource::File(file.into())
        }
        Some("inline_string") => DataSource::Inline(o.string("inline_string")?.into_bytes()),
        Some("inline_bytes") => {
            let p = o.at("inline_bytes");
            let encoded = o.string("inline_bytes")?;
            DataSource::Inline(crate::action::base64_decode(&encoded).ok_or_else(|| ConfigError::invalid(&p, "invalid base64 data"))?)
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => return Err(ConfigError::invalid(path, "a data source needs filename, inline_string or inline_bytes")),
    };
    o.finish()?;
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn socket(ctx: Value) -> Value {
        let mut ctx = ctx;
        ctx["@type"] = json!(DOWNSTREAM_TLS_TYPE);
        json!({"name": "envoy.transport_sockets.tls", "typed_config": ctx})
    }

    fn certs() -> Value {
        json!({"tls_certificates": [{"certificate_chain": {"filename": "/c.pem"}, "private_key": {"inline_string": "KEY"}}]})
    }

    #[test]
    fn reads_certificates_alpn_and_params() {
        let mut common = certs();
        common["alpn_protocols"] = json!(["h2", "http/1.1"]);
        common["tls_params"] = json!({"tls_minimum_protocol_version": "TLSv1_3", "cipher_suites": ["[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]"]});
        common["validation_context"] = json!({"trusted_ca": {"filename": "/ca.pem"}});
        let t = downstream_transport_socket(&socket(json!({"common_tls_context": common, "require_client_certificate": true})), "ts").unwrap();
        assert_eq!(t.certificates[0].certificate_chain, DataSource::File("/c.pem".into()));
        assert_eq!(t.certificates[0].private_key, DataSource::Inline(b"KEY".to_vec()));
        assert_eq!(t.alpn_protocols, ["h2", "http/1.1"]);
        assert_eq!(t.params.min_version, TlsVersion::Tls13);
        assert_eq!(t.params.cipher_suites.len(), 2);
        assert!(t.require_client_certificate);
        assert_eq!(t.validation.trusted_ca, Some(DataSource::File("/ca.pem".into())));
    }

    #[test]
    fn reads_upstream_contexts() {
        let v = json!({"name": "envoy.transport_sockets.tls", "typed_config": {"@type": UPSTREAM_TLS_TYPE, "sni": "films.internal",
            "common_tls_context": {"validation_context": {"trusted_ca": {"filename": "/ca.pem"}}, "alpn_protocols": ["h2"]}}});
        let t = upstream_transport_socket(&v, "c.transport_socket").unwrap();
        assert_eq!(t.sni.as_deref(), Some("films.internal"));
        assert_eq!(t.validation.trusted_ca, Some(DataSource::File("/ca.pem".into())));
        assert_eq!(t.alpn_protocols, ["h2"]);
        let v = json!({"name": "tls", "typed_config": {"@type": UPSTREAM_TLS_TYPE, "allow_renegotiation": true}});
        assert_eq!(
            upstream_transport_socket(&v, "c.transport_socket").unwrap_err().to_string(),
            "c.transport_socket.typed_config.allow_renegotiation: not supported by legate"
        );
    }

    #[test]
    fn refuses_what_legate_does_not_do() {
        let err = |ctx: Value| downstream_transport_socket(&socket(ctx), "ts").unwrap_err().to_string();
        let mut common = certs();
        common["tls_params"] = json!({"cipher_suites": ["AES128-SHA"]});
        assert!(err(json!({"common_tls_context": common})).contains("ts.typed_config.common_tls_context.tls_params.cipher_suites[0]: cipher suite AES128-SHA"));
        let mut common = certs();
        common["tls_params"] = json!({"tls_minimum_protocol_version": "TLSv1_0"});
        assert!(err(json!({"common_tls_context": common})).contains("TLSv1_0 (rustls speaks TLS 1.2 and 1.3 only) is not supported by legate"));
        let mut common = certs();
        common["validation_context"] = json!({"trusted_ca": {"filename": "/ca"}, "match_subject_alt_names": [{"exact": "a"}]});
        assert!(err(json!({"common_tls_context": common})).ends_with("validation_context.match_subject_alt_names: not supported by legate"));
        assert!(err(json!({"common_tls_context": certs(), "ocsp_staple_policy": "MUST_STAPLE"})).ends_with("ts.typed_config.ocsp_staple_policy: not supported by legate"));
        assert!(err(json!({"common_tls_context": certs(), "require_client_certificate": true})).contains("needs common_tls_context.validation_context.trusted_ca"));
        assert!(err(json!({"common_tls_context": {}})).contains("No certificates configured"));
        let mut two = certs();
        two["tls_certificates"] = json!([certs()["tls_certificates"][0], {"certificate_chain": {"filename": "/ec.pem"}, "private_key": {"filename": "/ec.key"}}]);
        assert_eq!(downstream_transport_socket(&socket(json!({"common_tls_context": two})), "ts").unwrap().certificates.len(), 2);
    }
}
