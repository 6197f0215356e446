//! Helpers shared by the unit tests.

use std::time::Duration;

use legate_config::model::{self, DiscoveryType, DnsLookupFamily, LbPolicy};

/// A cluster with Envoy's defaults and the given endpoints `(address, port, weight, priority)`.
pub fn cluster_config(name: &str, discovery: DiscoveryType, endpoints: &[(&str, u16, u32, u32)]) -> model::Cluster {
    model::Cluster {
        name: name.to_string(),
        alt_stat_name: None,
        discovery,
        connect_timeout: Duration::from_secs(5),
        lb_policy: LbPolicy::RoundRobin,
        endpoints: endpoints
            .iter()
            .map(|(address, port, weight, priority)| model::Endpoint {
                address: address.to_string(),
                port: *port,
                hostname: String::new(),
                weight: *weight,
                priority: *priority,
            })
            .collect(),
        dns_refresh_rate: Duration::from_secs(5),
        respect_dns_ttl: false,
        dns_lookup_family: DnsLookupFamily::Auto,
        dns_resolvers: Vec::new(),
        healthy_panic_threshold: 50.0,
        health_check: None,
        outlier_detection: None,
        per_connection_buffer_limit_bytes: 1024 * 1024,
        tls: None,
        circuit_breakers: model::CircuitBreakerThresholds::default(),
        circuit_breakers_high: model::CircuitBreakerThresholds::default(),
        http: model::UpstreamHttpOptions::default(),
    }
}
