//! `Cluster`: discovery type, load balancing, endpoints, DNS and upstream HTTP options.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::endpoint::load_assignment;
use crate::error::{ConfigError, Result};
use crate::listener::DEFAULT_BUFFER_LIMIT;
use crate::model::{
    CircuitBreakerThresholds, Cluster, DiscoveryType, DnsLookupFamily, HealthCheck, HealthChecker, LbPolicy, RetryBudget,
    UpstreamHttpOptions, UpstreamProtocol,
};
use crate::proto;
use crate::reader::{non_empty, Obj};
use crate::upstream;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_DNS_REFRESH_RATE: Duration = Duration::from_secs(5);
const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
const MAX_MAGLEV_TABLE_SIZE: u64 = 5_000_011;

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// Reads a `Cluster`. `default_resolvers` come from the bootstrap's DNS resolver configuration.
pub(crate) fn cluster(v: &Value, path: &str, default_resolvers: &[SocketAddr]) -> Result<Cluster> {
    let mut o = Obj::new(v, path, proto::CLUSTER)?;
    let name_path = o.at("name");
    let name = o.string("name")?;
    non_empty(&name, &name_path)?;
    let alt_stat_name = o.str("alt_stat_name")?.filter(|s| !s.is_empty());

    if o.is_set("cluster_type") {
        return Err(ConfigError::unsupported(o.at("cluster_type")));
    }
    let types = [
        ("STATIC", 0),
        ("STRICT_DNS", 1),
        ("LOGICAL_DNS", 2),
        ("EDS", 3),
        ("ORIGINAL_DST", 4),
    ];
    let discovery = match o.enumeration("type", &types)?.unwrap_or("STATIC") {
        "STATIC" => DiscoveryType::Static,
        "STRICT_DNS" => DiscoveryType::StrictDns,
        "LOGICAL_DNS" => DiscoveryType::LogicalDns,
        other => {
            return Err(ConfigError::unsupported_value(
                o.at("type"),
                format!("type {other}"),
            ))
        }
    };

    let timeout_path = o.at("connect_timeout");
    let connect_timeout = o
        .duration("connect_timeout")?
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    if connect_timeout.is_zero() {
        return Err(ConfigError::invalid(
            timeout_path,
            "value must be greater than 0s",
        ));
    }

    let lb_policy = lb_policy(&mut o)?;
    let la_path = o.at("load_assignment");
    let la = o.take("load_assignment");
    let endpoints = load_assignment(la, if la.is_some() { &la_path } else { path }, discovery)?;

    let rate_path = o.at("dns_refresh_rate");
    let dns_refresh_rate = o
        .duration("dns_refresh_rate")?
        .unwrap_or(DEFAULT_DNS_REFRESH_RATE);
    if dns_refresh_rate <= Duration::from_millis(1) {
        return Err(ConfigError::invalid(
            rate_path,
            "value must be greater than 1ms",
        ));
    }
    let respect_dns_ttl = o.bool("respect_dns_ttl")?.unwrap_or(false);
    let families = [
        ("AUTO", 0),
        ("V4_ONLY", 1),
        ("V6_ONLY", 2),
        ("V4_PREFERRED", 3),
        ("ALL", 4),
    ];
    let dns_lookup_family = match o.enumeration("dns_lookup_family", &families)? {
        Some("V4_ONLY") => DnsLookupFamily::V4Only,
        Some("V6_ONLY") => DnsLookupFamily::V6Only,
        Some("V4_PREFERRED") => DnsLookupFamily::V4Preferred,
        Some("ALL") => DnsLookupFamily::All,
        _ => DnsLookupFamily::Auto,
    };
    let dns_resolvers = dns_resolvers(&mut o)?.unwrap_or_else(|| default_resolvers.to_vec());

    let mut healthy_panic_threshold = 50.0;
    if let Some(mut c) = o.obj("common_lb_config", proto::COMMON_LB_CONFIG)? {
        if let Some(value) = percent(&mut c, "healthy_panic_threshold")? {
            healthy_panic_threshold = value;
        }
        c.finish()?;
    }
    let hc_path = o.at("health_checks");
    let health_check = crate::health::health_checks(o.take("health_checks"), &hc_path)?;
    let od_path = o.at("outlier_detection");
    let outlier_detection = o
        .take("outlier_detection")
        .map(|v| crate::outlier::outlier_detection(v, &od_path))
        .transpose()?;
    let per_connection_buffer_limit_bytes = o
        .u32("per_connection_buffer_limit_bytes")?
        .unwrap_or(DEFAULT_BUFFER_LIMIT);
    let (circuit_breakers, circuit_breakers_high) = match o.obj("circuit_breakers", proto::CIRCUIT_BREAKERS)? {
        Some(cb) => circuit_breakers(cb)?,
        None => Default::default(),
    };
    let http = http_options(&mut o)?;
    let tls_path = o.at("transport_socket");
    let tls = o
        .take("transport_socket")
        .map(|t| crate::tls::upstream_transport_socket(t, &tls_path))
        .transpose()?;
    if http.protocol == UpstreamProtocol::Auto && tls.is_none() {
        return Err(ConfigError::invalid(
            o.at("typed_extension_protocol_options"),
            format!("ALPN configured for cluster {name} which has a non-ALPN transport socket"),
        ));
    }
    if let Some(HealthCheck { checker: HealthChecker::Grpc(_), .. }) = &health_check {
        let grpc_path = format!("{}.grpc_health_check", crate::reader::index(&hc_path, 0));
        match http.protocol {
            UpstreamProtocol::Http2 => {}
            UpstreamProtocol::UseDownstream => {
                return Err(ConfigError::unsupported_value(grpc_path, "gRPC health checking of a use_downstream_protocol_config cluster"))
            }
            UpstreamProtocol::Auto => {
                return Err(ConfigError::unsupported_value(grpc_path, "gRPC health checking of an auto_config cluster"))
            }
            UpstreamProtocol::Http1 => {
                return Err(ConfigError::invalid(grpc_path, format!("{name} cluster must support HTTP/2 for gRPC healthchecking")))
            }
        }
    }
    o.finish()?;

    Ok(Cluster {
        name,
        alt_stat_name,
        discovery,
        connect_timeout,
        lb_policy,
        endpoints,
        dns_refresh_rate,
        respect_dns_ttl,
        dns_lookup_family,
        dns_resolvers,
        healthy_panic_threshold,
        health_check,
        outlier_detection,
        per_connection_buffer_limit_bytes,
        http,
        tls,
        circuit_breakers,
        circuit_breakers_high,
    })
}

