//! `envoy.filters.network.http_connection_manager` and its HTTP filter chain.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::address::cidr_range;
use crate::error::{ConfigError, Result};
use crate::known_types::is_known_filter_type;
use crate::model::{
    CodecType, HttpConnectionManager, HttpFilter, InternalAddressConfig, ServerHeaderTransformation,
};
use crate::proto;
use crate::reader::{non_empty, Obj};
use crate::route::route_configuration;

/// `@type` of the HTTP connection manager.
pub(crate) const HCM_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
/// `@type` of the router filter.
pub(crate) const ROUTER_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
/// Name Envoy gives the router filter.
const ROUTER_NAME: &str = "envoy.filters.http.router";

/// Envoy's defaults.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const DEFAULT_MAX_HEADERS_COUNT: u32 = 100;
const DEFAULT_MAX_REQUEST_HEADERS_KB: u32 = 60;
/// Default `server_name`: Envoy's, so responses stay Envoy-compatible (the binary may override).
pub const DEFAULT_SERVER_NAME: &str = "envoy";

/// Reads the HCM's `typed_config` body (its `@type` already checked).
pub(crate) fn http_connection_manager(
    mut o: Obj<'_>,
    clusters: &HashSet<String>,
) -> Result<HttpConnectionManager> {
    let codec_type = match o.enumeration(
        "codec_type",
        &[("AUTO", 0), ("HTTP1", 1), ("HTTP2", 2), ("HTTP3", 3)],
    )? {
        Some("HTTP1") => CodecType::Http1,
        Some("HTTP2") => CodecType::Http2,
        Some("HTTP3") => {
            return Err(ConfigError::unsupported_value(
                o.at("codec_type"),
                "codec_type HTTP3",
            ))
        }
        _ => CodecType::Auto,
    };
    let stat_prefix_path = o.at("stat_prefix");
    let stat_prefix = o.string("stat_prefix")?;
    non_empty(&stat_prefix, &stat_prefix_path)?;

    let route_config = match o.oneof(&["rds", "route_config", "scoped_routes"])? {
        Some("route_config") => {
            let p = o.at("route_config");
            route_configuration(o.take("route_config").unwrap_or(&Value::Null), &p, clusters)?
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => {
            return Err(ConfigError::invalid(
                o.path(),
                "one of rds, route_config, scoped_routes is required",
            ))
        }
    };

    let http_filters = http_filters(&mut o)?;
    let use_remote_address = o.bool("use_remote_address")?.unwrap_or(false);
    let xff_num_trusted_hops = o.u32("xff_num_trusted_hops")?.unwrap_or(0);

    let mut internal_address_config = InternalAddressConfig::default();
    if let Some(mut i) = o.obj("internal_address_config", proto::INTERNAL_ADDRESS_CONFIG)? {
        internal_address_config.unix_sockets = i.bool("unix_sockets")?.unwrap_or(false);
        for (c, p) in i.array("cidr_ranges")? {
            internal_address_config.cidr_ranges.push(cidr_range(c, &p)?);
        }
        i.finish()?;
    }

    let mut idle_timeout = Some(DEFAULT_IDLE_TIMEOUT);
    let mut max_headers_count = DEFAULT_MAX_HEADERS_COUNT;
    let mut max_stream_duration = None;
    if let Some(mut c) = o.obj(
        "common_http_protocol_options",
        proto::CORE_HTTP_PROTOCOL_OPTIONS,
    )? {
        idle_timeout = c.timeout("idle_timeout", idle_timeout)?;
        max_stream_duration = c.timeout("max_stream_duration", None)?;
        let count_path = c.at("max_headers_count");
        if let Some(count) = c.u32("max_headers_count")? {
            if count < 1 {
                return Err(ConfigError::invalid(
                    count_path,
                    "value must be greater than or equal to 1",
                ));
            }
            max_headers_count = count;
        }
        c.finish()?;
    }

    let kb_path = o.at("max_request_headers_kb");
    let max_request_headers_kb = o
        .u32("max_request_headers_kb")?
        .unwrap_or(DEFAULT_MAX_REQUEST_HEADERS_KB);
    if max_request_headers_kb == 0 || max_request_headers_kb > 8192 {
        return Err(ConfigError::invalid(
            kb_path,
            "value must be inside range (0, 8192]",
        ));
    }
    let mut upgrade_types = Vec::new();
    for (u, p) in o.array("upgrade_configs")? {
        let mut u = Obj::new(u, p, proto::UPGRADE_CONFIG)?;
        let type_path = u.at("upgrade_type");
        let kind = u.string("upgrade_type")?.to_ascii_lowercase();
        non_empty(&kind, &type_path)?;
        if kind == "connect" {
            return Err(ConfigError::unsupported_value(type_path, "upgrade_type CONNECT"));
        }
        if u.bool("enabled")?.unwrap_or(true) {
            upgrade_types.push(kind);
        }
        u.finish()?;
    }
    let http2_path = o.at("http2_protocol_options");
    let http2 = match o.take("http2_protocol_options") {
        Some(h2) => crate::upstream::http2_protocol_options(h2, &http2_path)?,
        None => crate::model::Http2Options::default(),
    };
    let request_timeout = o.timeout("request_timeout", None)?;
    let stream_idle_timeout =
        o.timeout("stream_idle_timeout", Some(DEFAULT_STREAM_IDLE_TIMEOUT))?;
    let server_name = o
        .str("server_name")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER_NAME.into());
    let transformations = [
        ("OVERWRITE", 0),
        ("APPEND_IF_ABSENT", 1),
        ("PASS_THROUGH", 2),
    ];
    let server_header_transformation =
        match o.enumeration("server_header_transformation", &transformations)? {
            Some("APPEND_IF_ABSENT") => ServerHeaderTransformation::AppendIfAbsent,
            Some("PASS_THROUGH") => ServerHeaderTransformation::PassThrough,
            _ => ServerHeaderTransformation::Overwrite,
        };
    let generate_request_id = o.bool("generate_request_id")?.unwrap_or(true);
    let preserve_external_request_id = o.bool("preserve_external_request_id")?.unwrap_or(false);
    let access_log = crate::access_log_config::access_logs(&mut o)?;
    o.finish()?;

    Ok(HttpConnectionManager {
        stat_prefix,
        codec_type,
        route_config,
        use_remote_address,
        xff_num_trusted_hops,
        internal_address_config,
        idle_timeout,
        max_headers_count,
        max_request_headers_kb,
        http2,
        upgrade_types,
        stream_idle_timeout,
        request_timeout,
        max_stream_duration,
        server_name,
        server_header_transformation,
        generate_request_id,
        preserve_external_request_id,
        http_filters,
        access_log,
    })
}

