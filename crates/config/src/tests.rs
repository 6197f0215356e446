//! Whole-configuration tests: the seed front-proxy config, camelCase input, merging, and errors
//! reported with their full path.

use std::time::Duration;

use super::*;
use crate::model::*;

/// The seed front-proxy configuration.
pub(crate) const SEED: &str = include_str!("../tests/fixtures/front-proxy.yaml");

#[test]
fn seed_front_proxy_config() {
    let loaded = parse_str(SEED).unwrap();
    let b = &loaded.bootstrap;
    assert_eq!(
        b.admin,
        Some(Admin {
            address: "0.0.0.0:9901".parse().unwrap()
        })
    );
    assert_eq!(b.listeners.len(), 1);
    let l = &b.listeners[0];
    assert_eq!(l.address, "0.0.0.0:8080".parse().unwrap());
    assert!(!l.name.is_empty());
    let NetworkFilter::HttpConnectionManager(h) = &l.filter_chains[0].terminal else { panic!("expected an HTTP connection manager") };
    assert_eq!(h.stat_prefix, "ingress_http");
    assert_eq!(h.codec_type, CodecType::Auto);
    assert_eq!(h.http_filters, vec![HttpFilter::Router]);
    let vh = &h.route_config.virtual_hosts[0];
    assert_eq!(
        (vh.name.as_str(), vh.domains.clone()),
        ("backend", vec!["*".to_string()])
    );
    assert_eq!(
        vh.routes[0].matcher.path,
        PathMatch::Prefix("/films".into())
    );
    let RouteAction::Forward(f) = &vh.routes[1].action else {
        panic!()
    };
    assert_eq!(
        f.target,
        ClusterTarget::Cluster("rating-service-cluster".into())
    );
    assert_eq!(b.clusters.len(), 2);
    let c = &b.clusters[0];
    assert_eq!(c.name, "film-service-cluster");
    assert_eq!(c.discovery, DiscoveryType::StrictDns);
    assert_eq!(c.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.endpoints[0].address, "film-service");
    assert_eq!(c.endpoints[0].port, 5000);
    assert_eq!(
        loaded.raw["static_resources"]["clusters"][1]["name"],
        "rating-service-cluster"
    );
}