/// The cluster's own DNS resolvers, in Envoy's order of precedence; `None` if it has none.
fn dns_resolvers(o: &mut Obj<'_>) -> Result<Option<Vec<SocketAddr>>> {
    let typed_path = o.at("typed_dns_resolver_config");
    let typed = o.take("typed_dns_resolver_config");
    let resolution_path = o.at("dns_resolution_config");
    let resolution = o.take("dns_resolution_config");
    let legacy = o.array("dns_resolvers")?;
    if let Some(t) = typed {
        return upstream::typed_dns_resolver_config(t, &typed_path).map(Some);
    }
    if let Some(r) = resolution {
        return upstream::dns_resolution_config(r, &resolution_path).map(Some);
    }
    if !legacy.is_empty() {
        return legacy
            .into_iter()
            .map(|(a, p)| crate::address::ip_socket_address(a, &p))
            .collect::<Result<_>>()
            .map(Some);
    }
    Ok(None)
}

/// Reads `lb_policy` and its matching `*_lb_config`.
fn lb_policy(o: &mut Obj<'_>) -> Result<LbPolicy> {
    let policies = [
        ("ROUND_ROBIN", 0),
        ("LEAST_REQUEST", 1),
        ("RING_HASH", 2),
        ("RANDOM", 3),
        ("MAGLEV", 5),
        ("CLUSTER_PROVIDED", 6),
        ("LOAD_BALANCING_POLICY_CONFIG", 7),
    ];
    let policy = o
        .enumeration("lb_policy", &policies)?
        .unwrap_or("ROUND_ROBIN");
    let configs = [
        ("ring_hash_lb_config", "RING_HASH"),
        ("maglev_lb_config", "MAGLEV"),
        ("original_dst_lb_config", ""),
        ("least_request_lb_config", "LEAST_REQUEST"),
        ("round_robin_lb_config", ""),
    ];
    let config = o.oneof(&configs.map(|(c, _)| c))?;
    if let Some(config) = config {
        let owner = configs
            .iter()
            .find(|(c, _)| *c == config)
            .map(|(_, p)| *p)
            .unwrap_or_default();
        if owner.is_empty() {
            return Err(ConfigError::unsupported(o.at(config)));
        }
        if owner != policy {
            return Err(ConfigError::invalid(
                o.at(config),
                format!("{config} applies only to lb_policy {owner}"),
            ));
        }
    }
    Ok(match policy {
        "ROUND_ROBIN" => LbPolicy::RoundRobin,
        "RANDOM" => LbPolicy::Random,
        "LEAST_REQUEST" => {
            let mut choice_count = 2;
            if let Some(mut c) = o.obj("least_request_lb_config", proto::LEAST_REQUEST_LB_CONFIG)? {
                let p = c.at("choice_count");
                if let Some(n) = c.u32("choice_count")? {
                    if n < 2 {
                        return Err(ConfigError::invalid(
                            p,
                            "value must be greater than or equal to 2",
                        ));
                    }
                    choice_count = n;
                }
                c.finish()?;
            }
            LbPolicy::LeastRequest { choice_count }
        }
        "RING_HASH" => {
            let (mut minimum_ring_size, mut maximum_ring_size) = (1024, MAX_RING_SIZE);
            if let Some(mut c) = o.obj("ring_hash_lb_config", proto::RING_HASH_LB_CONFIG)? {
                for (field, slot) in [
                    ("minimum_ring_size", &mut minimum_ring_size),
                    ("maximum_ring_size", &mut maximum_ring_size),
                ] {
                    let p = c.at(field);
                    if let Some(n) = c.u64(field)? {
                        if n > MAX_RING_SIZE {
                            return Err(ConfigError::invalid(
                                p,
                                format!("value must be less than or equal to {MAX_RING_SIZE}"),
                            ));
                        }
                        *slot = n;
                    }
                }
                if let Some(f) =
                    c.enumeration("hash_function", &[("XX_HASH", 0), ("MURMUR_HASH_2", 1)])?
                {
                    if f != "XX_HASH" {
                        return Err(ConfigError::unsupported_value(
                            c.at("hash_function"),
                            format!("hash_function {f}"),
                        ));
                    }
                }
                if minimum_ring_size > maximum_ring_size {
                    return Err(ConfigError::invalid(
                        c.path().to_string(),
                        format!(
                            "ring hash: minimum_ring_size ({minimum_ring_size}) > maximum_ring_size ({maximum_ring_size})"
                        ),
                    ));
                }
                c.finish()?;
            }
            LbPolicy::RingHash {
                minimum_ring_size,
                maximum_ring_size,
            }
        }
        "MAGLEV" => {
            let mut table_size = 65537;
            if let Some(mut c) = o.obj("maglev_lb_config", proto::MAGLEV_LB_CONFIG)? {
                let p = c.at("table_size");
                if let Some(n) = c.u64("table_size")? {
                    if n > MAX_MAGLEV_TABLE_SIZE {
                        return Err(ConfigError::invalid(
                            p,
                            format!("value must be less than or equal to {MAX_MAGLEV_TABLE_SIZE}"),
                        ));
                    }
                    if !is_prime(n) {
                        return Err(ConfigError::invalid(
                            p,
                            "The table size of maglev must be prime number",
                        ));
                    }
                    table_size = n;
                }
                c.finish()?;
            }
            LbPolicy::Maglev { table_size }
        }
        other => {
            return Err(ConfigError::unsupported_value(
                o.at("lb_policy"),
                format!("lb_policy {other}"),
            ))
        }
    })
}