/// The error for a filter `@type` other than the supported one: Envoy's "could not find @type"
/// when Envoy does not know it either, "not supported by legate" otherwise.
pub(crate) fn unknown_or_unsupported(
    path: String,
    kind: &str,
    name: &str,
    url: &str,
) -> ConfigError {
    // TypedStruct wraps a config by its type URL: Envoy knows it, Legate does not unwrap it.
    let typed_struct =
        url.ends_with("/xds.type.v3.TypedStruct") || url.ends_with("/udpa.type.v1.TypedStruct");
    if typed_struct || is_known_filter_type(url) {
        ConfigError::unsupported_value(path, format!("{kind} filter '{name}' ({url})"))
    } else {
        ConfigError::invalid(path, format!("could not find @type '{url}'"))
    }
}

/// Reads `http_filters`: only the router, last.
fn http_filters(o: &mut Obj<'_>) -> Result<Vec<HttpFilter>> {
    let path = o.at("http_filters");
    let entries = o.array("http_filters")?;
    if entries.is_empty() {
        // Envoy accepts it, but then no filter answers and every request hangs until the stream
        // idle timeout.
        return Err(ConfigError::unsupported_value(
            path,
            "an HTTP filter chain without the router",
        ));
    }
    let count = entries.len();
    let mut filters = Vec::with_capacity(count);
    for (i, (v, p)) in entries.into_iter().enumerate() {
        let mut f = Obj::new(v, &p, proto::HTTP_FILTER)?;
        let name_path = f.at("name");
        let name = f.string("name")?;
        non_empty(&name, &name_path)?;
        if f.is_set("config_discovery") {
            return Err(ConfigError::unsupported(f.at("config_discovery")));
        }
        if f.bool("disabled")?.unwrap_or(false) {
            return Err(ConfigError::unsupported_value(
                f.at("disabled"),
                "disabled: true",
            ));
        }
        f.bool("is_optional")?; // meaningful only for filters Legate would not know
        let config_path = f.at("typed_config");
        let Some(config) = f.take("typed_config") else {
            return Err(ConfigError::invalid(
                config_path,
                format!("Didn't find a registered implementation for '{name}' with type URL: ''"),
            ));
        };
        let (router, url) = Obj::any(config, &config_path, proto::ROUTER)?;
        if url != ROUTER_TYPE {
            return Err(unknown_or_unsupported(config_path, "HTTP", &name, url));
        }
        router.finish()?;
        f.finish()?;
        if i + 1 != count {
            return Err(ConfigError::invalid(
                p,
                format!(
                    "Error: terminal filter named {name} of type {ROUTER_NAME} must be the last filter in a http filter chain."
                ),
            ));
        }
        filters.push(HttpFilter::Router);
    }
    Ok(filters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hcm(mut extra: Value) -> Result<HttpConnectionManager> {
        let base = json!({
            "@type": HCM_TYPE,
            "stat_prefix": "ingress",
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}],
            "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]}]},
        });
        let mut v = base;
        if let (Value::Object(b), Value::Object(e)) = (&mut v, extra.take()) {
            b.extend(e);
        }
        let clusters: HashSet<String> = ["c".to_string()].into();
        let (o, _) = Obj::any(&v, "f", proto::HCM)?;
        http_connection_manager(o, &clusters)
    }

    #[test]
    fn defaults() {
        let h = hcm(json!({})).unwrap();
        assert_eq!(h.codec_type, CodecType::Auto);
        assert_eq!(h.idle_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(h.max_headers_count, 100);
        assert_eq!(h.max_request_headers_kb, 60);
        assert_eq!(h.stream_idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!((h.request_timeout, h.max_stream_duration), (None, None));
        assert_eq!(h.server_name, "envoy");
        assert_eq!(
            h.server_header_transformation,
            ServerHeaderTransformation::Overwrite
        );
        assert!(h.generate_request_id && !h.preserve_external_request_id && !h.use_remote_address);
        assert_eq!(h.xff_num_trusted_hops, 0);
        assert_eq!(h.http_filters, vec![HttpFilter::Router]);
        assert_eq!(h.internal_address_config, InternalAddressConfig::default());
    }

    #[test]
    fn every_field() {
        let h = hcm(json!({
            "codec_type": "HTTP1", "use_remote_address": true, "xff_num_trusted_hops": 2,
            "internal_address_config": {"unix_sockets": true, "cidr_ranges": [{"address_prefix": "10.0.0.0", "prefix_len": 8}]},
            "common_http_protocol_options": {"idle_timeout": "0s", "max_headers_count": 50, "max_stream_duration": "2s"},
            "max_request_headers_kb": 96, "request_timeout": "1.5s", "stream_idle_timeout": "0s",
            "server_name": "legate", "server_header_transformation": "PASS_THROUGH",
            "generate_request_id": false, "preserve_external_request_id": true,
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}],
        }))
        .unwrap();
        assert_eq!(h.codec_type, CodecType::Http1);
        assert!(h.use_remote_address);
        assert_eq!(h.xff_num_trusted_hops, 2);
        assert!(h.internal_address_config.unix_sockets);
        assert_eq!(h.internal_address_config.cidr_ranges.len(), 1);
        assert_eq!(h.idle_timeout, None);
        assert_eq!(h.max_headers_count, 50);
        assert_eq!(h.max_request_headers_kb, 96);
        assert_eq!(h.stream_idle_timeout, None);
        assert_eq!(h.request_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(h.max_stream_duration, Some(Duration::from_secs(2)));
        assert_eq!(h.server_name, "legate");
        assert_eq!(
            h.server_header_transformation,
            ServerHeaderTransformation::PassThrough
        );
        assert!(!h.generate_request_id && h.preserve_external_request_id);
    }

    #[test]
    fn errors() {
        let e = |v: Value| hcm(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"max_request_headers_kb": 9000})),
            "f.max_request_headers_kb: value must be inside range (0, 8192]"
        );
        assert_eq!(
            e(json!({"stat_prefix": ""})),
            "f.stat_prefix: value length must be at least 1 characters"
        );
        assert_eq!(
            e(json!({"access_log": [{"name": "x"}]})),
            "f.access_log[0].typed_config: Didn't find a registered implementation for 'x' with type URL: ''"
        );
        assert_eq!(
            e(json!({"rds": {}, "route_config": null})),
            "f.rds: not supported by legate"
        );
        assert_eq!(
            e(json!({"codec_type": "HTTP3"})),
            "f.codec_type: codec_type HTTP3 is not supported by legate"
        );
        assert_eq!(e(json!({"wat": 1})), "f.wat: unknown field");
        assert_eq!(
            e(json!({"http_filters": []})),
            "f.http_filters: an HTTP filter chain without the router is not supported by legate"
        );
        let router =
            json!({"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}});
        let cors = json!({"name": "envoy.filters.http.cors",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}});
        assert_eq!(
            e(json!({"http_filters": [cors, router]})),
            "f.http_filters[0].typed_config: HTTP filter 'envoy.filters.http.cors' \
             (type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors) is not supported by legate"
        );
        let bogus = json!({"name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routerx"}});
        assert_eq!(
            e(json!({"http_filters": [bogus]})),
            "f.http_filters[0].typed_config: could not find @type \
             'type.googleapis.com/envoy.extensions.filters.http.router.v3.Routerx'"
        );
        assert_eq!(
            e(json!({"http_filters": [router, router]})),
            "f.http_filters[0]: Error: terminal filter named envoy.filters.http.router of type \
             envoy.filters.http.router must be the last filter in a http filter chain."
        );
        assert_eq!(
            e(json!({"http_filters": [{"name": "envoy.filters.http.router"}]})),
            "f.http_filters[0].typed_config: Didn't find a registered implementation for \
             'envoy.filters.http.router' with type URL: ''"
        );
        assert_eq!(
            e(
                json!({"http_filters": [{"name": "r", "typed_config": {"@type": ROUTER_TYPE, "dynamic_stats": false}}]})
            ),
            "f.http_filters[0].typed_config.dynamic_stats: not supported by legate"
        );
        assert_eq!(
            e(json!({"common_http_protocol_options": {"max_headers_count": 0}})),
            "f.common_http_protocol_options.max_headers_count: value must be greater than or equal to 1"
        );
    }
}
