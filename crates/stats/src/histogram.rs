//! Lock-free histograms: exact counts for Envoy's 19 default Prometheus buckets, plus log-linear
//! buckets for quantile estimates (relative error under ~7%).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Envoy's default histogram bucket bounds.
pub const DEFAULT_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
    300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Quantiles Envoy prints in `/stats`.
pub const QUANTILES: [f64; 10] = [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0];

/// Unit of recorded values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramUnit {
    /// No unit.
    Unspecified,
    /// Bytes.
    Bytes,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
}

/// Sub-buckets per power of two in the quantile buckets.
const SUB: u64 = 8;
/// Number of quantile buckets (covers the whole u64 range).
const FINE: usize = (64 * SUB) as usize;

#[derive(Debug)]
struct Inner {
    unit: HistogramUnit,
    buckets: [AtomicU64; 19],
    fine: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
}

/// A histogram handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Inner>);

/// Index of the log-linear bucket holding `v`.
fn fine_index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - u64::from(v.leading_zeros());
    let shift = msb - 3; // SUB = 2^3
    let sub = (v >> shift) & (SUB - 1);
    ((shift + 1) * SUB + sub) as usize
}

/// Smallest value of fine bucket `i` and its width.
fn fine_bounds(i: usize) -> (f64, f64) {
    let i = i as u64;
    if i < SUB {
        return (i as f64, 1.0);
    }
    let shift = i / SUB - 1;
    let sub = i % SUB;
    let lower = ((SUB + sub) << shift) as f64;
    (lower, (1u64 << shift) as f64)
}

impl Histogram {
    /// A new, empty histogram.
    pub fn new(unit: HistogramUnit) -> Self {
        Self(Arc::new(Inner {
            unit,
            buckets: Default::default(),
            fine: (0..FINE).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }))
    }

    /// Records one value.
    pub fn record(&self, v: u64) {
        let i = &self.0;
        let vf = v as f64;
        if let Some(b) = DEFAULT_BUCKETS.iter().position(|bound| vf <= *bound) {
            i.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        i.fine[fine_index(v)].fetch_add(1, Ordering::Relaxed);
        i.sum.fetch_add(v, Ordering::Relaxed);
        i.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Unit of the values.
    pub fn unit(&self) -> HistogramUnit {
        self.0.unit
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    /// Sum of recorded values.
    pub fn sum(&self) -> u64 {
        self.0.sum.load(Ordering::Relaxed)
    }

    /// Cumulative counts for each of [`DEFAULT_BUCKETS`].
    pub fn cumulative_buckets(&self) -> [u64; 19] {
        let mut out = [0; 19];
        let mut acc = 0;
        for (o, b) in out.iter_mut().zip(self.0.buckets.iter()) {
            acc += b.load(Ordering::Relaxed);
            *o = acc;
        }
        out
    }

    /// Estimated quantile `q` (0..=1), `None` when empty. Interpolates within a bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.0.fine.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = q.clamp(0.0, 1.0) * total as f64;
        let mut seen = 0u64;
        for (i, c) in counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let (lower, width) = fine_bounds(i);
            if (seen + c) as f64 >= target {
                let frac = if *c == 0 { 0.0 } else { ((target - seen as f64) / *c as f64).clamp(0.0, 1.0) };
                return Some(lower + frac * width);
            }
            seen += c;
        }
        let last = counts.iter().rposition(|c| *c > 0).unwrap_or(0);
        let (lower, width) = fine_bounds(last);
        Some(lower + width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fine_buckets_cover_values_in_order() {
        let mut last = 0;
        for v in [0u64, 1, 7, 8, 9, 15, 16, 17, 100, 1000, 1 << 40, u64::MAX] {
            let i = fine_index(v);
            assert!(i >= last && i < FINE, "{v} -> {i}");
            let (lower, width) = fine_bounds(i);
            assert!(lower <= v as f64 && (v as f64) <= lower + width, "{v} in [{lower}, +{width})");
            last = i;
        }
    }

    #[test]
    fn default_buckets_are_cumulative_and_exact() {
        let h = Histogram::new(HistogramUnit::Milliseconds);
        for v in [0, 1, 3, 10, 11, 4_000_000] {
            h.record(v);
        }
        let c = h.cumulative_buckets();
        assert_eq!(c[0], 1, "le=0.5");
        assert_eq!(c[1], 2, "le=1");
        assert_eq!(c[2], 3, "le=5");
        assert_eq!(c[3], 4, "le=10");
        assert_eq!(c[4], 5, "le=25");
        assert_eq!(c[18], 5, "the 4e6 value is only in +Inf");
        assert_eq!(h.count(), 6);
        assert_eq!(h.sum(), 4_000_025);
    }

    #[test]
    fn quantiles_are_close() {
        let h = Histogram::new(HistogramUnit::Milliseconds);
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=1000 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((p50 - 500.0).abs() / 500.0 < 0.07, "{p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.07, "{p99}");
    }
}
