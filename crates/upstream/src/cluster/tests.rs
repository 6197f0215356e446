use std::net::IpAddr;

use legate_stats::{GaugeMode, Store};

use super::*;
use crate::test_support::cluster_config;

fn build(config: &model::Cluster) -> (Cluster, Store) {
    let store = Store::new();
    let cluster = Cluster::new(0, config, &store, store.counter("cluster_manager.cluster_updated")).unwrap();
    (cluster, store)
}

fn answer(ips: &[&str], ttl: u64) -> Result<Resolution, String> {
    Ok(Resolution { addresses: ips.iter().map(|i| i.parse::<IpAddr>().unwrap()).collect(), ttl: Duration::from_secs(ttl) })
}

fn addresses(c: &Cluster) -> Vec<String> {
    c.hosts().hosts.iter().map(|h| h.address.to_string()).collect()
}

#[test]
fn static_cluster_has_its_hosts_at_once() {
    let cfg = cluster_config("s", DiscoveryType::Static, &[("10.0.0.1", 80, 1, 0), ("::1", 81, 3, 1)]);
    let (c, store) = build(&cfg);
    assert!(c.is_initialized());
    assert_eq!(addresses(&c), ["10.0.0.1:80", "[::1]:81"]);
    let g = |n: &str| store.gauge(&format!("cluster.s.{n}"), GaugeMode::Accumulate).value();
    assert_eq!((g("membership_total"), g("membership_healthy"), g("max_host_weight")), (2, 2, 0));
    assert_eq!(c.stats.membership_change.value(), 1);
    assert_eq!(c.hosts().priorities()[1][0].weight, 3);
    assert_eq!(store.counter("cluster_manager.cluster_updated").value(), 0);
}

#[test]
fn refuses_what_envoy_refuses() {
    let store = Store::new();
    let bad = |cfg: model::Cluster| Cluster::new(0, &cfg, &store, store.counter("x")).err().unwrap().to_string();
    assert!(bad(cluster_config("s", DiscoveryType::Static, &[("film", 80, 1, 0)])).contains("not an IP address"));
    let logical = cluster_config("l", DiscoveryType::LogicalDns, &[("a", 80, 1, 0), ("b", 80, 1, 0)]);
    assert!(bad(logical).contains("LOGICAL_DNS clusters must have a single"));
    let mut maglev = cluster_config("m", DiscoveryType::Static, &[]);
    maglev.lb_policy = LbPolicy::Maglev { table_size: 65536 };
    assert!(bad(maglev).contains("prime"));
    let mut ring = cluster_config("r", DiscoveryType::Static, &[]);
    ring.lb_policy = LbPolicy::RingHash { minimum_ring_size: 10, maximum_ring_size: 5 };
    assert!(bad(ring).contains("minimum_ring_size (10) > maximum_ring_size (5)"));
}

#[test]
fn strict_dns_membership_follows_answers() {
    let cfg = cluster_config("d", DiscoveryType::StrictDns, &[("svc.test", 8080, 2, 0)]);
    let (c, store) = build(&cfg);
    assert!(!c.is_initialized());
    assert!(c.choose_host(&LbContext::default()).is_none(), "no hosts before the first answer");
    assert_eq!(c.stats.upstream_cx_none_healthy.value(), 1);

    assert_eq!(c.apply_resolution(0, answer(&["10.0.0.1", "10.0.0.2"], 30)), Duration::from_secs(5));
    c.mark_initialized();
    assert_eq!(addresses(&c), ["10.0.0.1:8080", "10.0.0.2:8080"]);
    let first = c.hosts().hosts[0].clone();
    assert_eq!(first.hostname, "svc.test");
    assert_eq!(first.weight, 2);
    assert_eq!((c.stats.update_success.value(), c.stats.membership_change.value()), (1, 1));
    assert_eq!(c.stats.max_host_weight.value(), 2);

    // Same records in another order: no rebuild.
    c.apply_resolution(0, answer(&["10.0.0.2", "10.0.0.1"], 30));
    assert_eq!(c.stats.update_no_rebuild.value(), 1);
    assert_eq!(addresses(&c), ["10.0.0.1:8080", "10.0.0.2:8080"]);

    // A replica is added and one goes: the staying host keeps its identity and stats.
    c.apply_resolution(0, answer(&["10.0.0.1", "10.0.0.3", "10.0.0.4"], 30));
    assert_eq!(addresses(&c), ["10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.4:8080"]);
    assert!(Arc::ptr_eq(&c.hosts().hosts[0], &first));
    assert_eq!(c.stats.membership_change.value(), 2);
    assert_eq!(c.stats.membership_total.value(), 3);
    assert_eq!(store.counter("cluster_manager.cluster_updated").value(), 1, "updates after init count");

    // A failure keeps the previous hosts.
    c.apply_resolution(0, Err("SERVFAIL".into()));
    assert_eq!(c.stats.update_failure.value(), 1);
    assert_eq!(c.hosts().hosts.len(), 3);

    // No records is a successful, empty answer.
    c.apply_resolution(0, answer(&[], 0));
    assert_eq!(c.hosts().hosts.len(), 0);
    assert_eq!(c.stats.update_success.value(), 4);
    assert_eq!(c.stats.max_host_weight.value(), 2);
    assert!(c.choose_host(&LbContext::default()).is_none());
}

