//! Admin endpoints over a real socket; expected bodies are Envoy 1.40's.

use std::sync::Arc;
use std::time::Instant;

use legate_stats::HistogramUnit;

use super::*;

struct FakeClusters;

impl ClusterSource for FakeClusters {
    fn clusters(&self) -> Vec<ClusterSnapshot> {
        vec![
            ClusterSnapshot {
                name: "film".into(),
                observability_name: "film".into(),
                hosts: vec![HostSnapshot {
                    address: "127.0.0.1:18081".parse().unwrap(),
                    cx_total: 8,
                    rq_total: 8,
                    rq_success: 6,
                    rq_error: 1,
                    ..HostSnapshot::default()
                }],
                ..ClusterSnapshot::default()
            },
            ClusterSnapshot {
                name: "closed".into(),
                observability_name: "closed_alt".into(),
                circuit_breakers: [
                    Thresholds {
                        max_connections: 7,
                        max_retries: 2,
                        ..Thresholds::default()
                    },
                    Thresholds {
                        max_requests: 99,
                        ..Thresholds::default()
                    },
                ],
                hosts: vec![HostSnapshot {
                    address: "127.0.0.1:18089".parse().unwrap(),
                    hostname: "closed-host".into(),
                    weight: 3,
                    region: "r1".into(),
                    zone: "z1".into(),
                    health_flags: vec!["/pending_active_hc", "/failed_active_hc"],
                    ..HostSnapshot::default()
                }],
                ..ClusterSnapshot::default()
            },
        ]
    }
}

fn bootstrap() -> serde_json::Value {
    serde_json::json!({
        "node": {"id": "n1", "cluster": "c1"},
        "static_resources": {
            "listeners": [{
                "name": "front",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 18080}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress_http",
                        "route_config": {"name": "local_route", "virtual_hosts": []}
                    }
                }]}]
            }],
            "clusters": [{"name": "film", "connect_timeout": "1s"}, {"name": "closed", "connect_timeout": "1s"}]
        }
    })
}

type Calls = Arc<Mutex<Vec<String>>>;

async fn start() -> (SocketAddr, Arc<AdminState>, Calls) {
    let store = Store::new();
    store.counter("cluster.film.upstream_rq_200").add(5);
    store.counter("cluster.film.upstream_rq_total").add(5);
    store
        .histogram("cluster.film.upstream_rq_time", HistogramUnit::Milliseconds)
        .record(1);
    let info = ServerInfo {
        version: "sha/1.40.0/Clean/RELEASE/BoringSSL".into(),
        hot_restart_version: "disabled".into(),
        node: serde_json::json!({"id": "n1", "cluster": "c1"}),
        command_line_options: serde_json::json!({"concurrency": 2}),
        started: Instant::now(),
        log_level: "warning".into(),
    };
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let setter: LogLevelSetter = Box::new(move |n, l| c.lock().unwrap().push(format!("{n:?}={l}")));
    let c = calls.clone();
    let state = AdminState::new(store, bootstrap(), Box::new(FakeClusters), info, setter)
        .with_drain_listeners(Box::new(move |d| {
            c.lock().unwrap().push(format!("drain {d:?}"))
        }));
    let state = Arc::new(state);
    state.set_listeners(vec![("front".into(), "127.0.0.1:18080".parse().unwrap())]);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(serve(l, state.clone()));
    (addr, state, calls)
}

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

