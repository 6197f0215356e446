//! Realistic configurations under `tests/fixtures/`: Legate must accept them, and (when Envoy is
//! installed) Envoy 1.40 must accept them too, so Legate's accepted configs are valid Envoy
//! configs. Also checks that a sample of configs Legate refuses as invalid are refused by Envoy.

use std::path::{Path, PathBuf};
use std::process::Command;

use legate_config::model::{ClusterTarget, DiscoveryType, LbPolicy, NetworkFilter, RouteAction};
use legate_config::{load, ConfigError};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    assert!(files.len() >= 4, "fixtures missing: {files:?}");
    files
}

/// The Envoy binary: `$LEGATE_ENVOY`, or the workspace's `.venv/bin/envoy`.
fn envoy() -> Option<PathBuf> {
    let path = std::env::var_os("LEGATE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/envoy"));
    path.exists().then_some(path)
}

/// Runs `envoy --mode validate`; returns Ok(()) or Envoy's output.
fn envoy_validate(envoy: &Path, config: &Path) -> Result<(), String> {
    let out = Command::new(envoy)
        .args([
            "--mode",
            "validate",
            "--use-dynamic-base-id",
            "-l",
            "error",
            "-c",
        ])
        .arg(config)
        .output()
        .expect("run envoy");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn every_fixture_loads() {
    for file in fixtures() {
        let loaded = load(Some(&file), None).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!loaded.bootstrap.listeners.is_empty(), "{}", file.display());
        assert!(loaded.raw.is_object());
    }
}

#[test]
fn edge_fixture_content() {
    let b = load(Some(&fixtures_dir().join("edge-full.yaml")), None)
        .unwrap()
        .bootstrap;
    assert_eq!(b.node.id, "edge-1");
    let web = b.clusters.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.lb_policy, LbPolicy::LeastRequest { choice_count: 3 });
    assert_eq!(web.endpoints.len(), 3);
    assert_eq!(web.endpoints[2].priority, 1);
    assert_eq!(web.healthy_panic_threshold, 25.0);
    let v1 = b.clusters.iter().find(|c| c.name == "api-v1").unwrap();
    assert_eq!(v1.discovery, DiscoveryType::StrictDns);
    assert_eq!(
        v1.dns_resolvers,
        vec!["127.0.0.53:53".parse().unwrap()],
        "bootstrap resolvers apply"
    );
    let v2 = b.clusters.iter().find(|c| c.name == "api-v2").unwrap();
    assert_eq!(
        v2.dns_resolvers,
        vec!["8.8.8.8:53".parse().unwrap()],
        "cluster resolvers win"
    );
    assert_eq!(v2.lb_policy, LbPolicy::Maglev { table_size: 1021 });
    let NetworkFilter::HttpConnectionManager(h) = &b.listeners[0].filter_chains[0].terminal else { panic!("expected an HTTP connection manager") };
    assert_eq!(h.server_name, "edge-proxy");
    let api = &h.route_config.virtual_hosts[1];
    let RouteAction::Forward(f) = &api.routes[1].action else {
        panic!()
    };
    assert!(matches!(&f.target, ClusterTarget::Weighted(w) if w.len() == 2));
    assert!(matches!(
        api.routes[0].action,
        RouteAction::DirectResponse { status: 200, .. }
    ));
}

#[test]
fn envoy_accepts_every_fixture() {
    let Some(envoy) = envoy() else {
        eprintln!(
            "note: Envoy not found (.venv/bin/envoy or $LEGATE_ENVOY); skipping Envoy validation"
        );
        return;
    };
    for file in fixtures() {
        if let Err(out) = envoy_validate(&envoy, &file) {
            panic!("Envoy refused {}:\n{out}", file.display());
        }
    }
}

/// Configs Legate refuses as invalid (not merely unsupported) must be invalid for Envoy too.
#[test]
fn envoy_also_refuses_what_legate_calls_invalid() {
    let seed = std::fs::read_to_string(fixtures_dir().join("front-proxy.yaml")).unwrap();
    let cases = [
        ("connect_timeout: 0.25s", "connect_timeout: 0.25s\n    foo: 1"),
        ("connect_timeout: 0.25s", "connect_timeout: abc"),
        ("connect_timeout: 0.25s", "connect_timeout: 0s"),
        ("lb_policy: ROUND_ROBIN", "lb_policy: FOO"),
        ("route: {cluster: film-service-cluster}", "route: {cluster: nope}"),
        ("domains: [\"*\"]", "domains: [\"*\", \"*\"]"),
        ("name: rating-service-cluster", "name: film-service-cluster"),
        ("    type: STRICT_DNS", "    type: STATIC"),
        ("stat_prefix: ingress_http", "stat_prefix: \"\""),
        ("codec_type: AUTO", "codec_type: AUTO\n          max_request_headers_kb: 9000"),
        ("lb_policy: ROUND_ROBIN", "lb_policy: MAGLEV\n    maglev_lb_config: {table_size: 100}"),
        ("connect_timeout: 0.25s", "connect_timeout: 0.25s\n    dns_refresh_rate: 0.0001s"),
        ("address: 0.0.0.0, port_value: 8080", "address: localhost, port_value: 8080"),
        ("port_value: 5000", "port_value: 70000"),
        ("match: {prefix: \"/films\"}", "match: {prefix: \"/films\", path: \"/x\"}"),
        (
            "route: {cluster: film-service-cluster}",
            "route: {cluster: film-service-cluster}\n                request_headers_to_add: [{header: {key: host, value: a}}]",
        ),
        (
            "route: {cluster: film-service-cluster}",
            "route: {cluster: film-service-cluster}\n                request_headers_to_add: [{header: {key: x, value: \"100%\"}}]",
        ),
        (
            "route: {cluster: film-service-cluster}",
            "route: {weighted_clusters: {clusters: [{name: film-service-cluster, weight: 0}]}}",
        ),
        (
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Routerx",
        ),
    ];
    let envoy = envoy();
    if envoy.is_none() {
        eprintln!("note: Envoy not found (.venv/bin/envoy or $LEGATE_ENVOY); checking Legate only");
    }
    let dir = std::env::temp_dir().join(format!("legate-config-invalid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (from, to)) in cases.iter().enumerate() {
        assert!(seed.contains(from), "{from}");
        let file = dir.join(format!("case{i}.yaml"));
        std::fs::write(&file, seed.replacen(from, to, 1)).unwrap();
        match load(Some(&file), None) {
            Err(ConfigError::Invalid { .. } | ConfigError::UnknownField { .. }) => {}
            other => panic!("case {i} ({to}): expected an invalid-config error, got {other:?}"),
        }
        if let Some(envoy) = &envoy {
            assert!(
                envoy_validate(envoy, &file).is_err(),
                "case {i} ({to}): Envoy accepted it"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
