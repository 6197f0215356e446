//! Envoy's `/stats` text and JSON formats.
//!
//! Counters and gauges come first, merged and sorted by flat name (byte order), then
//! histograms. A histogram prints `P0(interval,cumulative) P25(...) ...` for Envoy's ten
//! quantiles (`nan` when the last interval recorded nothing; see [`crate::histogram`] for the
//! interval semantics), or `No recorded values` when nothing was ever recorded.

use std::fmt::Write as _;

use regex::Regex;

use crate::histogram::{Snapshot, DEFAULT_BUCKETS, QUANTILES, QUANTILE_LABELS};
use crate::numfmt::{general, json_number, shortest};
use crate::{Entry, Metric, Store};

/// Which stats `?type=` selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatType {
    /// Everything.
    #[default]
    All,
    /// Counters only.
    Counters,
    /// Gauges only.
    Gauges,
    /// Histograms only.
    Histograms,
    /// Text readouts only (Legate has none).
    TextReadouts,
}

impl StatType {
    /// Parses Envoy's `type` parameter values.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "All" => Self::All,
            "Counters" => Self::Counters,
            "Gauges" => Self::Gauges,
            "Histograms" => Self::Histograms,
            "TextReadouts" => Self::TextReadouts,
            _ => return None,
        })
    }

    fn admits(self, m: &Metric) -> bool {
        matches!(
            (self, m),
            (Self::All, _)
                | (Self::Counters, Metric::Counter(_))
                | (Self::Gauges, Metric::Gauge(_))
                | (Self::Histograms, Metric::Histogram(_))
        )
    }
}

/// How histograms are shown (`?histogram_buckets=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BucketMode {
    /// Not given: quantiles in text/JSON, buckets in Prometheus.
    #[default]
    Unset,
    /// Quantiles (`summary`).
    Summary,
    /// Cumulative bucket counts.
    Cumulative,
    /// Per-bucket counts.
    Disjoint,
    /// Every bin plus the quantiles.
    Detailed,
}

impl BucketMode {
    /// Parses Envoy's `histogram_buckets` parameter values.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "summary" => Self::Summary,
            "cumulative" => Self::Cumulative,
            "disjoint" => Self::Disjoint,
            "detailed" => Self::Detailed,
            _ => return None,
        })
    }
}

/// What a `/stats` request selects and how it shows histograms.
#[derive(Debug, Clone, Default)]
pub struct StatsQuery {
    /// Only stats whose flat name matches (a search, like RE2's partial match).
    pub filter: Option<Regex>,
    /// Show the stats the filter does not match instead (`invert_filter`).
    pub invert_filter: bool,
    /// Only stats that were ever written.
    pub used_only: bool,
    /// Only stats of one kind.
    pub stat_type: StatType,
    /// Histogram presentation.
    pub histogram_buckets: BucketMode,
}

impl StatsQuery {
    /// The stats this query shows, sorted by flat name.
    pub(crate) fn select(&self, store: &Store) -> Vec<std::sync::Arc<Entry>> {
        store
            .shared_entries()
            .into_iter()
            .filter(|e| self.stat_type.admits(&e.metric))
            .filter(|e| {
                self.filter
                    .as_ref()
                    .is_none_or(|r| r.is_match(&e.name) != self.invert_filter)
            })
            .filter(|e| !self.used_only || e.metric.used())
            .collect()
    }
}

fn query(filter: Option<&Regex>, used_only: bool) -> StatsQuery {
    StatsQuery {
        filter: filter.cloned(),
        used_only,
        ..StatsQuery::default()
    }
}

/// `/stats` (text) with a filter and `usedonly`.
pub fn render_text(store: &Store, filter: Option<&Regex>, used_only: bool) -> String {
    render_text_with(store, &query(filter, used_only))
}

/// `/stats?format=json` with a filter and `usedonly`.
pub fn render_json(store: &Store, filter: Option<&Regex>, used_only: bool) -> String {
    render_json_with(store, &query(filter, used_only))
}

/// `P0(interval,cumulative) P25(...) ...`.
fn quantile_summary(interval: &Snapshot, cumulative: &Snapshot) -> String {
    let (i, c) = (interval.quantiles(), cumulative.quantiles());
    let parts: Vec<String> = (0..QUANTILES.len())
        .map(|k| {
            format!(
                "{}({},{})",
                QUANTILE_LABELS[k],
                shortest(i[k]),
                shortest(c[k])
            )
        })
        .collect();
    parts.join(" ")
}

/// `B0.5(interval,cumulative) B1(...) ...`.
fn bucket_summary(interval: &[u64; 19], cumulative: &[u64; 19]) -> String {
    let parts: Vec<String> = (0..DEFAULT_BUCKETS.len())
        .map(|k| {
            format!(
                "B{}({},{})",
                general(DEFAULT_BUCKETS[k], 6),
                interval[k],
                cumulative[k]
            )
        })
        .collect();
    parts.join(" ")
}

/// `lower,width:count, ...` for every bin.
fn bins_text(s: &Snapshot) -> String {
    let parts: Vec<String> = s
        .bins()
        .iter()
        .map(|b| {
            format!(
                "{},{}:{}",
                general(b.lower(), 6),
                general(b.width(), 6),
                b.count
            )
        })
        .collect();
    parts.join(", ")
}

