//! Lock-free histograms with the exact bins of Envoy's histogram library (circllhist).
//!
//! Envoy records every value into a log-linear bin of two significant decimal digits
//! (`[1.0, 1.1)`, `[10, 11)`, `[110, 120)`, ...) and derives everything it prints from those
//! bins: quantiles, the Prometheus bucket counts and an approximate sum. Legate keeps one atomic
//! counter per bin, so its numbers are the numbers Envoy prints for the same recorded values.
//!
//! Intervals: Envoy merges histograms at every stats flush and reports quantiles of the last
//! flush interval next to the cumulative ones. [`Histogram::flush`] (driven by
//! [`crate::Store::flush_histograms`]) closes an interval the same way.
//!
//! Deviation from Envoy: the cumulative view is live (Envoy's lags until the next flush), so a
//! value shows in `/stats` and `/stats/prometheus` as soon as it is recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Envoy's default histogram bucket bounds.
pub const DEFAULT_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The bin key (`exp * 100 + val`) of each default bucket bound, as circllhist maps it.
const BOUND_KEYS: [i32; 19] = [
    -50, 10, 50, 110, 125, 150, 210, 225, 250, 310, 325, 350, 410, 430, 460, 530, 560, 618, 636,
];

/// Quantiles Envoy computes.
pub const QUANTILES: [f64; 10] = [0.0, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999, 1.0];

/// Labels of [`QUANTILES`] as Envoy prints them (`P{:g}` of the percentage).
pub const QUANTILE_LABELS: [&str; 10] = [
    "P0", "P25", "P50", "P75", "P90", "P95", "P99", "P99.5", "P99.9", "P100",
];

const POW10: [f64; 20] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19,
];

/// Key of the zero bin (it sorts before every positive bin).
const ZERO_KEY: i32 = i32::MIN;

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

/// One non-empty bin: `count` values in `[lower, lower + width)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    key: i32,
    /// Values recorded in the bin.
    pub count: u64,
}

impl Bin {
    fn exp_val(&self) -> (usize, f64) {
        (
            self.key.div_euclid(100) as usize,
            f64::from(self.key.rem_euclid(100)),
        )
    }
    /// Inclusive lower bound (0 for the zero bin).
    pub fn lower(&self) -> f64 {
        if self.key == ZERO_KEY {
            return 0.0;
        }
        let (exp, val) = self.exp_val();
        (val / 10.0) * POW10[exp]
    }
    /// Width (0 for the zero bin).
    pub fn width(&self) -> f64 {
        if self.key == ZERO_KEY {
            return 0.0;
        }
        POW10[self.exp_val().0] / 10.0
    }
    /// circllhist's minimum-relative-error midpoint, used for the approximate sum.
    fn midpoint(&self) -> f64 {
        if self.key == ZERO_KEY {
            return 0.0;
        }
        let (bottom, interval) = (self.lower(), self.width());
        let top = bottom + interval;
        bottom + interval * (bottom / (bottom + top))
    }
}

/// Computed statistics of a set of bins (a cumulative or an interval view).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    bins: Vec<Bin>,
}

impl Snapshot {
    /// The non-empty bins in ascending order.
    pub fn bins(&self) -> &[Bin] {
        &self.bins
    }

    /// Number of values.
    pub fn sample_count(&self) -> u64 {
        self.bins.iter().map(|b| b.count).sum()
    }

    /// Envoy's approximate sum (each bin counted at its midpoint).
    pub fn sample_sum(&self) -> f64 {
        self.bins
            .iter()
            .fold(0.0, |sum, b| sum + b.midpoint() * b.count as f64)
    }

    /// Cumulative counts at each of [`DEFAULT_BUCKETS`] (a bucket holds every bin up to and
    /// including the bin of its bound, as circllhist counts).
    pub fn computed_buckets(&self) -> [u64; 19] {
        let mut out = [0; 19];
        for (o, bound) in out.iter_mut().zip(BOUND_KEYS) {
            *o = self
                .bins
                .iter()
                .take_while(|b| b.key <= bound)
                .map(|b| b.count)
                .sum();
        }
        out
    }

    /// Per-bucket (non-cumulative) counts at each of [`DEFAULT_BUCKETS`].
    pub fn disjoint_buckets(&self) -> [u64; 19] {
        let mut out = self.computed_buckets();
        for i in (1..out.len()).rev() {
            out[i] -= out[i - 1];
        }
        out
    }

    /// Envoy's (Hyndman-Fan type 1) quantile estimates for [`QUANTILES`]; NaN when empty.
    pub fn quantiles(&self) -> [f64; 10] {
        self.quantiles_of(&QUANTILES)
    }

