//! The body of an upstream response. On an HTTP/1 connection it gives the connection back to
//! its pool when it ends, straight from the task that reads it: no task per request waits for
//! the codec to come free.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::pool::Release;

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
        self.release();
    }
}
