//! Listener runtime state and socket binding.

use std::net::SocketAddr;
use std::sync::Arc;

use legate_config::model::{FilterChain, FilterChainMatch, Listener, NetworkFilter};
use legate_stats::Store;
use legate_upstream::ClusterManager;
use socket2::{Domain, Protocol, Socket, Type};

use crate::hcm::Hcm;
use crate::stats::ListenerStats;
use crate::tcp_proxy::TcpProxyRuntime;
use crate::tls::TlsTerminator;
use crate::ProxyError;

/// Backlog of listening sockets.
const LISTEN_BACKLOG: i32 = 1024;

/// A configured listener with its filter chains instantiated.
pub struct ListenerRuntime {
    /// The listener configuration.
    pub config: Listener,
    /// Stat scope `listener.<address>.`.
    pub scope: String,
    /// Listener stats.
    pub stats: ListenerStats,
    /// The stats store (for per-worker stats).
    pub store: Store,
    /// The filter chains, in configuration order.
    pub chains: Vec<ChainRuntime>,
    /// `default_filter_chain`.
    pub default_chain: Option<ChainRuntime>,
}

/// One instantiated filter chain.
pub struct ChainRuntime {
    /// What the chain matches.
    pub matcher: FilterChainMatch,
    /// Its terminal network filter.
    pub filter: TerminalFilter,
    /// TLS termination, when the chain has a TLS transport socket.
    pub tls: Option<TlsTerminator>,
}

/// The instantiated terminal network filter of a listener.
pub enum TerminalFilter {
    /// HTTP connection manager.
    Http(Arc<Hcm>),
    /// TCP proxy.
    Tcp(Arc<TcpProxyRuntime>),
}

impl ListenerRuntime {
    /// Instantiates `config`; access log files are flushed at least every `flush_interval`.
    pub fn new(
        config: &Listener,
        clusters: &Arc<ClusterManager>,
        store: &Store,
        flush_interval: std::time::Duration,
    ) -> Result<Self, ProxyError> {
        let scope = format!("listener.{}.", config.stat_prefix());
        let chain = |c: &FilterChain| -> Result<ChainRuntime, ProxyError> {
            let filter = match &c.terminal {
                NetworkFilter::HttpConnectionManager(hcm) => {
                    let hcm = Hcm::new(hcm, &scope, config.per_connection_buffer_limit_bytes, clusters.clone(), store, flush_interval)
                        .map_err(|e| ProxyError::Config(format!("listener {}: {e}", config.name)))?;
                    TerminalFilter::Http(Arc::new(hcm))
                }
                NetworkFilter::TcpProxy(tcp) => {
                    let tcp = TcpProxyRuntime::new(tcp, clusters.clone(), store, flush_interval)
                        .map_err(|e| ProxyError::Config(format!("listener {}: {e}", config.name)))?;
                    TerminalFilter::Tcp(Arc::new(tcp))
                }
            };
            let tls = c
                .tls
                .as_ref()
                .map(|t| TlsTerminator::new(t, store, &scope))
                .transpose()
                .map_err(|e| ProxyError::Config(format!("listener {}: {e}", config.name)))?;
            Ok(ChainRuntime { matcher: c.matcher.clone(), filter, tls })
        };
        let chains = config.filter_chains.iter().map(chain).collect::<Result<_, _>>()?;
        let default_chain = config.default_filter_chain.as_ref().map(chain).transpose()?;
        Ok(Self { stats: ListenerStats::new(store, &scope), scope, store: store.clone(), config: config.clone(), chains, default_chain })
    }

    /// The chain for a connection, by Envoy's precedence: the most specific `server_names` match
    /// (exact, then the longest `*.suffix`, then chains without names), then `transport_protocol`
    /// (equal, then unset); the default chain when none matches.
    pub fn select(&self, sni: Option<&str>, transport: &str) -> Option<&ChainRuntime> {
        crate::chain::select(&self.chains, |c| &c.matcher, sni, transport).or(self.default_chain.as_ref())
    }
}

/// Binds a listening socket with SO_REUSEADDR and SO_REUSEPORT, so each worker can own one.
pub fn bind_reuseport(addr: SocketAddr) -> Result<std::net::TcpListener, std::io::Error> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}
