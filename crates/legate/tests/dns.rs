//! STRICT_DNS against a real DNS server (dnsmasq on 127.0.0.x): every A record is a host, and
//! membership follows record changes, as the seed's scaled replicas need.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

struct Dnsmasq {
    child: Child,
    hosts: std::path::PathBuf,
    port: u16,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.hosts);
    }
}

impl Dnsmasq {
    fn start(records: &str) -> Option<Dnsmasq> {
        let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].into_iter().find(|p| std::path::Path::new(p).exists())?;
        let hosts = std::env::temp_dir().join(format!("legate-dns-{}.hosts", std::process::id()));
        std::fs::write(&hosts, records).unwrap();
        let port = free_udp_port();
        let child = Command::new(bin)
            .args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces", "--user=root"])
            .arg("--listen-address=127.0.0.53")
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", hosts.display()))
            .arg("--local-ttl=0")
            .arg("--pid-file=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        std::thread::sleep(Duration::from_millis(200));
        Some(Dnsmasq { child, hosts, port })
    }

    fn set_records(&self, records: &str) {
        std::fs::write(&self.hosts, records).unwrap();
        // SAFETY: signalling our own child process.
        unsafe { libc_kill(self.child.id() as i32, 1) };
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.53:0").unwrap().local_addr().unwrap().port()
}

fn config(dns_port: u16, upstream_port: u16) -> String {
    format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {{admin_port}}}}}}
static_resources:
  listeners:
  - name: main
    address: {{socket_address: {{address: 127.0.0.1, port_value: {{listener_port}}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: backend
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: films}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: films
    type: STRICT_DNS
    connect_timeout: 1s
    dns_refresh_rate: 0.2s
    dns_lookup_family: V4_ONLY
    typed_dns_resolver_config:
      name: envoy.network.dns_resolver.cares
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig
        resolvers:
        - socket_address: {{address: 127.0.0.53, port_value: {dns_port}}}
    load_assignment:
      cluster_name: films
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: films.test, port_value: {upstream_port}}}}}}}
"#
    )
}

fn hosts_in_clusters(legate: &Legate) -> Vec<String> {
    let text = legate.admin_get("/clusters").text();
    let mut hosts: Vec<String> = text
        .lines()
        .filter(|l| l.contains("::cx_total::"))
        .filter_map(|l| l.strip_prefix("films::")?.split("::").next().map(str::to_string))
        .collect();
    hosts.sort();
    hosts
}

#[test]
fn strict_dns_follows_records_and_balances_over_all_of_them() {
    let port = free_port();
    let a = Upstream::start_on("replica-a", format!("127.0.0.2:{port}").parse().unwrap());
    let b = Upstream::start_on("replica-b", format!("127.0.0.3:{port}").parse().unwrap());
    let Some(dns) = Dnsmasq::start("127.0.0.2 films.test\n") else {
        eprintln!("dnsmasq not installed: skipping the STRICT_DNS test");
        return;
    };
    let legate = Legate::start(&config(dns.port, port), &[]);
    assert_eq!(hosts_in_clusters(&legate), vec![format!("127.0.0.2:{port}")]);
    assert_eq!(legate.stat("cluster.films.membership_total"), Some(1));

    dns.set_records("127.0.0.2 films.test\n127.0.0.3 films.test\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hosts_in_clusters(&legate).len() < 2 {
        assert!(Instant::now() < deadline, "membership did not follow DNS: {:?}", hosts_in_clusters(&legate));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(legate.stat("cluster.films.membership_total"), Some(2));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let r = request(legate.listener, "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        assert_eq!(r.status, 200);
        seen.insert(r.header("x-upstream").unwrap().to_string());
    }
    assert_eq!(seen.len(), 2, "round robin reaches both replicas: {seen:?}");

    dns.set_records("127.0.0.3 films.test\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while hosts_in_clusters(&legate) != vec![format!("127.0.0.3:{port}")] {
        assert!(Instant::now() < deadline, "removed record still a host: {:?}", hosts_in_clusters(&legate));
        std::thread::sleep(Duration::from_millis(100));
    }
    drop((a, b));
}
