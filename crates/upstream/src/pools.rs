//! A worker's upstream pools, one per protocol, and the choice between them.

use std::sync::Arc;

use legate_config::model::UpstreamProtocol;

use crate::cluster::Cluster;
use crate::h2pool::Http2Pool;
use crate::host::Host;
use crate::pool::{Http1Pool, RequestBody};
use crate::UpstreamError;

/// Every upstream connection of one worker: HTTP/1.1 keep-alive and multiplexed HTTP/2.
#[derive(Default)]
pub struct UpstreamPools {
    http1: Http1Pool,
    http2: Http2Pool,
}

impl UpstreamPools {
    /// Empty pools.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `req` to `host` with the protocol the cluster speaks (`downstream` is the
    /// downstream request's version, for `use_downstream_protocol_config`).
    pub async fn send(
        &self,
        cluster: &Arc<Cluster>,
        host: &Arc<Host>,
        req: http::Request<RequestBody>,
        downstream: http::Version,
    ) -> Result<http::Response<hyper::body::Incoming>, UpstreamError> {
        let http2 = match cluster.config.http.protocol {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::UseDownstream => downstream == http::Version::HTTP_2,
        };
        if http2 {
            self.http2.send(cluster, host, req).await
        } else {
            self.http1.send(cluster, host, req).await
        }
    }
}