/// Reads a `type.v3.Percent` field: its `value`, within [0, 100].
fn percent(o: &mut Obj<'_>, name: &'static str) -> Result<Option<f64>> {
    let Some(mut p) = o.obj(name, proto::PERCENT)? else { return Ok(None) };
    let value_path = p.at("value");
    let value = p.f64("value")?.unwrap_or(0.0);
    if !(0.0..=100.0).contains(&value) {
        return Err(ConfigError::invalid(value_path, "value must be inside range [0, 100]"));
    }
    p.finish()?;
    Ok(Some(value))
}

/// Reads `circuit_breakers`: the DEFAULT and the HIGH priority's thresholds (HIGH ones apply to
/// nothing, since Legate routes have no priority). As in Envoy, the first entry of a priority
/// counts.
fn circuit_breakers(mut o: Obj<'_>) -> Result<(CircuitBreakerThresholds, CircuitBreakerThresholds)> {
    let (mut default, mut high) = (None, None);
    for (t, p) in o.array("thresholds")? {
        let mut t = Obj::new(t, p, proto::CB_THRESHOLDS)?;
        let is_high = t.enumeration("priority", &[("DEFAULT", 0), ("HIGH", 1)])? == Some("HIGH");
        let defaults = CircuitBreakerThresholds::default();
        let retry_budget = match t.obj("retry_budget", proto::CB_RETRY_BUDGET)? {
            Some(mut b) => {
                let budget = RetryBudget {
                    budget_percent: percent(&mut b, "budget_percent")?.unwrap_or(20.0),
                    min_retry_concurrency: b.u32("min_retry_concurrency")?.unwrap_or(3),
                };
                b.finish()?;
                Some(budget)
            }
            None => None,
        };
        let track_path = t.at("track_remaining");
        let track_remaining = t.bool("track_remaining")?.unwrap_or(false);
        // The HIGH priority's gauges would describe a resource no Legate request uses.
        if is_high && track_remaining {
            return Err(ConfigError::unsupported(track_path));
        }
        let thresholds = CircuitBreakerThresholds {
            max_connections: t.u32("max_connections")?.unwrap_or(defaults.max_connections),
            max_pending_requests: t.u32("max_pending_requests")?.unwrap_or(defaults.max_pending_requests),
            max_requests: t.u32("max_requests")?.unwrap_or(defaults.max_requests),
            max_retries: t.u32("max_retries")?.unwrap_or(defaults.max_retries),
            retry_budget,
            track_remaining,
        };
        t.finish()?;
        let slot = if is_high { &mut high } else { &mut default };
        slot.get_or_insert(thresholds);
    }
    o.finish()?;
    Ok((default.unwrap_or_default(), high.unwrap_or_default()))
}