async fn call(addr: SocketAddr, method: &str, path: &str) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    Answer {
        status: head[9..12].parse().unwrap(),
        content_type,
        body: body.to_string(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let a = call(addr, "GET", path).await;
    (a.status, a.body)
}

#[tokio::test]
async fn ready_follows_state_and_health_check_failing() {
    let (addr, state, _) = start().await;
    assert_eq!(get(addr, "/ready").await, (503, "INITIALIZING\n".into()));
    state.set_live();
    let a = call(addr, "GET", "/ready").await;
    assert_eq!(
        (a.status, a.body.as_str(), a.content_type.as_str()),
        (200, "LIVE\n", "text/plain; charset=UTF-8")
    );
    assert_eq!(
        get(addr, "/healthcheck/fail").await,
        (405, "Method GET not allowed, POST required.".into())
    );
    assert_eq!(
        call(addr, "DELETE", "/healthcheck/ok").await.body,
        "Method DELETE not allowed, POST required."
    );
    assert_eq!(call(addr, "POST", "/healthcheck/fail").await.body, "OK\n");
    assert_eq!(get(addr, "/ready").await, (503, "DRAINING\n".into()));
    assert!(state.failing_health_checks());
    assert_eq!(
        state
            .store
            .gauge("server.live", legate_stats::GaugeMode::NeverImport)
            .value(),
        0
    );
    assert!(get(addr, "/server_info")
        .await
        .1
        .contains("\"state\": \"DRAINING\""));
    call(addr, "POST", "/healthcheck/ok").await;
    assert_eq!(get(addr, "/ready").await.0, 200);
    assert_eq!(
        state
            .store
            .gauge("server.live", legate_stats::GaugeMode::NeverImport)
            .value(),
        1
    );
    assert_eq!(
        call(addr, "PUT", "/ready").await.status,
        200,
        "Envoy serves GET endpoints for any method"
    );
    let head = call(addr, "HEAD", "/ready").await;
    assert_eq!((head.status, head.body.as_str()), (200, ""));
}

#[tokio::test]
async fn stats_formats_and_errors() {
    let (addr, _, _) = start().await;
    let a = call(addr, "GET", "/stats").await;
    assert_eq!(a.content_type, "text/plain; charset=UTF-8");
    assert!(
        a.body
            .starts_with("cluster.film.upstream_rq_200: 5\ncluster.film.upstream_rq_total: 5\n"),
        "{}",
        a.body
    );
    let a = call(addr, "GET", "/stats?format=json&filter=upstream_rq_total").await;
    assert_eq!(
        (a.content_type.as_str(), a.body.as_str()),
        (
            JSON_CT,
            r#"{"stats":[{"name":"cluster.film.upstream_rq_total","value":5}]}"#
        )
    );
    let prom = "# TYPE envoy_cluster_upstream_rq counter\n\
envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"film\"} 5\n";
    assert_eq!(
        get(addr, "/stats/prometheus?filter=rq_200").await,
        (200, prom.into())
    );
    assert_eq!(
        get(addr, "/stats?format=prometheus&filter=rq_200").await,
        (200, prom.into())
    );
    assert_eq!(
        get(
            addr,
            "/stats?filter=%5Ecluster%5C.film%5C.upstream_rq_total%24"
        )
        .await
        .1,
        "cluster.film.upstream_rq_total: 5\n"
    );
    assert_eq!(
        get(addr, "/stats?filter=(").await,
        (400, "Invalid re2 regex: missing ): (".into())
    );
    assert_eq!(
        get(addr, "/stats?type=bogus").await,
        (400, "invalid &type= param".into())
    );
    assert_eq!(
        get(addr, "/stats?type=Histograms&usedonly")
            .await
            .1
            .lines()
            .count(),
        1
    );
    assert_eq!(
        get(addr, "/stats?format=bogus").await,
        (
            400,
            "usage: /stats?format=(html|active-html|json|prometheus|text)\n\n".into()
        )
    );
    assert_eq!(
        get(addr, "/stats?histogram_buckets=bogus").await,
        (400, "usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary|prometheusnative)\n".into())
    );
    assert_eq!(
        get(addr, "/stats/prometheus?histogram_buckets=detailed").await,
        (400, "unsupported prometheus histogram bucket mode".into())
    );
    assert_eq!(
        call(addr, "GET", "/stats?format=html").await.content_type,
        "text/html; charset=UTF-8"
    );
    assert_eq!(call(addr, "POST", "/reset_counters").await.body, "OK\n");
    assert_eq!(
        get(addr, "/stats?filter=upstream_rq_total").await.1,
        "cluster.film.upstream_rq_total: 0\n"
    );
}

const JSON_CT: &str = "application/json";

#[tokio::test]
async fn clusters_text_and_json() {
    let (addr, _, _) = start().await;
    let (status, body) = get(addr, "/clusters?filter=closed").await;
    let want = "closed::observability_name::closed_alt
closed::default_priority::max_connections::7
closed::default_priority::max_pending_requests::1024
closed::default_priority::max_requests::1024
closed::default_priority::max_retries::2
closed::high_priority::max_connections::1024
closed::high_priority::max_pending_requests::1024
closed::high_priority::max_requests::99
closed::high_priority::max_retries::3
closed::added_via_api::false
closed::127.0.0.1:18089::cx_active::0
closed::127.0.0.1:18089::cx_connect_fail::0
closed::127.0.0.1:18089::cx_total::0
closed::127.0.0.1:18089::rq_active::0
closed::127.0.0.1:18089::rq_error::0
closed::127.0.0.1:18089::rq_pending_active::0
closed::127.0.0.1:18089::rq_success::0
closed::127.0.0.1:18089::rq_timeout::0
closed::127.0.0.1:18089::rq_total::0
closed::127.0.0.1:18089::hostname::closed-host
closed::127.0.0.1:18089::health_flags::/failed_active_hc/pending_active_hc
closed::127.0.0.1:18089::weight::3
closed::127.0.0.1:18089::region::r1
closed::127.0.0.1:18089::zone::z1
closed::127.0.0.1:18089::sub_zone::
closed::127.0.0.1:18089::canary::false
closed::127.0.0.1:18089::priority::0
closed::127.0.0.1:18089::success_rate::-1
closed::127.0.0.1:18089::local_origin_success_rate::-1
";
    assert_eq!((status, body.as_str()), (200, want));
    let a = call(addr, "GET", "/clusters?format=json").await;
    assert_eq!(a.content_type, JSON_CT);
    assert!(
        a.body.starts_with(
            "{\n \"cluster_statuses\": [\n  {\n   \"name\": \"film\",\n   \"host_statuses\": [\n"
        ),
        "{}",
        a.body
    );
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let film = &v["cluster_statuses"][0];
    assert_eq!(
        film["host_statuses"][0]["stats"],
        serde_json::json!([{"name": "cx_connect_fail"}, {"value": "8", "name": "cx_total"}, {"value": "1", "name": "rq_error"},
            {"value": "6", "name": "rq_success"}, {"name": "rq_timeout"}, {"value": "8", "name": "rq_total"},
            {"type": "GAUGE", "name": "cx_active"}, {"type": "GAUGE", "name": "rq_active"}, {"type": "GAUGE", "name": "rq_pending_active"}])
    );
    let closed = &v["cluster_statuses"][1];
    let keys: Vec<&String> = closed.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "name",
            "host_statuses",
            "circuit_breakers",
            "observability_name"
        ]
    );
    let host = &closed["host_statuses"][0];
    assert_eq!(
        host["health_status"],
        serde_json::json!({"failed_active_health_check": true, "pending_active_hc": true, "eds_health_status": "HEALTHY"})
    );
    assert_eq!(
        (host["weight"].as_u64(), host["hostname"].as_str()),
        (Some(3), Some("closed-host"))
    );
    assert_eq!(
        host["locality"],
        serde_json::json!({"region": "r1", "zone": "z1"})
    );
    assert_eq!(
        closed["circuit_breakers"]["thresholds"][1]["priority"],
        "HIGH"
    );
    assert_eq!(
        get(addr, "/clusters?filter=nomatch&format=json").await.1,
        "{}\n"
    );
}