/// `/stats` (text).
pub fn render_text_with(store: &Store, q: &StatsQuery) -> String {
    let entries = q.select(store);
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
        let Metric::Histogram(h) = &e.metric else {
            continue;
        };
        if !h.used() {
            writeln!(out, "{}: No recorded values", e.name).ok();
            continue;
        }
        let (interval, cumulative) = (h.interval(), h.cumulative());
        let line = match q.histogram_buckets {
            BucketMode::Unset | BucketMode::Summary => {
                format!("{}: {}", e.name, quantile_summary(&interval, &cumulative))
            }
            BucketMode::Cumulative => {
                format!(
                    "{}: {}",
                    e.name,
                    bucket_summary(&interval.computed_buckets(), &cumulative.computed_buckets())
                )
            }
            BucketMode::Disjoint => {
                format!(
                    "{}: {}",
                    e.name,
                    bucket_summary(&interval.disjoint_buckets(), &cumulative.disjoint_buckets())
                )
            }
            BucketMode::Detailed => format!(
                "{}:\n  totals={}\n  intervals={}\n  summary={}",
                e.name,
                bins_text(&cumulative),
                bins_text(&interval),
                quantile_summary(&interval, &cumulative)
            ),
        };
        writeln!(out, "{line}").ok();
    }
    out
}

/// A JSON number as Envoy writes it (`null` for NaN).
fn num(v: f64) -> String {
    if v.is_nan() {
        "null".into()
    } else {
        json_number(v)
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn percentiles(interval: &Snapshot, cumulative: &Snapshot) -> String {
    let (i, c) = (interval.quantiles(), cumulative.quantiles());
    let parts: Vec<String> = (0..QUANTILES.len())
        .map(|k| format!(r#"{{"cumulative":{},"interval":{}}}"#, num(c[k]), num(i[k])))
        .collect();
    format!("[{}]", parts.join(","))
}

fn bins_json(s: &Snapshot) -> String {
    let parts: Vec<String> = s
        .bins()
        .iter()
        .map(|b| {
            format!(
                r#"{{"lower_bound":{},"width":{},"count":{}}}"#,
                num(b.lower()),
                num(b.width()),
                b.count
            )
        })
        .collect();
    format!("[{}]", parts.join(","))
}

fn supported_percentiles() -> String {
    let parts: Vec<String> = QUANTILES.iter().map(|q| general(q * 100.0, 6)).collect();
    format!("[{}]", parts.join(","))
}

/// `/stats?format=json`: `{"stats":[{"name":..,"value":..},...,{"histograms":...}]}`.
pub fn render_json_with(store: &Store, q: &StatsQuery) -> String {
    let entries = q.select(store);
    let mut items: Vec<String> = Vec::new();
    for e in &entries {
        match &e.metric {
            Metric::Counter(c) => items.push(format!(
                r#"{{"name":{},"value":{}}}"#,
                json_str(&e.name),
                c.value()
            )),
            Metric::Gauge(g) => items.push(format!(
                r#"{{"name":{},"value":{}}}"#,
                json_str(&e.name),
                g.value()
            )),
            Metric::Histogram(_) => {}
        }
    }
    let mut hists: Vec<String> = Vec::new();
    for e in &entries {
        let Metric::Histogram(h) = &e.metric else {
            continue;
        };
        let (interval, cumulative) = (h.interval(), h.cumulative());
        let name = json_str(&e.name);
        hists.push(match q.histogram_buckets {
            BucketMode::Unset | BucketMode::Summary => {
                format!(
                    r#"{{"name":{name},"values":{}}}"#,
                    percentiles(&interval, &cumulative)
                )
            }
            BucketMode::Cumulative | BucketMode::Disjoint => {
                let (iv, cu) = if q.histogram_buckets == BucketMode::Cumulative {
                    (interval.computed_buckets(), cumulative.computed_buckets())
                } else {
                    (interval.disjoint_buckets(), cumulative.disjoint_buckets())
                };
                let buckets: Vec<String> = (0..DEFAULT_BUCKETS.len())
                    .map(|k| {
                        format!(
                            r#"{{"upper_bound":{},"interval":{},"cumulative":{}}}"#,
                            num(DEFAULT_BUCKETS[k]),
                            iv[k],
                            cu[k]
                        )
                    })
                    .collect();
                format!(r#"{{"name":{name},"buckets":[{}]}}"#, buckets.join(","))
            }
            BucketMode::Detailed => format!(
                r#"{{"name":{name},"totals":{},"intervals":{},"percentiles":{}}}"#,
                bins_json(&cumulative),
                bins_json(&interval),
                percentiles(&interval, &cumulative)
            ),
        });
    }
    if !hists.is_empty() {
        let body = hists.join(",");
        items.push(match q.histogram_buckets {
            BucketMode::Unset | BucketMode::Summary => format!(
                r#"{{"histograms":{{"supported_quantiles":{},"computed_quantiles":[{body}]}}}}"#,
                supported_percentiles()
            ),
            BucketMode::Cumulative | BucketMode::Disjoint => {
                format!(r#"{{"histograms":[{body}]}}"#)
            }
            BucketMode::Detailed => format!(
                r#"{{"histograms":{{"supported_percentiles":{},"details":[{body}]}}}}"#,
                supported_percentiles()
            ),
        });
    }
    format!(r#"{{"stats":[{}]}}"#, items.join(","))
}

#[cfg(test)]
pub(crate) mod tests;
