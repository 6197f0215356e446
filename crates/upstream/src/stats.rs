//! `cluster.<stat_name>.*` and `cluster_manager.*` stats with Envoy 1.40's names.
//!
//! The set is the one Envoy 1.40 creates for an HTTP cluster (checked against its `/stats`),
//! minus the stats Legate cannot keep truthfully: the `upstream_flow_control_*` counters and the
//! `upstream_cx_{rx,tx}_bytes_buffered` gauges (Legate does not account watermark flow control).
//! Stats that stay zero because Legate lacks the feature (subsets, zone routing, connection pool
//! limits, HTTP/3...) are created: zero is their true value here.

use std::sync::OnceLock;

use legate_stats::{Counter, Gauge, GaugeMode, Histogram, HistogramUnit, Store};

macro_rules! cluster_stats {
    (
        counters: [$($c:ident),* $(,)?],
        gauges: [$($g:ident),* $(,)?],
        histograms: [$($h:ident : $unit:ident),* $(,)?],
    ) => {
        /// Stats of one cluster, created eagerly under Envoy's names. Updates are single atomic
        /// operations on the cached handles.
        pub struct ClusterStats {
            $(
                #[doc = concat!("`cluster.<name>.", stringify!($c), "` counter.")]
                pub $c: Counter,
            )*
            $(
                #[doc = concat!("`cluster.<name>.", stringify!($g), "` gauge.")]
                pub $g: Gauge,
            )*
            $(
                #[doc = concat!("`cluster.<name>.", stringify!($h), "` histogram.")]
                pub $h: Histogram,
            )*
            /// `upstream_rq_time` (ms): created on first use, as Envoy's router does.
            pub upstream_rq_time: LazyHistogram,
            /// `circuit_breakers.{default,high}.{cx_open,cx_pool_open,rq_open,rq_pending_open,
            /// rq_retry_open}` gauges, in that order (default priority first). Legate keeps
            /// `cx_open`, `rq_open`, `rq_pending_open` and `rq_retry_open` of the default
            /// priority; the others stay 0.
            pub circuit_breakers_open: Vec<Gauge>,
            /// `default.total_match_count`: the default transport socket, matched once.
            pub default_total_match_count: Counter,
            store: Store,
            prefix: String,
            codes: CodeStats,
            internal: CodeStats,
            external: CodeStats,
            http1: OnceLock<[Counter; 4]>,
        }

        impl ClusterStats {
            /// Creates the stats of the cluster whose stat name (`alt_stat_name` or `name`) is
            /// `name`.
            pub fn new(store: &Store, name: &str) -> Self {
                let prefix = format!("cluster.{name}.");
                let c = |n: &str| store.counter(&format!("{prefix}{n}"));
                let g = |n: &str| store.gauge(&format!("{prefix}{n}"), GaugeMode::Accumulate);
                let circuit_breakers_open = ["default", "high"]
                    .iter()
                    .flat_map(|p| {
                        ["cx_open", "cx_pool_open", "rq_open", "rq_pending_open", "rq_retry_open"]
                            .map(|s| store.gauge(&format!("{prefix}circuit_breakers.{p}.{s}"), GaugeMode::NeverImport))
                    })
                    .collect();
                let default_total_match_count = c("default.total_match_count");
                default_total_match_count.inc();
                Self {
                    $($c: c(stringify!($c)),)*
                    $($g: g(stringify!($g)),)*
                    $($h: store.histogram(&format!("{prefix}{}", stringify!($h)), HistogramUnit::$unit),)*
                    upstream_rq_time: LazyHistogram::new(store, format!("{prefix}upstream_rq_time")),
                    circuit_breakers_open,
                    default_total_match_count,
                    codes: CodeStats::new(store, &prefix),
                    internal: CodeStats::new(store, &format!("{prefix}internal.")),
                    external: CodeStats::new(store, &format!("{prefix}external.")),
                    http1: OnceLock::new(),
                    store: store.clone(),
                    prefix,
                }
            }
        }
    };
}

