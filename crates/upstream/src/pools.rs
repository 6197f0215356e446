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
        let tls_name = cluster.tls.as_ref().filter(|t| t.uses_request_host()).and_then(|_| request_host(&req));
        if http2 {
            self.http2.send(cluster, host, req, tls_name).await
        } else {
            self.http1.send(cluster, host, req, tls_name).await
        }
    }
}

/// The request's host for `auto_sni` / `auto_san_validation`, as Envoy parses it: the Host
/// header without its port (an IPv6 address without its brackets), lower-cased as the name
/// Envoy sends; none when empty.
fn request_host(req: &http::Request<RequestBody>) -> Option<Arc<str>> {
    let authority = req.headers().get(http::header::HOST)?.to_str().ok()?;
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(ip, _)| ip),
        None => match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        },
    };
    (!host.is_empty()).then(|| Arc::from(host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_host_drops_the_port() {
        let host = |h: &str| {
            let req = http::Request::builder().header("host", h).body(RequestBody::default()).unwrap();
            request_host(&req).map(|s| s.to_string())
        };
        assert_eq!(host("API.test:8443").as_deref(), Some("api.test"));
        assert_eq!(host("api.test").as_deref(), Some("api.test"));
        assert_eq!(host("10.0.0.1:80").as_deref(), Some("10.0.0.1"));
        assert_eq!(host("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(host(""), None);
    }
}
