//! Lock-free Envoy-compatible stats.
//!
//! - [`Store`] is a cheap `Clone` handle shared by all threads. `counter`/`gauge`/`histogram`
//!   get-or-create a stat by its Envoy flat name (`cluster.film.upstream_rq_total`); creation
//!   takes a lock, updates through the returned handles are single atomic operations.
//! - Prometheus tags are extracted from the flat name once, at creation, with Envoy's default
//!   tag extractors ([`tags`]).
//! - [`render`] and [`prometheus`] produce Envoy's `/stats` text and JSON and
//!   `/stats/prometheus` formats; histograms use Envoy's own bins ([`histogram`]), so
//!   quantiles, bucket counts and sums are the numbers Envoy prints.
//! - [`Store::flush_histograms`] closes a histogram interval, like Envoy's stats flush (every
//!   5 s by default); the binary calls it on that period.

pub mod histogram;
pub mod numfmt;
pub mod prometheus;
pub mod render;
pub mod tags;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

pub use histogram::{Histogram, HistogramUnit};
pub use prometheus::{render_prometheus, render_prometheus_with, PrometheusError};
pub use render::{
    render_json, render_json_with, render_text, render_text_with, BucketMode, StatType, StatsQuery,
};

/// Envoy's gauge import mode (kept for API fidelity; it affects only hot restart in Envoy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaugeMode {
    /// Summed across hot restarts.
    Accumulate,
    /// Not carried across hot restarts.
    NeverImport,
}

#[derive(Debug, Default)]
struct Cell {
    value: AtomicU64,
    used: AtomicBool,
}

impl Cell {
    fn mark(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }
}

/// A monotonically increasing counter.
#[derive(Debug, Clone)]
pub struct Counter(Arc<Cell>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.value.fetch_add(n, Ordering::Relaxed);
        self.0.mark();
    }
    /// Current value.
    pub fn value(&self) -> u64 {
        self.0.value.load(Ordering::Relaxed)
    }
    /// Whether it was ever updated.
    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }
    /// Sets the value to zero (`POST /reset_counters`); the counter stays "used".
    pub fn reset(&self) {
        self.0.value.store(0, Ordering::Relaxed);
    }
}

/// A gauge that goes up and down.
#[derive(Debug, Clone)]
pub struct Gauge(Arc<Cell>);

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.sub(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.value.fetch_add(n, Ordering::Relaxed);
        self.0.mark();
    }
    /// Subtracts `n`, saturating at zero.
    pub fn sub(&self, n: u64) {
        let _ = self
            .0
            .value
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
        self.0.mark();
    }
    /// Sets the value.
    pub fn set(&self, v: u64) {
        self.0.value.store(v, Ordering::Relaxed);
        self.0.mark();
    }
    /// Current value.
    pub fn value(&self) -> u64 {
        self.0.value.load(Ordering::Relaxed)
    }
    /// Whether it was ever updated.
    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }
}

/// A stat of any kind, as the renderers see it.
#[derive(Debug, Clone)]
pub enum Metric {
    /// A counter.
    Counter(Counter),
    /// A gauge.
    Gauge(Gauge),
    /// A histogram.
    Histogram(Histogram),
}

impl Metric {
    /// Whether the stat was ever written (Envoy's `used()`).
    pub fn used(&self) -> bool {
        match self {
            Metric::Counter(c) => c.used(),
            Metric::Gauge(g) => g.used(),
            Metric::Histogram(h) => h.used(),
        }
    }
}

/// A registered stat: its flat name, and its tag-extracted name and tags. Those are extracted on
/// first use: only the Prometheus output needs them, and the extractors' regexes are then built
/// at the first scrape rather than at start-up, for every stat registered.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Envoy flat name.
    pub name: String,
    tagged: OnceLock<Tagged>,
    /// The stat.
    pub metric: Metric,
}

/// A stat name split by Envoy's tag extractors.
#[derive(Debug, Clone)]
struct Tagged {
    name: String,
    tags: Vec<(String, String)>,
}

// === impl Entry ===

impl Entry {
    fn new(name: &str, metric: Metric) -> Self {
        Self { name: name.to_string(), tagged: OnceLock::new(), metric }
    }

    /// Name with tag values removed (`cluster.upstream_rq_total`).
    pub fn tag_extracted_name(&self) -> &str {
        &self.tagged().name
    }

    /// Extracted tags in Envoy's order.
    pub fn tags(&self) -> &[(String, String)] {
        &self.tagged().tags
    }