cluster_stats! {
    counters: [
        assignment_stale, assignment_timeout_received, assignment_use_cached, bind_errors,
        lb_healthy_panic, lb_local_cluster_not_ok, lb_recalculate_zone_structures,
        lb_subsets_created, lb_subsets_fallback, lb_subsets_fallback_panic, lb_subsets_removed,
        lb_subsets_selected, lb_zone_cluster_too_small, lb_zone_no_capacity_left,
        lb_zone_routing_all_directly, lb_zone_routing_cross_zone, lb_zone_routing_sampled,
        membership_change, original_dst_host_invalid, retry_or_shadow_abandoned,
        update_attempt, update_empty, update_failure, update_no_rebuild, update_success,
        upstream_cx_close_notify, upstream_cx_connect_attempts_exceeded, upstream_cx_connect_fail,
        upstream_cx_connect_timeout, upstream_cx_connect_with_0_rtt, upstream_cx_destroy,
        upstream_cx_destroy_local, upstream_cx_destroy_local_with_active_rq,
        upstream_cx_destroy_remote, upstream_cx_destroy_remote_with_active_rq,
        upstream_cx_destroy_with_active_rq, upstream_cx_http1_total, upstream_cx_http2_total,
        upstream_cx_http3_total, upstream_cx_idle_timeout, upstream_cx_max_duration_reached,
        upstream_cx_max_requests, upstream_cx_none_healthy, upstream_cx_overflow,
        upstream_cx_pool_overflow, upstream_cx_preconnect_skipped, upstream_cx_protocol_error,
        upstream_cx_rx_bytes_total, upstream_cx_total, upstream_cx_tx_bytes_total,
        upstream_http3_broken, upstream_internal_redirect_failed_total,
        upstream_internal_redirect_succeeded_total, upstream_rq_0rtt, upstream_rq_active_overflow,
        upstream_rq_cancelled, upstream_rq_completed, upstream_rq_maintenance_mode,
        upstream_rq_max_duration_reached, upstream_rq_pending_failure_eject,
        upstream_rq_pending_overflow, upstream_rq_pending_total, upstream_rq_per_try_idle_timeout,
        upstream_rq_per_try_timeout, upstream_rq_retry, upstream_rq_retry_backoff_exponential,
        upstream_rq_retry_backoff_ratelimited, upstream_rq_retry_limit_exceeded,
        upstream_rq_retry_overflow, upstream_rq_retry_success, upstream_rq_rx_reset,
        upstream_rq_rx_reset_no_error, upstream_rq_timeout, upstream_rq_total, upstream_rq_tx_reset,
    ],
    gauges: [
        lb_subsets_active, max_host_weight, membership_degraded, membership_excluded,
        membership_healthy, membership_total, upstream_cx_active, upstream_queue_overloaded,
        upstream_rq_active, upstream_rq_pending_active, version, warming_state,
    ],
    histograms: [
        upstream_cx_connect_ms: Milliseconds,
        upstream_cx_length_ms: Milliseconds,
        upstream_rq_per_cx: Unspecified,
    ],
}

impl ClusterStats {
    /// Counts a response on the cluster: `upstream_rq_<code>`, `upstream_rq_<N>xx` and
    /// `upstream_rq_completed`. Handles are cached: no formatting after a code's first use.
    pub fn record_response_code(&self, code: u16) {
        self.codes.record(&self.store, code);
    }

    /// Charges a response the way Envoy's router does: [`Self::record_response_code`] plus the
    /// same three stats under `internal.` (request from an internal address, i.e.
    /// `x-envoy-internal: true`) or `external.`.
    pub fn record_response(&self, code: u16, internal: bool) {
        self.codes.record(&self.store, code);
        let origin = if internal { &self.internal } else { &self.external };
        origin.record(&self.store, code);
    }

    /// Records `upstream_rq_time` and its `internal.`/`external.` twin, as Envoy's router does.
    pub fn record_rq_time(&self, ms: u64, internal: bool) {
        self.upstream_rq_time.record(ms);
        let origin = if internal { &self.internal } else { &self.external };
        origin.rq_time.record(ms);
    }

    /// Creates the `http1.*` codec stats, as Envoy does when the first HTTP/1 codec of the
    /// cluster is made (Legate never drops headers or floods, so they stay zero).
    pub(crate) fn http1_codec_created(&self) {
        self.http1.get_or_init(|| {
            [
                "dropped_headers_with_underscores",
                "metadata_not_supported_error",
                "requests_rejected_with_underscores_in_headers",
                "response_flood",
            ]
            .map(|n| self.store.counter(&format!("{}http1.{n}", self.prefix)))
        });
    }
}

