//! `cluster.<name>.*` stats with Envoy's names.

use std::sync::OnceLock;

use legate_stats::{Counter, Gauge, GaugeMode, Histogram, HistogramUnit, Store};

/// Stats of one cluster. Every stat here is updated by Legate.
pub struct ClusterStats {
    /// `upstream_rq_total`.
    pub upstream_rq_total: Counter,
    /// `upstream_rq_active`.
    pub upstream_rq_active: Gauge,
    /// `upstream_rq_completed`.
    pub upstream_rq_completed: Counter,
    /// `upstream_rq_timeout`.
    pub upstream_rq_timeout: Counter,
    /// `upstream_rq_time` (ms).
    pub upstream_rq_time: Histogram,
    /// `upstream_cx_total`.
    pub upstream_cx_total: Counter,
    /// `upstream_cx_active`.
    pub upstream_cx_active: Gauge,
    /// `upstream_cx_http1_total`.
    pub upstream_cx_http1_total: Counter,
    /// `upstream_cx_connect_fail`.
    pub upstream_cx_connect_fail: Counter,
    /// `upstream_cx_connect_timeout`.
    pub upstream_cx_connect_timeout: Counter,
    /// `upstream_cx_connect_ms`.
    pub upstream_cx_connect_ms: Histogram,
    /// `upstream_cx_length_ms`.
    pub upstream_cx_length_ms: Histogram,
    /// `upstream_cx_destroy`.
    pub upstream_cx_destroy: Counter,
    /// `upstream_cx_rx_bytes_total`.
    pub upstream_cx_rx_bytes_total: Counter,
    /// `upstream_cx_tx_bytes_total`.
    pub upstream_cx_tx_bytes_total: Counter,
    /// `upstream_cx_none_healthy`.
    pub upstream_cx_none_healthy: Counter,
    /// `membership_total`.
    pub membership_total: Gauge,
    /// `membership_healthy`.
    pub membership_healthy: Gauge,
    /// `membership_degraded`.
    pub membership_degraded: Gauge,
    /// `membership_excluded`.
    pub membership_excluded: Gauge,
    /// `membership_change`.
    pub membership_change: Counter,
    /// `max_host_weight`.
    pub max_host_weight: Gauge,
    /// `update_attempt`.
    pub update_attempt: Counter,
    /// `update_success`.
    pub update_success: Counter,
    /// `update_failure`.
    pub update_failure: Counter,
    /// `update_empty`.
    pub update_empty: Counter,
    /// `update_no_rebuild`.
    pub update_no_rebuild: Counter,
    /// `lb_healthy_panic` (never entered: all hosts are healthy without health checking).
    pub lb_healthy_panic: Counter,
    store: Store,
    prefix: String,
    codes: Box<[OnceLock<Counter>]>,
    classes: [Counter; 5],
}

impl ClusterStats {
    /// Creates the stats of the cluster whose stat name is `name`.
    pub fn new(store: &Store, name: &str) -> Self {
        let prefix = format!("cluster.{name}.");
        let c = |n: &str| store.counter(&format!("{prefix}{n}"));
        let g = |n: &str| store.gauge(&format!("{prefix}{n}"), GaugeMode::NeverImport);
        let h = |n: &str| store.histogram(&format!("{prefix}{n}"), HistogramUnit::Milliseconds);
        Self {
            upstream_rq_total: c("upstream_rq_total"),
            upstream_rq_active: g("upstream_rq_active"),
            upstream_rq_completed: c("upstream_rq_completed"),
            upstream_rq_timeout: c("upstream_rq_timeout"),
            upstream_rq_time: h("upstream_rq_time"),
            upstream_cx_total: c("upstream_cx_total"),
            upstream_cx_active: g("upstream_cx_active"),
            upstream_cx_http1_total: c("upstream_cx_http1_total"),
            upstream_cx_connect_fail: c("upstream_cx_connect_fail"),
            upstream_cx_connect_timeout: c("upstream_cx_connect_timeout"),
            upstream_cx_connect_ms: h("upstream_cx_connect_ms"),
            upstream_cx_length_ms: h("upstream_cx_length_ms"),
            upstream_cx_destroy: c("upstream_cx_destroy"),
            upstream_cx_rx_bytes_total: c("upstream_cx_rx_bytes_total"),
            upstream_cx_tx_bytes_total: c("upstream_cx_tx_bytes_total"),
            upstream_cx_none_healthy: c("upstream_cx_none_healthy"),
            membership_total: g("membership_total"),
            membership_healthy: g("membership_healthy"),
            membership_degraded: g("membership_degraded"),
            membership_excluded: g("membership_excluded"),
            membership_change: c("membership_change"),
            max_host_weight: g("max_host_weight"),
            update_attempt: c("update_attempt"),
            update_success: c("update_success"),
            update_failure: c("update_failure"),
            update_empty: c("update_empty"),
            update_no_rebuild: c("update_no_rebuild"),
            lb_healthy_panic: c("lb_healthy_panic"),
            classes: [1, 2, 3, 4, 5].map(|n| c(&format!("upstream_rq_{n}xx"))),
            codes: (100..600).map(|_| OnceLock::new()).collect(),
            store: store.clone(),
            prefix,
        }
    }

    /// Counts a response: `upstream_rq_<code>`, `upstream_rq_<N>xx`, `upstream_rq_completed`.
    pub fn record_response_code(&self, code: u16) {
        self.upstream_rq_completed.inc();
        if !(100..600).contains(&code) {
            return;
        }
        self.classes[usize::from(code / 100) - 1].inc();
        self.codes[usize::from(code - 100)]
            .get_or_init(|| self.store.counter(&format!("{}upstream_rq_{code}", self.prefix)))
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_are_counted_under_envoy_names() {
        let store = Store::new();
        let s = ClusterStats::new(&store, "film");
        s.record_response_code(200);
        s.record_response_code(200);
        s.record_response_code(503);
        assert_eq!(store.counter("cluster.film.upstream_rq_200").value(), 2);
        assert_eq!(store.counter("cluster.film.upstream_rq_2xx").value(), 2);
        assert_eq!(store.counter("cluster.film.upstream_rq_503").value(), 1);
        assert_eq!(store.counter("cluster.film.upstream_rq_completed").value(), 3);
    }
}
