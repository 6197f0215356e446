//! The downstream response body: a local reply or a streamed upstream body, carrying the guard
//! that completes the stream's accounting when the body ends or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use legate_upstream::UpstreamBody;
use tokio::time::Sleep;

use crate::access_log::LogRecord;
use crate::conn_state::ConnectionState;
use crate::local_reply::ResponseFlags;
use crate::stats::HcmStats;
use crate::timeouts::{Expiry, StreamDeadlines};
use crate::timer_slot::TimerSlot;

/// `%RESPONSE_CODE_DETAILS%` of a stream the client cut off.
const DOWNSTREAM_REMOTE_DISCONNECT: &str = "downstream_remote_disconnect";

/// Error type of the response body.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Completes a downstream stream's stats exactly once, when the response body ends or is dropped.
pub struct StreamGuard {
    stats: std::sync::Arc<HcmStats>,
    /// The connection the stream is on (its active streams).
    connection: std::sync::Arc<ConnectionState>,
    start: Instant,
    upstream: Option<UpstreamCompletion>,
    log: Option<Box<LogRecord>>,
    /// The response body was handed to the codec and then ended (or failed for a reason of its
    /// own). A guard dropped before, with the request still being handled or the body still
    /// streaming, belongs to a stream the client cut off.
    ended: bool,
    /// Legate reset the stream: its response body failed (upstream reset, timeout).
    reset_sent: bool,
}

/// The last upstream attempt of a stream.
pub enum LastAttempt {
    /// Still counted active (its admission ends with the stream).
    Active(legate_upstream::ActiveRequest),
    /// Never admitted (a retry that overflowed) or already ended (a deadline during a retry's
    /// back-off): only its cluster and host remain to account on.
    Ended {
        /// The cluster.
        cluster: std::sync::Arc<legate_upstream::Cluster>,
        /// The host it was, or would have been, sent to.
        host: std::sync::Arc<legate_upstream::Host>,
    },
}

impl LastAttempt {
    fn cluster_and_host(&self) -> (&legate_upstream::Cluster, &legate_upstream::Host) {
        match self {
            Self::Active(a) => (a.cluster(), a.host()),
            Self::Ended { cluster, host } => (cluster, host),
        }
    }
}

/// Marks a response that must not be sent: the client went away mid-request, and the stream
/// ends in a reset instead (its guard is dropped unended).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the client went away before its request was complete")]
pub struct ClientGone;

/// Upstream accounting finished together with the stream.
pub struct UpstreamCompletion {
    /// The last attempt, released with the stream.
    pub attempt: LastAttempt,
    /// When the upstream request started.
    pub start: Instant,
    /// Whether the upstream response was successful (not 5xx).
    pub success: bool,
    /// Whether the request came from an internal client (`internal.` vs `external.` stats).
    pub internal: bool,
}

impl StreamGuard {
    /// Starts accounting for a new downstream request on `connection`.
    pub fn new(
        stats: std::sync::Arc<HcmStats>,
        start: Instant,
        log: Option<Box<LogRecord>>,
        connection: std::sync::Arc<ConnectionState>,
    ) -> Self {
        stats.downstream_rq_active.inc();
        connection.stream_started();
        Self { stats, connection, start, upstream: None, log, ended: false, reset_sent: false }
    }

    /// The stream's access log record, when the HCM has access loggers.
    pub fn log(&mut self) -> Option<&mut LogRecord> {
        self.log.as_deref_mut()
    }

    /// The spare timers of the stream's connection.
    pub fn timers(&self) -> &TimerSlot {
        self.connection.timers()
    }

    /// Marks the stream's connection as closing after this response (`connection: close`).
    pub fn close_connection(&self) {
        self.connection.close();
    }