/// A histogram created in the store on its first record (Envoy creates some lazily, and they
/// only show in `/stats` once used).
pub struct LazyHistogram {
    store: Store,
    name: String,
    cell: OnceLock<Histogram>,
}

impl LazyHistogram {
    fn new(store: &Store, name: String) -> Self {
        Self { store: store.clone(), name, cell: OnceLock::new() }
    }

    /// Records `v` milliseconds.
    pub fn record(&self, v: u64) {
        self.cell.get_or_init(|| self.store.histogram(&self.name, HistogramUnit::Milliseconds)).record(v);
    }

    /// The histogram, if anything was recorded.
    pub fn get(&self) -> Option<&Histogram> {
        self.cell.get()
    }
}

/// `upstream_rq_<code>`, `upstream_rq_<N>xx`, `upstream_rq_completed` under one prefix, created
/// on first use.
struct CodeStats {
    prefix: String,
    completed: OnceLock<Counter>,
    classes: [OnceLock<Counter>; 5],
    codes: Box<[OnceLock<Counter>]>,
    rq_time: LazyHistogram,
}

impl CodeStats {
    fn new(store: &Store, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            completed: OnceLock::new(),
            classes: Default::default(),
            codes: (100..600).map(|_| OnceLock::new()).collect(),
            rq_time: LazyHistogram::new(store, format!("{prefix}upstream_rq_time")),
        }
    }

    fn record(&self, store: &Store, code: u16) {
        let counter = |cell: &OnceLock<Counter>, suffix: &dyn std::fmt::Display| {
            cell.get_or_init(|| store.counter(&format!("{}upstream_rq_{suffix}", self.prefix))).inc();
        };
        counter(&self.completed, &"completed");
        if (100..600).contains(&code) {
            counter(&self.classes[usize::from(code / 100) - 1], &format_args!("{}xx", code / 100));
            counter(&self.codes[usize::from(code - 100)], &code);
        }
    }
}

/// `cluster_manager.*` stats.
pub(crate) struct ManagerStats {
    pub cluster_added: Counter,
    pub cluster_updated: Counter,
    pub active_clusters: Gauge,
}

