//! Upstream clusters: membership from STATIC config or DNS (STRICT_DNS, LOGICAL_DNS), Envoy's
//! load balancers, and per-worker HTTP/1.1 and HTTP/2 connection pools.
//!
//! The proxy builds one [`ClusterManager`] (main thread), calls [`ClusterManager::start`] and
//! awaits [`ClusterManager::wait_initialized`] before opening listeners; each worker owns an
//! [`UpstreamPools`]. Per request: [`Cluster::choose_host`], then [`UpstreamPools::send`].

mod body;
mod breakers;
mod cluster;
mod connect;
mod dns;
mod error;
mod h2pool;
mod health;
mod host;
mod lb;
mod manager;
mod outlier;
mod pool;
mod pools;
mod stats;
mod tcp;
pub mod headers;
pub mod string_match;
pub mod timer;
pub mod tls;

pub use body::UpstreamBody;
pub use cluster::{ActiveRequest, Cluster, RetryBackoff};
pub use error::UpstreamError;
pub use host::{Host, HostSet, HostStats};
pub use lb::LbContext;
pub use manager::ClusterManager;
pub use h2pool::Http2Pool;
pub use outlier::RequestResult;
pub use connect::UpstreamStream;
pub use pool::{BoxError, Http1Pool, RequestBody};
pub use pools::UpstreamPools;
pub use stats::{ClusterStats, LazyHistogram};
pub use tcp::TcpConnection;

#[cfg(test)]
mod test_support;
