//! `/clusters` in Envoy 1.40's text and JSON formats.

use std::fmt::Write as _;
use std::net::SocketAddr;

use legate_stats::numfmt::{general, shortest};
use regex::Regex;
use serde_json::{json, Map, Value};

use crate::json::number;

/// Supplies the current cluster membership (implemented by the binary over the cluster manager).
pub trait ClusterSource: Send + Sync {
    /// A snapshot of every cluster, in the order `/clusters` lists them.
    fn clusters(&self) -> Vec<ClusterSnapshot>;
}

/// Circuit-breaker thresholds of one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// `max_connections`.
    pub max_connections: u64,
    /// `max_pending_requests`.
    pub max_pending_requests: u64,
    /// `max_requests`.
    pub max_requests: u64,
    /// `max_retries`.
    pub max_retries: u64,
}

impl Default for Thresholds {
    /// Envoy's defaults: 1024 connections, pending and active requests, 3 retries.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
        }
    }
}

/// Outlier detection figures Envoy prints per cluster when outlier detection is configured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OutlierSnapshot {
    /// Average success rate of the last interval (external origin).
    pub success_rate_average: f64,
    /// Success-rate ejection threshold (external origin); printed in JSON when > 0.
    pub success_rate_ejection_threshold: f64,
    /// Average success rate (local origin).
    pub local_origin_success_rate_average: f64,
    /// Success-rate ejection threshold (local origin); printed in JSON when > 0.
    pub local_origin_success_rate_ejection_threshold: f64,
}

/// One cluster as `/clusters` shows it.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    /// Cluster name.
    pub name: String,
    /// Observability (stat) name: `alt_stat_name` or the name.
    pub observability_name: String,
    /// Whether the cluster came from xDS.
    pub added_via_api: bool,
    /// EDS service name, when set.
    pub eds_service_name: Option<String>,
    /// Circuit breakers: default priority, then high priority.
    pub circuit_breakers: [Thresholds; 2],
    /// Outlier detection, when configured.
    pub outlier: Option<OutlierSnapshot>,
    /// Hosts of every priority.
    pub hosts: Vec<HostSnapshot>,
}

/// One host as `/clusters` shows it.
#[derive(Debug, Clone)]
pub struct HostSnapshot {
    /// Address.
    pub address: SocketAddr,
    /// Hostname (`""` when none).
    pub hostname: String,
    /// Load-balancing weight.
    pub weight: u32,
    /// Priority.
    pub priority: u32,
    /// Locality region.
    pub region: String,
    /// Locality zone.
    pub zone: String,
    /// Locality sub-zone.
    pub sub_zone: String,
    /// Canary flag.
    pub canary: bool,
    /// Envoy health flags such as `/failed_active_hc`; empty means `healthy`.
    pub health_flags: Vec<&'static str>,
    /// Connections opened.
    pub cx_total: u64,
    /// Connections open.
    pub cx_active: u64,
    /// Connect failures.
    pub cx_connect_fail: u64,
    /// Requests sent.
    pub rq_total: u64,
    /// Requests in flight.
    pub rq_active: u64,
    /// Requests waiting for a connection.
    pub rq_pending_active: u64,
    /// Successful requests.
    pub rq_success: u64,
    /// Failed requests.
    pub rq_error: u64,
    /// Timed-out requests.
    pub rq_timeout: u64,
    /// Outlier-detection success rate (external origin), when computed.
    pub success_rate: Option<f64>,
    /// Outlier-detection success rate (local origin), when computed.
    pub local_origin_success_rate: Option<f64>,
}

impl Default for HostSnapshot {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([0, 0, 0, 0], 0)),
            hostname: String::new(),
            weight: 1,
            priority: 0,
            region: String::new(),
            zone: String::new(),
            sub_zone: String::new(),
            canary: false,
            health_flags: Vec::new(),
            cx_total: 0,
            cx_active: 0,
            cx_connect_fail: 0,
            rq_total: 0,
            rq_active: 0,
            rq_pending_active: 0,
            rq_success: 0,
            rq_error: 0,
            rq_timeout: 0,
            success_rate: None,
            local_origin_success_rate: None,
        }
    }
}

/// Envoy's health flags in the order `healthFlagsToString` prints them.
const FLAG_ORDER: [&str; 10] = [
    "/failed_active_hc",
    "/failed_outlier_check",
    "/failed_eds_health",
    "/degraded_active_hc",
    "/degraded_eds_health",
    "/pending_dynamic_removal",
    "/pending_active_hc",
    "/excluded_via_immediate_hc_fail",
    "/active_hc_timeout",
    "/eds_status_draining",
];

