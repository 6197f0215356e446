//! Exact renderings of a small store; the histogram numbers are Envoy 1.40's for the same values.

use super::*;
use crate::{GaugeMode, HistogramUnit};
use regex::Regex;

pub(crate) fn store() -> Store {
    let s = Store::new();
    s.counter("cluster.film.upstream_rq_total").add(3);
    s.counter("cluster.film.upstream_rq_200").add(3);
    s.counter("cluster.film.upstream_rq_2xx").add(3);
    s.counter("cluster.rating.upstream_rq_total");
    s.gauge("server.live", GaugeMode::NeverImport).set(1);
    let h = s.histogram("cluster.film.upstream_rq_time", HistogramUnit::Milliseconds);
    (0..5).for_each(|_| h.record(1));
    s.histogram(
        "http.ingress_http.downstream_rq_time",
        HistogramUnit::Milliseconds,
    );
    s
}

const P_FIVE_ONES: &str = "P0(nan,1.0166666666666666) P25(nan,1.0333333333333334) P50(nan,1.05) \
P75(nan,1.0666666666666667) P90(nan,1.0833333333333333) P95(nan,1.0833333333333333) \
P99(nan,1.0833333333333333) P99.5(nan,1.0833333333333333) P99.9(nan,1.0833333333333333) \
P100(nan,1.0833333333333333)";

#[test]
fn text_matches_envoy() {
    let want = format!(
        "cluster.film.upstream_rq_200: 3\ncluster.film.upstream_rq_2xx: 3\ncluster.film.upstream_rq_total: 3\n\
cluster.rating.upstream_rq_total: 0\nserver.live: 1\ncluster.film.upstream_rq_time: {P_FIVE_ONES}\n\
http.ingress_http.downstream_rq_time: No recorded values\n"
    );
    assert_eq!(render_text(&store(), None, false), want);
}

#[test]
fn text_filters() {
    let s = store();
    let used = render_text(&s, None, true);
    assert!(
        !used.contains("rating") && !used.contains("downstream_rq_time"),
        "{used}"
    );
    let f = Regex::new("rq_total").unwrap();
    assert_eq!(
        render_text(&s, Some(&f), false),
        "cluster.film.upstream_rq_total: 3\ncluster.rating.upstream_rq_total: 0\n"
    );
    let q = StatsQuery {
        filter: Some(f),
        invert_filter: true,
        stat_type: StatType::Counters,
        ..Default::default()
    };
    assert_eq!(
        render_text_with(&s, &q),
        "cluster.film.upstream_rq_200: 3\ncluster.film.upstream_rq_2xx: 3\n"
    );
    let q = StatsQuery {
        stat_type: StatType::Gauges,
        ..Default::default()
    };
    assert_eq!(render_text_with(&s, &q), "server.live: 1\n");
    let q = StatsQuery {
        stat_type: StatType::TextReadouts,
        ..Default::default()
    };
    assert_eq!(render_text_with(&s, &q), "");
}

#[test]
fn text_bucket_modes() {
    let s = store();
    s.flush_histograms();
    let f = Some(Regex::new("upstream_rq_time").unwrap());
    let q = |m| StatsQuery {
        filter: f.clone(),
        histogram_buckets: m,
        ..Default::default()
    };
    let cumulative = render_text_with(&s, &q(BucketMode::Cumulative));
    assert!(
        cumulative.starts_with("cluster.film.upstream_rq_time: B0.5(0,0) B1(5,5) B5(5,5)"),
        "{cumulative}"
    );
    assert!(
        cumulative.ends_with("B1.8e+06(5,5) B3.6e+06(5,5)\n"),
        "{cumulative}"
    );
    let disjoint = render_text_with(&s, &q(BucketMode::Disjoint));
    assert!(
        disjoint.starts_with("cluster.film.upstream_rq_time: B0.5(0,0) B1(5,5) B5(0,0)"),
        "{disjoint}"
    );
    let detailed = render_text_with(&s, &q(BucketMode::Detailed));
    assert!(detailed.starts_with("cluster.film.upstream_rq_time:\n  totals=1,0.1:5\n  intervals=1,0.1:5\n  summary=P0(1.0166666666666666,1.0166666666666666)"), "{detailed}");
}

#[test]
fn json_matches_envoy() {
    let json = render_json(&store(), Some(&Regex::new("film|live").unwrap()), false);
    let nulls = |v: &str| format!(r#"{{"cumulative":{v},"interval":null}}"#);
    let values: Vec<String> = [
        "1.0166666666666666",
        "1.0333333333333334",
        "1.05",
        "1.0666666666666667",
    ]
    .iter()
    .chain(["1.0833333333333333"; 6].iter())
    .map(|v| nulls(v))
    .collect();
    let want = format!(
        r#"{{"stats":[{{"name":"cluster.film.upstream_rq_200","value":3}},{{"name":"cluster.film.upstream_rq_2xx","value":3}},{{"name":"cluster.film.upstream_rq_total","value":3}},{{"name":"server.live","value":1}},{{"histograms":{{"supported_quantiles":[0,25,50,75,90,95,99,99.5,99.9,100],"computed_quantiles":[{{"name":"cluster.film.upstream_rq_time","values":[{}]}}]}}}}]}}"#,
        values.join(",")
    );
    assert_eq!(json, want);
    assert_eq!(
        render_json(&store(), Some(&Regex::new("nomatch").unwrap()), false),
        r#"{"stats":[]}"#
    );
}

#[test]
fn json_bucket_modes() {
    let s = store();
    let f = Some(Regex::new("film.upstream_rq_time").unwrap());
    let q = StatsQuery {
        filter: f.clone(),
        histogram_buckets: BucketMode::Cumulative,
        ..Default::default()
    };
    let j = render_json_with(&s, &q);
    assert!(j.starts_with(r#"{"stats":[{"histograms":[{"name":"cluster.film.upstream_rq_time","buckets":[{"upper_bound":0.5,"interval":0,"cumulative":0},{"upper_bound":1,"interval":0,"cumulative":5}"#), "{j}");
    assert!(
        j.contains(r#"{"upper_bound":3e+05,"interval":0,"cumulative":5},{"upper_bound":6e+05,"#),
        "{j}"
    );
    let q = StatsQuery {
        filter: f,
        histogram_buckets: BucketMode::Detailed,
        ..Default::default()
    };
    let j = render_json_with(&s, &q);
    assert!(j.starts_with(r#"{"stats":[{"histograms":{"supported_percentiles":[0,25,50,75,90,95,99,99.5,99.9,100],"details":[{"name":"cluster.film.upstream_rq_time","totals":[{"lower_bound":1,"width":0.1,"count":5}],"intervals":[],"percentiles":[{"cumulative":1.0166666666666666,"interval":null}"#), "{j}");
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(
        v["stats"][0]["histograms"]["details"][0]["percentiles"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
}
