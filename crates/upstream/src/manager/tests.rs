//! Cluster manager tests, with DNS clusters resolving through a real dnsmasq on loopback.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use legate_config::model::{DiscoveryType, DnsLookupFamily};
use legate_stats::{GaugeMode, Store};

use super::*;
use crate::test_support::cluster_config;
use crate::LbContext;

/// A dnsmasq answering `*.test` names from a hosts file only (other `.test` names: NXDOMAIN).
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    hosts: PathBuf,
}

impl Dnsmasq {
    /// Starts dnsmasq with `records` (hosts-file lines) and answer TTL `ttl`; `None` (with a
    /// printed note) when dnsmasq is not installed.
    fn start(records: &str, ttl: u32) -> Option<Self> {
        let binary = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].into_iter().find(|p| std::path::Path::new(p).exists());
        let Some(binary) = binary else {
            eprintln!("note: dnsmasq not installed, skipping the DNS test");
            return None;
        };
        for _ in 0..10 {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (rand::random::<u8>() % 250)));
            let Ok(probe) = std::net::UdpSocket::bind((ip, 0)) else { continue };
            let Ok(port) = probe.local_addr().map(|a| a.port()) else { continue };
            drop(probe);
            let hosts = std::env::temp_dir().join(format!("legate-upstream-dns-{}-{port}-{}", std::process::id(), rand::random::<u32>()));
            std::fs::write(&hosts, records).expect("write hosts file");
            let child = Command::new(binary)
                .args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--local=/test/", "--bind-interfaces", "--pid-file="])
                .arg(format!("--port={port}"))
                .arg(format!("--listen-address={ip}"))
                .arg(format!("--addn-hosts={}", hosts.display()))
                .arg(format!("--local-ttl={ttl}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn dnsmasq");
            let mut server = Self { child, addr: SocketAddr::new(ip, port), hosts };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(100)).is_ok() {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(server);
        }
        panic!("dnsmasq did not start");
    }

    /// Replaces the records and makes dnsmasq reload them (SIGHUP to its PID).
    fn set(&self, records: &str) {
        std::fs::write(&self.hosts, records).expect("write hosts file");
        let status = Command::new("kill").arg("-HUP").arg(self.child.id().to_string()).status().expect("kill -HUP");
        assert!(status.success());
    }

    /// Stops the server.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.hosts);
    }
}

fn dns_cluster(name: &str, discovery: DiscoveryType, host: &str, dns: &Dnsmasq, family: DnsLookupFamily) -> model::Cluster {
    let mut c = cluster_config(name, discovery, &[(host, 8080, 1, 0)]);
    c.dns_resolvers = vec![dns.addr];
    c.dns_lookup_family = family;
    c.dns_refresh_rate = Duration::from_millis(100);
    c
}