#[test]
fn camel_case_json_is_accepted() {
    let json = r#"{
      "staticResources": {
        "clusters": [{"name": "c", "connectTimeout": "1s", "lbPolicy": "RANDOM",
          "loadAssignment": {"clusterName": "c", "endpoints": [{"lbEndpoints": [
            {"endpoint": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": 80}}}}]}]}}],
        "listeners": [{"address": {"socketAddress": {"address": "127.0.0.1", "portValue": 8080}},
          "filterChains": [{"filters": [{"name": "hcm", "typedConfig": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "statPrefix": "p", "useRemoteAddress": true, "xffNumTrustedHops": 1,
            "httpFilters": [{"name": "router", "typedConfig":
              {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
            "commonHttpProtocolOptions": {"idleTimeout": "10s"},
            "routeConfig": {"virtualHosts": [{"name": "v", "domains": ["*"],
              "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c"}}]}]}}}]}]}]
      }
    }"#;
    let loaded = parse_str(json).unwrap();
    let c = &loaded.bootstrap.clusters[0];
    assert_eq!(
        (c.connect_timeout, c.lb_policy),
        (Duration::from_secs(1), LbPolicy::Random)
    );
    let NetworkFilter::HttpConnectionManager(h) =
        &loaded.bootstrap.listeners[0].filter_chains[0].terminal else { panic!("expected an HTTP connection manager") };
    assert!(h.use_remote_address);
    assert_eq!(h.idle_timeout, Some(Duration::from_secs(10)));
    assert_eq!(
        loaded.raw["static_resources"]["clusters"][0]["connect_timeout"],
        "1s"
    );
}

#[test]
fn no_config_at_all() {
    let err = load(None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "At least one of --config-path or --config-yaml or Options::configProto() should be non-empty"
    );
    assert!(matches!(
        load(Some(Path::new("")), Some("")),
        Err(ConfigError::NoConfig)
    ));
}

#[test]
fn unreadable_files_are_named() {
    let err = load(Some(Path::new("/nonexistent/envoy.yaml")), None).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/envoy.yaml: "),
        "{err}"
    );
    assert!(matches!(err, ConfigError::Io { .. }));
}

#[test]
fn config_yaml_merges_over_the_file() {
    let dir = std::env::temp_dir().join(format!("legate-config-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("envoy.yaml");
    std::fs::write(&file, SEED).unwrap();
    let overlay = r#"
admin: {address: {socket_address: {port_value: 9902}}}
node: {id: overlay-node}
static_resources:
  clusters:
  - name: extra
    load_assignment: {cluster_name: extra, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]}
"#;
    let loaded = load(Some(&file), Some(overlay)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let b = loaded.bootstrap;
    assert_eq!(b.admin.unwrap().address, "0.0.0.0:9902".parse().unwrap());
    assert_eq!(b.node.id, "overlay-node");
    let names: Vec<_> = b.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["film-service-cluster", "rating-service-cluster", "extra"]
    );
    assert_eq!(
        loaded.raw["admin"]["address"]["socket_address"]["address"],
        "0.0.0.0"
    );

    // --config-yaml alone is a complete configuration.
    let only = load(
        None,
        Some("admin: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}"),
    )
    .unwrap();
    assert!(only.bootstrap.listeners.is_empty());
}

#[test]
fn errors_name_their_path() {
    let with = |from: &str, to: &str| {
        assert!(SEED.contains(from), "{from}");
        parse_str(&SEED.replacen(from, to, 1))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        with(
            "connect_timeout: 0.25s",
            "connect_timeout: 0.25s\n    foo: 1"
        ),
        "static_resources.clusters[0].foo: unknown field"
    );
    assert_eq!(
        with(
            "name: rating-service-cluster",
            "name: rating-service-cluster\n    outlier_detection: {detect_degraded_hosts: true}"
        ),
        "static_resources.clusters[1].outlier_detection.detect_degraded_hosts: not supported by legate"
    );
    assert_eq!(
        with("connect_timeout: 0.25s", "connect_timeout: abc"),
        "static_resources.clusters[0].connect_timeout: invalid duration \"abc\""
    );
    assert_eq!(
        with("route: {cluster: film-service-cluster}", "route: {cluster: nope}"),
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0]\
         .routes[0].route.cluster: unknown cluster 'nope'"
    );
    assert_eq!(
        with("name: rating-service-cluster", "name: film-service-cluster"),
        "static_resources.clusters[1].name: duplicate cluster 'film-service-cluster'"
    );
    assert_eq!(
        with("    type: STRICT_DNS", "    type: STATIC"),
        "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address\
         .address: malformed IP address: film-service. Consider setting resolver_name or setting cluster type to \
         'STRICT_DNS' or 'LOGICAL_DNS'"
    );
    assert_eq!(
        with("lb_policy: ROUND_ROBIN", "lb_policy: 7"),
        "static_resources.clusters[0].lb_policy: lb_policy LOAD_BALANCING_POLICY_CONFIG is not supported by legate"
    );
    assert_eq!(
        with("stat_prefix: ingress_http", "stat_prefix: ingress_http\n          tracing: {}"),
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.tracing: not supported by legate"
    );
    let err = with(
        "port_value: 9901}}",
        "port_value: 9901}}\nlayered_runtime: {layers: []}",
    );
    assert_eq!(err, "layered_runtime: not supported by legate");
    let err = with("port_value: 8080", "port_value: 8080\n    x: [");
    assert!(err.starts_with("config: line "), "{err}");
}

#[test]
fn duplicate_listener_addresses() {
    let second = r#"
  - name: second
    address: {socket_address: {address: 0.0.0.0, port_value: 8080}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: x
          route_config: {}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:"#;
    let err = parse_str(&SEED.replacen("\n  clusters:", second, 1))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "static_resources.listeners[1].address: error adding listener: 'second' has duplicate address \
             '0.0.0.0:8080' as existing listener"
        ),
        "{err}"
    );
}
