//! The HCM `idle_timeout` of downstream connections: a connection without active streams for
//! that long is counted in `downstream_cx_idle_timeout` and closed (HTTP/1) or drained
//! (HTTP/2: GOAWAY, then closed once its streams are done), as Envoy does.
//!
//! The idle timer is lazy: streams only count themselves in and out (and note when the last
//! one ended); the timer is not moved per stream, but set again when it fires early.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// The streams of one connection that are still active (from request headers until the
/// response body has been sent or dropped).
#[derive(Debug)]
pub struct ActiveStreams {
    count: AtomicUsize,
    /// Whether any stream has started on the connection.
    used: AtomicBool,
    /// When the connection last had no stream left, in µs since `origin`.
    idle_since_us: AtomicU64,
    origin: Instant,
}

/// Keeps one stream counted as active until dropped.
#[derive(Debug)]
pub struct StreamActivity(Arc<ActiveStreams>);

impl Drop for StreamActivity {
    fn drop(&mut self) {
        let streams = &self.0;
        // Noted before the count falls, so that a zero count is never read with an older time.
        streams.idle_since_us.store(micros(streams.origin.elapsed()), Ordering::Relaxed);
        streams.count.fetch_sub(1, Ordering::Release);
    }
}

impl Default for ActiveStreams {
    /// A connection that opened now, without streams.
    fn default() -> Self {
        Self { count: AtomicUsize::new(0), used: AtomicBool::new(false), idle_since_us: AtomicU64::new(0), origin: Instant::now() }
    }
}

impl ActiveStreams {
    /// Counts a new stream until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> StreamActivity {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.used.store(true, Ordering::Relaxed);
        StreamActivity(self.clone())
    }

    /// Whether any stream has started on the connection.
    pub fn used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    /// Resolves once the connection has had no active stream for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        let mut deadline = self.origin + idle;
        loop {
            tokio::time::sleep_until(deadline).await;
            let now = Instant::now();
            if self.count.load(Ordering::Acquire) != 0 {
                deadline = now + idle;
                continue;
            }
            let due = self.origin + Duration::from_micros(self.idle_since_us.load(Ordering::Relaxed)) + idle;
            if due <= now {
                return;
            }
            deadline = due;
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

pin_project_lite::pin_project! {
    /// A response body that keeps its stream counted as active until it is done or dropped.
    pub struct CountedBody<B> {
        #[pin]
        inner: B,
        activity: Option<StreamActivity>,
    }
}

impl<B> CountedBody<B> {
    /// Wraps `inner`, holding `activity` until the body ends.
    pub fn new(inner: B, activity: StreamActivity) -> Self {
        Self { inner, activity: Some(activity) }
    }
}

impl<B: Body<Data = Bytes>> Body for CountedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let result = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = result {
            this.activity.take();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_only_without_streams_for_the_whole_period() {
        let streams = Arc::new(ActiveStreams::default());
        let start = tokio::time::Instant::now();
        let activity = streams.enter();
        let s = streams.clone();
        let waiter = tokio::spawn(async move { s.idle_for(Duration::from_millis(100)).await });
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!waiter.is_finished(), "a stream is active");
        drop(activity);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A new stream within the period restarts it.
        let again = streams.enter();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(again);
        waiter.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(410));
    }

    #[tokio::test(start_paused = true)]
    async fn counted_body_ends_its_stream() {
        let streams = Arc::new(ActiveStreams::default());
        let mut body = CountedBody::new(http_body_util::Full::new(Bytes::from_static(b"x")), streams.enter());
        assert_eq!(streams.count.load(Ordering::Relaxed), 1);
        while http_body_util::BodyExt::frame(&mut body).await.is_some() {}
        assert_eq!(streams.count.load(Ordering::Relaxed), 0);
    }
}