impl ManagerStats {
    /// Creates every `cluster_manager.*` stat Envoy 1.40 shows for a static bootstrap.
    pub fn new(store: &Store) -> Self {
        for n in ["cluster_modified", "cluster_removed", "cluster_updated_via_merge", "update_merge_cancelled", "update_out_of_merge_window"] {
            store.counter(&format!("cluster_manager.{n}"));
        }
        store.gauge("cluster_manager.warming_clusters", GaugeMode::NeverImport).set(0);
        Self {
            cluster_added: store.counter("cluster_manager.cluster_added"),
            cluster_updated: store.counter("cluster_manager.cluster_updated"),
            active_clusters: store.gauge("cluster_manager.active_clusters", GaugeMode::NeverImport),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `cluster.closed.*` stat Envoy 1.40 showed for an unused STATIC cluster (from its
    /// `/stats`), minus the flow-control stats Legate does not keep.
    const ENVOY_STATIC_CLUSTER: &str = "assignment_stale assignment_timeout_received assignment_use_cached bind_errors circuit_breakers.default.cx_open circuit_breakers.default.cx_pool_open circuit_breakers.default.rq_open circuit_breakers.default.rq_pending_open circuit_breakers.default.rq_retry_open circuit_breakers.high.cx_open circuit_breakers.high.cx_pool_open circuit_breakers.high.rq_open circuit_breakers.high.rq_pending_open circuit_breakers.high.rq_retry_open default.total_match_count lb_healthy_panic lb_local_cluster_not_ok lb_recalculate_zone_structures lb_subsets_active lb_subsets_created lb_subsets_fallback lb_subsets_fallback_panic lb_subsets_removed lb_subsets_selected lb_zone_cluster_too_small lb_zone_no_capacity_left lb_zone_routing_all_directly lb_zone_routing_cross_zone lb_zone_routing_sampled max_host_weight membership_change membership_degraded membership_excluded membership_healthy membership_total original_dst_host_invalid retry_or_shadow_abandoned update_attempt update_empty update_failure update_no_rebuild update_success upstream_cx_active upstream_cx_close_notify upstream_cx_connect_attempts_exceeded upstream_cx_connect_fail upstream_cx_connect_timeout upstream_cx_connect_with_0_rtt upstream_cx_destroy upstream_cx_destroy_local upstream_cx_destroy_local_with_active_rq upstream_cx_destroy_remote upstream_cx_destroy_remote_with_active_rq upstream_cx_destroy_with_active_rq upstream_cx_http1_total upstream_cx_http2_total upstream_cx_http3_total upstream_cx_idle_timeout upstream_cx_max_duration_reached upstream_cx_max_requests upstream_cx_none_healthy upstream_cx_overflow upstream_cx_pool_overflow upstream_cx_preconnect_skipped upstream_cx_protocol_error upstream_cx_rx_bytes_total upstream_cx_total upstream_cx_tx_bytes_total upstream_http3_broken upstream_internal_redirect_failed_total upstream_internal_redirect_succeeded_total upstream_queue_overloaded upstream_rq_0rtt upstream_rq_active upstream_rq_active_overflow upstream_rq_cancelled upstream_rq_completed upstream_rq_maintenance_mode upstream_rq_max_duration_reached upstream_rq_pending_active upstream_rq_pending_failure_eject upstream_rq_pending_overflow upstream_rq_pending_total upstream_rq_per_try_idle_timeout upstream_rq_per_try_timeout upstream_rq_retry upstream_rq_retry_backoff_exponential upstream_rq_retry_backoff_ratelimited upstream_rq_retry_limit_exceeded upstream_rq_retry_overflow upstream_rq_retry_success upstream_rq_rx_reset upstream_rq_rx_reset_no_error upstream_rq_timeout upstream_rq_total upstream_rq_tx_reset version warming_state upstream_cx_connect_ms upstream_cx_length_ms upstream_rq_per_cx";

    #[test]
    fn creates_envoys_cluster_stats() {
        let store = Store::new();
        let _s = ClusterStats::new(&store, "closed");
        let mut ours: Vec<String> = store
            .entries()
            .into_iter()
            .filter_map(|e| e.name.strip_prefix("cluster.closed.").map(str::to_string))
            .collect();
        ours.sort();
        let mut envoy: Vec<String> = ENVOY_STATIC_CLUSTER.split(' ').map(str::to_string).collect();
        envoy.sort();
        assert_eq!(ours, envoy);
        assert_eq!(store.counter("cluster.closed.default.total_match_count").value(), 1);
    }

    #[test]
    fn response_codes_are_counted_under_envoy_names() {
        let store = Store::new();
        let s = ClusterStats::new(&store, "film");
        s.record_response_code(200);
        s.record_response(200, false);
        s.record_response(503, true);
        s.record_response_code(42);
        assert_eq!(store.counter("cluster.film.upstream_rq_200").value(), 2);
        assert_eq!(store.counter("cluster.film.upstream_rq_2xx").value(), 2);
        assert_eq!(store.counter("cluster.film.upstream_rq_503").value(), 1);
        assert_eq!(store.counter("cluster.film.upstream_rq_completed").value(), 4);
        assert_eq!(store.counter("cluster.film.external.upstream_rq_200").value(), 1);
        assert_eq!(store.counter("cluster.film.external.upstream_rq_completed").value(), 1);
        assert_eq!(store.counter("cluster.film.internal.upstream_rq_5xx").value(), 1);
        assert!(store.entries().iter().all(|e| !e.name.ends_with("upstream_rq_time")), "rq_time is lazy");
        s.record_rq_time(7, false);
        let names: Vec<String> = store.entries().into_iter().map(|e| e.name).collect();
        assert!(names.contains(&"cluster.film.upstream_rq_time".to_string()));
        assert!(names.contains(&"cluster.film.external.upstream_rq_time".to_string()));
    }

    #[test]
    fn cluster_manager_stats_exist() {
        let store = Store::new();
        let _m = ManagerStats::new(&store);
        let names: Vec<String> = store.entries().into_iter().map(|e| e.name).collect();
        for n in ["active_clusters", "cluster_added", "cluster_modified", "cluster_removed", "cluster_updated", "cluster_updated_via_merge", "update_merge_cancelled", "update_out_of_merge_window", "warming_clusters"] {
            assert!(names.contains(&format!("cluster_manager.{n}")), "{n}");
        }
    }
}
