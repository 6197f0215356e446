//! `ClusterLoadAssignment`: localities and endpoints, flattened into [`Endpoint`]s.

use serde_json::Value;

use crate::address::socket_address;
use crate::error::{ConfigError, Result};
use crate::model::{DiscoveryType, Endpoint};
use crate::proto;
use crate::reader::{non_empty, required, Obj};

/// Reads a cluster's `load_assignment` (absent: `None`) and checks it against the discovery type.
pub(crate) fn load_assignment(
    v: Option<&Value>,
    path: &str,
    discovery: DiscoveryType,
) -> Result<Vec<Endpoint>> {
    let Some(v) = v else {
        if discovery == DiscoveryType::LogicalDns {
            return Err(ConfigError::invalid(
                path,
                "LOGICAL_DNS clusters must have a single host",
            ));
        }
        return Ok(Vec::new());
    };
    let mut o = Obj::new(v, path, proto::CLUSTER_LOAD_ASSIGNMENT)?;
    let name_path = o.at("cluster_name");
    non_empty(&o.string("cluster_name")?, &name_path)?;
    let mut endpoints = Vec::new();
    let localities = o.array("endpoints")?;
    if discovery == DiscoveryType::LogicalDns && localities.len() != 1 {
        return Err(logical_dns_error(&o.at("endpoints")));
    }
    for (l, lpath) in localities {
        let mut loc = Obj::new(l, &lpath, proto::LOCALITY_LB_ENDPOINTS)?;
        if let Some(mut locality) = loc.obj("locality", proto::LOCALITY)? {
            for field in ["region", "zone", "sub_zone"] {
                if !locality.string(field)?.is_empty() {
                    return Err(ConfigError::unsupported_value(
                        locality.path().to_string(),
                        "a non-empty locality",
                    ));
                }
            }
            locality.finish()?;
        }
        // Like Envoy, locality weights only matter with locality-weighted balancing (not
        // supported), but they are still validated.
        let weight_path = loc.at("load_balancing_weight");
        if loc.u32("load_balancing_weight")? == Some(0) {
            return Err(ConfigError::invalid(
                weight_path,
                "value must be greater than or equal to 1",
            ));
        }
        let priority_path = loc.at("priority");
        let priority = loc.u32("priority")?.unwrap_or(0);
        if priority > 128 {
            return Err(ConfigError::invalid(
                priority_path,
                "value must be less than or equal to 128",
            ));
        }
        let lb_endpoints = loc.array("lb_endpoints")?;
        if discovery == DiscoveryType::LogicalDns && lb_endpoints.len() != 1 {
            return Err(logical_dns_error(&loc.at("lb_endpoints")));
        }
        for (e, epath) in lb_endpoints {
            endpoints.push(lb_endpoint(e, &epath, priority, discovery)?);
        }
        loc.finish()?;
    }
    o.finish()?;
    Ok(endpoints)
}

fn logical_dns_error(path: &str) -> ConfigError {
    ConfigError::invalid(
        path,
        "LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint",
    )
}