fn health_flags_text(flags: &[&str]) -> String {
    let s: String = FLAG_ORDER
        .iter()
        .filter(|f| flags.contains(f))
        .copied()
        .collect();
    if s.is_empty() {
        "healthy".into()
    } else {
        s
    }
}

/// Keeps the clusters whose name matches `filter` (Envoy's `?filter=`).
pub(crate) fn filtered(
    clusters: Vec<ClusterSnapshot>,
    filter: Option<&Regex>,
) -> Vec<ClusterSnapshot> {
    clusters
        .into_iter()
        .filter(|c| filter.is_none_or(|r| r.is_match(&c.name)))
        .collect()
}

/// `/clusters` text.
pub fn text(clusters: &[ClusterSnapshot]) -> String {
    let mut out = String::new();
    for c in clusters {
        let n = &c.name;
        writeln!(out, "{n}::observability_name::{}", c.observability_name).ok();
        if let Some(o) = &c.outlier {
            writeln!(
                out,
                "{n}::outlier::success_rate_average::{}",
                general(o.success_rate_average, 6)
            )
            .ok();
            writeln!(
                out,
                "{n}::outlier::success_rate_ejection_threshold::{}",
                general(o.success_rate_ejection_threshold, 6)
            )
            .ok();
            writeln!(
                out,
                "{n}::outlier::local_origin_success_rate_average::{}",
                general(o.local_origin_success_rate_average, 6)
            )
            .ok();
            writeln!(
                out,
                "{n}::outlier::local_origin_success_rate_ejection_threshold::{}",
                general(o.local_origin_success_rate_ejection_threshold, 6)
            )
            .ok();
        }
        for (prio, t) in ["default", "high"].iter().zip(&c.circuit_breakers) {
            writeln!(
                out,
                "{n}::{prio}_priority::max_connections::{}",
                t.max_connections
            )
            .ok();
            writeln!(
                out,
                "{n}::{prio}_priority::max_pending_requests::{}",
                t.max_pending_requests
            )
            .ok();
            writeln!(
                out,
                "{n}::{prio}_priority::max_requests::{}",
                t.max_requests
            )
            .ok();
            writeln!(out, "{n}::{prio}_priority::max_retries::{}", t.max_retries).ok();
        }
        writeln!(out, "{n}::added_via_api::{}", c.added_via_api).ok();
        if let Some(eds) = &c.eds_service_name {
            writeln!(out, "{n}::eds_service_name::{eds}").ok();
        }
        for h in &c.hosts {
            let p = format!("{n}::{}", h.address);
            for (k, v) in [
                ("cx_active", h.cx_active),
                ("cx_connect_fail", h.cx_connect_fail),
                ("cx_total", h.cx_total),
                ("rq_active", h.rq_active),
                ("rq_error", h.rq_error),
                ("rq_pending_active", h.rq_pending_active),
                ("rq_success", h.rq_success),
                ("rq_timeout", h.rq_timeout),
                ("rq_total", h.rq_total),
            ] {
                writeln!(out, "{p}::{k}::{v}").ok();
            }
            writeln!(out, "{p}::hostname::{}", h.hostname).ok();
            writeln!(
                out,
                "{p}::health_flags::{}",
                health_flags_text(&h.health_flags)
            )
            .ok();
            writeln!(out, "{p}::weight::{}", h.weight).ok();
            writeln!(out, "{p}::region::{}", h.region).ok();
            writeln!(out, "{p}::zone::{}", h.zone).ok();
            writeln!(out, "{p}::sub_zone::{}", h.sub_zone).ok();
            writeln!(out, "{p}::canary::{}", h.canary).ok();
            writeln!(out, "{p}::priority::{}", h.priority).ok();
            writeln!(
                out,
                "{p}::success_rate::{}",
                shortest(h.success_rate.unwrap_or(-1.0))
            )
            .ok();
            writeln!(
                out,
                "{p}::local_origin_success_rate::{}",
                shortest(h.local_origin_success_rate.unwrap_or(-1.0))
            )
            .ok();
        }
    }
    out
}

fn health_status(flags: &[&str]) -> Value {
    let mut m = Map::new();
    for (flag, field) in [
        ("/failed_active_hc", "failed_active_health_check"),
        ("/failed_outlier_check", "failed_outlier_check"),
        ("/degraded_active_hc", "failed_active_degraded_check"),
        ("/pending_dynamic_removal", "pending_dynamic_removal"),
        ("/pending_active_hc", "pending_active_hc"),
        (
            "/excluded_via_immediate_hc_fail",
            "excluded_via_immediate_hc_fail",
        ),
        ("/active_hc_timeout", "active_hc_timeout"),
    ] {
        if flags.contains(&flag) {
            m.insert(field.into(), json!(true));
        }
    }
    let eds = if flags.contains(&"/failed_eds_health") {
        "UNHEALTHY"
    } else if flags.contains(&"/degraded_eds_health") {
        "DEGRADED"
    } else if flags.contains(&"/eds_status_draining") {
        "DRAINING"
    } else {
        "HEALTHY"
    };
    m.insert("eds_health_status".into(), json!(eds));
    Value::Object(m)
}

