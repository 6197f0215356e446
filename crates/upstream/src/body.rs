//! Bodies on upstream HTTP/1 connections. A response body gives the connection back to its
//! pool when it ends, straight from the task that reads it: no task per request waits for the
//! codec to come free; dropped before its end, it closes the connection. A request body that
//! fails marks its connection's close as Legate's.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::cluster::Cluster;
use crate::pool::{BoxError, ConnShared, Release, RequestBody};


/// A response body read from an upstream connection.
///
/// Invariants: `release` is `Some` only for an HTTP/1 connection whose response this is, until
/// the body has ended or is dropped; then the connection goes back to its pool (or, if its
/// codec is not ready for another request yet, a task returns it once it is). `stream_of` is
/// `Some` only for an HTTP/2 stream until it has ended: dropped before, Legate resets the stream
/// (`upstream_rq_tx_reset` of that cluster).
pub struct UpstreamBody {
    inner: Incoming,
    release: Option<Release>,
    stream_of: Option<Arc<Cluster>>,
}

// === impl UpstreamBody ===

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("inner", &self.inner)
            .field("release", &self.release)
            .field("http2_stream", &self.stream_of.is_some())
            .finish()
    }
}

impl UpstreamBody {
    /// The body of an HTTP/2 stream of `cluster` (its connection needs no returning).
    pub(crate) fn stream(inner: Incoming, cluster: Arc<Cluster>) -> Self {
        let stream_of = (!inner.is_end_stream()).then_some(cluster);
        Self { inner, release: None, stream_of }
    }

    /// A body of the HTTP/1 connection that `release` returns to its pool when the body ends.
    pub(crate) fn pooled(inner: Incoming, release: Release) -> Self {
        Self { inner, release: Some(release), stream_of: None }
    }

    fn ended(&mut self) {
        self.stream_of = None;
        if let Some(release) = self.release.take() {
            release.finish();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_frame(cx);
        match &result {
            Poll::Ready(None) => this.ended(),
            // An error is the upstream's doing (it cut the body short, or reset the stream).
            Poll::Ready(Some(Err(e))) => {
                if let Some(release) = this.release.take() {
                    release.fail();
                }
                if let Some(cluster) = this.stream_of.take() {
                    if crate::h2pool::reset_by_upstream(e) {
                        cluster.stats.upstream_rq_rx_reset.inc();
                    }
                }
            }
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.ended(),
            _ => {}
        }
        result
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        match self.release.take() {
            // The codec drops a body it has forwarded whole without asking for its end.
            Some(release) if self.inner.is_end_stream() => release.finish(),
            Some(release) => release.abort(),
            None => {}
        }
        if let Some(cluster) = self.stream_of.take() {
            if !self.inner.is_end_stream() {
                cluster.stats.upstream_rq_tx_reset.inc();
            }
        }
    }
}

/// A request body being written to an HTTP/1 connection. When it fails (the client went away
/// mid-request, or a retry's copy overflowed) Legate gives the request up, and the connection
/// closes as Legate's close with an active request (`upstream_cx_destroy_local_with_active_rq`),
/// as in Envoy. It is marked from the connection's own task, before the codec ends it.
pub(crate) struct WatchedRequestBody {
    inner: RequestBody,
    /// The connection to mark; none for a body that has ended already (it cannot fail).
    shared: Option<Arc<ConnShared>>,
}

// === impl WatchedRequestBody ===

impl WatchedRequestBody {
    /// Watches `inner`, sent on the connection of `shared`.
    pub(crate) fn new(inner: RequestBody, shared: &Arc<ConnShared>) -> Self {
        let shared = (!inner.is_end_stream()).then(|| shared.clone());
        Self { inner, shared }
    }

    /// The body, when the request is given back unsent.
    pub(crate) fn into_inner(self) -> RequestBody {
        self.inner
    }
}

impl Body for WatchedRequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Err(_))), Some(shared)) = (&result, &this.shared) {
            shared.mark_aborted();
        }
        result
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