fn ips(c: &Cluster) -> BTreeSet<String> {
    c.hosts().hosts.iter().map(|h| h.address.ip().to_string()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn eventually(what: &str, check: impl FnMut() -> bool) {
    eventually_within(Duration::from_secs(10), what, check).await
}

async fn eventually_within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn started(clusters: &[model::Cluster], store: &Store) -> Arc<ClusterManager> {
    let cm = ClusterManager::new(clusters, store).unwrap();
    cm.start();
    tokio::time::timeout(Duration::from_secs(15), cm.wait_initialized()).await.expect("clusters initialize");
    cm
}

#[tokio::test]
async fn strict_dns_follows_record_changes_and_survives_failures() {
    let Some(mut dns) = Dnsmasq::start("127.0.0.11 svc.test\n127.0.0.12 svc.test\n", 0) else { return };
    let store = Store::new();
    let cm = started(&[dns_cluster("replicas", DiscoveryType::StrictDns, "svc.test", &dns, DnsLookupFamily::V4Only)], &store).await;
    let c = cm.get("replicas").unwrap();
    assert_eq!(ips(c), set(&["127.0.0.11", "127.0.0.12"]));
    assert_eq!(c.hosts().hosts[0].hostname, "svc.test");
    let kept = c.hosts().get(&"127.0.0.11:8080".parse().unwrap()).unwrap().clone();
    assert_eq!(c.stats.membership_change.value(), 1);
    eventually("a refresh with the same records", || c.stats.update_no_rebuild.value() > 0).await;

    // The service is scaled: a record goes, another comes.
    dns.set("127.0.0.11 svc.test\n127.0.0.13 svc.test\n");
    eventually("the new membership", || ips(c) == set(&["127.0.0.11", "127.0.0.13"])).await;
    assert!(Arc::ptr_eq(c.hosts().get(&kept.address).unwrap(), &kept), "staying host keeps its stats");
    assert_eq!(c.stats.membership_change.value(), 2);
    assert_eq!(c.stats.membership_total.value(), 2);
    assert_eq!(c.stats.update_failure.value(), 0);
    assert_eq!(store.counter("cluster_manager.cluster_updated").value(), 1);

    // The DNS server goes away: resolutions fail and the hosts stay.
    dns.stop();
    let started = Instant::now();
    // A silent server costs the resolver's timeouts (2 s per query, retried).
    eventually_within(Duration::from_secs(30), "a failed resolution", || c.stats.update_failure.value() > 0).await;
    eprintln!("resolution failed after {:?}", started.elapsed());
    assert_eq!(ips(c), set(&["127.0.0.11", "127.0.0.13"]));
}

#[tokio::test]
async fn unknown_names_resolve_to_no_hosts() {
    let Some(dns) = Dnsmasq::start("127.0.0.11 svc.test\n", 0) else { return };
    let store = Store::new();
    let cm = started(&[dns_cluster("missing", DiscoveryType::StrictDns, "missing.test", &dns, DnsLookupFamily::Auto)], &store).await;
    let c = cm.get("missing").unwrap();
    assert!(c.hosts().hosts.is_empty());
    assert!(c.stats.update_success.value() >= 1);
    assert_eq!(c.stats.update_failure.value(), 0);
    assert!(c.choose_host(&LbContext::default()).is_none());
    assert_eq!(c.stats.upstream_cx_none_healthy.value(), 1);
    assert_eq!(c.stats.lb_healthy_panic.value(), 1);
}

#[tokio::test]
async fn logical_dns_follows_the_first_address() {
    let Some(dns) = Dnsmasq::start("127.0.0.21 one.test\n", 0) else { return };
    let store = Store::new();
    let cm = started(&[dns_cluster("logical", DiscoveryType::LogicalDns, "one.test", &dns, DnsLookupFamily::V4Only)], &store).await;
    let c = cm.get("logical").unwrap();
    assert_eq!(ips(c), set(&["127.0.0.21"]));
    dns.set("127.0.0.22 one.test\n");
    eventually("the new address", || ips(c) == set(&["127.0.0.22"])).await;
    assert_eq!(c.hosts().hosts.len(), 1);
    assert_eq!(c.stats.membership_change.value(), 2);
    assert_eq!(c.choose_host(&LbContext::default()).unwrap().address, "127.0.0.22:8080".parse().unwrap());
}

#[tokio::test]
async fn lookup_families_follow_envoy() {
    let Some(dns) = Dnsmasq::start("127.0.0.31 dual.test\n::1 dual.test\n127.0.0.32 v4.test\n::2 v6.test\n", 0) else { return };
    let store = Store::new();
    let cases = [
        ("auto_dual", "dual.test", DnsLookupFamily::Auto, vec!["::1"]),
        ("auto_v4", "v4.test", DnsLookupFamily::Auto, vec!["127.0.0.32"]),
        ("v4_only", "dual.test", DnsLookupFamily::V4Only, vec!["127.0.0.31"]),
        ("v6_only", "dual.test", DnsLookupFamily::V6Only, vec!["::1"]),
        ("v4_preferred", "dual.test", DnsLookupFamily::V4Preferred, vec!["127.0.0.31"]),
        ("v4_preferred_v6", "v6.test", DnsLookupFamily::V4Preferred, vec!["::2"]),
        ("all", "dual.test", DnsLookupFamily::All, vec!["127.0.0.31", "::1"]),
    ];
    let clusters: Vec<_> =
        cases.iter().map(|(name, host, family, _)| dns_cluster(name, DiscoveryType::StrictDns, host, &dns, *family)).collect();
    let cm = started(&clusters, &store).await;
    for (name, _, _, expected) in &cases {
        let c = cm.get(name).unwrap();
        eventually(name, || c.stats.update_success.value() > 0).await;
        assert_eq!(ips(c), set(expected), "{name}");
    }
    assert_eq!(cm.resolver_count(), 1, "one resolver per resolver set");
}

#[tokio::test]
async fn respect_dns_ttl_refreshes_at_the_record_ttl() {
    let Some(dns) = Dnsmasq::start("127.0.0.41 ttl.test\n", 1) else { return };
    let store = Store::new();
    let mut cfg = dns_cluster("ttl", DiscoveryType::StrictDns, "ttl.test", &dns, DnsLookupFamily::V4Only);
    cfg.dns_refresh_rate = Duration::from_secs(3600);
    cfg.respect_dns_ttl = true;
    let cm = started(&[cfg], &store).await;
    let c = cm.get("ttl").unwrap();
    dns.set("127.0.0.42 ttl.test\n");
    eventually("a refresh after the 1 s TTL", || ips(c) == set(&["127.0.0.42"])).await;
}

#[test]
fn manager_stats_and_lookup() {
    let store = Store::new();
    let clusters = [
        cluster_config("a", DiscoveryType::Static, &[("127.0.0.1", 80, 1, 0)]),
        cluster_config("b", DiscoveryType::StrictDns, &[]),
    ];
    let cm = ClusterManager::new(&clusters, &store).unwrap();
    assert_eq!(cm.clusters().map(|c| c.config.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(cm.get("b").unwrap().index, 1);
    assert!(cm.get("c").is_none());
    assert!(cm.clusters().all(|c| c.is_initialized()), "no endpoints: initialized at once");
    assert_eq!(store.counter("cluster_manager.cluster_added").value(), 2);
    assert_eq!(store.gauge("cluster_manager.active_clusters", GaugeMode::NeverImport).value(), 2);
    cm.worker_started(0);
    let inflated = |w: &str| store.gauge(&format!("thread_local_cluster_manager.{w}.clusters_inflated"), GaugeMode::NeverImport).value();
    assert_eq!((inflated("main_thread"), inflated("worker_0")), (2, 2));
    let dup = [clusters[0].clone(), clusters[0].clone()];
    let err = ClusterManager::new(&dup, &Store::new()).err().unwrap();
    assert_eq!(err.to_string(), "cluster manager: duplicate cluster 'a'");
}
