//! The HCM `idle_timeout` of HTTP/2 downstream connections: a connection without active
//! streams for that long is drained (GOAWAY, then closed once its streams are done) and counted
//! in `downstream_cx_idle_timeout`, as Envoy does.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

/// The streams of one connection that are still active (from request headers until the
/// response body has been sent or dropped).
#[derive(Debug, Default)]
pub struct ActiveStreams {
    count: AtomicUsize,
    changed: Notify,
}

/// Keeps one stream counted as active until dropped.
#[derive(Debug)]
pub struct StreamActivity(Arc<ActiveStreams>);

impl Drop for StreamActivity {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Relaxed);
        self.0.changed.notify_waiters();
    }
}

impl ActiveStreams {
    /// Counts a new stream until the returned guard is dropped.
    pub fn enter(self: &Arc<Self>) -> StreamActivity {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
        StreamActivity(self.clone())
    }

    /// Resolves once the connection has had no active stream for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before reading the count, so that no change is missed.
            changed.as_mut().enable();
            if self.count.load(Ordering::Relaxed) == 0 {
                tokio::select! {
                    () = tokio::time::sleep(idle) => {
                        if self.count.load(Ordering::Relaxed) == 0 {
                            return;
                        }
                    }
                    () = &mut changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
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
