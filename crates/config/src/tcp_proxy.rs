//! `envoy.filters.network.tcp_proxy`.

use std::time::Duration;

use serde_json::Value;

use crate::error::{ConfigError, Result};
use crate::model::{TcpProxy, TcpProxyTarget};
use crate::proto;
use crate::reader::{non_empty, Obj};

/// `@type` of the TCP proxy filter.
pub(crate) const TCP_PROXY_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

/// Envoy's default `idle_timeout` of a TCP proxy session.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Reads a `TcpProxy` (the reader is positioned on its `typed_config`).
pub(crate) fn tcp_proxy(mut o: Obj<'_>) -> Result<TcpProxy> {
    let prefix_path = o.at("stat_prefix");
    let stat_prefix = o.string("stat_prefix")?;
    non_empty(&stat_prefix, &prefix_path)?;
    let target = match o.oneof(&["cluster", "weighted_clusters", "on_demand"])? {
        Some("cluster") => {
            let p = o.at("cluster");
            let name = o.string("cluster")?;
            non_empty(&name, &p)?;
            TcpProxyTarget::Cluster(name)
        }
        Some("weighted_clusters") => {
            let p = o.at("weighted_clusters");
            let mut w = o.obj("weighted_clusters", proto::TCP_WEIGHTED_CLUSTER)?.ok_or_else(|| crate::reader::required(&p))?;
            let mut out = Vec::new();
            for (c, cp) in w.array("clusters")? {
                let mut c = Obj::new(c, cp, proto::TCP_CLUSTER_WEIGHT)?;
                let name_path = c.at("name");
                let name = c.string("name")?;
                non_empty(&name, &name_path)?;
                let weight_path = c.at("weight");
                let weight = c.u32("weight")?.unwrap_or(0);
                if weight == 0 {
                    return Err(ConfigError::invalid(weight_path, "value must be greater than or equal to 1"));
                }
                c.finish()?;
                out.push((name, weight));
            }
            if out.is_empty() {
                return Err(ConfigError::invalid(w.at("clusters"), "value must contain at least 1 item(s)"));
            }
            w.finish()?;
            TcpProxyTarget::Weighted(out)
        }
        Some(other) => return Err(ConfigError::unsupported(o.at(other))),
        None => return Err(ConfigError::invalid(o.path(), "one of cluster, weighted_clusters is required")),
    };
    let idle_timeout = o.timeout("idle_timeout", Some(DEFAULT_IDLE_TIMEOUT))?;
    let attempts_path = o.at("max_connect_attempts");
    let max_connect_attempts = o.u32("max_connect_attempts")?.unwrap_or(1);
    if max_connect_attempts == 0 {
        return Err(ConfigError::invalid(attempts_path, "value must be greater than or equal to 1"));
    }
    let access_log = crate::access_log_config::access_logs(&mut o)?;
    o.finish()?;
    Ok(TcpProxy { stat_prefix, target, idle_timeout, max_connect_attempts, access_log })
}

/// Whether `v` (a `typed_config`) is a TCP proxy.
pub(crate) fn is_tcp_proxy(v: &Value) -> bool {
    v.get("@type").and_then(Value::as_str) == Some(TCP_PROXY_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<TcpProxy> {
        let mut v = v;
        v["@type"] = json!(TCP_PROXY_TYPE);
        let (o, _) = Obj::any(&v, "f", proto::TCP_PROXY)?;
        tcp_proxy(o)
    }

    #[test]
    fn reads_cluster_weights_and_timeouts() {
        let t = parse(json!({"stat_prefix": "db", "cluster": "pg", "idle_timeout": "10s"})).unwrap();
        assert_eq!(t.target, TcpProxyTarget::Cluster("pg".into()));
        assert_eq!(t.idle_timeout, Some(Duration::from_secs(10)));
        let t = parse(json!({"stat_prefix": "db", "weighted_clusters": {"clusters": [{"name": "a", "weight": 1}, {"name": "b", "weight": 3}]},
            "idle_timeout": "0s", "max_connect_attempts": 3})).unwrap();
        assert_eq!(t.target, TcpProxyTarget::Weighted(vec![("a".into(), 1), ("b".into(), 3)]));
        assert_eq!((t.idle_timeout, t.max_connect_attempts), (None, 3));
    }

    #[test]
    fn errors_name_their_path() {
        let e = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(e(json!({"cluster": "a"})), "f.stat_prefix: value length must be at least 1 characters");
        assert_eq!(e(json!({"stat_prefix": "s", "cluster": "a", "access_log": [{"name": "x"}]})), "f.access_log[0].typed_config: Didn't find a registered implementation for 'x' with type URL: ''");
        assert_eq!(e(json!({"stat_prefix": "s"})), "f: one of cluster, weighted_clusters is required");
    }
}