    fn tagged(&self) -> &Tagged {
        self.tagged.get_or_init(|| {
            let (name, tags) = tags::extract(&self.name);
            Tagged { name, tags }
        })
    }
}

/// The stats store.
#[derive(Clone, Default)]
pub struct Store {
    inner: Arc<RwLock<BTreeMap<String, Arc<Entry>>>>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn get_or_create(&self, name: &str, make: impl FnOnce() -> Metric) -> Metric {
        if let Some(e) = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return e.metric.clone();
        }
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| Arc::new(Entry::new(name, make())))
            .metric
            .clone()
    }

    /// Gets or creates the counter `name`. A name already used by another kind yields a
    /// detached counter (never rendered) so a naming bug cannot crash the proxy.
    pub fn counter(&self, name: &str) -> Counter {
        match self.get_or_create(name, || Metric::Counter(Counter(Arc::default()))) {
            Metric::Counter(c) => c,
            _ => Counter(Arc::default()),
        }
    }

    /// Gets or creates the gauge `name`.
    pub fn gauge(&self, name: &str, _mode: GaugeMode) -> Gauge {
        match self.get_or_create(name, || Metric::Gauge(Gauge(Arc::default()))) {
            Metric::Gauge(g) => g,
            _ => Gauge(Arc::default()),
        }
    }

    /// Gets or creates the histogram `name`.
    pub fn histogram(&self, name: &str, unit: HistogramUnit) -> Histogram {
        match self.get_or_create(name, || Metric::Histogram(Histogram::new(unit))) {
            Metric::Histogram(h) => h,
            _ => Histogram::new(unit),
        }
    }

    /// A copy of all entries, sorted by flat name (byte order).
    pub fn entries(&self) -> Vec<Entry> {
        self.shared_entries()
            .iter()
            .map(|e| Entry::clone(e))
            .collect()
    }

    /// All entries without copying them, sorted by flat name (byte order).
    pub(crate) fn shared_entries(&self) -> Vec<Arc<Entry>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Closes the current histogram interval of every histogram (Envoy's stats flush).
    pub fn flush_histograms(&self) {
        for e in self.shared_entries() {
            if let Metric::Histogram(h) = &e.metric {
                h.flush();
            }
        }
    }

    /// Sets every counter to zero (`POST /reset_counters`).
    pub fn reset_counters(&self) {
        for e in self.shared_entries() {
            if let Metric::Counter(c) = &e.metric {
                c.reset();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_share_the_same_cell() {
        let s = Store::new();
        let a = s.counter("cluster.x.upstream_rq_total");
        let b = s.counter("cluster.x.upstream_rq_total");
        a.inc();
        b.add(2);
        assert_eq!(a.value(), 3);
        assert!(a.used());
        let g = s.gauge("cluster.x.upstream_rq_active", GaugeMode::Accumulate);
        g.inc();
        g.dec();
        g.dec();
        assert_eq!(g.value(), 0, "gauges saturate at zero");
        assert!(g.used());
        s.reset_counters();
        assert_eq!(a.value(), 0);
        assert!(a.used());
    }

    #[test]
    fn counters_are_exact_under_concurrency() {
        let s = Store::new();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = s.counter("x.total");
                std::thread::spawn(move || (0..10_000).for_each(|_| c.inc()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(s.counter("x.total").value(), 40_000);
    }

    #[test]
    fn creation_races_yield_one_stat() {
        let s = Store::new();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..1000).for_each(|i| s.counter(&format!("c.{}", i % 10)).inc())
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(s.entries().len(), 10);
        assert_eq!(s.counter("c.3").value(), 400);
    }

    #[test]
    fn kind_conflicts_do_not_panic() {
        let s = Store::new();
        s.counter("a.b").inc();
        s.gauge("a.b", GaugeMode::Accumulate).set(5);
        assert_eq!(s.counter("a.b").value(), 1);
        assert_eq!(s.entries().len(), 1);
    }

    #[test]
    fn tags_are_extracted_when_first_asked_for() {
        let store = Store::new();
        store.counter("cluster.backend.upstream_rq_total").inc();
        let entries = store.shared_entries();
        let entry = &entries[0];
        assert!(entry.tagged.get().is_none(), "not at registration");
        assert_eq!(entry.tag_extracted_name(), "cluster.upstream_rq_total");
        assert_eq!(entry.tags(), [("envoy.cluster_name".to_string(), "backend".to_string())]);
        assert!(entry.tagged.get().is_some());
    }
}
