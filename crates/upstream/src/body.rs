//! Bodies on upstream HTTP/1 connections. A response body gives the connection back to its
//! pool when it ends, straight from the task that reads it: no task per request waits for the
//! codec to come free; dropped before its end, it closes the connection. A request body that
//! fails marks its connection's close as Legate's.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::pool::{BoxError, ConnShared, Release, RequestBody};


/// A response body read from an upstream connection.
///
/// Invariant: `release` is `Some` only for an HTTP/1 connection whose response this is, until
/// the body has ended or is dropped; then the connection goes back to its pool (or, if its
/// codec is not ready for another request yet, a task returns it once it is).
#[derive(Debug)]
pub struct UpstreamBody {
    inner: Incoming,
    release: Option<Release>,
}

// === impl UpstreamBody ===

impl UpstreamBody {
    /// A body whose connection needs no returning (HTTP/2 streams).
    pub(crate) fn new(inner: Incoming) -> Self {
        Self { inner, release: None }
    }

    /// A body of the HTTP/1 connection that `release` returns to its pool when the body ends.
    pub(crate) fn pooled(inner: Incoming, release: Release) -> Self {
        Self { inner, release: Some(release) }
    }

    fn release(&mut self) {
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
            Poll::Ready(None) => this.release(),
            // An error is the upstream's doing (it cut the body short).
            Poll::Ready(Some(Err(_))) => {
                if let Some(release) = this.release.take() {
                    release.fail();
                }
            }
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(),
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
    }
}

/// A request body being written to an HTTP/1 connection. When it fails (the client went away
/// mid-request, or a retry's copy overflowed) Legate gives the request up, and the connection
/// closes as Legate's close with an active request (`upstream_cx_destroy_local_with_active_rq`),
/// as in Envoy. It is marked from the connection's own task, before the codec ends it.
pub(crate) struct WatchedRequestBody {
    inner: RequestBody,
    shared: std::sync::Arc<ConnShared>,
}

// === impl WatchedRequestBody ===

impl WatchedRequestBody {
    /// Watches `inner`, sent on the connection of `shared`.
    pub(crate) fn new(inner: RequestBody, shared: std::sync::Arc<ConnShared>) -> Self {
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
        if let Poll::Ready(Some(Err(_))) = &result {
            this.shared.mark_aborted();
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