/// Reads an `LbEndpoint`.
fn lb_endpoint(v: &Value, path: &str, priority: u32, discovery: DiscoveryType) -> Result<Endpoint> {
    let mut o = Obj::new(v, path, proto::LB_ENDPOINT)?;
    if o.oneof(&["endpoint", "endpoint_name"])? == Some("endpoint_name") {
        return Err(ConfigError::unsupported(o.at("endpoint_name")));
    }
    let endpoint_path = o.at("endpoint");
    let mut e = o
        .obj("endpoint", proto::ENDPOINT)?
        .ok_or_else(|| required(&endpoint_path))?;
    let address_path = e.at("address");
    let sa = socket_address(
        e.take("address").ok_or_else(|| required(&address_path))?,
        &address_path,
    )?;
    if discovery == DiscoveryType::Static && sa.address.parse::<std::net::IpAddr>().is_err() {
        return Err(ConfigError::invalid(
            sa.address_path,
            format!(
                "malformed IP address: {}. Consider setting resolver_name or setting cluster type to \
                 'STRICT_DNS' or 'LOGICAL_DNS'",
                sa.address
            ),
        ));
    }
    let hostname = e.string("hostname")?;
    e.finish()?;
    let statuses = [
        ("UNKNOWN", 0),
        ("HEALTHY", 1),
        ("UNHEALTHY", 2),
        ("DRAINING", 3),
        ("TIMEOUT", 4),
        ("DEGRADED", 5),
    ];
    match o.enumeration("health_status", &statuses)? {
        None | Some("UNKNOWN") | Some("HEALTHY") => {}
        Some(other) => {
            return Err(ConfigError::unsupported_value(
                o.at("health_status"),
                format!("health_status {other}"),
            ))
        }
    }
    let weight_path = o.at("load_balancing_weight");
    let weight = o.u32("load_balancing_weight")?.unwrap_or(1);
    if weight == 0 {
        return Err(ConfigError::invalid(
            weight_path,
            "value must be greater than or equal to 1",
        ));
    }
    o.finish()?;
    Ok(Endpoint {
        address: sa.address,
        port: sa.port,
        hostname,
        weight,
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ep(address: &str, port: u16) -> Value {
        json!({"endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}})
    }

    #[test]
    fn flattening_with_priorities_and_weights() {
        let v = json!({"cluster_name": "c", "endpoints": [
            {"lb_endpoints": [ep("10.0.0.1", 80), {"endpoint": {"address": {"socket_address":
                {"address": "10.0.0.2", "port_value": 81}}, "hostname": "h2"}, "load_balancing_weight": 3,
                "health_status": "HEALTHY"}]},
            {"priority": 1, "locality": {}, "lb_endpoints": [ep("10.0.0.3", 82)]}]});
        let e = load_assignment(Some(&v), "la", DiscoveryType::Static).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].address.as_str(), e[0].port, e[0].weight, e[0].priority),
            ("10.0.0.1", 80, 1, 0)
        );
        assert_eq!((e[1].hostname.as_str(), e[1].weight), ("h2", 3));
        assert_eq!(e[2].priority, 1);
    }

    #[test]
    fn static_needs_ips_and_logical_dns_one_host() {
        let v = json!({"cluster_name": "c", "endpoints": [{"lb_endpoints": [ep("film-service", 5000)]}]});
        assert_eq!(
            load_assignment(Some(&v), "la", DiscoveryType::Static).unwrap_err().to_string(),
            "la.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: malformed IP address: \
             film-service. Consider setting resolver_name or setting cluster type to 'STRICT_DNS' or 'LOGICAL_DNS'"
        );
        assert!(load_assignment(Some(&v), "la", DiscoveryType::StrictDns).is_ok());
        assert!(load_assignment(Some(&v), "la", DiscoveryType::LogicalDns).is_ok());
        let two =
            json!({"cluster_name": "c", "endpoints": [{"lb_endpoints": [ep("a", 1), ep("b", 1)]}]});
        assert_eq!(
            load_assignment(Some(&two), "la", DiscoveryType::LogicalDns).unwrap_err().to_string(),
            "la.endpoints[0].lb_endpoints: LOGICAL_DNS clusters must have a single locality_lb_endpoint and a \
             single lb_endpoint"
        );
        assert_eq!(
            load_assignment(None, "c", DiscoveryType::LogicalDns)
                .unwrap_err()
                .to_string(),
            "c: LOGICAL_DNS clusters must have a single host"
        );
    }

    #[test]
    fn refusals() {
        let e = |v: Value| {
            load_assignment(Some(&v), "la", DiscoveryType::StrictDns)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e(json!({"endpoints": []})),
            "la.cluster_name: value length must be at least 1 characters"
        );
        assert_eq!(
            e(
                json!({"cluster_name": "c", "endpoints": [{"locality": {"zone": "z"}, "lb_endpoints": [ep("a", 1)]}]})
            ),
            "la.endpoints[0].locality: a non-empty locality is not supported by legate"
        );
        let mut sick = ep("a", 1);
        sick["health_status"] = json!("UNHEALTHY");
        assert_eq!(
            e(json!({"cluster_name": "c", "endpoints": [{"lb_endpoints": [sick]}]})),
            "la.endpoints[0].lb_endpoints[0].health_status: health_status UNHEALTHY is not supported by legate"
        );
        let mut meta = ep("a", 1);
        meta["metadata"] = json!({"filter_metadata": {}});
        assert_eq!(
            e(json!({"cluster_name": "c", "endpoints": [{"lb_endpoints": [meta]}]})),
            "la.endpoints[0].lb_endpoints[0].metadata: not supported by legate"
        );
        assert_eq!(
            e(json!({"cluster_name": "c", "endpoints": [{"priority": 129}]})),
            "la.endpoints[0].priority: value must be less than or equal to 128"
        );
    }
}
