//! A worker's upstream pools, one per protocol, and the choice between them. For an
//! `auto_config` cluster the choice is ALPN's: the worker's first connection to a host offers
//! `h2,http/1.1` and joins the HTTP/2 pool when the upstream selects `h2`, the HTTP/1.1 pool
//! otherwise (also without ALPN); later requests to the host go straight to that pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use legate_config::model::UpstreamProtocol;
use tokio::sync::OnceCell;

use crate::body::UpstreamBody;
use crate::breakers::ConnectionSlot;
use crate::cluster::Cluster;
use crate::error::SharedError;
use crate::h2pool::Http2Pool;
use crate::host::Host;
use crate::connect::{connect_tcp, Codec};
use crate::pool::{Http1Pool, Key, PendingGuard, RequestBody};
use crate::UpstreamError;

/// Whether a host of an `auto_config` cluster selected HTTP/2, once the worker's first
/// connection to it is established; shared by the requests waiting for that connection.
type Negotiation = Arc<OnceCell<Result<bool, SharedError>>>;

/// Every upstream connection of one worker: HTTP/1.1 keep-alive and multiplexed HTTP/2.
#[derive(Default)]
pub struct UpstreamPools {
    http1: Http1Pool,
    http2: Http2Pool,
    /// What each host of an `auto_config` cluster negotiated (per TLS name, as the pools).
    negotiated: Mutex<HashMap<Key, Negotiation>>,
}

impl UpstreamPools {
    /// Empty pools.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `req` to `host` with the protocol the cluster speaks (`downstream` is the
    /// downstream request's version, for `use_downstream_protocol_config`).
    ///
    /// A function returning an `async move` block rather than an `async fn`, so that the
    /// future's state holds one copy of the request, not two (it is moved whole with every
    /// request).
    pub fn send<'a>(
        &'a self,
        cluster: &'a Arc<Cluster>,
        host: &'a Arc<Host>,
        req: http::Request<RequestBody>,
        downstream: http::Version,
    ) -> impl std::future::Future<Output = Result<http::Response<UpstreamBody>, UpstreamError>> + 'a {
        async move {
            let tls_name = cluster.tls.as_ref().filter(|t| t.uses_request_host()).and_then(|_| request_host(&req));
            let http2 = match cluster.config.http.protocol {
                UpstreamProtocol::Http1 => false,
                UpstreamProtocol::Http2 => true,
                UpstreamProtocol::UseDownstream => downstream == http::Version::HTTP_2,
                UpstreamProtocol::Auto => {
                    let key = (cluster.index, host.address, tls_name.clone());
                    match self.negotiated_protocol(&key) {
                        Some(http2) => http2,
                        // Boxed: the wait for a first connection is a large future, which would
                        // otherwise enlarge every request's.
                        None => Box::pin(self.negotiate(cluster, host, key)).await?,
                    }
                }
            };
            if http2 {
                self.http2.send(cluster, host, req, tls_name).await
            } else {
                self.http1.send(cluster, host, req, tls_name).await
            }
        }
    }

    /// Whether `key`'s host selected HTTP/2, once known.
    fn negotiated_protocol(&self, key: &Key) -> Option<bool> {
        match self.negotiated.lock().unwrap_or_else(|e| e.into_inner()).get(key)?.get()? {
            Ok(http2) => Some(*http2),
            Err(_) => None,
        }
    }

    /// Whether `host` speaks HTTP/2, as its ALPN told on the worker's first connection to it,
    /// which is opened now if needed (the request is pending meanwhile, as on any new
    /// connection) and then joins the pool of its protocol. A failed connection is forgotten:
    /// the next request tries again.
    async fn negotiate(&self, cluster: &Arc<Cluster>, host: &Arc<Host>, key: Key) -> Result<bool, UpstreamError> {
        let cell = self.negotiated.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().clone();
        // Pending until the connection is there; a request dropped meanwhile is cancelled.
        let pending = if cell.initialized() { None } else { Some(PendingGuard::admit(cluster)?) };
        let result = cell.get_or_init(|| self.open(cluster, host, &key)).await;
        if let Some(p) = pending {
            p.settle(result.is_ok());
        }
        match result {
            Ok(http2) => Ok(*http2),
            Err(e) => {
                let mut negotiated = self.negotiated.lock().unwrap_or_else(|e| e.into_inner());
                if negotiated.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                    negotiated.remove(&key);
                }
                Err(e.to_error())
            }
        }
    }

    /// Opens a connection offering both protocols and gives it to the pool of the one the
    /// upstream selected. The worker has no connection to the host yet, so it is opened even
    /// at `max_connections` (counted as `upstream_cx_overflow`), as Envoy's pools do.
    async fn open(&self, cluster: &Arc<Cluster>, host: &Arc<Host>, key: &Key) -> Result<bool, SharedError> {
        let _ = cluster.connection_allowed();
        let connection = ConnectionSlot::new(cluster);
        let stream = connect_tcp(cluster, host, Codec::Alpn, key.2.as_deref()).await.map_err(|e| SharedError::new(&e))?;
        let http2 = selects_http2(stream.alpn());
        let adopted = if http2 {
            self.http2.adopt(cluster, host, key, stream, connection).await
        } else {
            self.http1.adopt(cluster, host, key.clone(), stream, connection).await
        };
        adopted.map(|()| http2).map_err(|e| SharedError::new(&e))
    }
}

/// Whether the negotiated ALPN protocol is HTTP/2; anything else, or none, is HTTP/1.1, as
/// in Envoy's mixed pool.
fn selects_http2(alpn: Option<&[u8]>) -> bool {
    alpn == Some(b"h2")
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
mod tests;