    /// Quantile estimates for ascending `qs` in `[0, 1]`.
    pub fn quantiles_of<const N: usize>(&self, qs: &[f64; N]) -> [f64; N] {
        let total = self.sample_count() as f64;
        if total == 0.0 {
            return [f64::NAN; N];
        }
        let mut out = [0.0; N];
        let mut i = 0;
        let (mut lower_cnt, mut upper_cnt) = (0.0, self.bins[0].count as f64);
        for (o, q) in out.iter_mut().zip(qs) {
            let qn = total * q;
            while i + 1 < self.bins.len() && upper_cnt < qn {
                i += 1;
                lower_cnt = upper_cnt;
                upper_cnt = lower_cnt + self.bins[i].count as f64;
            }
            let bin = self.bins[i];
            let (left, width) = (bin.lower(), bin.width());
            *o = if width == 0.0 {
                left
            } else {
                let n = bin.count as f64;
                let k = (qn - lower_cnt).ceil();
                let k = if k == 0.0 { 1.0 } else { k };
                left + k / (n + 1.0) * width
            };
        }
        out
    }

    fn minus(&self, earlier: &Snapshot) -> Snapshot {
        let bins = self
            .bins
            .iter()
            .filter_map(|b| {
                let before = earlier
                    .bins
                    .iter()
                    .find(|e| e.key == b.key)
                    .map_or(0, |e| e.count);
                let count = b.count.saturating_sub(before);
                (count > 0).then_some(Bin { key: b.key, count })
            })
            .collect();
        Snapshot { bins }
    }
}

#[derive(Debug, Default)]
struct Intervals {
    /// Cumulative snapshot at the last flush.
    at_last_flush: Snapshot,
    /// What the last completed interval recorded.
    last_interval: Snapshot,
}

#[derive(Debug)]
struct Inner {
    unit: HistogramUnit,
    /// Index 0: zero; 1..=9: `[v, v + 0.1)`; 10..=99: `[v, v + 1)`.
    low: [AtomicU64; 100],
    /// Decimal exponents 2..=19, 90 two-digit mantissas each, allocated on first use.
    high: [OnceLock<Box<[AtomicU64; 90]>>; 18],
    intervals: Mutex<Intervals>,
}

/// A histogram handle (cheap to clone). [`Histogram::record`] is one atomic add.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Inner>);

const POW10_U64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

impl Histogram {
    /// A new, empty histogram.
    pub fn new(unit: HistogramUnit) -> Self {
        Self(Arc::new(Inner {
            unit,
            low: std::array::from_fn(|_| AtomicU64::new(0)),
            high: Default::default(),
            intervals: Mutex::default(),
        }))
    }