#[test]
fn strict_dns_targets_keep_config_order_and_priorities() {
    let cfg = cluster_config("d", DiscoveryType::StrictDns, &[("a.test", 80, 1, 0), ("b.test", 81, 1, 1)]);
    let (c, _) = build(&cfg);
    c.apply_resolution(1, answer(&["10.0.1.1"], 0));
    c.apply_resolution(0, answer(&["10.0.0.1"], 0));
    assert_eq!(addresses(&c), ["10.0.0.1:80", "10.0.1.1:81"]);
    assert_eq!(c.hosts().priorities().len(), 2);
    // Priority 0 has a healthy host: it takes all the traffic.
    assert!((0..20).all(|_| c.choose_host(&LbContext::default()).unwrap().address.port() == 80));
    c.apply_resolution(0, answer(&[], 0));
    assert!((0..20).all(|_| c.choose_host(&LbContext::default()).unwrap().address.port() == 81));
}

#[test]
fn respect_dns_ttl_uses_the_record_ttl() {
    let mut cfg = cluster_config("d", DiscoveryType::StrictDns, &[("svc.test", 80, 1, 0)]);
    cfg.respect_dns_ttl = true;
    let (c, _) = build(&cfg);
    assert_eq!(c.apply_resolution(0, answer(&["10.0.0.1"], 17)), Duration::from_secs(17));
    assert_eq!(c.apply_resolution(0, answer(&["10.0.0.1"], 0)), cfg.dns_refresh_rate, "TTL 0: refresh rate");
    assert_eq!(c.apply_resolution(0, answer(&[], 0)), cfg.dns_refresh_rate);
    assert_eq!(c.apply_resolution(0, Err("timeout".into())), cfg.dns_refresh_rate);
}

#[test]
fn logical_dns_has_one_host_following_the_first_address() {
    let mut cfg = cluster_config("l", DiscoveryType::LogicalDns, &[("svc.test", 80, 5, 3)]);
    cfg.endpoints[0].hostname = "svc.example".into();
    let (c, _) = build(&cfg);
    c.apply_resolution(0, answer(&["10.0.0.1", "10.0.0.2"], 0));
    assert_eq!(addresses(&c), ["10.0.0.1:80"]);
    let host = c.hosts().hosts[0].clone();
    assert_eq!((host.hostname.as_str(), host.priority, host.weight), ("svc.example", 0, 5));
    assert_eq!(c.stats.membership_change.value(), 1);
    c.apply_resolution(0, answer(&["10.0.0.1", "10.0.0.2"], 0));
    assert_eq!(c.stats.update_no_rebuild.value(), 1);
    assert!(Arc::ptr_eq(&c.hosts().hosts[0], &host));
    // Envoy compares the whole list: a reordering makes a new logical host.
    c.apply_resolution(0, answer(&["10.0.0.2", "10.0.0.1"], 0));
    assert_eq!(addresses(&c), ["10.0.0.2:80"]);
    assert_eq!(c.stats.membership_change.value(), 2);
    // An empty answer is a failure for LOGICAL_DNS: the address stays.
    c.apply_resolution(0, answer(&[], 0));
    assert_eq!((c.stats.update_failure.value(), addresses(&c).len()), (1, 1));
    assert_eq!(c.stats.max_host_weight.value(), 0, "Envoy leaves it unset for LOGICAL_DNS");
}

#[test]
fn hosts_that_leave_the_membership_are_no_longer_members() {
    let cfg = cluster_config("d", DiscoveryType::StrictDns, &[("svc.test", 8080, 1, 0)]);
    let (c, _store) = build(&cfg);
    c.apply_resolution(0, answer(&["10.0.0.1", "10.0.0.2"], 30));
    let (first, second) = (c.hosts().hosts[0].clone(), c.hosts().hosts[1].clone());
    assert!(first.is_member() && second.is_member());
    c.apply_resolution(0, answer(&["10.0.0.2", "10.0.0.3"], 30));
    assert!(!first.is_member(), "10.0.0.1 left");
    assert!(second.is_member(), "10.0.0.2 stayed, with its identity");
    assert!(Arc::ptr_eq(&second, &c.hosts().hosts[0]));
    assert!(c.hosts().hosts.iter().all(|h| h.is_member()));
}
