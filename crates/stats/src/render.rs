//! Envoy's stats output formats: `/stats` text and JSON, `/stats/prometheus`.
//!
//! Deviation from Envoy: Envoy reports histogram quantiles per flush interval and cumulatively;
//! Legate has no flush interval, so the interval column is always `nan`/`null`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use regex::Regex;
use serde_json::{json, Value};

use crate::histogram::{Histogram, DEFAULT_BUCKETS, QUANTILES};
use crate::{Entry, Metric, Store};

fn selected(store: &Store, filter: Option<&Regex>, used_only: bool) -> Vec<Entry> {
    store
        .entries()
        .into_iter()
        .filter(|e| filter.is_none_or(|r| r.is_match(&e.name)))
        .filter(|e| {
            !used_only
                || match &e.metric {
                    Metric::Counter(c) => c.used(),
                    Metric::Gauge(g) => g.used(),
                    Metric::Histogram(h) => h.count() > 0,
                }
        })
        .collect()
}

/// Formats a double the way Envoy prints quantiles (shortest form, no trailing zeros).
fn fmt_f64(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn quantile_labels() -> impl Iterator<Item = String> {
    QUANTILES.iter().map(|q| format!("P{}", fmt_f64(q * 100.0)))
}

fn histogram_text(h: &Histogram) -> String {
    if h.count() == 0 {
        return "No recorded values".into();
    }
    quantile_labels()
        .zip(QUANTILES)
        .map(|(label, q)| format!("{label}(nan,{})", fmt_f64(h.quantile(q).unwrap_or(0.0))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `/stats`: `name: value` lines sorted by name (counters and gauges), then histograms.
pub fn render_text(store: &Store, filter: Option<&Regex>, used_only: bool) -> String {
    let entries = selected(store, filter, used_only);
    let mut out = String::new();
    for e in &entries {
        match &e.metric {
            Metric::Counter(c) => writeln!(out, "{}: {}", e.name, c.value()),
            Metric::Gauge(g) => writeln!(out, "{}: {}", e.name, g.value()),
            Metric::Histogram(_) => Ok(()),
        }
        .ok();
    }
    for e in &entries {
        if let Metric::Histogram(h) = &e.metric {
            writeln!(out, "{}: {}", e.name, histogram_text(h)).ok();
        }
    }
    out
}

/// `/stats?format=json`.
pub fn render_json(store: &Store, filter: Option<&Regex>, used_only: bool) -> String {
    let entries = selected(store, filter, used_only);
    let mut stats: Vec<Value> = Vec::new();
    let mut computed = Vec::new();
    for e in &entries {
        match &e.metric {
            Metric::Counter(c) => stats.push(json!({"name": e.name, "value": c.value()})),
            Metric::Gauge(g) => stats.push(json!({"name": e.name, "value": g.value()})),
            Metric::Histogram(h) => {
                let values: Vec<Value> = QUANTILES
                    .iter()
                    .map(|q| json!({"interval": Value::Null, "cumulative": h.quantile(*q)}))
                    .collect();
                computed.push(json!({"name": e.name, "values": values}));
            }
        }
    }
    let supported: Vec<f64> = QUANTILES.iter().map(|q| q * 100.0).collect();
    stats.push(json!({"histograms": {"supported_quantiles": supported, "computed_quantiles": computed}}));
    json!({ "stats": stats }).to_string()
}

/// Prometheus metric name of a tag-extracted stat name.
fn prom_name(extracted: &str) -> String {
    let mut s = String::with_capacity(extracted.len() + 6);
    s.push_str("envoy_");
    for c in extracted.chars() {
        s.push(if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' });
    }
    s
}

fn prom_labels(tags: &[(String, String)], extra: Option<(&str, &str)>) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let escape = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    for (k, v) in tags {
        if !first {
            out.push(',');
        }
        first = false;
        let k: String = k.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        write!(out, "{k}=\"{}\"", escape(v)).ok();
    }
    if let Some((k, v)) = extra {
        if !first {
            out.push(',');
        }
        write!(out, "{k}=\"{v}\"").ok();
    }
    out.push('}');
    out
}

/// `/stats/prometheus`: Envoy's text exposition (counters, then gauges, then histograms; each
/// family with one `# TYPE` line).
pub fn render_prometheus(store: &Store, filter: Option<&Regex>, used_only: bool) -> String {
    let entries = selected(store, filter, used_only);
    let mut families: [BTreeMap<String, Vec<&Entry>>; 3] = Default::default();
    for e in &entries {
        let kind = match e.metric {
            Metric::Counter(_) => 0,
            Metric::Gauge(_) => 1,
            Metric::Histogram(_) => 2,
        };
        families[kind].entry(prom_name(&e.tag_extracted_name)).or_default().push(e);
    }
    let mut out = String::new();
    for (kind, fams) in families.iter().enumerate() {
        let type_name = ["counter", "gauge", "histogram"][kind];
        for (name, members) in fams {
            writeln!(out, "# TYPE {name} {type_name}").ok();
            for e in members {
                match &e.metric {
                    Metric::Counter(c) => writeln!(out, "{name}{} {}", prom_labels(&e.tags, None), c.value()),
                    Metric::Gauge(g) => writeln!(out, "{name}{} {}", prom_labels(&e.tags, None), g.value()),
                    Metric::Histogram(h) => {
                        let cumulative = h.cumulative_buckets();
                        for (bound, count) in DEFAULT_BUCKETS.iter().zip(cumulative) {
                            let le = fmt_f64(*bound);
                            writeln!(out, "{name}_bucket{} {count}", prom_labels(&e.tags, Some(("le", &le)))).ok();
                        }
                        writeln!(out, "{name}_bucket{} {}", prom_labels(&e.tags, Some(("le", "+Inf"))), h.count()).ok();
                        writeln!(out, "{name}_sum{} {}", prom_labels(&e.tags, None), h.sum()).ok();
                        writeln!(out, "{name}_count{} {}", prom_labels(&e.tags, None), h.count())
                    }
                }
                .ok();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GaugeMode, HistogramUnit};

    fn store() -> Store {
        let s = Store::new();
        s.counter("cluster.film.upstream_rq_total").add(3);
        s.counter("cluster.film.upstream_rq_200").add(3);
        s.counter("cluster.film.upstream_rq_2xx").add(3);
        s.counter("cluster.rating.upstream_rq_total");
        s.gauge("server.live", GaugeMode::NeverImport).set(1);
        s.histogram("cluster.film.upstream_rq_time", HistogramUnit::Milliseconds).record(3);
        s
    }

    #[test]
    fn text_is_sorted_name_value_then_histograms() {
        let t = render_text(&store(), None, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "cluster.film.upstream_rq_200: 3");
        assert_eq!(lines[3], "cluster.rating.upstream_rq_total: 0");
        assert_eq!(lines[4], "server.live: 1");
        assert!(lines[5].starts_with("cluster.film.upstream_rq_time: P0(nan,3"), "{}", lines[5]);
        let used = render_text(&store(), None, true);
        assert!(!used.contains("rating"));
        let filtered = render_text(&store(), Some(&Regex::new("rq_total").unwrap()), false);
        assert_eq!(filtered.lines().count(), 2);
    }

    #[test]
    fn prometheus_matches_envoy_shapes() {
        let p = render_prometheus(&store(), None, false);
        assert!(p.contains("# TYPE envoy_cluster_upstream_rq_total counter\n"));
        assert!(p.contains("envoy_cluster_upstream_rq_total{envoy_cluster_name=\"film\"} 3\n"));
        assert!(p.contains("envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"film\"} 3\n"));
        assert!(p.contains("envoy_cluster_upstream_rq_xx{envoy_response_code_class=\"2\",envoy_cluster_name=\"film\"} 3\n"));
        assert!(p.contains("envoy_server_live{} 1\n"));
        assert!(p.contains("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"film\",le=\"0.5\"} 0\n"));
        assert!(p.contains("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"film\",le=\"5\"} 1\n"));
        assert!(p.contains("envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"film\",le=\"+Inf\"} 1\n"));
        assert!(p.contains("envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"film\"} 1\n"));
        assert_eq!(p.matches("# TYPE envoy_cluster_upstream_rq_total counter").count(), 1);
    }

    #[test]
    fn promtool_accepts_the_output() {
        let Ok(out) = std::process::Command::new("promtool").arg("--version").output() else {
            eprintln!("promtool not installed: skipping");
            return;
        };
        assert!(out.status.success());
        use std::io::Write;
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(render_prometheus(&store(), None, false).as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("error"), "promtool: {text}");
    }

    #[test]
    fn json_has_stats_and_histograms() {
        let v: Value = serde_json::from_str(&render_json(&store(), None, false)).unwrap();
        let stats = v["stats"].as_array().unwrap();
        assert_eq!(stats[0], json!({"name": "cluster.film.upstream_rq_200", "value": 3}));
        let h = &stats.last().unwrap()["histograms"];
        assert_eq!(h["supported_quantiles"][2], 50.0);
        assert_eq!(h["computed_quantiles"][0]["name"], "cluster.film.upstream_rq_time");
    }
}
