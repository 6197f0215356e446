//! Cluster-side extensions: DNS resolver configuration and upstream HTTP protocol options.

use std::net::SocketAddr;

use serde_json::Value;

use crate::address::ip_socket_address;
use crate::error::{ConfigError, Result};
use crate::model::{Http2Options, UpstreamHttpOptions, UpstreamProtocol};
use crate::proto;
use crate::reader::{join, required, Obj};

/// `@type` of the c-ares resolver configuration.
pub(crate) const CARES_TYPE: &str =
    "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig";
/// Key and `@type` of the upstream HTTP protocol options.
pub(crate) const HTTP_OPTIONS_KEY: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const HTTP_OPTIONS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Reads the resolver addresses of a list of `Address`es.
fn resolvers(o: &mut Obj<'_>) -> Result<Vec<SocketAddr>> {
    o.array("resolvers")?
        .into_iter()
        .map(|(a, p)| ip_socket_address(a, &p))
        .collect()
}

/// Reads `dns_resolver_options`: only the defaults are accepted.
fn resolver_options(o: &mut Obj<'_>) -> Result<()> {
    if let Some(opts) = o.obj("dns_resolver_options", proto::DNS_RESOLVER_OPTIONS)? {
        opts.finish()?;
    }
    Ok(())
}

/// Reads a `typed_dns_resolver_config` (c-ares only); returns the configured resolvers.
pub(crate) fn typed_dns_resolver_config(v: &Value, path: &str) -> Result<Vec<SocketAddr>> {
    let mut o = Obj::new(v, path, proto::TYPED_EXTENSION_CONFIG)?;
    o.string("name")?;
    let config_path = o.at("typed_config");
    let config = o
        .take("typed_config")
        .ok_or_else(|| required(&config_path))?;
    let (mut c, url) = Obj::any(config, &config_path, proto::CARES_DNS_RESOLVER_CONFIG)?;
    if url != CARES_TYPE {
        return Err(ConfigError::unsupported_value(
            config_path,
            format!("DNS resolver {url}"),
        ));
    }
    let addrs = resolvers(&mut c)?;
    resolver_options(&mut c)?;
    c.finish()?;
    o.finish()?;
    Ok(addrs)
}

/// Reads the deprecated `dns_resolution_config`.
pub(crate) fn dns_resolution_config(v: &Value, path: &str) -> Result<Vec<SocketAddr>> {
    let mut o = Obj::new(v, path, proto::DNS_RESOLUTION_CONFIG)?;
    let addrs = resolvers(&mut o)?;
    resolver_options(&mut o)?;
    o.finish()?;
    Ok(addrs)
}

/// Reads a core `HttpProtocolOptions` for upstream use into `out`.
pub(crate) fn common_http_protocol_options(
    v: &Value,
    path: &str,
    out: &mut UpstreamHttpOptions,
) -> Result<()> {
    let mut c = Obj::new(v, path, proto::CORE_HTTP_PROTOCOL_OPTIONS)?;
    out.idle_timeout = c.timeout("idle_timeout", out.idle_timeout)?;
    max_requests_per_connection(&mut c, out)?;
    c.finish()
}

/// `max_requests_per_connection` (0 = unlimited): the pool retires a connection after that many
/// requests.
pub(crate) fn max_requests_per_connection(o: &mut Obj<'_>, out: &mut UpstreamHttpOptions) -> Result<()> {
    if let Some(n) = o.u32("max_requests_per_connection")? {
        out.max_requests_per_connection = (n > 0).then_some(n);
    }
    Ok(())
}

/// Reads an `Http1ProtocolOptions`: only defaults are accepted (`{}` = HTTP/1.1).
pub(crate) fn http1_protocol_options(v: &Value, path: &str) -> Result<()> {
    Obj::new(v, path, proto::HTTP1_PROTOCOL_OPTIONS)?.finish()
}

/// Reads an `Http2ProtocolOptions`: stream limits and window sizes (others must stay default).
pub(crate) fn http2_protocol_options(v: &Value, path: &str) -> Result<Http2Options> {
    let mut o = Obj::new(v, path, proto::HTTP2_PROTOCOL_OPTIONS)?;
    let defaults = Http2Options::default();
    let mut bounded = |name: &'static str, min: u32, max: u32, default: u32| -> Result<u32> {
        let p = o.at(name);
        match o.u32(name)? {
            None => Ok(default),
            Some(n) if (min..=max).contains(&n) => Ok(n),
            Some(n) => Err(ConfigError::invalid(p, format!("value {n} must be in [{min}, {max}]"))),
        }
    };
    let max_concurrent_streams = bounded("max_concurrent_streams", 1, 2_147_483_647, defaults.max_concurrent_streams)?;
    let initial_stream_window_size =
        bounded("initial_stream_window_size", 65_535, 2_147_483_647, defaults.initial_stream_window_size)?;
    let initial_connection_window_size =
        bounded("initial_connection_window_size", 65_535, 2_147_483_647, defaults.initial_connection_window_size)?;
    o.finish()?;
    Ok(Http2Options { max_concurrent_streams, initial_stream_window_size, initial_connection_window_size })
}

