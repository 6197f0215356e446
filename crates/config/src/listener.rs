//! `Listener`, `FilterChain` and network filters.

use std::collections::HashSet;

use serde_json::Value;

use crate::address::ip_socket_address;
use crate::error::{ConfigError, Result};
use crate::hcm::{http_connection_manager, unknown_or_unsupported, HCM_TYPE};
use crate::model::{FilterChain, FilterChainMatch, Listener, NetworkFilter};
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
    let filter_chains: Vec<FilterChain> = chains
        .iter()
        .map(|(c, p)| filter_chain(c, p, clusters))
        .collect::<Result<_>>()?;
    for (i, chain) in filter_chains.iter().enumerate() {
        if let Some(earlier) = filter_chains[..i].iter().find(|earlier| earlier.matcher == chain.matcher) {
            return Err(ConfigError::invalid(
                index_path(&chains_path, i),
                format!(
                    "error adding listener '{address}': filter chain '{}' has the same matching rules defined as '{}'",
                    chain.name, earlier.name
                ),
            ));
        }
    }
    let default_path = o.at("default_filter_chain");
    let default_filter_chain = o
        .take("default_filter_chain")
        .map(|c| filter_chain(c, &default_path, clusters))
        .transpose()?;
    // Like Envoy, the TLS inspector is added when a chain matches on what only it can see.
    let tls_inspector = listener_filters(&mut o)?
        || filter_chains.iter().any(|c| !c.matcher.server_names.is_empty() || c.matcher.transport_protocol.is_some());
    o.finish()?;
    Ok(Listener {
        name,
        address,
        filter_chains,
        default_filter_chain,
        tls_inspector,
        per_connection_buffer_limit_bytes,
    })
}

/// Reads `listener_filters`: only the TLS inspector; returns whether it is there.
fn listener_filters(o: &mut Obj<'_>) -> Result<bool> {
    let mut found = false;
    for (f, p) in o.array("listener_filters")? {
        let mut f = Obj::new(f, p, proto::LISTENER_FILTER)?;
        let name = f.string("name")?;
        let config_path = f.at("typed_config");
        match f.take("typed_config") {
            Some(config) => {
                let (c, url) = Obj::any(config, &config_path, proto::TLS_INSPECTOR)?;
                if url != TLS_INSPECTOR_TYPE {
                    return Err(unknown_or_unsupported(config_path, "listener", &name, url));
                }
                c.finish()?;
            }
            None if name == "envoy.filters.listener.tls_inspector" => {}
            None => return Err(ConfigError::unsupported_value(f.at("name"), format!("listener filter '{name}'"))),
        }
        f.finish()?;
        found = true;
    }
    Ok(found)
}

/// `@type` of the TLS inspector listener filter.
const TLS_INSPECTOR_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";

/// Reads a `filter_chain_match`: `server_names` and `transport_protocol`.
fn filter_chain_match(mut o: Obj<'_>) -> Result<FilterChainMatch> {
    let server_names = o
        .strings("server_names")?
        .into_iter()
        .map(|(name, p)| {
            let name = name.to_ascii_lowercase();
            let valid = !name.is_empty() && (!name.contains('*') || (name.starts_with("*.") && name.matches('*').count() == 1));
            if valid { Ok(name) } else { Err(ConfigError::invalid(p, format!("invalid server name '{name}': only a leading '*.' wildcard is allowed"))) }
        })
        .collect::<Result<_>>()?;
    let tp_path = o.at("transport_protocol");
    let transport_protocol = o.str("transport_protocol")?.filter(|s| !s.is_empty());
    if let Some(tp) = &transport_protocol {
        if tp != "tls" && tp != "raw_buffer" {
            return Err(ConfigError::unsupported_value(tp_path, format!("transport_protocol '{tp}'")));
        }
    }
    o.finish()?;
    Ok(FilterChainMatch { server_names, transport_protocol })
}

fn index_path(path: &str, i: usize) -> String {
    crate::reader::index(path, i)
}

/// Reads a `FilterChain` holding exactly one HTTP connection manager.
fn filter_chain(v: &Value, path: &str, clusters: &HashSet<String>) -> Result<FilterChain> {
    let mut o = Obj::new(v, path, proto::FILTER_CHAIN)?;
    let matcher = match o.obj("filter_chain_match", proto::FILTER_CHAIN_MATCH)? {
        Some(m) => filter_chain_match(m)?,
        None => FilterChainMatch::default(),
    };
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
    Ok(FilterChain { name, terminal, tls, matcher })
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
    use serde_json::json;

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
    fn filter_chain_matching() {
        let addr = json!({"socket_address": {"address": "::", "port_value": 1}});
        let l = parse(json!({"address": addr, "filter_chains": [
            {"filters": [hcm()], "filter_chain_match": {"server_names": ["A.example.com", "*.b.test"], "transport_protocol": "tls"}},
            {"filters": [hcm()], "filter_chain_match": {"transport_protocol": "raw_buffer"}}],
            "default_filter_chain": {"filters": [hcm()]}})).unwrap();
        assert_eq!(l.filter_chains[0].matcher.server_names, ["a.example.com", "*.b.test"]);
        assert_eq!(l.filter_chains[1].matcher.transport_protocol.as_deref(), Some("raw_buffer"));
        assert!(l.tls_inspector && l.default_filter_chain.is_some());
        let e = parse(json!({"address": addr, "filter_chains": [{"filters": [hcm()], "filter_chain_match": {"server_names": ["a.*"]}}]}));
        assert!(e.unwrap_err().to_string().contains("only a leading '*.' wildcard is allowed"));
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
            "l.filter_chains[1]: error adding listener '[::]:1': filter chain '' has the same matching rules defined as ''"
        );
        assert_eq!(
            e(
                json!({"address": addr, "filter_chains": [{"filters": [hcm()], "filter_chain_match": {"destination_port": 80}}]})
            ),
            "l.filter_chains[0].filter_chain_match.destination_port: not supported by legate"
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
            "l.listener_filters[0].name: listener filter 'tls' is not supported by legate"
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
