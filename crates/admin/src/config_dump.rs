//! `/config_dump` in Envoy's section shapes, derived from the bootstrap JSON.

use serde_json::{json, Map, Value};

const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

fn typed(type_url: &str, body: &Value) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), json!(type_url));
    if let Value::Object(o) = body {
        m.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Value::Object(m)
}

/// Builds the dump; `last_updated` is an RFC 3339 timestamp of when the config was loaded.
pub fn dump(bootstrap: &Value, last_updated: &str) -> Value {
    let statics = &bootstrap["static_resources"];
    let list = |key: &str| statics[key].as_array().cloned().unwrap_or_default();
    let clusters: Vec<Value> = list("clusters")
        .iter()
        .map(|c| json!({"cluster": typed("type.googleapis.com/envoy.config.cluster.v3.Cluster", c), "last_updated": last_updated}))
        .collect();
    let listeners_raw = list("listeners");
    let listeners: Vec<Value> = listeners_raw
        .iter()
        .map(|l| json!({"listener": typed("type.googleapis.com/envoy.config.listener.v3.Listener", l), "last_updated": last_updated}))
        .collect();
    let routes: Vec<Value> = listeners_raw
        .iter()
        .flat_map(|l| l["filter_chains"].as_array().cloned().unwrap_or_default())
        .flat_map(|fc| fc["filters"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["typed_config"]["@type"] == HCM_TYPE)
        .filter_map(|f| f["typed_config"].get("route_config").cloned())
        .map(|rc| {
            json!({"route_config": typed("type.googleapis.com/envoy.config.route.v3.RouteConfiguration", &rc), "last_updated": last_updated})
        })
        .collect();
    json!({"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": bootstrap, "last_updated": last_updated},
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "static_clusters": clusters},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "static_listeners": listeners},
        {"@type": "type.googleapis.com/envoy.admin.v3.ScopedRoutesConfigDump"},
        {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "static_route_configs": routes},
        {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump"},
    ]})
}
