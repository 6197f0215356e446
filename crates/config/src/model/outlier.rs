//! Outlier detection (`Cluster.outlier_detection`).

use std::time::Duration;

/// `envoy.config.cluster.v3.OutlierDetection` with Envoy's defaults applied. Percentages and
/// `enforcing_*` values are 0..=100.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// `consecutive_5xx` (default 5).
    pub consecutive_5xx: u32,
    /// `interval` between ejection sweeps (default 10 s).
    pub interval: Duration,
    /// `base_ejection_time` (default 30 s), multiplied by the host's ejection backoff.
    pub base_ejection_time: Duration,
    /// `max_ejection_percent` (default 10).
    pub max_ejection_percent: u32,
    /// `enforcing_consecutive_5xx` (default 100).
    pub enforcing_consecutive_5xx: u32,
    /// `enforcing_success_rate` (default 100).
    pub enforcing_success_rate: u32,
    /// `success_rate_minimum_hosts` (default 5).
    pub success_rate_minimum_hosts: u32,
    /// `success_rate_request_volume` (default 100).
    pub success_rate_request_volume: u32,
    /// `success_rate_stdev_factor` (default 1900, i.e. 1.9 standard deviations).
    pub success_rate_stdev_factor: u32,
    /// `consecutive_gateway_failure` (default 5).
    pub consecutive_gateway_failure: u32,
    /// `enforcing_consecutive_gateway_failure` (default 0).
    pub enforcing_consecutive_gateway_failure: u32,
    /// `split_external_local_origin_errors` (default false).
    pub split_external_local_origin_errors: bool,
    /// `consecutive_local_origin_failure` (default 5; used when split).
    pub consecutive_local_origin_failure: u32,
    /// `enforcing_consecutive_local_origin_failure` (default 100).
    pub enforcing_consecutive_local_origin_failure: u32,
    /// `enforcing_local_origin_success_rate` (default 100).
    pub enforcing_local_origin_success_rate: u32,
    /// `failure_percentage_threshold` (default 85).
    pub failure_percentage_threshold: u32,
    /// `enforcing_failure_percentage` (default 0).
    pub enforcing_failure_percentage: u32,
    /// `enforcing_failure_percentage_local_origin` (default 0).
    pub enforcing_failure_percentage_local_origin: u32,
    /// `failure_percentage_minimum_hosts` (default 5).
    pub failure_percentage_minimum_hosts: u32,
    /// `failure_percentage_request_volume` (default 50).
    pub failure_percentage_request_volume: u32,
    /// `max_ejection_time` (default 300 s, at least `base_ejection_time`).
    pub max_ejection_time: Duration,
    /// `max_ejection_time_jitter` (default 0).
    pub max_ejection_time_jitter: Duration,
    /// `successful_active_health_check_uneject_host` (default true).
    pub successful_active_health_check_uneject_host: bool,
    /// `always_eject_one_host` (default false): eject one host even above `max_ejection_percent`.
    pub always_eject_one_host: bool,
}
