//! DNS resolution with hickory (pure Rust, so static binaries need no NSS): either the cluster's
//! own resolvers or the system's /etc/resolv.conf.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::Resolver;
use legate_config::model::DnsLookupFamily;

/// A resolver for one cluster.
pub struct DnsResolver {
    resolver: Resolver<TokioRuntimeProvider>,
}

/// A resolution result.
pub struct Resolved {
    /// Addresses in answer order.
    pub addresses: Vec<IpAddr>,
    /// When the answer expires (minimum TTL).
    pub valid_until: Instant,
}

impl DnsResolver {
    /// Builds a resolver querying `servers` (UDP and TCP), or the system configuration when
    /// `servers` is empty, with Envoy's lookup family.
    pub fn new(servers: &[SocketAddr], family: DnsLookupFamily) -> Result<Self, String> {
        let (config, mut opts) = if servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf().map_err(|e| format!("reading /etc/resolv.conf: {e}"))?
        } else {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            (ResolverConfig::from_name_servers(name_servers), ResolverOpts::default())
        };
        opts.ip_strategy = match family {
            DnsLookupFamily::Auto => LookupIpStrategy::Ipv6thenIpv4,
            DnsLookupFamily::V4Only => LookupIpStrategy::Ipv4Only,
            DnsLookupFamily::V6Only => LookupIpStrategy::Ipv6Only,
            DnsLookupFamily::V4Preferred => LookupIpStrategy::Ipv4thenIpv6,
            DnsLookupFamily::All => LookupIpStrategy::Ipv4AndIpv6,
        };
        // Every refresh must ask the server: membership follows record changes.
        opts.cache_size = 0;
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| format!("building resolver: {e}"))?;
        Ok(Self { resolver })
    }

    /// Resolves `name` (an IP literal resolves to itself).
    pub async fn resolve(&self, name: &str) -> Result<Resolved, String> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Resolved { addresses: vec![ip], valid_until: Instant::now() + Duration::from_secs(3600) });
        }
        let lookup = self.resolver.lookup_ip(name).await.map_err(|e| e.to_string())?;
        let addresses: Vec<IpAddr> = lookup.iter().collect();
        Ok(Resolved { addresses, valid_until: lookup.valid_until() })
    }
}
