//! `/clusters` in Envoy's text and JSON formats.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde_json::{json, Value};

/// Supplies the current cluster membership.
pub trait ClusterSource: Send + Sync {
    /// A snapshot of every cluster, in config order.
    fn clusters(&self) -> Vec<ClusterSnapshot>;
}

/// One cluster as `/clusters` shows it.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    /// Cluster name.
    pub name: String,
    /// Observability (stat) name.
    pub observability_name: String,
    /// Whether the cluster came from xDS.
    pub added_via_api: bool,
    /// Hosts.
    pub hosts: Vec<HostSnapshot>,
}

/// One host as `/clusters` shows it.
#[derive(Debug, Clone)]
pub struct HostSnapshot {
    /// Address.
    pub address: SocketAddr,
    /// Hostname.
    pub hostname: String,
    /// Weight.
    pub weight: u32,
    /// Priority.
    pub priority: u32,
    /// Health flags such as `/failed_active_hc`; empty means healthy.
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
    /// Successful requests.
    pub rq_success: u64,
    /// Failed requests.
    pub rq_error: u64,
    /// Timed-out requests.
    pub rq_timeout: u64,
}

/// Envoy's default circuit-breaker thresholds, printed per priority.
const THRESHOLDS: [(&str, u64); 4] =
    [("max_connections", 1024), ("max_pending_requests", 1024), ("max_requests", 1024), ("max_retries", 3)];

/// `/clusters` text.
pub fn text(clusters: &[ClusterSnapshot]) -> String {
    let mut out = String::new();
    for c in clusters {
        let n = &c.name;
        writeln!(out, "{n}::observability_name::{}", c.observability_name).ok();
        for prio in ["default_priority", "high_priority"] {
            for (k, v) in THRESHOLDS {
                writeln!(out, "{n}::{prio}::{k}::{v}").ok();
            }
        }
        writeln!(out, "{n}::added_via_api::{}", c.added_via_api).ok();
        for h in &c.hosts {
            let p = format!("{n}::{}", h.address);
            for (k, v) in [
                ("cx_active", h.cx_active),
                ("cx_connect_fail", h.cx_connect_fail),
                ("cx_total", h.cx_total),
                ("rq_active", h.rq_active),
                ("rq_error", h.rq_error),
                ("rq_pending_active", 0),
                ("rq_success", h.rq_success),
                ("rq_timeout", h.rq_timeout),
                ("rq_total", h.rq_total),
            ] {
                writeln!(out, "{p}::{k}::{v}").ok();
            }
            let flags = if h.health_flags.is_empty() { "healthy".to_string() } else { h.health_flags.join("") };
            writeln!(out, "{p}::hostname::{}", h.hostname).ok();
            writeln!(out, "{p}::health_flags::{flags}").ok();
            writeln!(out, "{p}::weight::{}", h.weight).ok();
            writeln!(out, "{p}::region::").ok();
            writeln!(out, "{p}::zone::").ok();
            writeln!(out, "{p}::sub_zone::").ok();
            writeln!(out, "{p}::canary::false").ok();
            writeln!(out, "{p}::priority::{}", h.priority).ok();
            writeln!(out, "{p}::success_rate::-1").ok();
            writeln!(out, "{p}::local_origin_success_rate::-1").ok();
        }
    }
    out
}

/// `/clusters?format=json`.
pub fn json(clusters: &[ClusterSnapshot]) -> Value {
    let statuses: Vec<Value> = clusters
        .iter()
        .map(|c| {
            let hosts: Vec<Value> = c
                .hosts
                .iter()
                .map(|h| {
                    let stat = |name: &str, v: u64| json!({"name": name, "value": v.to_string()});
                    let mut health = json!({"eds_health_status": "HEALTHY"});
                    for f in &h.health_flags {
                        health[f.trim_start_matches('/')] = json!(true);
                    }
                    json!({
                        "address": {"socket_address": {"address": h.address.ip().to_string(), "port_value": h.address.port()}},
                        "stats": [
                            stat("cx_connect_fail", h.cx_connect_fail), stat("cx_total", h.cx_total),
                            stat("rq_error", h.rq_error), stat("rq_success", h.rq_success),
                            stat("rq_timeout", h.rq_timeout), stat("rq_total", h.rq_total),
                            {"type": "GAUGE", "name": "cx_active", "value": h.cx_active.to_string()},
                            {"type": "GAUGE", "name": "rq_active", "value": h.rq_active.to_string()},
                        ],
                        "health_status": health,
                        "weight": h.weight,
                        "hostname": h.hostname,
                        "priority": h.priority,
                        "locality": {},
                    })
                })
                .collect();
            json!({"name": c.name, "observability_name": c.observability_name, "added_via_api": c.added_via_api, "host_statuses": hosts})
        })
        .collect();
    json!({ "cluster_statuses": statuses })
}