fn host_json(h: &HostSnapshot) -> Value {
    // proto3 JSON: zero values are omitted, uint64 values are strings.
    let stat = |kind: Option<&str>, name: &str, v: u64| {
        let mut m = Map::new();
        if let Some(k) = kind {
            m.insert("type".into(), json!(k));
        }
        if v != 0 {
            m.insert("value".into(), json!(v.to_string()));
        }
        m.insert("name".into(), json!(name));
        Value::Object(m)
    };
    let mut m = Map::new();
    m.insert(
        "address".into(),
        json!({"socket_address": {"address": h.address.ip().to_string(), "port_value": h.address.port()}}),
    );
    m.insert(
        "stats".into(),
        json!([
            stat(None, "cx_connect_fail", h.cx_connect_fail),
            stat(None, "cx_total", h.cx_total),
            stat(None, "rq_error", h.rq_error),
            stat(None, "rq_success", h.rq_success),
            stat(None, "rq_timeout", h.rq_timeout),
            stat(None, "rq_total", h.rq_total),
            stat(Some("GAUGE"), "cx_active", h.cx_active),
            stat(Some("GAUGE"), "rq_active", h.rq_active),
            stat(Some("GAUGE"), "rq_pending_active", h.rq_pending_active),
        ]),
    );
    m.insert("health_status".into(), health_status(&h.health_flags));
    if let Some(r) = h.success_rate {
        m.insert("success_rate".into(), json!({"value": number(r)}));
    }
    if h.weight != 0 {
        m.insert("weight".into(), json!(h.weight));
    }
    if !h.hostname.is_empty() {
        m.insert("hostname".into(), json!(h.hostname));
    }
    if h.priority != 0 {
        m.insert("priority".into(), json!(h.priority));
    }
    if let Some(r) = h.local_origin_success_rate {
        m.insert(
            "local_origin_success_rate".into(),
            json!({"value": number(r)}),
        );
    }
    let mut locality = Map::new();
    for (k, v) in [
        ("region", &h.region),
        ("zone", &h.zone),
        ("sub_zone", &h.sub_zone),
    ] {
        if !v.is_empty() {
            locality.insert(k.into(), json!(v));
        }
    }
    m.insert("locality".into(), Value::Object(locality));
    Value::Object(m)
}

/// `/clusters?format=json` (Envoy's `envoy.admin.v3.Clusters` as proto3 JSON).
pub fn json(clusters: &[ClusterSnapshot]) -> Value {
    let statuses: Vec<Value> = clusters
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("name".into(), json!(c.name));
            if c.added_via_api {
                m.insert("added_via_api".into(), json!(true));
            }
            let outlier = c.outlier.unwrap_or_default();
            if outlier.success_rate_ejection_threshold > 0.0 {
                m.insert("success_rate_ejection_threshold".into(), json!({"value": number(outlier.success_rate_ejection_threshold)}));
            }
            if !c.hosts.is_empty() {
                m.insert("host_statuses".into(), Value::Array(c.hosts.iter().map(host_json).collect()));
            }
            if outlier.local_origin_success_rate_ejection_threshold > 0.0 {
                m.insert(
                    "local_origin_success_rate_ejection_threshold".into(),
                    json!({"value": number(outlier.local_origin_success_rate_ejection_threshold)}),
                );
            }
            let [d, h] = c.circuit_breakers;
            m.insert(
                "circuit_breakers".into(),
                json!({"thresholds": [
                    {"max_connections": d.max_connections, "max_pending_requests": d.max_pending_requests,
                     "max_requests": d.max_requests, "max_retries": d.max_retries},
                    {"priority": "HIGH", "max_connections": h.max_connections, "max_pending_requests": h.max_pending_requests,
                     "max_requests": h.max_requests, "max_retries": h.max_retries},
                ]}),
            );
            m.insert("observability_name".into(), json!(c.observability_name));
            if let Some(eds) = &c.eds_service_name {
                m.insert("eds_service_name".into(), json!(eds));
            }
            Value::Object(m)
        })
        .collect();
    if statuses.is_empty() {
        return json!({}); // proto3 JSON omits an empty repeated field
    }
    json!({ "cluster_statuses": statuses })
}
