//! Flat names and the (tag-extracted name, tags) Envoy 1.40 gives them: from its
//! `/stats/prometheus` output and its tag-extractor tests.

use super::*;

fn check(name: &str, want_name: &str, want_tags: &[(&str, &str)]) {
    let (n, t) = extract(name);
    let t: Vec<(&str, &str)> = t.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!((n.as_str(), t.as_slice()), (want_name, want_tags), "{name}");
}

#[test]
fn cluster_and_response_codes() {
    check(
        "cluster.film.upstream_rq_total",
        "cluster.upstream_rq_total",
        &[("envoy.cluster_name", "film")],
    );
    check(
        "cluster.film.upstream_rq_200",
        "cluster.upstream_rq",
        &[
            ("envoy.response_code", "200"),
            ("envoy.cluster_name", "film"),
        ],
    );
    check(
        "cluster.film.upstream_rq_2xx",
        "cluster.upstream_rq_xx",
        &[
            ("envoy.response_code_class", "2"),
            ("envoy.cluster_name", "film"),
        ],
    );
    check(
        "cluster.film.external.upstream_rq_404",
        "cluster.external.upstream_rq",
        &[
            ("envoy.response_code", "404"),
            ("envoy.cluster_name", "film"),
        ],
    );
    check(
        "cluster.film.circuit_breakers.default.cx_open",
        "cluster.circuit_breakers.default.cx_open",
        &[("envoy.cluster_name", "film")],
    );
    check(
        "cluster_manager.active_clusters",
        "cluster_manager.active_clusters",
        &[],
    );
    check("cluster.film", "cluster.film", &[]);
}

#[test]
fn http_and_listener() {
    check(
        "http.ingress_http.downstream_rq_4xx",
        "http.downstream_rq_xx",
        &[
            ("envoy.response_code_class", "4"),
            ("envoy.http_conn_manager_prefix", "ingress_http"),
        ],
    );
    check(
        "http.ingress_http.no_route",
        "http.no_route",
        &[("envoy.http_conn_manager_prefix", "ingress_http")],
    );
    check(
        "listener.0.0.0.0_8080.downstream_cx_total",
        "listener.downstream_cx_total",
        &[("envoy.listener_address", "0.0.0.0_8080")],
    );
    check(
        "listener.127.0.0.1_18080.http.ingress_http.downstream_rq_2xx",
        "listener.http.downstream_rq_xx",
        &[
            ("envoy.response_code_class", "2"),
            ("envoy.http_conn_manager_prefix", "ingress_http"),
            ("envoy.listener_address", "127.0.0.1_18080"),
        ],
    );
    check(
        "listener.127.0.0.1_18080.worker_1.downstream_cx_total",
        "listener.worker_downstream_cx_total",
        &[
            ("envoy.worker_id", "1"),
            ("envoy.listener_address", "127.0.0.1_18080"),
        ],
    );
    check(
        "listener.[__1]_80.downstream_cx_total",
        "listener.downstream_cx_total",
        &[("envoy.listener_address", "[__1]_80")],
    );
    check(
        "listener.admin.downstream_cx_total",
        "listener.admin.downstream_cx_total",
        &[],
    );
    check(
        "listener.admin.http.admin.downstream_rq_2xx",
        "listener.admin.http.downstream_rq_xx",
        &[
            ("envoy.response_code_class", "2"),
            ("envoy.http_conn_manager_prefix", "admin"),
        ],
    );
    check(
        "listener.admin.main_thread.downstream_cx_total",
        "listener.admin.main_thread.downstream_cx_total",
        &[],
    );
    check(
        "listener.my_stat_prefix.downstream_cx_total",
        "listener.downstream_cx_total",
        &[("envoy.listener_address", "my_stat_prefix")],
    );
}

