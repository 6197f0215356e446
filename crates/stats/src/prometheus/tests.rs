//! Exact Prometheus output for a small store (shapes and numbers taken from Envoy 1.40), and
//! `promtool check metrics` when promtool is installed.

use super::*;
use crate::render::tests::store;
use crate::HistogramUnit;

#[test]
fn counters_and_gauges_match_envoy() {
    let p = render_prometheus(&store(), None, false);
    let head = "# TYPE envoy_cluster_upstream_rq counter\n\
envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"film\"} 3\n\
# TYPE envoy_cluster_upstream_rq_total counter\n\
envoy_cluster_upstream_rq_total{envoy_cluster_name=\"film\"} 3\n\
envoy_cluster_upstream_rq_total{envoy_cluster_name=\"rating\"} 0\n\
# TYPE envoy_cluster_upstream_rq_xx counter\n\
envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"film\"} 3\n\
# TYPE envoy_server_live gauge\n\
envoy_server_live{} 1\n\
# TYPE envoy_cluster_upstream_rq_time histogram\n\
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"film\",le=\"0.5\"} 0\n\
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"film\",le=\"1\"} 5\n";
    assert!(p.starts_with(head), "{p}");
    assert!(p.contains("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"film\",le=\"3600000\"} 5\n\
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"film\",le=\"+Inf\"} 5\n\
envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"film\"} 5.238095238095238137532305700006\n\
envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"film\"} 5\n\
# TYPE envoy_http_downstream_rq_time histogram\n\
envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix=\"ingress_http\",le=\"0.5\"} 0\n"));
    assert!(p.ends_with(
        "envoy_http_downstream_rq_time_sum{envoy_http_conn_manager_prefix=\"ingress_http\"} 0\n\
envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix=\"ingress_http\"} 0\n"
    ));
    assert_eq!(p.lines().count(), 9 + 2 * 23 - 1 + 1);
}

#[test]
fn used_only_filter_and_modes() {
    let s = store();
    let used = render_prometheus(&s, None, true);
    assert!(
        !used.contains("rating") && !used.contains("envoy_http_downstream_rq_time"),
        "{used}"
    );
    let f = Regex::new("upstream_rq_2").unwrap();
    assert_eq!(
        render_prometheus(&s, Some(&f), false),
        "# TYPE envoy_cluster_upstream_rq counter\n\
envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"film\"} 3\n\
# TYPE envoy_cluster_upstream_rq_xx counter\n\
envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"film\"} 3\n"
    );
    s.flush_histograms();
    let q = StatsQuery {
        filter: Some(Regex::new("film.upstream_rq_time").unwrap()),
        histogram_buckets: BucketMode::Summary,
        ..Default::default()
    };
    let summary = render_prometheus_with(&s, &q).unwrap();
    assert!(summary.starts_with("# TYPE envoy_cluster_upstream_rq_time summary\n\
envoy_cluster_upstream_rq_time{envoy_cluster_name=\"film\",quantile=\"0\"} 1.0166666666666666074547720199917\n"), "{summary}");
    assert!(summary.contains("quantile=\"0.995\"} 1.0833333333333332593184650249896\n"));
    let q = StatsQuery {
        histogram_buckets: BucketMode::Detailed,
        ..Default::default()
    };
    assert_eq!(
        render_prometheus_with(&s, &q),
        Err(PrometheusError::UnsupportedBucketMode)
    );
}

#[test]
fn families_sort_token_by_token_and_labels_are_escaped() {
    let s = Store::new();
    s.counter("a.b_c").inc();
    s.counter("a.b.c").inc();
    s.counter("a.b-c").inc();
    s.counter("cluster.we\"ird.x").inc();
    let p = render_prometheus(&s, None, false);
    let families: Vec<&str> = p.lines().filter(|l| l.starts_with("# TYPE")).collect();
    assert_eq!(
        families,
        [
            "# TYPE envoy_a_b_c counter",
            "# TYPE envoy_a_b_c counter",
            "# TYPE envoy_a_b_c counter",
            "# TYPE envoy_cluster_x counter"
        ]
    );
    assert!(
        p.contains("envoy_cluster_x{envoy_cluster_name=\"we\\\"ird\"} 1\n"),
        "{p}"
    );
    assert_eq!(cmp_stat_names("a.b.c", "a.b-c"), Ordering::Less);
}

#[test]
fn promtool_accepts_the_output() {
    let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        println!("promtool not installed: skipping the promtool check");
        return;
    };
    assert!(out.status.success());
    let s = store();
    s.counter("listener.127.0.0.1_8080.http.ingress_http.downstream_rq_2xx")
        .add(2);
    s.counter("listener.127.0.0.1_8080.worker_0.downstream_cx_total")
        .add(2);
    let h = s.histogram(
        "cluster.film.upstream_cx_length_ms",
        HistogramUnit::Milliseconds,
    );
    [0, 3, 70, 1234, 5_000_000]
        .iter()
        .for_each(|v| h.record(*v));
    for (name, text) in [
        ("histograms", render_prometheus(&s, None, false)),
        ("summaries", {
            let q = StatsQuery {
                histogram_buckets: BucketMode::Summary,
                ..Default::default()
            };
            render_prometheus_with(&s, &q).unwrap()
        }),
    ] {
        use std::io::Write;
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        // promtool exits 3 for lint-only findings (e.g. counters not ending in _total, as in Envoy's
        // own output); parse errors exit 1.
        assert!(
            out.status.code() != Some(1) && !said.contains("error"),
            "promtool on {name}: {said}\n{text}"
        );
    }
}
