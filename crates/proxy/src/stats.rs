//! Stats owned by listeners and HTTP connection managers, with Envoy's names.

use legate_stats::{Counter, Gauge, GaugeMode, Histogram, HistogramUnit, Store};

/// `downstream_rq_1xx` .. `downstream_rq_5xx` counters of one scope.
#[derive(Clone)]
pub struct ResponseClassCounters {
    classes: [Counter; 5],
}

impl ResponseClassCounters {
    /// Creates `<prefix>downstream_rq_{1..5}xx`.
    pub fn new(store: &Store, prefix: &str) -> Self {
        let mk = |n: u8| store.counter(&format!("{prefix}downstream_rq_{n}xx"));
        Self { classes: [mk(1), mk(2), mk(3), mk(4), mk(5)] }
    }

    /// Counts one response with `status`.
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100);
        if (1..=5).contains(&class) {
            self.classes[class - 1].inc();
        }
    }
}

/// Listener counters of features Legate refuses in config or does not have (runtime and overload
/// manager connection limits, `transport_socket_connect_timeout`, extension config discovery):
/// created under Envoy's names, and 0, their true value here.
const LISTENER_ABSENT_FEATURE_COUNTERS: [&str; 6] = [
    "downstream_cx_overflow",
    "downstream_cx_overload_reject",
    "downstream_global_cx_overflow",
    "downstream_cx_transport_socket_connect_timeout",
    "extension_config_missing",
    "network_extension_config_missing",
];

/// HCM and router stats of features Legate refuses in config or does not have: HTTP/3,
/// `max_connection_duration`, `max_requests_per_connection` and `request_headers_timeout` of
/// the HCM, the overload manager, `original_ip_detection_extensions`, path normalization
/// redirects, internal redirects, tracing and filters that buffer responses. Created under
/// Envoy's names (as Envoy creates them all), and 0, their true value here.
const HCM_ABSENT_FEATURE_COUNTERS: [&str; 21] = [
    "downstream_cx_http3_total",
    "downstream_rq_http3_total",
    "downstream_cx_max_duration_reached",
    "downstream_cx_max_requests_reached",
    "downstream_rq_header_timeout",
    "downstream_rq_overload_close",
    "downstream_cx_overload_disable_keepalive",
    "rq_overload_local_reply",
    "downstream_rq_rejected_via_ip_detection",
    "downstream_rq_redirected_with_normalized_path",
    "passthrough_internal_redirect_bad_location",
    "passthrough_internal_redirect_no_route",
    "passthrough_internal_redirect_predicate",
    "passthrough_internal_redirect_too_many_redirects",
    "passthrough_internal_redirect_unsafe_scheme",
    "rs_too_large",
    "tracing.client_enabled",
    "tracing.health_check",
    "tracing.not_traceable",
    "tracing.random_sampling",
    "tracing.service_forced",
];

/// Stats of one listener: `listener.<address>.*`.
#[derive(Clone)]
pub struct ListenerStats {
    /// `downstream_cx_total`.
    pub downstream_cx_total: Counter,
    /// `downstream_cx_active`.
    pub downstream_cx_active: Gauge,
    /// `downstream_cx_destroy`.
    pub downstream_cx_destroy: Counter,
    /// `downstream_cx_length_ms`.
    pub downstream_cx_length_ms: Histogram,
    /// `no_filter_chain_match`.
    pub no_filter_chain_match: Counter,
    /// `server.total_connections`: open connections of every listener.
    pub server_total_connections: Gauge,
}

impl ListenerStats {
    /// Creates the stats of the listener whose stat scope is `listener.<addr>.`.
    pub fn new(store: &Store, scope: &str) -> Self {
        for name in LISTENER_ABSENT_FEATURE_COUNTERS {
            store.counter(&format!("{scope}{name}"));
        }
        Self {
            downstream_cx_total: store.counter(&format!("{scope}downstream_cx_total")),
            downstream_cx_active: store.gauge(&format!("{scope}downstream_cx_active"), GaugeMode::Accumulate),
            downstream_cx_destroy: store.counter(&format!("{scope}downstream_cx_destroy")),
            no_filter_chain_match: store.counter(&format!("{scope}no_filter_chain_match")),
            downstream_cx_length_ms: store
                .histogram(&format!("{scope}downstream_cx_length_ms"), HistogramUnit::Milliseconds),
            server_total_connections: store.gauge("server.total_connections", GaugeMode::NeverImport),
        }
    }

}

/// Per-worker listener stats: `listener.<address>.worker_<n>.*`.
#[derive(Clone)]
pub struct WorkerListenerStats {
    /// `downstream_cx_total`.
    pub downstream_cx_total: Counter,
    /// `downstream_cx_active`.
    pub downstream_cx_active: Gauge,
}

