//! `/config_dump` in Envoy's section shapes, derived from the bootstrap JSON.
//!
//! Sections, in Envoy's order: bootstrap, clusters (static, sorted by name), listeners (static,
//! config order), scoped routes (empty), routes (each HTTP connection manager's inline
//! `route_config`), secrets (`static_resources.secrets`). `?resource=`, `?mask=` and
//! `?name_regex=` work as in Envoy; `?include_eds` is accepted (Legate has no EDS).

use regex::Regex;
use serde_json::{json, Map, Value};

const ADMIN: &str = "type.googleapis.com/envoy.admin.v3.";
const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// A refused `/config_dump` request: status and `text/plain` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpError {
    /// HTTP status.
    pub status: u16,
    /// Body (Envoy's wording).
    pub body: String,
}

/// The query parameters `/config_dump` understands.
#[derive(Debug, Default)]
pub struct DumpQuery<'a> {
    /// `resource=`: one repeated field, each element on its own.
    pub resource: Option<&'a str>,
    /// `mask=`: comma-separated field paths to keep.
    pub mask: Option<&'a str>,
    /// `name_regex=`: keep only named resources whose name matches.
    pub name_regex: Option<&'a str>,
}

fn typed(type_url: &str, body: &Value) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), json!(type_url));
    if let Value::Object(o) = body {
        m.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Value::Object(m)
}

fn section(name: &str, fields: Vec<(&str, Vec<Value>)>) -> Value {
    let mut m = Map::new();
    m.insert("@type".into(), json!(format!("{ADMIN}{name}")));
    for (k, v) in fields {
        if !v.is_empty() {
            m.insert(k.into(), Value::Array(v));
        }
    }
    Value::Object(m)
}

/// Every config section for `bootstrap`; `last_updated` is when it was loaded (RFC 3339, ms).
pub fn sections(bootstrap: &Value, last_updated: &str) -> Vec<Value> {
    let statics = &bootstrap["static_resources"];
    let list = |key: &str| statics[key].as_array().cloned().unwrap_or_default();
    let mut clusters = list("clusters");
    clusters.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let clusters = clusters
        .iter()
        .map(|c| json!({"cluster": typed("type.googleapis.com/envoy.config.cluster.v3.Cluster", c), "last_updated": last_updated}))
        .collect();
    let listeners_raw = list("listeners");
    let listeners = listeners_raw
        .iter()
        .map(|l| json!({"listener": typed("type.googleapis.com/envoy.config.listener.v3.Listener", l), "last_updated": last_updated}))
        .collect();
    let routes = listeners_raw
        .iter()
        .flat_map(|l| l["filter_chains"].as_array().cloned().unwrap_or_default())
        .flat_map(|fc| fc["filters"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["typed_config"]["@type"] == HCM_TYPE)
        .filter_map(|f| f["typed_config"].get("route_config").cloned())
        .map(|rc| {
            json!({"route_config": typed("type.googleapis.com/envoy.config.route.v3.RouteConfiguration", &rc), "last_updated": last_updated})
        })
        .collect();
    let secrets = list("secrets")
        .iter()
        .map(|s| {
            json!({"name": s["name"], "last_updated": last_updated,
                   "secret": typed("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", s)})
        })
        .collect();
    vec![
        json!({"@type": format!("{ADMIN}BootstrapConfigDump"), "bootstrap": bootstrap, "last_updated": last_updated}),
        section("ClustersConfigDump", vec![("static_clusters", clusters)]),
        section("ListenersConfigDump", vec![("static_listeners", listeners)]),
        section("ScopedRoutesConfigDump", vec![]),
        section("RoutesConfigDump", vec![("static_route_configs", routes)]),
        section("SecretsConfigDump", vec![("static_secrets", secrets)]),
    ]
}

/// (repeated field, section, element message) for `?resource=`.
const REPEATED: &[(&str, &str, &str)] = &[
    ("static_clusters", "ClustersConfigDump", "StaticCluster"),
    (
        "dynamic_active_clusters",
        "ClustersConfigDump",
        "DynamicCluster",
    ),
    (
        "dynamic_warming_clusters",
        "ClustersConfigDump",
        "DynamicCluster",
    ),
    ("static_listeners", "ListenersConfigDump", "StaticListener"),
    (
        "dynamic_listeners",
        "ListenersConfigDump",
        "DynamicListener",
    ),
    (
        "inline_scoped_route_configs",
        "ScopedRoutesConfigDump",
        "InlineScopedRouteConfigs",
    ),
    (
        "dynamic_scoped_route_configs",
        "ScopedRoutesConfigDump",
        "DynamicScopedRouteConfigs",
    ),
    (
        "static_route_configs",
        "RoutesConfigDump",
        "StaticRouteConfig",
    ),
    (
        "dynamic_route_configs",
        "RoutesConfigDump",
        "DynamicRouteConfig",
    ),
    ("static_secrets", "SecretsConfigDump", "StaticSecret"),
    (
        "dynamic_active_secrets",
        "SecretsConfigDump",
        "DynamicSecret",
    ),
    (
        "dynamic_warming_secrets",
        "SecretsConfigDump",
        "DynamicSecret",
    ),
];

/// Singular fields of the dump sections (`?resource=` refuses them).
const SINGULAR: &[&str] = &["bootstrap", "last_updated", "version_info"];

/// The name a repeated element is matched by for `?name_regex=`.
fn element_name(e: &Value) -> Option<&str> {
    ["cluster", "listener", "route_config", "secret"]
        .iter()
        .find_map(|k| e.get(*k).and_then(|v| v["name"].as_str()))
        .or_else(|| e["name"].as_str())
}

/// Keeps `@type` and the masked paths of `v`.
fn apply_mask(v: &Value, paths: &[Vec<&str>]) -> Value {
    fn keep(src: &Value, path: &[&str], dst: &mut Map<String, Value>) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let Some(child) = src.get(*first) else { return };
        if rest.is_empty() {
            dst.insert((*first).to_string(), child.clone());
            return;
        }
        match child {
            Value::Array(items) => {
                let masked: Vec<Value> = items
                    .iter()
                    .map(|item| {
                        let mut m = Map::new();
                        if let Some(t) = item.get("@type") {
                            m.insert("@type".into(), t.clone());
                        }
                        keep(item, rest, &mut m);
                        Value::Object(m)
                    })
                    .collect();
                dst.insert((*first).to_string(), Value::Array(masked));
            }
            Value::Object(_) => {
                let slot = dst.entry((*first).to_string()).or_insert_with(|| {
                    let mut m = Map::new();
                    if let Some(t) = child.get("@type") {
                        m.insert("@type".into(), t.clone());
                    }
                    Value::Object(m)
                });
                if let Value::Object(m) = slot {
                    keep(child, rest, m);
                }
            }
            _ => {}
        }
    }
    let mut out = Map::new();
    if let Some(t) = v.get("@type") {
        out.insert("@type".into(), t.clone());
    }
    for p in paths {
        keep(v, p, &mut out);
    }
    Value::Object(out)
}