#[test]
fn workers_and_servers() {
    check(
        "server.worker_0.watchdog_miss",
        "server.worker_watchdog_miss",
        &[("envoy.worker_id", "0")],
    );
    check(
        "thread_local_cluster_manager.worker_1.clusters_inflated",
        "thread_local_cluster_manager.worker_clusters_inflated",
        &[("envoy.worker_id", "1")],
    );
    check(
        "listener_manager.worker_3.dispatcher.loop_duration_us",
        "listener_manager.worker_dispatcher.loop_duration_us",
        &[("envoy.worker_id", "3")],
    );
    check("server.live", "server.live", &[]);
    check(
        "server.main_thread.watchdog_miss",
        "server.main_thread.watchdog_miss",
        &[],
    );
}

#[test]
fn vhost_route_tcp_rds_ssl() {
    check(
        "vhost.vh.vcluster.vc.upstream_rq_503",
        "vhost.vcluster.upstream_rq",
        &[
            ("envoy.response_code", "503"),
            ("envoy.virtual_cluster", "vc"),
            ("envoy.virtual_host", "vh"),
        ],
    );
    check(
        "vhost.vh.route.r1.upstream_rq_total",
        "vhost.route.upstream_rq_total",
        &[("envoy.virtual_host", "vh"), ("envoy.route", "r1")],
    );
    check(
        "tcp.db.downstream_cx_total",
        "tcp.downstream_cx_total",
        &[("envoy.tcp_prefix", "db")],
    );
    check(
        "http.ingress.rds.my.route.config.update_success",
        "http.rds.update_success",
        &[
            ("envoy.rds_route_config", "my.route.config"),
            ("envoy.http_conn_manager_prefix", "ingress"),
        ],
    );
    check(
        "listener.127.0.0.1_443.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256",
        "listener.ssl.ciphers",
        &[
            ("envoy.ssl_cipher", "ECDHE-RSA-AES128-GCM-SHA256"),
            ("envoy.listener_address", "127.0.0.1_443"),
        ],
    );
    check(
        "listener.127.0.0.1_443.ssl.versions.TLSv1.3",
        "listener.ssl.versions",
        &[
            ("envoy.ssl_version", "TLSv1.3"),
            ("envoy.listener_address", "127.0.0.1_443"),
        ],
    );
    check(
        "cluster.film.ssl.ciphers.AES128-SHA",
        "cluster.ssl.ciphers",
        &[
            ("cipher_suite", "AES128-SHA"),
            ("envoy.cluster_name", "film"),
        ],
    );
    check(
        "cluster.film.health_check.name.probe.attempt",
        "cluster.health_check.attempt",
        &[
            ("envoy.health_check_name", "probe"),
            ("envoy.cluster_name", "film"),
        ],
    );
    check(
        "cluster.film.health_check.attempt",
        "cluster.health_check.attempt",
        &[("envoy.cluster_name", "film")],
    );
    check(
        "http.ingress.user_agent.ios.downstream_cx_total",
        "http.user_agent.downstream_cx_total",
        &[
            ("envoy.http_user_agent", "ios"),
            ("envoy.http_conn_manager_prefix", "ingress"),
        ],
    );
    check(
        "cluster.grpc_svc.grpc.Greeter.SayHello.success",
        "cluster.grpc.success",
        &[
            ("envoy.grpc_bridge_method", "SayHello"),
            ("envoy.grpc_bridge_service", "Greeter"),
            ("envoy.cluster_name", "grpc_svc"),
        ],
    );
}

#[test]
fn token_patterns_anchor_like_envoy() {
    let tokens: Vec<&str> = "a.x.b.b.c.d".split('.').collect();
    let pattern: Vec<&str> = "a.**.b.c.$".split('.').collect();
    let (mut start, mut idx) = (0, 0);
    assert!(search(&pattern, 4, &tokens, 0, 0, 0, &mut start, &mut idx));
    assert_eq!((idx, start), (5, 10));
    assert_eq!(regex_prefix(r"^cluster\.<T>\.ssl"), "cluster");
    assert_eq!(regex_prefix(r"^(?:listener|cluster)\."), "");
    assert_eq!(regex_prefix(r"_rq(_([0-9]{3}))$"), "");
}