    /// Records one value (in the histogram's unit).
    pub fn record(&self, v: u64) {
        if v < 100 {
            self.0.low[v as usize].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let exp = v.ilog10() as usize; // 2..=19
        let val = (v / POW10_U64[exp - 1]) as usize; // 10..=99
        let segment = self.0.high[exp - 2]
            .get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
        segment[val - 10].fetch_add(1, Ordering::Relaxed);
    }

    /// Unit of the values.
    pub fn unit(&self) -> HistogramUnit {
        self.0.unit
    }

    /// Whether any value was ever recorded.
    pub fn used(&self) -> bool {
        self.0.low.iter().any(|c| c.load(Ordering::Relaxed) > 0)
            || self
                .0
                .high
                .iter()
                .filter_map(OnceLock::get)
                .any(|s| s.iter().any(|c| c.load(Ordering::Relaxed) > 0))
    }

    /// Everything recorded so far.
    pub fn cumulative(&self) -> Snapshot {
        let mut bins = Vec::new();
        for (i, c) in self.0.low.iter().enumerate() {
            let count = c.load(Ordering::Relaxed);
            if count > 0 {
                let key = match i {
                    0 => ZERO_KEY,
                    1..=9 => i as i32 * 10,
                    _ => 100 + i as i32,
                };
                bins.push(Bin { key, count });
            }
        }
        for (e, segment) in self.0.high.iter().enumerate() {
            for (v, c) in segment.get().into_iter().flat_map(|s| s.iter().enumerate()) {
                let count = c.load(Ordering::Relaxed);
                if count > 0 {
                    bins.push(Bin {
                        key: (e as i32 + 2) * 100 + 10 + v as i32,
                        count,
                    });
                }
            }
        }
        Snapshot { bins }
    }

    /// What the last completed flush interval recorded (empty before the first flush).
    pub fn interval(&self) -> Snapshot {
        self.0
            .intervals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_interval
            .clone()
    }

    /// Closes the current interval (Envoy's per-flush histogram merge).
    pub fn flush(&self) {
        let now = self.cumulative();
        let mut iv = self.0.intervals.lock().unwrap_or_else(|e| e.into_inner());
        iv.last_interval = now.minus(&iv.at_last_flush);
        iv.at_last_flush = now;
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.cumulative().sample_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram {
        let h = Histogram::new(HistogramUnit::Milliseconds);
        values.iter().for_each(|v| h.record(*v));
        h
    }

    #[test]
    fn bins_follow_circllhist() {
        let s = hist(&[0, 1, 9, 10, 99, 100, 109, 110, 12345, u64::MAX]).cumulative();
        let got: Vec<(f64, f64, u64)> = s
            .bins()
            .iter()
            .map(|b| (b.lower(), b.width(), b.count))
            .collect();
        assert_eq!(
            got,
            vec![
                (0.0, 0.0, 1),
                (1.0, 0.1, 1),
                (9.0, 0.1, 1),
                (10.0, 1.0, 1),
                (99.0, 1.0, 1),
                (100.0, 10.0, 2),
                (110.00000000000001, 10.0, 1), // 11 / 10.0 * 100, exactly as circllhist computes it
                (12000.0, 1000.0, 1),
                (18e18, 1e18, 1),
            ]
        );
    }

    /// Values and outputs captured from Envoy 1.40 (`/stats?histogram_buckets=detailed`).
    #[test]
    fn quantiles_match_envoy() {
        // totals=1,0.1:10, 2,0.1:4, 12,1:1
        let mut v = vec![1; 10];
        v.extend([2, 2, 2, 2, 12]);
        let q = hist(&v).cumulative().quantiles();
        assert_eq!(q[0], 1.009090909090909);
        assert_eq!(q[1], 1.0363636363636364);
        assert_eq!(q[2], 1.0727272727272728);
        assert_eq!(q[3], 2.04);
        assert_eq!(q[4], 2.08);
        assert_eq!(q[5], 12.5);
        assert_eq!(q[9], 12.5);
        // totals=0,0:2, 1,0.1:12, 11,1:1
        let mut v = vec![0, 0];
        v.extend([1; 12]);
        v.push(11);
        let q = hist(&v).cumulative().quantiles();
        assert_eq!(q[0], 0.0);
        assert_eq!(q[1], 1.0153846153846153);
        assert_eq!(q[2], 1.0461538461538462);
        assert_eq!(q[3], 1.0769230769230769);
        assert_eq!(q[4], 1.0923076923076924);
        assert_eq!(q[5], 11.5);
        assert!(hist(&[]).cumulative().quantiles()[0].is_nan());
    }

    #[test]
    fn buckets_and_sum_match_envoy() {
        let s = hist(&[1, 1, 1, 1, 1]).cumulative();
        assert_eq!(s.sample_sum(), 5.238095238095238);
        assert_eq!(s.computed_buckets()[0], 0, "le=0.5");
        assert_eq!(s.computed_buckets()[1], 5, "le=1 holds the [1, 1.1) bin");
        let s = hist(&[0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 11]).cumulative();
        assert_eq!(s.computed_buckets()[..5], [2, 14, 14, 14, 15]);
        assert_eq!(s.disjoint_buckets()[..5], [2, 12, 0, 0, 1]);
        let s = hist(&[1099, 1100, 3_600_000, 4_000_000]).cumulative();
        let c = s.computed_buckets();
        assert_eq!(
            (c[9], c[10], c[18]),
            (1, 2, 3),
            "le=1000 holds [1000, 1100)"
        );
        assert_eq!(s.sample_count(), 4);
    }

    #[test]
    fn intervals_close_on_flush() {
        let h = hist(&[1, 1]);
        assert_eq!(h.interval().sample_count(), 0);
        h.flush();
        assert_eq!(h.interval().sample_count(), 2);
        h.record(5);
        h.flush();
        assert_eq!(h.interval().bins().len(), 1);
        assert_eq!(h.interval().quantiles()[0], 5.05);
        h.flush();
        assert!(h.interval().quantiles()[0].is_nan());
        assert_eq!(h.cumulative().sample_count(), 3);
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let h = Histogram::new(HistogramUnit::Milliseconds);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || (0..5000u64).for_each(|i| h.record(i * (t + 1))))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(h.count(), 20_000);
    }
}