impl WorkerListenerStats {
    /// Creates the worker-scoped stats under `listener.<addr>.worker_<n>.`.
    pub fn new(store: &Store, scope: &str, worker: usize) -> Self {
        Self {
            downstream_cx_total: store.counter(&format!("{scope}worker_{worker}.downstream_cx_total")),
            downstream_cx_active: store
                .gauge(&format!("{scope}worker_{worker}.downstream_cx_active"), GaugeMode::Accumulate),
        }
    }
}

/// HTTP connection manager stats: `http.<stat_prefix>.*`, plus the per-listener response classes
/// `listener.<addr>.http.<stat_prefix>.downstream_rq_<N>xx`.
#[derive(Clone)]
pub struct HcmStats {
    /// `downstream_cx_total`.
    pub downstream_cx_total: Counter,
    /// `downstream_cx_active`.
    pub downstream_cx_active: Gauge,
    /// `downstream_cx_http1_total`.
    pub downstream_cx_http1_total: Counter,
    /// `downstream_cx_http1_active`.
    pub downstream_cx_http1_active: Gauge,
    /// `downstream_cx_http2_total`.
    pub downstream_cx_http2_total: Counter,
    /// `downstream_cx_http2_active`.
    pub downstream_cx_http2_active: Gauge,
    /// `downstream_cx_ssl_total`: connections over TLS.
    pub downstream_cx_ssl_total: Counter,
    /// `downstream_cx_ssl_active`.
    pub downstream_cx_ssl_active: Gauge,
    /// `downstream_cx_destroy`.
    pub downstream_cx_destroy: Counter,
    /// `downstream_cx_destroy_local`: connections Legate closed.
    pub downstream_cx_destroy_local: Counter,
    /// `downstream_cx_destroy_remote`: connections the client closed.
    pub downstream_cx_destroy_remote: Counter,
    /// `downstream_cx_destroy_active_rq`: connections closed with streams active.
    pub downstream_cx_destroy_active_rq: Counter,
    /// `downstream_cx_destroy_local_active_rq`.
    pub downstream_cx_destroy_local_active_rq: Counter,
    /// `downstream_cx_destroy_remote_active_rq`.
    pub downstream_cx_destroy_remote_active_rq: Counter,
    /// `downstream_cx_protocol_error`.
    pub downstream_cx_protocol_error: Counter,
    /// `downstream_cx_idle_timeout`.
    pub downstream_cx_idle_timeout: Counter,
    /// `downstream_cx_drain_close`: connections closed because the server drains.
    pub downstream_cx_drain_close: Counter,
    /// `downstream_cx_length_ms`.
    pub downstream_cx_length_ms: Histogram,
    /// `downstream_cx_rx_bytes_total`.
    pub downstream_cx_rx_bytes_total: Counter,
    /// `downstream_cx_tx_bytes_total`.
    pub downstream_cx_tx_bytes_total: Counter,
    /// `downstream_cx_upgrades_total` (WebSocket and other HTTP/1.1 upgrades).
    pub downstream_cx_upgrades_total: Counter,
    /// `downstream_cx_upgrades_active`.
    pub downstream_cx_upgrades_active: Gauge,
    /// `downstream_rq_total`.
    pub downstream_rq_total: Counter,
    /// `downstream_rq_http1_total`.
    pub downstream_rq_http1_total: Counter,
    /// `downstream_rq_http2_total`.
    pub downstream_rq_http2_total: Counter,
    /// `downstream_rq_active`.
    pub downstream_rq_active: Gauge,
    /// `downstream_rq_completed`.
    pub downstream_rq_completed: Counter,
    /// `downstream_rq_time`.
    pub downstream_rq_time: Histogram,
    /// `downstream_rq_timeout` (request_timeout fired).
    pub downstream_rq_timeout: Counter,
    /// `downstream_rq_idle_timeout` (stream_idle_timeout fired).
    pub downstream_rq_idle_timeout: Counter,
    /// `downstream_rq_max_duration_reached` (max_stream_duration fired).
    pub downstream_rq_max_duration_reached: Counter,
    /// `downstream_rq_too_large`.
    pub downstream_rq_too_large: Counter,
    /// `downstream_rq_rx_reset`: streams that ended in a reset, whichever side reset them
    /// (Envoy counts every stream reset here).
    pub downstream_rq_rx_reset: Counter,
    /// `downstream_rq_tx_reset`: streams Legate reset (the response body failed).
    pub downstream_rq_tx_reset: Counter,
    /// `downstream_rq_non_relative_path`.
    pub downstream_rq_non_relative_path: Counter,
    /// `downstream_rq_failed_path_normalization` (HTTP/1 targets with a fragment).
    pub downstream_rq_failed_path_normalization: Counter,
    /// `downstream_rq_ws_on_non_ws_route`: upgrades of a type `upgrade_configs` does not enable.
    pub downstream_rq_ws_on_non_ws_route: Counter,
    /// `no_route` (router).
    pub no_route: Counter,
    /// `no_cluster` (router).
    pub no_cluster: Counter,
    /// `rq_total` (router).
    pub rq_total: Counter,
    /// `rq_redirect` (router).
    pub rq_redirect: Counter,
    /// `rq_direct_response` (router).
    pub rq_direct_response: Counter,
    /// `downstream_rq_<N>xx` of the HCM.
    pub classes: ResponseClassCounters,
    /// `listener.<addr>.http.<prefix>.downstream_rq_<N>xx`.
    pub listener_classes: ResponseClassCounters,
    /// `listener.<addr>.http.<prefix>.downstream_rq_completed`.
    pub listener_rq_completed: Counter,
}