    /// Attaches upstream accounting.
    pub fn set_upstream(&mut self, completion: UpstreamCompletion) {
        self.upstream = Some(completion);
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.stats.downstream_rq_active.dec();
        self.connection.stream_ended();
        // Envoy counts every reset stream as received, and those it reset as sent too.
        if !self.ended || self.reset_sent {
            self.stats.downstream_rq_rx_reset.inc();
        }
        if self.reset_sent {
            self.stats.downstream_rq_tx_reset.inc();
        }
        // One clock read for both durations.
        let now = Instant::now();
        self.stats.downstream_rq_time.record(ms_between(self.start, now));
        if let Some(up) = self.upstream.take() {
            let (cluster, host) = up.attempt.cluster_and_host();
            cluster.stats.record_rq_time(ms_between(up.start, now), up.internal);
            let counter = if up.success { &host.stats.rq_success } else { &host.stats.rq_error };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(mut log) = self.log.take() {
            if !self.ended {
                // Envoy's downstream reset: flag DC, and details unless the response had them.
                log.flag(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
                if !log.has_details() {
                    log.details(DOWNSTREAM_REMOTE_DISCONNECT);
                }
            }
            log.finish();
        }
    }
}

/// Milliseconds elapsed since `start`, saturating.
pub fn ms_since(start: Instant) -> u64 {
    ms_between(start, Instant::now())
}

/// Milliseconds from `start` to `end` (0 if `end` is earlier), saturating.
fn ms_between(start: Instant, end: Instant) -> u64 {
    u64::try_from(end.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX)
}

pin_project_lite::pin_project! {
    /// Body of a response sent downstream.
    pub struct ProxyBody {
        #[pin]
        kind: Kind,
        guard: Option<StreamGuard>,
    }
    impl PinnedDrop for ProxyBody {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if let Some(guard) = this.guard.as_ref() {
                give_back_timer(this.kind.as_mut(), guard);
            }
            let at_end = match &*this.kind {
                Kind::Full { data } => data.is_none(),
                Kind::Upstream { body, .. } => body.is_end_stream(),
            };
            // The codec drops a body it has sent whole without polling it to the end.
            if let (true, Some(guard)) = (at_end, this.guard.as_mut()) {
                guard.ended = true;
            }
        }
    }
}

/// Hands the timer of an upstream body back to its connection, for a later stream.
fn give_back_timer(kind: Pin<&mut Kind>, guard: &StreamGuard) {
    if let KindProj::Upstream { timer, .. } = kind.project() {
        if let Some(timer) = timer.take() {
            guard.timers().give_back(timer.sleep);
        }
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind {
        Full { data: Option<Bytes> },
        Upstream { #[pin] body: UpstreamBody, timer: Option<Box<BodyTimer>> },
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

/// Raised when the connection manager's `max_stream_duration` expires while the response body
/// is streaming: Envoy resets the stream.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} limit of the stream reached while streaming the response body")]
pub struct StreamLimitReached(pub Expiry);

/// The one timer of a streaming response body: the route deadline, the stream idle timeout and
/// the connection manager's deadlines share a single re-armed sleep (the one that bounded the
/// wait for response headers), and data frames only record an instant.
pub struct BodyTimer {
    sleep: Pin<Box<Sleep>>,
    deadline: Option<Instant>,
    idle: Option<(std::time::Duration, legate_stats::Counter)>,
    stream: StreamDeadlines,
    last_activity: Instant,
}

impl BodyTimer {
    /// Re-arms `sleep` for a body cut off at `deadline`, after `idle` without data (counted in
    /// the given `downstream_rq_idle_timeout` counter) or at the `stream`'s deadlines; a sleep
    /// that ends earlier than the first of them is kept as it is.
    pub fn new(
        mut sleep: Pin<Box<Sleep>>,
        deadline: Option<Instant>,
        idle: Option<(std::time::Duration, legate_stats::Counter)>,
        stream: StreamDeadlines,
    ) -> Self {
        let now = Instant::now();
        if let Some(next) = Self::next_due(deadline, idle.as_ref().map(|(d, _)| now + *d), &stream) {
            // A sleep set for an earlier moment (the route deadline itself, usually) is left as it
            // is: `poll_expired` sets it again when it ends before a limit has passed.
            let next = tokio::time::Instant::from_std(next);
            if sleep.deadline() > next {
                sleep.as_mut().reset(next);
            }
        }
        Self { sleep, deadline, idle, stream, last_activity: now }
    }

    /// The earliest of `deadline`, `idle_due` and the `stream`'s deadlines.
    fn next_due(deadline: Option<Instant>, idle_due: Option<Instant>, stream: &StreamDeadlines) -> Option<Instant> {
        let stream_due = stream.due().map(tokio::time::Instant::into_std);
        [deadline, idle_due, stream_due].into_iter().flatten().min()
    }

    fn touch(&mut self) {
        if self.idle.is_some() {
            self.last_activity = Instant::now();
        }
    }

    /// The error to end the body with, once a limit has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Option<BodyError> {
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return None;
            }
            if let Some(expiry) = self.stream.expired(tokio::time::Instant::now()) {
                return Some(BodyError::from(StreamLimitReached(expiry)));
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                return Some(BodyError::from(BodyTimeout));
            }
            let idle_due = self.idle.as_ref().map(|(d, _)| self.last_activity + *d);
            if let (Some(due), Some((_, counter))) = (idle_due, &self.idle) {
                if now >= due {
                    counter.inc();
                    return Some(BodyError::from(StreamIdleTimeout));
                }
            }
            let next = Self::next_due(self.deadline, idle_due, &self.stream)?;
            self.sleep.as_mut().reset(next.into());
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

    /// For a locally generated body: its text, and an empty body keeping the stream accounting.
    /// `None` for a streamed upstream body.
    pub fn take_local_text(mut self) -> Result<(Self, Option<Bytes>), Self> {
        match &mut self.kind {
            Kind::Full { data } => {
                let text = data.take();
                Ok((self, text))
            }
            Kind::Upstream { .. } => Err(self),
        }
    }

    /// The access log record of the stream this body ends, if any.
    pub fn log(&mut self) -> Option<&mut LogRecord> {
        self.guard.as_mut().and_then(StreamGuard::log)
    }

    /// A streamed upstream body, cut off when its `timer` expires.
    pub fn upstream(body: UpstreamBody, timer: Option<BodyTimer>, guard: StreamGuard) -> Self {
        Self { kind: Kind::Upstream { body, timer: timer.map(Box::new) }, guard: Some(guard) }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        let result = match this.kind.as_mut().project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Upstream { body, timer } => match body.poll_frame(cx) {
                Poll::Ready(r) => {
                    if let Some(t) = timer.as_mut() {
                        t.touch();
                    }
                    Poll::Ready(r.map(|f| f.map_err(BodyError::from)))
                }
                Poll::Pending => match timer.as_mut().and_then(|t| t.poll_expired(cx)) {
                    Some(err) => Poll::Ready(Some(Err(err))),
                    None => Poll::Pending,
                },
            },
        };
        if let Some(log) = this.guard.as_mut().and_then(StreamGuard::log) {
            record_frame(log, &result);
        }
        match &result {
            Poll::Ready(None) => {
                if let Some(mut guard) = this.guard.take() {
                    give_back_timer(this.kind.as_mut(), &guard);
                    guard.ended = true;
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(guard) = this.guard.as_mut() {
                    guard.ended = true;
                    guard.reset_sent = true;
                }
            }
            _ => {}
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

/// Accounts a downstream body frame (or error) in the access log record.
fn record_frame(log: &mut LogRecord, result: &Poll<Option<Result<Frame<Bytes>, BodyError>>>) {
    match result {
        Poll::Ready(Some(Ok(frame))) => {
            if let Some(d) = frame.data_ref() {
                log.sent(d.len());
            } else if let Some(t) = frame.trailers_ref() {
                log.capture_trailers(t);
            }
        }
        // The response code and its details were set when the headers went out; a failure
        // while streaming the body only adds its flag.
        Poll::Ready(Some(Err(e))) if e.is::<BodyTimeout>() => log.flag(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT),
        Poll::Ready(Some(Err(e))) if e.is::<StreamIdleTimeout>() => log.flag(ResponseFlags::STREAM_IDLE_TIMEOUT),
        // Envoy resets the stream without a flag, with the limit's details.
        Poll::Ready(Some(Err(e))) if e.is::<StreamLimitReached>() => {
            if let Some(StreamLimitReached(expiry)) = e.downcast_ref() {
                log.details(expiry.details());
            }
        }
        Poll::Ready(Some(Err(_))) => log.flag(ResponseFlags::UPSTREAM_CONNECTION_TERMINATION),
        _ => {}
    }
}

use std::future::Future as _;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use legate_stats::Store;

    use super::*;

    fn stream() -> (Arc<HcmStats>, Arc<ConnectionState>, StreamGuard) {
        let stats = Arc::new(HcmStats::new(&Store::default(), "h", "listener.x."));
        let connection = Arc::new(ConnectionState::default());
        let guard = StreamGuard::new(stats.clone(), Instant::now(), None, connection.clone());
        (stats, connection, guard)
    }

    #[tokio::test]
    async fn a_body_sent_whole_ends_its_stream() {
        let (stats, connection, guard) = stream();
        let body = ProxyBody::full("x", Some(guard));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "x");
        connection.count_close(&stats);
        assert_eq!(stats.downstream_cx_destroy_active_rq.value(), 0);
        assert_eq!(stats.downstream_rq_rx_reset.value(), 0);
    }

    #[tokio::test]
    async fn a_body_dropped_unsent_is_a_reset_stream() {
        let (stats, connection, guard) = stream();
        let body = ProxyBody::full("x", Some(guard));
        connection.count_close(&stats);
        drop(body);
        // The stream was still active when the connection closed, and it ended in a reset.
        assert_eq!(stats.downstream_cx_destroy_active_rq.value(), 1);
        assert_eq!(stats.downstream_rq_rx_reset.value(), 1);
    }
}
