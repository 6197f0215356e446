//! DNS resolution with hickory (pure Rust: a static binary in a `FROM scratch` image needs no
//! NSS/getaddrinfo). One resolver serves every cluster with the same resolver set: the
//! cluster's `dns_resolvers` (UDP, then TCP) or, when empty, the system's /etc/resolv.conf.
//!
//! Results follow Envoy's c-ares resolver: a name with no records (NXDOMAIN, NODATA) resolves
//! successfully to nothing; `AUTO` asks AAAA and falls back to A when that gives no address,
//! `V4_PREFERRED` the reverse, `ALL` asks both.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::Resolver;
use legate_config::model::DnsLookupFamily;

/// A resolver shared by the clusters using the same DNS servers.
pub(crate) struct DnsResolver {
    resolver: Resolver<TokioRuntimeProvider>,
}

/// A successful resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolution {
    /// Addresses in answer order, without duplicates.
    pub addresses: Vec<IpAddr>,
    /// Smallest record TTL (zero for an empty answer or an IP literal).
    pub ttl: Duration,
}

impl DnsResolver {
    /// Builds a resolver querying `servers`, or the system configuration when `servers` is
    /// empty. Without a readable /etc/resolv.conf it uses 127.0.0.1:53, as c-ares does.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, String> {
        let (config, mut opts) = if servers.is_empty() {
            match hickory_resolver::system_conf::read_system_conf() {
                Ok(conf) => conf,
                Err(e) => {
                    tracing::warn!("cannot read the system DNS configuration ({e}); using 127.0.0.1:53");
                    (servers_config(&[SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)]), ResolverOpts::default())
                }
            }
        } else {
            (servers_config(servers), ResolverOpts::default())
        };
        // Every refresh must ask the servers: membership follows record changes.
        opts.cache_size = 0;
        // c-ares' per-query timeout (2 s), retried once.
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.try_tcp_on_error = true;
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| format!("building the DNS resolver: {e}"))?;
        Ok(Self { resolver })
    }

    /// Resolves `name` with Envoy's `dns_lookup_family` semantics. An IP literal resolves to
    /// itself.
    pub async fn resolve(&self, name: &str, family: DnsLookupFamily) -> Result<Resolution, String> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Resolution { addresses: vec![ip], ttl: Duration::ZERO });
        }
        let records = match family {
            DnsLookupFamily::V4Only => self.query(name, RecordType::A).await?,
            DnsLookupFamily::V6Only => self.query(name, RecordType::AAAA).await?,
            DnsLookupFamily::Auto => self.first_then(name, RecordType::AAAA, RecordType::A).await?,
            DnsLookupFamily::V4Preferred => self.first_then(name, RecordType::A, RecordType::AAAA).await?,
            DnsLookupFamily::All => {
                let (v4, v6) = tokio::join!(self.query(name, RecordType::A), self.query(name, RecordType::AAAA));
                match (v4, v6) {
                    (Err(e), Err(_)) => return Err(e),
                    (v4, v6) => v4.unwrap_or_default().into_iter().chain(v6.unwrap_or_default()).collect(),
                }
            }
        };
        let mut addresses: Vec<IpAddr> = Vec::with_capacity(records.len());
        for (ip, _) in &records {
            if !addresses.contains(ip) {
                addresses.push(*ip);
            }
        }
        let ttl = records.iter().map(|r| r.1).min().unwrap_or(0);
        Ok(Resolution { addresses, ttl: Duration::from_secs(u64::from(ttl)) })
    }

    /// Asks `first`; when that yields no address (empty or failed), asks `second`.
    async fn first_then(&self, name: &str, first: RecordType, second: RecordType) -> Result<Vec<(IpAddr, u32)>, String> {
        match self.query(name, first).await {
            Ok(records) if !records.is_empty() => Ok(records),
            _ => self.query(name, second).await,
        }
    }

    /// One query; "no records" is a successful empty answer.
    async fn query(&self, name: &str, kind: RecordType) -> Result<Vec<(IpAddr, u32)>, String> {
        match self.resolver.lookup(name, kind).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) if kind == RecordType::A => Some((IpAddr::V4(a.0), r.ttl)),
                    RData::AAAA(a) if kind == RecordType::AAAA => Some((IpAddr::V6(a.0), r.ttl)),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A resolver configuration for explicit servers, each reachable over UDP and TCP.
fn servers_config(servers: &[SocketAddr]) -> ResolverConfig {
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
    ResolverConfig::from_name_servers(name_servers)
}
