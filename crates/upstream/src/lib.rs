//! Upstream clusters: membership from STATIC config or DNS (STRICT_DNS, LOGICAL_DNS), Envoy's
//! load balancers, and per-worker HTTP/1.1 connection pools.
//!
//! The proxy builds one [`ClusterManager`] (main thread), calls [`ClusterManager::start`] and
//! awaits [`ClusterManager::wait_initialized`] before opening listeners; each worker owns an
//! [`Http1Pool`]. Per request: [`Cluster::choose_host`], then [`Http1Pool::send`].

mod cluster;
mod dns;
mod error;
mod health;
mod host;
mod lb;
mod manager;
mod outlier;
mod pool;
mod stats;

pub use cluster::Cluster;
pub use error::UpstreamError;
pub use host::{Host, HostSet, HostStats};
pub use lb::LbContext;
pub use manager::ClusterManager;
pub use outlier::RequestResult;
pub use pool::{BoxError, Http1Pool, RequestBody};
pub use stats::{ClusterStats, LazyHistogram};

#[cfg(test)]
mod test_support;