/// Upstream HTTP options from `typed_extension_protocol_options` or the deprecated cluster fields.
fn http_options(o: &mut Obj<'_>) -> Result<UpstreamHttpOptions> {
    let typed_path = o.at("typed_extension_protocol_options");
    let deprecated = [
        "http_protocol_options",
        "http2_protocol_options",
        "common_http_protocol_options",
        "max_requests_per_connection",
    ];
    if let Some(typed) = o.take("typed_extension_protocol_options") {
        if let Some(d) = deprecated.iter().find(|d| o.is_set(d)) {
            return Err(ConfigError::invalid(
                o.at(d),
                "cannot be combined with typed_extension_protocol_options (use HttpProtocolOptions there)",
            ));
        }
        return upstream::typed_extension_protocol_options(typed, &typed_path);
    }
    let mut out = UpstreamHttpOptions::default();
    let http1_path = o.at("http_protocol_options");
    if let Some(h) = o.take("http_protocol_options") {
        upstream::http1_protocol_options(h, &http1_path)?;
    }
    let common_path = o.at("common_http_protocol_options");
    if let Some(c) = o.take("common_http_protocol_options") {
        upstream::common_http_protocol_options(c, &common_path, &mut out)?;
    }
    // The deprecated cluster-level switch to HTTP/2.
    let http2_path = o.at("http2_protocol_options");
    if let Some(h2) = o.take("http2_protocol_options") {
        if o.is_set("http_protocol_options") {
            return Err(ConfigError::invalid(http2_path, "cannot be combined with http_protocol_options"));
        }
        out.http2 = upstream::http2_protocol_options(h2, &http2_path)?;
        out.protocol = crate::model::UpstreamProtocol::Http2;
    }
    upstream::max_requests_per_connection(o, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Cluster> {
        cluster(&v, "c", &[])
    }

    fn la() -> Value {
        json!({"cluster_name": "x", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 80}}}}]}]})
    }

    #[test]
    fn defaults() {
        let c = parse(json!({"name": "a"})).unwrap();
        assert_eq!(c.discovery, DiscoveryType::Static);
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.lb_policy, LbPolicy::RoundRobin);
        assert_eq!(c.dns_refresh_rate, Duration::from_secs(5));
        assert!(!c.respect_dns_ttl);
        assert_eq!(c.dns_lookup_family, DnsLookupFamily::Auto);
        assert_eq!(c.healthy_panic_threshold, 50.0);
        assert_eq!(c.per_connection_buffer_limit_bytes, 1 << 20);
        assert_eq!(c.http, UpstreamHttpOptions::default());
        assert_eq!(c.stat_name(), "a");
        assert!(c.endpoints.is_empty());
    }

    #[test]
    fn features() {
        let c = parse(json!({"name": "a", "alt_stat_name": "alt", "type": "LOGICAL_DNS", "connect_timeout": "0.25s",
            "lb_policy": "LEAST_REQUEST", "least_request_lb_config": {"choice_count": 3}, "load_assignment": la(),
            "dns_refresh_rate": "10s", "respect_dns_ttl": true, "dns_lookup_family": "V4_ONLY",
            "dns_resolvers": [{"socket_address": {"address": "1.1.1.1", "port_value": 53}}],
            "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
            "per_connection_buffer_limit_bytes": 32768, "max_requests_per_connection": 0}))
        .unwrap();
        assert_eq!(c.stat_name(), "alt");
        assert_eq!(c.discovery, DiscoveryType::LogicalDns);
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.lb_policy, LbPolicy::LeastRequest { choice_count: 3 });
        assert_eq!(c.endpoints.len(), 1);
        assert_eq!(c.dns_refresh_rate, Duration::from_secs(10));
        assert!(c.respect_dns_ttl);
        assert_eq!(c.dns_lookup_family, DnsLookupFamily::V4Only);
        assert_eq!(c.dns_resolvers, vec!["1.1.1.1:53".parse().unwrap()]);
        assert_eq!(c.healthy_panic_threshold, 0.0);
        assert_eq!(c.per_connection_buffer_limit_bytes, 32768);
        let c = parse(json!({"name": "a", "max_requests_per_connection": 5})).unwrap();
        assert_eq!(c.http.max_requests_per_connection, Some(5));

        let c = parse(json!({"name": "a", "lb_policy": "RING_HASH",
            "ring_hash_lb_config": {"minimum_ring_size": 64, "maximum_ring_size": "128", "hash_function": "XX_HASH"}}))
        .unwrap();
        assert_eq!(
            c.lb_policy,
            LbPolicy::RingHash {
                minimum_ring_size: 64,
                maximum_ring_size: 128
            }
        );
        let c = parse(json!({"name": "a", "lb_policy": "RING_HASH"})).unwrap();
        assert_eq!(
            c.lb_policy,
            LbPolicy::RingHash {
                minimum_ring_size: 1024,
                maximum_ring_size: 8388608
            }
        );
        let c = parse(
            json!({"name": "a", "lb_policy": "MAGLEV", "maglev_lb_config": {"table_size": 251}}),
        )
        .unwrap();
        assert_eq!(c.lb_policy, LbPolicy::Maglev { table_size: 251 });
        let c = parse(json!({"name": "a", "lb_policy": "MAGLEV"})).unwrap();
        assert_eq!(c.lb_policy, LbPolicy::Maglev { table_size: 65537 });
        assert_eq!(
            parse(json!({"name": "a", "lb_policy": "RANDOM"}))
                .unwrap()
                .lb_policy,
            LbPolicy::Random
        );
        let c = parse(json!({"name": "a", "health_checks": [{"timeout": "1s", "interval": "1s",
            "unhealthy_threshold": 2, "healthy_threshold": 1, "tcp_health_check": {}}]}))
        .unwrap();
        assert_eq!(c.health_check.unwrap().unhealthy_threshold, 2);
        assert_eq!(parse(json!({"name": "a"})).unwrap().health_check, None);
        let grpc = json!([{"timeout": "1s", "interval": "1s", "unhealthy_threshold": 2, "healthy_threshold": 1,
            "grpc_health_check": {}}]);
        assert_eq!(
            parse(json!({"name": "a", "health_checks": grpc})).unwrap_err().to_string(),
            "c.health_checks[0].grpc_health_check: a cluster must support HTTP/2 for gRPC healthchecking"
        );
        let h2 = parse(json!({"name": "a", "health_checks": grpc, "http2_protocol_options": {}})).unwrap();
        assert!(matches!(h2.health_check.unwrap().checker, crate::model::HealthChecker::Grpc(_)));
        let c = parse(json!({"name": "a", "dns_resolvers": []}));
        assert_eq!(c.unwrap().dns_resolvers, vec![]);
        let c = cluster(&json!({"name": "a"}), "c", &["9.9.9.9:53".parse().unwrap()]).unwrap();
        assert_eq!(c.dns_resolvers, vec!["9.9.9.9:53".parse().unwrap()]);
    }

    #[test]
    fn errors() {
        let e = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"name": "a", "type": "EDS"})),
            "c.type: type EDS is not supported by legate"
        );
        assert_eq!(
            e(json!({"name": "a", "connect_timeout": "abc"})),
            "c.connect_timeout: invalid duration \"abc\""
        );
        assert_eq!(
            e(json!({"name": "a", "connect_timeout": "0s"})),
            "c.connect_timeout: value must be greater than 0s"
        );
        assert_eq!(
            e(json!({"name": "a", "lb_policy": "FOO"})),
            "c.lb_policy: unknown enum value \"FOO\""
        );
        assert_eq!(
            e(json!({"name": "a", "lb_policy": "CLUSTER_PROVIDED"})),
            "c.lb_policy: lb_policy CLUSTER_PROVIDED is not supported by legate"
        );
        assert_eq!(
            e(json!({"name": "a", "outlier_detection": {"monitors": [{}]}})),
            "c.outlier_detection.monitors: not supported by legate"
        );
        assert_eq!(e(json!({"name": "a", "foo": 1})), "c.foo: unknown field");
        assert_eq!(
            e(json!({"name": ""})),
            "c.name: value length must be at least 1 characters"
        );
        assert_eq!(
            e(json!({"name": "a", "dns_refresh_rate": "0.0001s"})),
            "c.dns_refresh_rate: value must be greater than 1ms"
        );
        assert_eq!(
            e(json!({"name": "a", "lb_policy": "MAGLEV", "maglev_lb_config": {"table_size": 100}})),
            "c.maglev_lb_config.table_size: The table size of maglev must be prime number"
        );
        assert_eq!(
            e(
                json!({"name": "a", "lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": 2000, "maximum_ring_size": 1000}})
            ),
            "c.ring_hash_lb_config: ring hash: minimum_ring_size (2000) > maximum_ring_size (1000)"
        );
        assert_eq!(
            e(json!({"name": "a", "lb_policy": "RING_HASH", "ring_hash_lb_config": {"hash_function": "MURMUR_HASH_2"}})),
            "c.ring_hash_lb_config.hash_function: hash_function MURMUR_HASH_2 is not supported by legate"
        );
        assert_eq!(
            e(json!({"name": "a", "ring_hash_lb_config": {}})),
            "c.ring_hash_lb_config: ring_hash_lb_config applies only to lb_policy RING_HASH"
        );
        assert_eq!(
            e(
                json!({"name": "a", "lb_policy": "LEAST_REQUEST", "least_request_lb_config": {"choice_count": 1}})
            ),
            "c.least_request_lb_config.choice_count: value must be greater than or equal to 2"
        );
        assert_eq!(
            e(
                json!({"name": "a", "common_lb_config": {"healthy_panic_threshold": {"value": 101}}})
            ),
            "c.common_lb_config.healthy_panic_threshold.value: value must be inside range [0, 100]"
        );
        assert_eq!(
            e(json!({"name": "a", "http2_protocol_options": {"allow_connect": true}})),
            "c.http2_protocol_options.allow_connect: not supported by legate"
        );
        assert_eq!(
            e(json!({"name": "a", "type": "LOGICAL_DNS"})),
            "c: LOGICAL_DNS clusters must have a single host"
        );
        // A supported field set to its default is fine, even when other values are refused.
        assert!(parse(json!({"name": "a", "protocol_selection": "USE_CONFIGURED_PROTOCOL", "health_checks": []})).is_ok());
    }

    #[test]
    fn auto_config_needs_tls() {
        let options = json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "auto_config": {}}});
        let e = parse(json!({"name": "a", "typed_extension_protocol_options": options.clone()})).unwrap_err();
        assert!(e.to_string().contains("ALPN configured for cluster a which has a non-ALPN transport socket"), "{e}");
        let tls = json!({"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"}});
        let c = parse(json!({"name": "a", "typed_extension_protocol_options": options, "transport_socket": tls})).unwrap();
        assert_eq!(c.http.protocol, UpstreamProtocol::Auto);
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537) && is_prime(5_000_011) && is_prime(2));
        assert!(!is_prime(1) && !is_prime(100) && !is_prime(65536));
    }

    #[test]
    fn circuit_breakers_read_the_default_priority() {
        let cb = |t: Value| parse(json!({"name": "a", "circuit_breakers": {"thresholds": t}})).map(|c| c.circuit_breakers);
        let both = parse(json!({"name": "a", "circuit_breakers": {"thresholds": [{"max_connections": 2},
            {"priority": "HIGH", "max_connections": 9}, {"max_connections": 5}]}}))
        .unwrap();
        assert_eq!((both.circuit_breakers.max_connections, both.circuit_breakers_high.max_connections), (2, 9));
        let c = cb(json!([{"max_connections": 2, "track_remaining": true, "retry_budget": {}}])).unwrap();
        assert_eq!(c.max_connections, 2);
        assert!(c.track_remaining);
        assert_eq!(c.retry_budget, Some(RetryBudget { budget_percent: 20.0, min_retry_concurrency: 3 }));
        let c = cb(json!([{"retry_budget": {"budget_percent": {"value": 12.5}, "min_retry_concurrency": 0}}])).unwrap();
        assert_eq!(c.retry_budget, Some(RetryBudget { budget_percent: 12.5, min_retry_concurrency: 0 }));
        assert_eq!(cb(json!([{"max_retries": 1}])).unwrap().retry_budget, None);
        let err = |t: Value| cb(t).unwrap_err().to_string();
        assert!(err(json!([{"retry_budget": {"budget_percent": {"value": 101}}}]))
            .contains("thresholds[0].retry_budget.budget_percent.value"));
        assert!(err(json!([{"max_connection_pools": 1}])).contains("thresholds[0].max_connection_pools: not supported"));
        assert!(err(json!([{"priority": "HIGH", "track_remaining": true}])).contains("thresholds[0].track_remaining: not supported"));
        let e = parse(json!({"name": "a", "circuit_breakers": {"per_host_thresholds": [{"max_connections": 1}]}})).unwrap_err();
        assert!(e.to_string().contains("per_host_thresholds: not supported"), "{e}");
    }
}
