//! `Listener`, `FilterChain` and network filters.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::address::ip_socket_address;
use crate::error::{ConfigError, Result};
use crate::hcm::{http_connection_manager, unknown_or_unsupported, HCM_TYPE};
use crate::model::{FilterChain, Listener, NetworkFilter};
use crate::proto;
use crate::reader::{non_empty, Obj};

/// Envoy's default `per_connection_buffer_limit_bytes`.
pub(crate) const DEFAULT_BUFFER_LIMIT: u32 = 1024 * 1024;

/// Reads a `Listener`; `clusters` are the static cluster names (for route validation).
pub(crate) fn listener(v: &Value, path: &str, clusters: &HashSet<String>) -> Result<Listener> {
    let mut o = Obj::new(v, path, proto::LISTENER)?;
    let name = o.string("name")?;
    let name = if name.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        name
    };
    let address_path = o.at("address");
    let address = match o.take("address") {
        Some(a) => ip_socket_address(a, &address_path)?,
        None => {
            return Err(ConfigError::invalid(
                address_path,
                format!("error adding listener named '{name}': address is necessary"),
            ))
        }
    };
    let per_connection_buffer_limit_bytes = o
        .u32("per_connection_buffer_limit_bytes")?
        .unwrap_or(DEFAULT_BUFFER_LIMIT);
    let chains_path = o.at("filter_chains");
    let chains = o.array("filter_chains")?;
    if chains.is_empty() {
        return Err(ConfigError::invalid(
            chains_path,
            format!("error adding listener '{address}': no filter chains specified"),
        ));
    }
    if chains.len() > 1 {
        return Err(ConfigError::unsupported_value(
            index_path(&chains_path, 1),
            "more than one filter chain (filter chain matching)",
        ));
    }
    let filter_chains = chains
        .into_iter()
        .map(|(c, p)| filter_chain(c, &p, clusters))
        .collect::<Result<_>>()?;
    o.finish()?;
    Ok(Listener {
        name,
        address,
        filter_chains,
        per_connection_buffer_limit_bytes,
    })
}

fn index_path(path: &str, i: usize) -> String {
    crate::reader::index(path, i)
}

/// Reads a `FilterChain` holding exactly one HTTP connection manager.
fn filter_chain(v: &Value, path: &str, clusters: &HashSet<String>) -> Result<FilterChain> {
    let mut o = Obj::new(v, path, proto::FILTER_CHAIN)?;
    // An empty match is the same as none.
    if let Some(m) = o.take("filter_chain_match") {
        if *m != json!({}) {
            return Err(ConfigError::unsupported(o.at("filter_chain_match")));
        }
    }
    let name = o.string("name")?;
    let filters_path = o.at("filters");
    let mut filters = o.array("filters")?;
    let Some((last, last_path)) = filters.pop() else {
        return Err(ConfigError::unsupported_value(
            filters_path,
            "a filter chain without network filters",
        ));
    };
    if let Some((f, p)) = filters.into_iter().next() {
        let kind = match network_filter(f, &p, clusters)? {
            NetworkFilter::HttpConnectionManager(_) => "envoy.filters.network.http_connection_manager",
            NetworkFilter::TcpProxy(_) => "envoy.filters.network.tcp_proxy",
        };
        return Err(ConfigError::invalid(
            p,
            format!("Error: terminal filter named {kind} of type {kind} must be the last filter in a network filter chain."),
        ));
    }
    let terminal = network_filter(last, &last_path, clusters)?;
    let tls_path = o.at("transport_socket");
    let tls = o
        .take("transport_socket")
        .map(|t| crate::tls::downstream_transport_socket(t, &tls_path))
        .transpose()?;
    o.finish()?;
    Ok(FilterChain { name, terminal, tls })
}

/// Reads a network `Filter`: the HTTP connection manager or the TCP proxy.
fn network_filter(v: &Value, path: &str, clusters: &HashSet<String>) -> Result<NetworkFilter> {
    let mut f = Obj::new(v, path, proto::FILTER)?;
    let name_path = f.at("name");
    let name = f.string("name")?;
    non_empty(&name, &name_path)?;
    if f.is_set("config_discovery") {
        return Err(ConfigError::unsupported(f.at("config_discovery")));
    }
    let config_path = f.at("typed_config");
    let Some(config) = f.take("typed_config") else {
        return Err(ConfigError::invalid(
            config_path,
            format!("Didn't find a registered implementation for '{name}' with type URL: ''"),
        ));
    };
    if crate::tcp_proxy::is_tcp_proxy(config) {
        let (o, _) = Obj::any(config, &config_path, proto::TCP_PROXY)?;
        let tcp = crate::tcp_proxy::tcp_proxy(o)?;
        f.finish()?;
        return Ok(NetworkFilter::TcpProxy(tcp));
    }
    let (hcm, url) = Obj::any(config, &config_path, proto::HCM)?;
    if url != HCM_TYPE {
        return Err(unknown_or_unsupported(config_path, "network", &name, url));
    }
    let hcm = http_connection_manager(hcm, clusters)?;
    f.finish()?;
    Ok(NetworkFilter::HttpConnectionManager(Box::new(hcm)))
}

