//! Upstream clusters: membership from STATIC config or DNS (STRICT_DNS, LOGICAL_DNS), Envoy's
//! load balancers, and per-worker HTTP/1.1 connection pools.

mod cluster;
mod dns;
mod error;
mod host;
pub mod lb;
mod pool;
mod stats;

pub use cluster::{Cluster, ClusterManager};
pub use error::UpstreamError;
pub use host::{Host, HostSet, HostStats};
pub use lb::LbContext;
pub use pool::{BoxError, Http1Pool, RequestBody};
pub use stats::ClusterStats;
