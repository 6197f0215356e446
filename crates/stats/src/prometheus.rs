//! Envoy's `/stats/prometheus` text exposition.
//!
//! Families are the tag-extracted names (`envoy_` + the name with every character outside
//! `[a-zA-Z0-9_]` replaced by `_`), in sections: counters, gauges, histograms. Within a section
//! families are sorted by tag-extracted name and series by flat name, both compared token by
//! token (Envoy's symbol-table order). Histograms print Envoy's 19 default buckets (counts from
//! Envoy's bins), `+Inf`, `_sum` (Envoy's bin-midpoint approximation, `%.32g`) and `_count`;
//! `histogram_buckets=summary` prints the last interval's quantiles as a summary instead.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use regex::Regex;

use crate::histogram::{Snapshot, DEFAULT_BUCKETS, QUANTILES};
use crate::numfmt::{general, shortest};
use crate::render::{BucketMode, StatsQuery};
use crate::{Entry, Metric, Store};

/// A `/stats/prometheus` request Envoy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrometheusError {
    /// `histogram_buckets=detailed|disjoint`.
    #[error("unsupported prometheus histogram bucket mode")]
    UnsupportedBucketMode,
}

/// `/stats/prometheus` with a filter and `usedonly`.
pub fn render_prometheus(store: &Store, filter: Option<&Regex>, used_only: bool) -> String {
    let q = StatsQuery {
        filter: filter.cloned(),
        used_only,
        ..StatsQuery::default()
    };
    render_prometheus_with(store, &q).unwrap_or_default()
}

/// Compares flat names token by token (`a.b` < `a.b.c` < `a.b_c`).
pub fn cmp_stat_names(a: &str, b: &str) -> Ordering {
    a.split('.').cmp(b.split('.'))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape_value(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('\n', r"\n")
        .replace('"', "\\\"")
}

fn labels(tags: &[(String, String)]) -> String {
    let parts: Vec<String> = tags
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", sanitize(k), escape_value(v)))
        .collect();
    parts.join(",")
}

fn histogram_lines(out: &mut String, name: &str, tags: &str, s: &Snapshot) {
    let sep = if tags.is_empty() { "" } else { "," };
    for (bound, count) in DEFAULT_BUCKETS.iter().zip(s.computed_buckets()) {
        writeln!(
            out,
            "{name}_bucket{{{tags}{sep}le=\"{}\"}} {count}",
            general(*bound, 32)
        )
        .ok();
    }
    let count = s.sample_count();
    writeln!(out, "{name}_bucket{{{tags}{sep}le=\"+Inf\"}} {count}").ok();
    writeln!(out, "{name}_sum{{{tags}}} {}", general(s.sample_sum(), 32)).ok();
    writeln!(out, "{name}_count{{{tags}}} {count}").ok();
}

fn summary_lines(out: &mut String, name: &str, tags: &str, s: &Snapshot) {
    let sep = if tags.is_empty() { "" } else { "," };
    for (q, v) in QUANTILES.iter().zip(s.quantiles()) {
        writeln!(
            out,
            "{name}{{{tags}{sep}quantile=\"{}\"}} {}",
            shortest(*q),
            general(v, 32)
        )
        .ok();
    }
    writeln!(out, "{name}_sum{{{tags}}} {}", general(s.sample_sum(), 32)).ok();
    writeln!(out, "{name}_count{{{tags}}} {}", s.sample_count()).ok();
}

/// `/stats/prometheus` (also `/stats?format=prometheus`).
pub fn render_prometheus_with(store: &Store, q: &StatsQuery) -> Result<String, PrometheusError> {
    let summary = match q.histogram_buckets {
        BucketMode::Unset | BucketMode::Cumulative => false,
        BucketMode::Summary => true,
        BucketMode::Disjoint | BucketMode::Detailed => {
            return Err(PrometheusError::UnsupportedBucketMode)
        }
    };
    let entries = q.select(store);
    let mut out = String::new();
    for section in 0..3 {
        let mut groups: BTreeMap<GroupKey, Vec<&Arc<Entry>>> = BTreeMap::new();
        for e in &entries {
            let kind = match e.metric {
                Metric::Counter(_) => 0,
                Metric::Gauge(_) => 1,
                Metric::Histogram(_) => 2,
            };
            if kind == section {
                groups
                    .entry(GroupKey(e.tag_extracted_name().to_string()))
                    .or_default()
                    .push(e);
            }
        }
        let type_name = match (section, summary) {
            (0, _) => "counter",
            (1, _) => "gauge",
            (_, false) => "histogram",
            (_, true) => "summary",
        };
        for (GroupKey(extracted), mut members) in groups {
            let name = format!("envoy_{}", sanitize(&extracted));
            writeln!(out, "# TYPE {name} {type_name}").ok();
            members.sort_by(|a, b| cmp_stat_names(&a.name, &b.name));
            for e in members {
                let tags = labels(e.tags());
                match &e.metric {
                    Metric::Counter(c) => writeln!(out, "{name}{{{tags}}} {}", c.value())
                        .map_err(drop)
                        .unwrap_or(()),
                    Metric::Gauge(g) => writeln!(out, "{name}{{{tags}}} {}", g.value())
                        .map_err(drop)
                        .unwrap_or(()),
                    Metric::Histogram(h) if summary => {
                        summary_lines(&mut out, &name, &tags, &h.interval())
                    }
                    Metric::Histogram(h) => {
                        histogram_lines(&mut out, &name, &tags, &h.cumulative())
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A tag-extracted name ordered token by token.
#[derive(PartialEq, Eq)]
struct GroupKey(String);

impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_stat_names(&self.0, &other.0)
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests;