/// Refuses two listeners with the same name or address, like Envoy.
pub(crate) fn check_unique(listeners: &[(Listener, String)]) -> Result<()> {
    for (i, (l, path)) in listeners.iter().enumerate() {
        for (earlier, _) in &listeners[..i] {
            if earlier.name == l.name {
                return Err(ConfigError::invalid(
                    crate::reader::join(path, "name"),
                    format!("error adding listener named '{}': a listener with the same name already exists", l.name),
                ));
            }
            if earlier.address == l.address {
                return Err(ConfigError::invalid(
                    crate::reader::join(path, "address"),
                    format!(
                        "error adding listener: '{}' has duplicate address '{}' as existing listener",
                        l.name, l.address
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hcm() -> Value {
        json!({"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": HCM_TYPE, "stat_prefix": "s",
            "http_filters": [{"name": "router", "typed_config": {"@type": crate::hcm::ROUTER_TYPE}}],
            "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]}}})
    }

    fn parse(v: Value) -> Result<Listener> {
        listener(&v, "l", &HashSet::new())
    }

    #[test]
    fn minimal_listener() {
        let l = parse(json!({"address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
            "filter_chains": [{"filters": [hcm()], "filter_chain_match": {}}], "listener_filters": []}))
        .unwrap();
        assert_eq!(l.name.len(), 36, "generated UUID name");
        assert_eq!(l.stat_prefix(), "0.0.0.0_8080");
        assert_eq!(l.per_connection_buffer_limit_bytes, 1 << 20);
        assert_eq!(l.filter_chains.len(), 1);
        let NetworkFilter::HttpConnectionManager(h) = &l.filter_chains[0].terminal else { panic!("expected an HTTP connection manager") };
        assert_eq!(h.stat_prefix, "s");
    }

    #[test]
    fn errors() {
        let addr = json!({"socket_address": {"address": "::", "port_value": 1}});
        let e = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"name": "x", "filter_chains": [{"filters": [hcm()]}]})),
            "l.address: error adding listener named 'x': address is necessary"
        );
        assert_eq!(
            e(json!({"address": addr})),
            "l.filter_chains: error adding listener '[::]:1': no filter chains specified"
        );
        assert_eq!(
            e(json!({"address": addr, "filter_chains": [{"filters": [hcm()]}, {"filters": [hcm()]}]})),
            "l.filter_chains[1]: more than one filter chain (filter chain matching) is not supported by legate"
        );
        assert_eq!(
            e(
                json!({"address": addr, "filter_chains": [{"filters": [hcm()], "filter_chain_match": {"server_names": ["a"]}}]})
            ),
            "l.filter_chains[0].filter_chain_match: not supported by legate"
        );
        assert_eq!(
            e(
                json!({"address": addr, "filter_chains": [{"filters": [hcm()], "transport_socket": {"name": "alts",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts"}}}]})
            ),
            "l.filter_chains[0].transport_socket.typed_config: transport socket type \
             type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts is not supported by legate"
        );
        assert_eq!(
            e(
                json!({"address": addr, "filter_chains": [{"filters": [hcm()]}], "listener_filters": [{"name": "tls"}]})
            ),
            "l.listener_filters: not supported by legate"
        );
        let mut bad = hcm();
        bad["typed_config"]["@type"] = json!(format!("{HCM_TYPE}X"));
        assert_eq!(
            e(json!({"address": addr, "filter_chains": [{"filters": [bad]}]})),
            format!(
                "l.filter_chains[0].filters[0].typed_config: could not find @type '{HCM_TYPE}X'"
            )
        );
        let tcp = json!({"name": "tcp", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "stat_prefix": "t", "cluster": "c"}});
        assert_eq!(
            e(json!({"address": addr, "filter_chains": [{"filters": [tcp.clone(), hcm()]}]})),
            "l.filter_chains[0].filters[0]: Error: terminal filter named envoy.filters.network.tcp_proxy of type \
             envoy.filters.network.tcp_proxy must be the last filter in a network filter chain."
        );
        let redis = json!({"name": "redis", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"}});
        assert_eq!(
            e(json!({"address": addr, "filter_chains": [{"filters": [redis]}]})),
            "l.filter_chains[0].filters[0].typed_config: network filter 'redis' \
             (type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy) is not supported by legate"
        );
    }
}
