//! Admin endpoints over a real socket.

use std::sync::Arc;

use super::*;

struct OneCluster;

impl ClusterSource for OneCluster {
    fn clusters(&self) -> Vec<ClusterSnapshot> {
        vec![ClusterSnapshot {
            name: "film".into(),
            observability_name: "film".into(),
            added_via_api: false,
            hosts: vec![HostSnapshot {
                address: "10.0.0.1:5000".parse().unwrap(),
                hostname: "film-service".into(),
                weight: 1,
                priority: 0,
                health_flags: vec![],
                cx_total: 2,
                cx_active: 1,
                cx_connect_fail: 0,
                rq_total: 5,
                rq_active: 0,
                rq_success: 5,
                rq_error: 0,
                rq_timeout: 0,
            }],
        }]
    }
}

async fn start() -> (SocketAddr, Arc<AdminState>) {
    let store = Store::new();
    store.counter("cluster.film.upstream_rq_200").add(5);
    let config = serde_json::json!({"static_resources": {"clusters": [{"name": "film"}], "listeners": []}});
    let info = ServerInfo {
        version: "v".into(),
        node_id: "n".into(),
        node_cluster: "c".into(),
        command_line_options: serde_json::json!({}),
    };
    let state = Arc::new(AdminState::new(store, config, Box::new(OneCluster), info, Box::new(|l| l == "debug")));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(serve(l, state.clone()));
    (addr, state)
}

async fn call(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{method} {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn ready_follows_state_and_health_check_failing() {
    let (addr, state) = start().await;
    assert_eq!(call(addr, "GET", "/ready").await, (503, "INITIALIZING\n".into()));
    state.set_live();
    assert_eq!(call(addr, "GET", "/ready").await, (200, "LIVE\n".into()));
    assert_eq!(call(addr, "GET", "/healthcheck/fail").await.0, 405);
    assert_eq!(call(addr, "POST", "/healthcheck/fail").await, (200, "OK\n".into()));
    assert_eq!(call(addr, "GET", "/ready").await, (503, "DRAINING\n".into()));
    call(addr, "POST", "/healthcheck/ok").await;
    assert_eq!(call(addr, "GET", "/ready").await.0, 200);
}

#[tokio::test]
async fn stats_and_clusters_formats() {
    let (addr, _) = start().await;
    let (_, stats) = call(addr, "GET", "/stats").await;
    assert!(stats.contains("cluster.film.upstream_rq_200: 5"), "{stats}");
    let (_, prom) = call(addr, "GET", "/stats/prometheus").await;
    assert!(prom.contains("envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"film\"} 5"), "{prom}");
    let (status, _) = call(addr, "GET", "/stats?filter=(").await;
    assert_eq!(status, 400);
    let (_, clusters) = call(addr, "GET", "/clusters").await;
    assert!(clusters.contains("film::10.0.0.1:5000::rq_total::5\n"), "{clusters}");
    assert!(clusters.contains("film::10.0.0.1:5000::health_flags::healthy\n"));
    assert!(clusters.contains("film::10.0.0.1:5000::hostname::film-service\n"));
    let (_, dump) = call(addr, "GET", "/config_dump").await;
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert_eq!(v["configs"][1]["static_clusters"][0]["cluster"]["name"], "film");
}

#[tokio::test]
async fn unknown_paths_and_quit() {
    let (addr, state) = start().await;
    let (status, body) = call(addr, "GET", "/nope").await;
    assert_eq!(status, 404);
    assert!(body.starts_with("invalid path. admin commands are:"));
    assert_eq!(call(addr, "POST", "/logging?level=debug").await.0, 200);
    assert_eq!(call(addr, "POST", "/logging?level=bogus").await.0, 404);
    assert_eq!(call(addr, "POST", "/quitquitquit").await.0, 200);
    tokio::time::timeout(std::time::Duration::from_secs(1), state.shutdown_requested()).await.unwrap();
}