impl HcmStats {
    /// Creates the stats of the HCM with `stat_prefix` on the listener scoped `listener.<addr>.`.
    pub fn new(store: &Store, stat_prefix: &str, listener_scope: &str) -> Self {
        let p = format!("http.{stat_prefix}.");
        let c = |n: &str| store.counter(&format!("{p}{n}"));
        let g = |n: &str| store.gauge(&format!("{p}{n}"), GaugeMode::Accumulate);
        let h = |n: &str| store.histogram(&format!("{p}{n}"), HistogramUnit::Milliseconds);
        let lp = format!("{listener_scope}http.{stat_prefix}.");
        for name in HCM_ABSENT_FEATURE_COUNTERS {
            c(name);
        }
        g("downstream_cx_http3_active");
        Self {
            downstream_cx_total: c("downstream_cx_total"),
            downstream_cx_active: g("downstream_cx_active"),
            downstream_cx_http1_total: c("downstream_cx_http1_total"),
            downstream_cx_http1_active: g("downstream_cx_http1_active"),
            downstream_cx_http2_total: c("downstream_cx_http2_total"),
            downstream_cx_http2_active: g("downstream_cx_http2_active"),
            downstream_cx_ssl_total: c("downstream_cx_ssl_total"),
            downstream_cx_ssl_active: g("downstream_cx_ssl_active"),
            downstream_cx_destroy: c("downstream_cx_destroy"),
            downstream_cx_destroy_local: c("downstream_cx_destroy_local"),
            downstream_cx_destroy_remote: c("downstream_cx_destroy_remote"),
            downstream_cx_destroy_active_rq: c("downstream_cx_destroy_active_rq"),
            downstream_cx_destroy_local_active_rq: c("downstream_cx_destroy_local_active_rq"),
            downstream_cx_destroy_remote_active_rq: c("downstream_cx_destroy_remote_active_rq"),
            downstream_cx_protocol_error: c("downstream_cx_protocol_error"),
            downstream_cx_idle_timeout: c("downstream_cx_idle_timeout"),
            downstream_cx_drain_close: c("downstream_cx_drain_close"),
            downstream_cx_length_ms: h("downstream_cx_length_ms"),
            downstream_cx_rx_bytes_total: c("downstream_cx_rx_bytes_total"),
            downstream_cx_tx_bytes_total: c("downstream_cx_tx_bytes_total"),
            downstream_cx_upgrades_total: c("downstream_cx_upgrades_total"),
            downstream_cx_upgrades_active: g("downstream_cx_upgrades_active"),
            downstream_rq_total: c("downstream_rq_total"),
            downstream_rq_http1_total: c("downstream_rq_http1_total"),
            downstream_rq_http2_total: c("downstream_rq_http2_total"),
            downstream_rq_active: g("downstream_rq_active"),
            downstream_rq_completed: c("downstream_rq_completed"),
            downstream_rq_time: h("downstream_rq_time"),
            downstream_rq_timeout: c("downstream_rq_timeout"),
            downstream_rq_idle_timeout: c("downstream_rq_idle_timeout"),
            downstream_rq_max_duration_reached: c("downstream_rq_max_duration_reached"),
            downstream_rq_too_large: c("downstream_rq_too_large"),
            downstream_rq_rx_reset: c("downstream_rq_rx_reset"),
            downstream_rq_tx_reset: c("downstream_rq_tx_reset"),
            downstream_rq_non_relative_path: c("downstream_rq_non_relative_path"),
            downstream_rq_failed_path_normalization: c("downstream_rq_failed_path_normalization"),
            downstream_rq_ws_on_non_ws_route: c("downstream_rq_ws_on_non_ws_route"),
            no_route: c("no_route"),
            no_cluster: c("no_cluster"),
            rq_total: c("rq_total"),
            rq_redirect: c("rq_redirect"),
            rq_direct_response: c("rq_direct_response"),
            classes: ResponseClassCounters::new(store, &p),
            listener_classes: ResponseClassCounters::new(store, &lp),
            listener_rq_completed: store.counter(&format!("{lp}downstream_rq_completed")),
        }
    }

    /// Counts a completed response with `status` in the HCM and listener scopes.
    pub fn record_response(&self, status: u16) {
        self.classes.record(status);
        self.listener_classes.record(status);
        self.downstream_rq_completed.inc();
        self.listener_rq_completed.inc();
    }
}
