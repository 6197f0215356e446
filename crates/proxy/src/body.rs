//! The downstream response body: a local reply or a streamed upstream body, carrying the guard
//! that completes the stream's accounting when the body ends or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use crate::stats::HcmStats;

/// Error type of the response body.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Completes a downstream stream's stats exactly once, when the response body ends or is dropped.
pub struct StreamGuard {
    stats: HcmStats,
    start: Instant,
    upstream: Option<UpstreamCompletion>,
}

/// Upstream accounting finished together with the stream.
pub struct UpstreamCompletion {
    /// Cluster to account on.
    pub cluster: std::sync::Arc<legate_upstream::Cluster>,
    /// Host that served the request.
    pub host: std::sync::Arc<legate_upstream::Host>,
    /// When the upstream request started.
    pub start: Instant,
    /// Whether the upstream response was successful (not 5xx).
    pub success: bool,
}

impl StreamGuard {
    /// Starts accounting for a new downstream request.
    pub fn new(stats: HcmStats, start: Instant) -> Self {
        stats.downstream_rq_active.inc();
        Self { stats, start, upstream: None }
    }

    /// Attaches upstream accounting.
    pub fn set_upstream(&mut self, completion: UpstreamCompletion) {
        self.upstream = Some(completion);
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.stats.downstream_rq_active.dec();
        self.stats.downstream_rq_time.record(ms_since(self.start));
        if let Some(up) = self.upstream.take() {
            let s = &up.cluster.stats;
            s.upstream_rq_active.dec();
            s.upstream_rq_time.record(ms_since(up.start));
            up.host.stats.rq_active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let counter = if up.success { &up.host.stats.rq_success } else { &up.host.stats.rq_error };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Milliseconds elapsed since `start`, saturating.
pub fn ms_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

pin_project_lite::pin_project! {
    /// Body of a response sent downstream.
    pub struct ProxyBody {
        #[pin]
        kind: Kind,
        guard: Option<StreamGuard>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind {
        Full { data: Option<Bytes> },
        Upstream { #[pin] body: Incoming, deadline: Option<Pin<Box<Sleep>>>, idle: Option<IdleTimer> },
    }
}

/// Raised when the route timeout expires while the upstream body is still streaming.
#[derive(Debug, thiserror::Error)]
#[error("upstream request timeout while streaming the response body")]
pub struct BodyTimeout;

/// Raised when no body data arrived for `stream_idle_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("stream idle timeout while streaming the response body")]
pub struct StreamIdleTimeout;

/// The stream idle timer of a response body: re-armed lazily, so data frames only record an
/// instant and the timer is reset at most once per idle period.
pub struct IdleTimer {
    timeout: std::time::Duration,
    last_activity: Instant,
    sleep: Pin<Box<Sleep>>,
    counter: legate_stats::Counter,
}

impl IdleTimer {
    /// A timer firing after `timeout` without data; counts `downstream_rq_idle_timeout`.
    pub fn new(timeout: std::time::Duration, counter: legate_stats::Counter) -> Self {
        let now = Instant::now();
        Self { timeout, last_activity: now, sleep: Box::pin(tokio::time::sleep_until((now + timeout).into())), counter }
    }

    fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_activity + self.timeout;
            if Instant::now() >= due {
                self.counter.inc();
                return true;
            }
            self.sleep.as_mut().reset(due.into());
        }
    }
}

impl ProxyBody {
    /// A complete body (possibly empty).
    pub fn full(data: impl Into<Bytes>, guard: Option<StreamGuard>) -> Self {
        let data = data.into();
        let data = if data.is_empty() { None } else { Some(data) };
        Self { kind: Kind::Full { data }, guard }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self { kind: Kind::Full { data: None }, guard: None }
    }

    /// A streamed upstream body, cut off at the route `deadline` or after `idle` without data.
    pub fn upstream(
        body: Incoming,
        deadline: Option<Pin<Box<Sleep>>>,
        idle: Option<IdleTimer>,
        guard: StreamGuard,
    ) -> Self {
        Self { kind: Kind::Upstream { body, deadline, idle }, guard: Some(guard) }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.project();
        let result = match this.kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Upstream { body, deadline, idle } => match body.poll_frame(cx) {
                Poll::Ready(r) => {
                    if let Some(idle) = idle.as_mut() {
                        idle.touch();
                    }
                    Poll::Ready(r.map(|f| f.map_err(BodyError::from)))
                }
                Poll::Pending => {
                    if let Some(Poll::Ready(())) = deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                        Poll::Ready(Some(Err(BodyError::from(BodyTimeout))))
                    } else if idle.as_mut().is_some_and(|i| i.poll_expired(cx)) {
                        Poll::Ready(Some(Err(BodyError::from(StreamIdleTimeout))))
                    } else {
                        Poll::Pending
                    }
                }
            },
        };
        if let Poll::Ready(None) = result {
            this.guard.take();
        }
        result
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Upstream { body, .. } => body.size_hint(),
        }
    }
}

use std::future::Future as _;
