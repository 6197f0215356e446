//! The `Bootstrap` message: node, admin and static resources.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::address::ip_socket_address;
use crate::cluster::cluster;
use crate::error::{ConfigError, Result};
use crate::listener::{check_unique, listener};
use crate::model::{Admin, Bootstrap, Node};
use crate::proto;
use crate::reader::{join, Obj};
use crate::upstream;

/// Envoy's default `stats_flush_interval`.
const DEFAULT_STATS_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Converts the (normalised, merged) bootstrap value into the model.
pub(crate) fn bootstrap(v: &Value) -> Result<Bootstrap> {
    let mut o = Obj::new(v, "", proto::BOOTSTRAP)?;
    let node = match o.obj("node", proto::NODE)? {
        Some(mut n) => {
            let node = Node {
                id: n.string("id")?,
                cluster: n.string("cluster")?,
            };
            n.finish()?;
            node
        }
        None => Node::default(),
    };
    let admin = match o.obj("admin", proto::ADMIN)? {
        Some(a) => admin(a)?,
        None => None,
    };
    let flush_path = o.at("stats_flush_interval");
    let stats_flush_interval = match o.duration("stats_flush_interval")? {
        None => DEFAULT_STATS_FLUSH_INTERVAL,
        Some(d) if d >= Duration::from_millis(1) && d < Duration::from_secs(300) => d,
        Some(_) => return Err(ConfigError::invalid(flush_path, "value must be inside range [1ms, 5m0s)")),
    };

    // Bootstrap-wide DNS resolvers apply to clusters that configure none themselves.
    let typed_path = o.at("typed_dns_resolver_config");
    let typed = o.take("typed_dns_resolver_config");
    let resolution_path = o.at("dns_resolution_config");
    let resolution = o.take("dns_resolution_config");
    let default_resolvers = match (typed, resolution) {
        (Some(t), _) => upstream::typed_dns_resolver_config(t, &typed_path)?,
        (None, Some(r)) => upstream::dns_resolution_config(r, &resolution_path)?,
        (None, None) => Vec::new(),
    };

    let mut listeners = Vec::new();
    let mut clusters = Vec::new();
    if let Some(mut s) = o.obj("static_resources", proto::STATIC_RESOURCES)? {
        let mut names = HashSet::new();
        for (c, p) in s.array("clusters")? {
            let parsed = cluster(c, &p, &default_resolvers)?;
            if !names.insert(parsed.name.clone()) {
                return Err(ConfigError::invalid(
                    join(&p, "name"),
                    format!("duplicate cluster '{}'", parsed.name),
                ));
            }
            clusters.push(parsed);
        }
        let mut parsed = Vec::new();
        for (l, p) in s.array("listeners")? {
            parsed.push((listener(l, &p, &names)?, p));
        }
        check_unique(&parsed)?;
        listeners = parsed.into_iter().map(|(l, _)| l).collect();
        s.finish()?;
    }
    o.finish()?;
    Ok(Bootstrap {
        stats_flush_interval,
        node,
        admin,
        listeners,
        clusters,
    })
}

/// Reads `admin`; no address means no admin listener, like Envoy.
fn admin(mut a: Obj<'_>) -> Result<Option<Admin>> {
    // Writing the admin access log to /dev/null is the same as not writing it.
    let log_path = a.at("access_log_path");
    match a.str("access_log_path")?.as_deref() {
        None | Some("") | Some("/dev/null") => {}
        Some(_) => {
            return Err(ConfigError::unsupported_value(
                log_path,
                "an admin access log file",
            ))
        }
    }
    let address_path = a.at("address");
    let address = a
        .take("address")
        .map(|v| ip_socket_address(v, &address_path))
        .transpose()?;
    a.finish()?;
    Ok(address.map(|address| Admin { address }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_admin_and_empty_bootstrap() {
        let b = bootstrap(&json!({})).unwrap();
        assert_eq!(
            b,
            Bootstrap {
                node: Node::default(),
                admin: None,
                listeners: vec![],
                clusters: vec![],
                stats_flush_interval: Duration::from_secs(5),
            }
        );
        let b = bootstrap(&json!({"node": {"id": "n1", "cluster": "c1"},
            "admin": {"access_log_path": "/dev/null", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}}}))
        .unwrap();
        assert_eq!(
            b.node,
            Node {
                id: "n1".into(),
                cluster: "c1".into()
            }
        );
        assert_eq!(
            b.admin,
            Some(Admin {
                address: "127.0.0.1:9901".parse().unwrap()
            })
        );
        assert_eq!(bootstrap(&json!({"admin": {}})).unwrap().admin, None);
    }

    #[test]
    fn refusals() {
        let e = |v: Value| bootstrap(&v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"node": {"locality": {"zone": "a"}}})),
            "node.locality: not supported by legate"
        );
        assert_eq!(
            e(json!({"layered_runtime": {"layers": []}})),
            "layered_runtime: not supported by legate"
        );
        assert_eq!(
            e(json!({"dynamic_resources": {}})),
            "dynamic_resources: not supported by legate"
        );
        assert_eq!(
            e(json!({"stats_sinks": [{"name": "x"}]})),
            "stats_sinks: not supported by legate"
        );
        assert_eq!(
            e(json!({"static_resourcez": {}})),
            "static_resourcez: unknown field"
        );
        assert_eq!(
            e(json!({"admin": {"access_log_path": "/tmp/admin.log"}})),
            "admin.access_log_path: an admin access log file is not supported by legate"
        );
        assert_eq!(
            e(json!({"admin": {"access_log": [{"name": "x"}]}})),
            "admin.access_log: not supported by legate"
        );
        assert_eq!(
            e(json!({"static_resources": {"clusters": [{"name": "a"}, {"name": "a"}]}})),
            "static_resources.clusters[1].name: duplicate cluster 'a'"
        );
        assert_eq!(
            e(json!({"static_resources": {"secrets": [{"name": "s"}]}})),
            "static_resources.secrets: not supported by legate"
        );
    }

    #[test]
    fn bootstrap_resolvers_apply_to_clusters_without_their_own() {
        let b = bootstrap(&json!({
            "dns_resolution_config": {"resolvers": [{"socket_address": {"address": "10.0.0.53", "port_value": 53}}]},
            "static_resources": {"clusters": [
                {"name": "a"},
                {"name": "b", "dns_resolvers": [{"socket_address": {"address": "10.0.0.54", "port_value": 53}}]}]}}))
        .unwrap();
        assert_eq!(
            b.clusters[0].dns_resolvers,
            vec!["10.0.0.53:53".parse().unwrap()]
        );
        assert_eq!(
            b.clusters[1].dns_resolvers,
            vec!["10.0.0.54:53".parse().unwrap()]
        );
    }
}