/// Reads an `AutoHttpConfig` (the protocol is chosen by ALPN); returns its HTTP/2 options.
/// HTTP/3 and the alternate protocols cache are refused.
fn auto_config(mut a: Obj<'_>) -> Result<Http2Options> {
    let h1_path = a.at("http_protocol_options");
    if let Some(h1) = a.take("http_protocol_options") {
        http1_protocol_options(h1, &h1_path)?;
    }
    let h2_path = a.at("http2_protocol_options");
    let http2 = match a.take("http2_protocol_options") {
        Some(h2) => http2_protocol_options(h2, &h2_path)?,
        None => Http2Options::default(),
    };
    for refused in ["http3_protocol_options", "alternate_protocols_cache_options"] {
        if a.is_set(refused) {
            return Err(ConfigError::unsupported(a.at(refused)));
        }
    }
    a.finish()?;
    Ok(http2)
}

/// Reads `typed_extension_protocol_options`.
pub(crate) fn typed_extension_protocol_options(
    v: &Value,
    path: &str,
) -> Result<UpstreamHttpOptions> {
    let mut out = UpstreamHttpOptions::default();
    let Value::Object(map) = v else {
        return Err(ConfigError::invalid(
            path,
            format!("expected an object, got {}", crate::reader::describe(v)),
        ));
    };
    for (key, value) in map {
        let key_path = join(path, key);
        if key != HTTP_OPTIONS_KEY {
            return Err(ConfigError::unsupported_value(
                key_path,
                format!("protocol options '{key}'"),
            ));
        }
        let (mut o, url) = Obj::any(value, &key_path, proto::UPSTREAM_HTTP_PROTOCOL_OPTIONS)?;
        if url != HTTP_OPTIONS_TYPE {
            return Err(ConfigError::invalid(
                key_path,
                format!(
                    "protocol options '{key}' must have @type {HTTP_OPTIONS_TYPE}, not '{url}'"
                ),
            ));
        }
        let common_path = o.at("common_http_protocol_options");
        if let Some(c) = o.take("common_http_protocol_options") {
            common_http_protocol_options(c, &common_path, &mut out)?;
        }
        if let Some(mut u) = o.obj("upstream_http_protocol_options", proto::CORE_UPSTREAM_HTTP_PROTOCOL_OPTIONS)? {
            out.auto_sni = u.bool("auto_sni")?.unwrap_or(false);
            out.auto_san_validation = u.bool("auto_san_validation")?.unwrap_or(false);
            if u.str("override_auto_sni_header")?.is_some_and(|h| !h.is_empty()) {
                return Err(ConfigError::unsupported(u.at("override_auto_sni_header")));
            }
            u.finish()?;
        }
        match o.oneof(&["explicit_http_config", "use_downstream_protocol_config", "auto_config"])? {
            Some("explicit_http_config") => {
                let p = o.at("explicit_http_config");
                let mut e = o.obj("explicit_http_config", proto::EXPLICIT_HTTP_CONFIG)?.ok_or_else(|| required(&p))?;
                match e.oneof(&["http_protocol_options", "http2_protocol_options", "http3_protocol_options"])? {
                    Some("http_protocol_options") => {
                        let p = e.at("http_protocol_options");
                        http1_protocol_options(e.take("http_protocol_options").unwrap_or(&Value::Null), &p)?;
                    }
                    Some("http2_protocol_options") => {
                        let p = e.at("http2_protocol_options");
                        out.http2 = http2_protocol_options(e.take("http2_protocol_options").unwrap_or(&Value::Null), &p)?;
                        out.protocol = UpstreamProtocol::Http2;
                    }
                    Some(other) => return Err(ConfigError::unsupported(e.at(other))),
                    None => {
                        return Err(ConfigError::invalid(
                            e.path().to_string(),
                            "one of http_protocol_options, http2_protocol_options, http3_protocol_options is required",
                        ))
                    }
                }
                e.finish()?;
            }
            Some("use_downstream_protocol_config") => {
                let p = o.at("use_downstream_protocol_config");
                let mut d = o.obj("use_downstream_protocol_config", proto::EXPLICIT_HTTP_CONFIG)?.ok_or_else(|| required(&p))?;
                let h1_path = d.at("http_protocol_options");
                if let Some(h1) = d.take("http_protocol_options") {
                    http1_protocol_options(h1, &h1_path)?;
                }
                let h2_path = d.at("http2_protocol_options");
                if let Some(h2) = d.take("http2_protocol_options") {
                    out.http2 = http2_protocol_options(h2, &h2_path)?;
                }
                d.finish()?;
                out.protocol = UpstreamProtocol::UseDownstream;
            }
            Some("auto_config") => {
                let p = o.at("auto_config");
                let a = o.obj("auto_config", proto::AUTO_HTTP_CONFIG)?.ok_or_else(|| required(&p))?;
                out.http2 = auto_config(a)?;
                out.protocol = UpstreamProtocol::Auto;
            }
            Some(other) => return Err(ConfigError::unsupported(o.at(other))),
            None => {
                return Err(ConfigError::invalid(
                    o.path().to_string(),
                    "one of explicit_http_config, use_downstream_protocol_config, auto_config is required",
                ))
            }
        }
        o.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    const DEFAULT_IDLE: Duration = Duration::from_secs(3600);

    #[test]
    fn cares_resolvers() {
        let v = json!({"name": "envoy.network.dns_resolver.cares", "typed_config": {"@type": CARES_TYPE,
            "resolvers": [{"socket_address": {"address": "8.8.8.8", "port_value": 53}}],
            "dns_resolver_options": {"use_tcp_for_dns_lookups": false}, "use_resolvers_as_fallback": false}});
        assert_eq!(
            typed_dns_resolver_config(&v, "d").unwrap(),
            vec!["8.8.8.8:53".parse().unwrap()]
        );
        let v = json!({"name": "x", "typed_config": {"@type": CARES_TYPE,
            "dns_resolver_options": {"use_tcp_for_dns_lookups": true}}});
        assert_eq!(
            typed_dns_resolver_config(&v, "d").unwrap_err().to_string(),
            "d.typed_config.dns_resolver_options.use_tcp_for_dns_lookups: not supported by legate"
        );
        let v = json!({"resolvers": [{"socket_address": {"address": "::1", "port_value": 5353}}]});
        assert_eq!(
            dns_resolution_config(&v, "d").unwrap(),
            vec!["[::1]:5353".parse().unwrap()]
        );
    }

    #[test]
    fn http_protocol_options() {
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE,
            "explicit_http_config": {"http_protocol_options": {}},
            "common_http_protocol_options": {"idle_timeout": "30s", "max_requests_per_connection": 0}}});
        let o = typed_extension_protocol_options(&v, "t").unwrap();
        assert_eq!(o.idle_timeout, Some(Duration::from_secs(30)));
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "explicit_http_config": {"http_protocol_options": {}}}});
        let o = typed_extension_protocol_options(&v, "t").unwrap();
        assert_eq!(o.idle_timeout, Some(DEFAULT_IDLE));
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "explicit_http_config": {"http2_protocol_options": {}}}});
        let o = typed_extension_protocol_options(&v, "t").unwrap();
        assert_eq!(o.protocol, UpstreamProtocol::Http2);
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "use_downstream_protocol_config": {
            "http2_protocol_options": {"max_concurrent_streams": 100, "initial_stream_window_size": 65536}}}});
        let o = typed_extension_protocol_options(&v, "t").unwrap();
        assert_eq!(o.protocol, UpstreamProtocol::UseDownstream);
        assert_eq!((o.http2.max_concurrent_streams, o.http2.initial_stream_window_size), (100, 65536));
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "explicit_http_config": {
            "http2_protocol_options": {"initial_stream_window_size": 10}}}});
        assert_eq!(
            typed_extension_protocol_options(&v, "t").unwrap_err().to_string(),
            format!("t.{HTTP_OPTIONS_KEY}.explicit_http_config.http2_protocol_options.initial_stream_window_size: value 10 must be in [65535, 2147483647]")
        );
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "auto_config": {}}});
        assert_eq!(typed_extension_protocol_options(&v, "t").unwrap().protocol, UpstreamProtocol::Auto);
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "auto_config": {
            "http_protocol_options": {}, "http2_protocol_options": {"max_concurrent_streams": 10}}}});
        let o = typed_extension_protocol_options(&v, "t").unwrap();
        assert_eq!((o.protocol, o.http2.max_concurrent_streams), (UpstreamProtocol::Auto, 10));
        for refused in ["http3_protocol_options", "alternate_protocols_cache_options"] {
            let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "auto_config": {refused: {}}}});
            assert_eq!(
                typed_extension_protocol_options(&v, "t").unwrap_err().to_string(),
                format!("t.{HTTP_OPTIONS_KEY}.auto_config.{refused}: not supported by legate")
            );
        }
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "explicit_http_config": {"http_protocol_options": {}},
            "upstream_http_protocol_options": {"auto_sni": true, "auto_san_validation": true}}});
        let o = typed_extension_protocol_options(&v, "t").unwrap();
        assert!(o.auto_sni && o.auto_san_validation);
        let v = json!({HTTP_OPTIONS_KEY: {"@type": HTTP_OPTIONS_TYPE, "explicit_http_config": {"http_protocol_options": {}},
            "upstream_http_protocol_options": {"auto_sni": true, "override_auto_sni_header": "x-sni"}}});
        assert_eq!(
            typed_extension_protocol_options(&v, "t").unwrap_err().to_string(),
            format!("t.{HTTP_OPTIONS_KEY}.upstream_http_protocol_options.override_auto_sni_header: not supported by legate")
        );
        let v = json!({"envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions": {}});
        assert!(typed_extension_protocol_options(&v, "t")
            .unwrap_err()
            .to_string()
            .contains("is not supported by legate"));
    }
}