/// The `/config_dump` response body as JSON, or Envoy's refusal.
pub fn render(
    bootstrap: &Value,
    last_updated: &str,
    q: &DumpQuery<'_>,
) -> Result<Value, DumpError> {
    let name_regex = match q.name_regex {
        Some(r) => Some(Regex::new(r).map_err(|e| DumpError {
            status: 400,
            body: format!(
                "INVALID_ARGUMENT: Error while parsing name_regex from {r}: {}",
                crate::regex_error(&e)
            ),
        })?),
        None => None,
    };
    let mask: Option<Vec<Vec<&str>>> = q.mask.map(|m| {
        m.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.split('.').collect())
            .collect()
    });
    let mut configs = sections(bootstrap, last_updated);
    if let Some(re) = &name_regex {
        for c in &mut configs {
            if let Value::Object(m) = c {
                for (_, v) in m.iter_mut() {
                    if let Value::Array(items) = v {
                        items.retain(|e| element_name(e).is_some_and(|n| re.is_match(n)));
                    }
                }
                m.retain(|_, v| !matches!(v, Value::Array(a) if a.is_empty()));
            }
        }
    }
    let out: Vec<Value> = match q.resource {
        Some(resource) => {
            let Some((_, sec, element)) = REPEATED.iter().find(|(f, _, _)| *f == resource) else {
                let status = if SINGULAR.contains(&resource) {
                    400
                } else {
                    404
                };
                let body = if status == 400 {
                    format!("{resource} is not a repeated field. Use ?mask={resource} to get only this field")
                } else {
                    format!("{resource} not found in config dump")
                };
                return Err(DumpError { status, body });
            };
            let type_url = format!("{ADMIN}{sec}.{element}");
            configs
                .iter()
                .filter_map(|c| c.get(resource).and_then(Value::as_array))
                .flatten()
                .map(|e| {
                    let e = typed(&type_url, e);
                    mask.as_ref().map_or(e.clone(), |m| apply_mask(&e, m))
                })
                .collect()
        }
        None => match &mask {
            Some(m) => configs
                .iter()
                .map(|c| apply_mask(c, m))
                .filter(|c| c.as_object().is_some_and(|o| o.len() > 1))
                .collect(),
            None => configs,
        },
    };
    Ok(if out.is_empty() {
        json!({})
    } else {
        json!({ "configs": out })
    })
}