#[tokio::test]
async fn listeners_config_dump_and_server_facts() {
    let (addr, _, _) = start().await;
    assert_eq!(
        get(addr, "/listeners").await,
        (200, "front::127.0.0.1:18080\n".into())
    );
    let want = "{\n \"listener_statuses\": [\n  {\n   \"name\": \"front\",\n   \"local_address\": {\n    \"socket_address\": {\n     \"address\": \"127.0.0.1\",\n     \"port_value\": 18080\n    }\n   }\n  }\n ]\n}\n";
    assert_eq!(
        get(addr, "/listeners?format=json").await,
        (200, want.into())
    );

    let (_, dump) = get(addr, "/config_dump").await;
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let types: Vec<&str> = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["@type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types
            .iter()
            .map(|t| t.rsplit('.').next().unwrap())
            .collect::<Vec<_>>(),
        [
            "BootstrapConfigDump",
            "ClustersConfigDump",
            "ListenersConfigDump",
            "ScopedRoutesConfigDump",
            "RoutesConfigDump",
            "SecretsConfigDump"
        ]
    );
    let clusters = &v["configs"][1]["static_clusters"];
    assert_eq!(
        (
            clusters[0]["cluster"]["name"].as_str(),
            clusters[1]["cluster"]["name"].as_str()
        ),
        (Some("closed"), Some("film"))
    );
    assert_eq!(
        clusters[0]["cluster"]["@type"],
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    );
    let stamp = clusters[0]["last_updated"].as_str().unwrap();
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && &stamp[19..20] == ".",
        "{stamp}"
    );
    assert_eq!(
        v["configs"][4]["static_route_configs"][0]["route_config"]["name"],
        "local_route"
    );
    assert_eq!(v["configs"][3].as_object().unwrap().len(), 1);

    let (_, one) = get(
        addr,
        "/config_dump?resource=static_listeners&mask=listener.name",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump.StaticListener",
            "listener": {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "front"}}]})
    );
    assert_eq!(
        get(addr, "/config_dump?resource=dynamic_active_clusters").await,
        (200, "{}\n".into())
    );
    let a = call(addr, "GET", "/config_dump?resource=foo").await;
    assert_eq!(
        (a.status, a.content_type.as_str(), a.body.as_str()),
        (404, "text/plain", "foo not found in config dump")
    );
    assert_eq!(
        get(addr, "/config_dump?resource=bootstrap").await,
        (
            400,
            "bootstrap is not a repeated field. Use ?mask=bootstrap to get only this field".into()
        )
    );
    let (_, named) = get(addr, "/config_dump?name_regex=fi").await;
    let v: serde_json::Value = serde_json::from_str(&named).unwrap();
    assert_eq!(
        v["configs"][1]["static_clusters"].as_array().unwrap().len(),
        1
    );

    let (_, info) = get(addr, "/server_info").await;
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "version",
            "state",
            "uptime_current_epoch",
            "uptime_all_epochs",
            "hot_restart_version",
            "command_line_options",
            "node"
        ]
    );
    assert_eq!(v["uptime_current_epoch"], "0s");
    assert!(info.starts_with("{\n \"version\": \"sha/1.40.0/Clean/RELEASE/BoringSSL\",\n"));
    let (_, mem) = get(addr, "/memory").await;
    let v: serde_json::Value = serde_json::from_str(&mem).unwrap();
    assert!(v["allocated"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert!(
        v["total_physical_bytes"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(
        get(addr, "/runtime").await.1,
        "{\n \"entries\": {},\n \"layers\": []\n}\n"
    );
    assert_eq!(get(addr, "/certs").await.1, "{\n \"certificates\": []\n}\n");
    assert_eq!(get(addr, "/hot_restart_version").await.1, "disabled");
}

#[tokio::test]
async fn help_unknown_paths_logging_drain_and_quit() {
    let (addr, state, calls) = start().await;
    let (status, body) = get(addr, "/nope").await;
    assert_eq!(status, 404);
    assert!(body.starts_with("invalid path. admin commands are:\n  /: Admin home page\n  /certs: print certs on machine\n"));
    assert_eq!(get(addr, "/stats/nope").await.0, 404);
    let (_, help) = get(addr, "/help").await;
    assert!(help
        .contains("  /logging (POST): query/change logging levels\n      paths: Change multiple"));
    assert!(help.contains(
        "  /stats/prometheus: print server stats in prometheus format\n      usedonly: "
    ));
    let home = call(addr, "GET", "/").await;
    assert_eq!(home.content_type, "text/html; charset=UTF-8");
    assert!(
        home.body.contains("<title>Envoy Admin</title>")
            && home.body.contains("action='quitquitquit'")
    );

    assert_eq!(get(addr, "/logging?level=info").await.0, 405);
    let a = call(addr, "POST", "/logging?level=debug").await;
    assert_eq!(
        (a.status, a.content_type.as_str()),
        (200, "text/plain; charset=UTF-8")
    );
    assert!(a.body.starts_with("active loggers:\n  a2a: debug\n"));
    let a = call(addr, "POST", "/logging?level=bogus").await;
    assert_eq!(a.status, 400);
    assert!(a.body.starts_with("error: unknown logger level\n\n"));
    assert_eq!(
        call(addr, "POST", "/logging?upstream=trace").await.status,
        200
    );
    assert_eq!(
        call(addr, "POST", "/drain_listeners?graceful").await.body,
        "OK\n"
    );
    assert_eq!(
        *calls.lock().unwrap(),
        [
            "None=debug".to_string(),
            "Some(\"upstream\")=trace".to_string(),
            "drain DrainRequest { graceful: true, skip_exit: false, inbound_only: false }"
                .to_string()
        ]
    );

    assert_eq!(get(addr, "/quitquitquit").await.0, 405);
    let a = call(addr, "POST", "/quitquitquit").await;
    assert_eq!((a.status, a.body.as_str()), (200, "OK\n"));
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        state.shutdown_requested(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn bad_requests_do_not_take_the_admin_down() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _, _) = start().await;
    for junk in [
        &b"\x00\x01\x02 garbage\r\n\r\n"[..],
        b"GET /ready HTTP/1.1\r\nbad header\r\n\r\n",
        b"GET",
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(junk).await.unwrap();
        s.shutdown().await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    }
    assert_eq!(get(addr, "/ready").await.0, 503);
}

#[test]
fn timestamps_are_rfc3339_with_millis() {
    let t = now_rfc3339();
    assert_eq!(t.len(), 24, "{t}");
    assert!(t.starts_with("20") && t.ends_with('Z'));
}

#[tokio::test]
async fn admin_requests_are_counted_under_http_admin() {
    let (addr, state, _) = start().await;
    call(addr, "GET", "/server_info").await;
    call(addr, "GET", "/nope").await;
    let v = |n: &str| state.store.counter(n).value();
    assert_eq!(v("http.admin.downstream_rq_total"), 2);
    assert_eq!(v("http.admin.downstream_rq_2xx"), 1);
    assert_eq!(v("http.admin.downstream_rq_4xx"), 1);
}

#[test]
fn rfc3339_writes_protobuf_timestamps() {
    assert_eq!(crate::rfc3339(0, None), "1970-01-01T00:00:00Z");
    assert_eq!(crate::rfc3339(951_825_600, Some(7)), "2000-02-29T12:00:00.007Z");
    assert_eq!(crate::rfc3339(2_524_607_999, None), "2049-12-31T23:59:59Z");
    assert_eq!(crate::rfc3339(-1, None), "1969-12-31T23:59:59Z");
}
