//! Stream timeouts of the connection manager and the route, as in Envoy 1.40:
//!
//! - HCM `request_timeout`: the whole request (headers and body) must arrive within it, from
//!   the stream's start; on expiry 408 `request timeout` (`downstream_rq_timeout`, details
//!   `request_overall_timeout`, no flag). It stops once the response has started.
//! - `max_stream_duration` (HCM `common_http_protocol_options`, overridden by the route's
//!   `max_stream_duration`, or taken from the `grpc-timeout` header with
//!   `grpc_timeout_header_max`/`_offset`): the stream's whole lifetime, from its start; on expiry
//!   `downstream duration timeout` with 504, or 408 while the request is incomplete
//!   (`downstream_rq_max_duration_reached`, details `max_duration_timeout`, no flag; gRPC
//!   DEADLINE_EXCEEDED), or a reset once the response has started. A route `max_stream_duration`
//!   turns the route `timeout` off.
//! - The stream idle timeout (the route's `idle_timeout` replaces the HCM's
//!   `stream_idle_timeout`; zero disables it): request body data counts as activity, and its
//!   local reply is 408 rather than 504 while the request is incomplete.
//!
//! [`StreamLimits`] holds every deadline of a stream waiting for its response headers;
//! [`StreamDeadlines`], its connection-manager part, keeps bounding the response body.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use legate_config::model::{ForwardAction, MaxStreamDuration};
use tokio::time::{Instant, Sleep};

use crate::body::{ProxyBody, StreamGuard};
use crate::local_reply::local_reply;
use crate::stats::HcmStats;
use crate::timer_slot::TimerSlot;

/// The `grpc-timeout` request header.
static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// gRPC's largest `TimeoutValue` (eight digits).
const MAX_GRPC_TIMEOUT_VALUE: u64 = 99_999_999;
/// gRPC status DEADLINE_EXCEEDED, Envoy's answer to a gRPC stream past its duration limit.
const GRPC_DEADLINE_EXCEEDED: u8 = 4;

/// Which limit ended the wait for a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The route `timeout` (or `x-envoy-upstream-rq-timeout-ms`).
    Route,
    /// The stream idle timeout.
    Idle,
    /// The HCM `request_timeout`: the request was still incomplete.
    Request,
    /// The stream's `max_stream_duration`.
    MaxDuration,
}

impl Expiry {
    /// Envoy's `%RESPONSE_CODE_DETAILS%` for the connection manager's expiries.
    pub fn details(self) -> &'static str {
        match self {
            Expiry::Request => "request_overall_timeout",
            Expiry::MaxDuration => "max_duration_timeout",
            Expiry::Route => "response_timeout",
            Expiry::Idle => "stream_idle_timeout",
        }
    }
}

/// The route timeout the router applies: none when the route has a `max_stream_duration`
/// (Envoy's "new timeouts" replace the route timeout with the stream duration limit).
pub fn route_timeout(route: &ForwardAction) -> Option<Duration> {
    match route.max_stream_duration {
        Some(_) => None,
        None => route.timeout,
    }
}

/// The stream idle timeout of a route: its `idle_timeout` (zero disables), else the HCM's
/// `stream_idle_timeout`.
pub fn idle_timeout(hcm_idle: Option<Duration>, route_idle: Option<Duration>) -> Option<Duration> {
    match route_idle {
        Some(d) => (!d.is_zero()).then_some(d),
        None => hcm_idle,
    }
}

/// Envoy's `refreshDurationTimeout`: the stream's duration limit for this route. With
/// `grpc_timeout_header_max` set, a `grpc-timeout` request header gives the limit (capped by a
/// non-zero maximum, less the offset); otherwise the route's `max_stream_duration` (zero
/// disables), else the HCM's. A gRPC request on a route with `max_stream_duration` has its
/// `grpc-timeout` header rewritten to the limit (removed when there is none).
pub fn max_stream_duration(hcm_limit: Option<Duration>, route: Option<MaxStreamDuration>, headers: &mut HeaderMap) -> Option<Duration> {
    let limits = route;
    let header_max = limits.and_then(|l| l.grpc_timeout_header_max);
    // `grpc-timeout` is read only when the route takes it into account.
    let asked = header_max.and_then(|_| parse_grpc_timeout(headers));
    let limit = match (header_max, asked) {
        (Some(max), Some(asked)) => {
            let mut limit = if !max.is_zero() && asked > max { max } else { asked };
            if let Some(offset) = limits.and_then(|l| l.grpc_timeout_header_offset).filter(|_| !limit.is_zero()) {
                limit = limit.saturating_sub(offset);
            }
            Some(limit)
        }
        _ => match limits.and_then(|l| l.max_stream_duration) {
            Some(d) => (!d.is_zero()).then_some(d),
            None => hcm_limit,
        },
    };
    if limits.is_some() && crate::grpc::is_grpc(headers) {
        match limit {
            Some(d) => {
                if let Ok(v) = HeaderValue::from_str(&format_grpc_timeout(d)) {
                    headers.insert(GRPC_TIMEOUT.clone(), v);
                }
            }
            None => {
                headers.remove(&GRPC_TIMEOUT);
            }
        }
    }
    limit
}

/// Envoy's `Grpc::Common::getGrpcTimeout`: at most eight digits and a unit (`H M S m u n`);
/// sub-millisecond values round up to whole milliseconds. `None` when absent or malformed.
fn parse_grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(&GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    if n > MAX_GRPC_TIMEOUT_VALUE {
        return None;
    }
    let round_up_ms = |nanos: u64| Duration::from_millis(nanos.div_ceil(1_000_000));
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => round_up_ms(n * 1_000),
        "n" => round_up_ms(n),
        _ => return None,
    })
}

/// Envoy's `Grpc::Common::toGrpcTimeout`: milliseconds, or the smallest coarser unit that
/// keeps the value within eight digits.
fn format_grpc_timeout(d: Duration) -> String {
    let mut value = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mut unit = 'm';
    if value > MAX_GRPC_TIMEOUT_VALUE {
        value /= 1000;
        unit = 'S';
    }
    while value > MAX_GRPC_TIMEOUT_VALUE {
        if unit == 'H' {
            value = MAX_GRPC_TIMEOUT_VALUE;
            break;
        }
        value /= 60;
        unit = if unit == 'S' { 'M' } else { 'H' };
    }
    format!("{value}{unit}")
}

/// How far the downstream request body has come: whether it is complete and when data last
/// arrived (shared by the body the upstream reads and the stream's timers).
#[derive(Debug)]
pub struct RequestProgress {
    origin: Instant,
    complete: AtomicBool,
    /// The codec rejected the request body.
    failed: AtomicBool,
    /// The request body stopped short: the client closed or reset the stream.
    client_gone: AtomicBool,
    /// Microseconds from `origin` to the last request body frame.
    last_data_us: AtomicU64,
}

impl RequestProgress {
    /// Progress, from `origin` on, of a request whose body is already complete (`complete`) or
    /// still to come.
    pub fn new(origin: Instant, complete: bool) -> Arc<Self> {
        Arc::new(Self {
            origin,
            complete: AtomicBool::new(complete),
            failed: AtomicBool::new(false),
            client_gone: AtomicBool::new(false),
            last_data_us: AtomicU64::new(0),
        })
    }

    /// Whether the codec rejected the request body (a malformed chunk...).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Whether the client went away (closed or reset the stream) before its request body ended.
    pub fn client_gone(&self) -> bool {
        self.client_gone.load(Ordering::Relaxed)
    }

    /// Whether the whole request has arrived.
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Relaxed)
    }

    /// When request body data last arrived (the start when none did).
    fn last_data(&self) -> Instant {
        self.origin + Duration::from_micros(self.last_data_us.load(Ordering::Relaxed))
    }

    fn record_data(&self) {
        let us = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_data_us.store(us, Ordering::Relaxed);
    }

    /// Marks a local reply sent before the request is complete with `connection: close`: the
    /// rest of the request will not be read (Envoy closes such HTTP/1 connections too).
    pub fn close_if_incomplete(&self, resp: &mut Response<ProxyBody>) {
        if !self.is_complete() {
            resp.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
    }

    /// Envoy's `maybeRequestTimeoutCode`: 504 once the request is complete, 408 before.
    pub fn timeout_status(&self) -> StatusCode {
        if self.is_complete() {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            StatusCode::REQUEST_TIMEOUT
        }
    }
}

pin_project_lite::pin_project! {
    /// A request body that reports its progress (data and end of stream) as it is read.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        progress: Arc<RequestProgress>,
    }
}

impl<B: Body> TrackedBody<B> {
    /// Wraps `inner`, whose progress counts from `now`; the returned progress is complete
    /// already for an empty body.
    pub fn new(inner: B, now: Instant) -> (Self, Arc<RequestProgress>) {
        let progress = RequestProgress::new(now, inner.is_end_stream());
        (Self { inner, progress: progress.clone() }, progress)
    }
}

impl<B: Body> Body for TrackedBody<B>
where
    B::Error: std::error::Error + 'static,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let result = this.inner.as_mut().poll_frame(cx);
        match &result {
            Poll::Ready(Some(Ok(_))) => this.progress.record_data(),
            Poll::Ready(None) => this.progress.complete.store(true, Ordering::Relaxed),
            Poll::Ready(Some(Err(e))) => {
                let flag = if is_framing_error(e) { &this.progress.failed } else { &this.progress.client_gone };
                flag.store(true, Ordering::Relaxed);
            }
            Poll::Pending => {}
        }
        // A reader that knows the length stops at the last frame without asking for the end.
        if matches!(result, Poll::Ready(Some(Ok(_)))) && this.inner.is_end_stream() {
            this.progress.complete.store(true, Ordering::Relaxed);
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

/// Whether a request body error is the codec refusing the body's framing (a malformed chunk:
/// an invalid-input or invalid-data I/O error) rather than the stream ending early (end of
/// file, reset).
fn is_framing_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData);
        }
        cause = err.source();
    }
    false
}

/// The connection manager's deadlines of a stream (`request_timeout`, `max_stream_duration`),
/// which bound the response body too.
pub struct StreamDeadlines {
    request: Option<Instant>,
    max_duration: Option<Instant>,
    progress: Arc<RequestProgress>,
    stats: Arc<HcmStats>,
}

impl StreamDeadlines {
    /// Deadlines of a stream that started at `start`; the request timeout ends with the request.
    pub fn new(
        start: Instant,
        request_timeout: Option<Duration>,
        max_duration: Option<Duration>,
        progress: Arc<RequestProgress>,
        stats: Arc<HcmStats>,
    ) -> Self {
        Self { request: request_timeout.map(|d| start + d), max_duration: max_duration.map(|d| start + d), progress, stats }
    }

    /// These deadlines once the response has started: Envoy stops the request timer then
    /// (verified against Envoy 1.40), only the duration limit remains.
    pub fn response_started(mut self) -> Self {
        self.request = None;
        self
    }

    /// The request's progress.
    pub fn progress(&self) -> &RequestProgress {
        &self.progress
    }

    /// Candidate expiries with their due times.
    fn candidates(&self) -> impl Iterator<Item = (Instant, Expiry)> + '_ {
        let request = self.request.filter(|_| !self.progress.is_complete());
        request.map(|d| (d, Expiry::Request)).into_iter().chain(self.max_duration.map(|d| (d, Expiry::MaxDuration)))
    }

    /// The next instant one of these deadlines falls due.
    pub fn due(&self) -> Option<Instant> {
        self.candidates().map(|(d, _)| d).min()
    }

    /// The earliest deadline past at `now`, counted in its stat.
    pub fn expired(&self, now: Instant) -> Option<Expiry> {
        let (_, expiry) = self.candidates().filter(|(d, _)| *d <= now).min_by_key(|(d, _)| *d)?;
        self.count(expiry);
        Some(expiry)
    }

    fn count(&self, expiry: Expiry) {
        match expiry {
            Expiry::Request => self.stats.downstream_rq_timeout.inc(),
            Expiry::MaxDuration => self.stats.downstream_rq_max_duration_reached.inc(),
            Expiry::Route | Expiry::Idle => {}
        }
    }

    /// The local reply to a stream whose `request_timeout` or `max_stream_duration` expired
    /// before its response started (`grpc`: the client speaks gRPC).
    pub fn reply(&self, expiry: Expiry, grpc: bool, mut guard: StreamGuard) -> Response<ProxyBody> {
        let body = match expiry {
            Expiry::Request => "request timeout",
            _ => "downstream duration timeout",
        };
        if let Some(log) = guard.log() {
            log.fail(None, expiry.details());
        }
        let status = self.progress.timeout_status();
        let mut resp = local_reply(status, body, Some(guard));
        self.progress.close_if_incomplete(&mut resp);
        match expiry {
            Expiry::MaxDuration if grpc => crate::grpc::grpc_reply(resp, GRPC_DEADLINE_EXCEEDED),
            _ => resp,
        }
    }
}

/// Every deadline of a stream waiting for its response headers: the connection manager's, the
/// route timeout and the stream idle timeout (measured from the upstream request's start or the
/// last request body data).
pub struct StreamLimits {
    /// The connection manager's deadlines.
    pub stream: StreamDeadlines,
    route: Option<Instant>,
    idle: Option<Duration>,
    upstream_start: Instant,
}

impl StreamLimits {
    /// Limits of a stream whose upstream request starts `now`.
    pub fn new(stream: StreamDeadlines, route_timeout: Option<Duration>, idle: Option<Duration>, now: Instant) -> Self {
        Self { stream, route: route_timeout.map(|d| now + d), idle, upstream_start: now }
    }

    /// The stream idle timeout in force.
    pub fn idle(&self) -> Option<Duration> {
        self.idle
    }

    fn idle_due(&self) -> Option<Instant> {
        let last = self.upstream_start.max(self.stream.progress.last_data());
        self.idle.map(|d| last + d)
    }

    fn candidates(&self) -> impl Iterator<Item = (Instant, Expiry)> + '_ {
        let route = self.route.map(|d| (d, Expiry::Route));
        let idle = self.idle_due().map(|d| (d, Expiry::Idle));
        self.stream.candidates().chain(route).chain(idle)
    }

    /// A timer taken from `timers` that ends by the first deadline (perhaps before it: see
    /// [`StreamLimits::expiry`]); `None` without any deadline.
    pub fn timer(&self, timers: &TimerSlot) -> Option<Pin<Box<Sleep>>> {
        let due = self.candidates().map(|(d, _)| d).min()?;
        Some(timers.sleep_by(due, self.upstream_start))
    }

    /// Waits on `timer` until a deadline has really passed (the request timeout is moot once the
    /// request is complete, request data moves the idle deadline, and the timer may be set for
    /// a moment before the first deadline) and says which; the connection manager's expiries are
    /// counted in their stats.
    pub async fn expiry(&self, timer: &mut Pin<Box<Sleep>>) -> Expiry {
        loop {
            timer.as_mut().await;
            let now = Instant::now();
            let expired = self.candidates().filter(|(d, _)| *d <= now).min_by_key(|(d, _)| *d);
            if let Some((_, expiry)) = expired {
                self.stream.count(expiry);
                return expiry;
            }
            match self.candidates().map(|(d, _)| d).min() {
                Some(due) => timer.as_mut().reset(due),
                None => std::future::pending::<()>().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grpc_headers(timeout: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        if let Some(t) = timeout {
            h.insert(GRPC_TIMEOUT.clone(), HeaderValue::from_str(t).unwrap());
        }
        h
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn stats() -> Arc<HcmStats> {
        Arc::new(HcmStats::new(&legate_stats::Store::new(), "t", "listener.x."))
    }

    #[test]
    fn grpc_timeout_header_values() {
        let parse = |v: &str| parse_grpc_timeout(&grpc_headers(Some(v)));
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("250m"), Some(ms(250)));
        assert_eq!(parse("1500u"), Some(ms(2)));
        assert_eq!(parse("1n"), Some(ms(1)));
        for bad in ["", "S", "5", "5x", "-5S", "123456789m", "1.5S"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(format_grpc_timeout(ms(150)), "150m");
        assert_eq!(format_grpc_timeout(Duration::from_secs(5)), "5000m");
        assert_eq!(format_grpc_timeout(Duration::from_secs(100_000_000)), "1666666M");
        assert_eq!(format_grpc_timeout(Duration::from_secs(u64::MAX / 2)), "99999999H");
    }

    #[test]
    fn stream_duration_limit_and_grpc_header() {
        let route = |max, header_max, offset| {
            Some(MaxStreamDuration { max_stream_duration: max, grpc_timeout_header_max: header_max, grpc_timeout_header_offset: offset })
        };
        let hcm = Some(Duration::from_secs(1));
        // No route limits: the HCM's, and the gRPC header is left alone.
        let mut h = grpc_headers(Some("5S"));
        assert_eq!(max_stream_duration(hcm, None, &mut h), hcm);
        assert_eq!(h[&GRPC_TIMEOUT], "5S");
        // The route's, rewritten into grpc-timeout; zero disables (and removes the header).
        let mut h = grpc_headers(Some("5S"));
        assert_eq!(max_stream_duration(hcm, route(Some(ms(300)), None, None), &mut h), Some(ms(300)));
        assert_eq!(h[&GRPC_TIMEOUT], "300m");
        let mut h = grpc_headers(Some("5S"));
        assert_eq!(max_stream_duration(hcm, route(Some(Duration::ZERO), None, None), &mut h), None);
        assert!(!h.contains_key(&GRPC_TIMEOUT));
        // grpc_timeout_header_max: the header, capped, less the offset.
        let mut h = grpc_headers(Some("200m"));
        assert_eq!(max_stream_duration(hcm, route(None, Some(ms(400)), Some(ms(50))), &mut h), Some(ms(150)));
        assert_eq!(h[&GRPC_TIMEOUT], "150m");
        let mut h = grpc_headers(Some("5S"));
        assert_eq!(max_stream_duration(hcm, route(None, Some(ms(400)), Some(ms(50))), &mut h), Some(ms(350)));
        let mut h = grpc_headers(Some("5S"));
        assert_eq!(max_stream_duration(hcm, route(None, Some(Duration::ZERO), None), &mut h), Some(Duration::from_secs(5)));
        assert_eq!(h[&GRPC_TIMEOUT], "5000m");
        let mut h = grpc_headers(Some("20m"));
        assert_eq!(max_stream_duration(hcm, route(None, Some(ms(400)), Some(ms(50))), &mut h), Some(Duration::ZERO));
        // Without the header, the route's limit or the HCM's (written into the header).
        let mut h = grpc_headers(None);
        assert_eq!(max_stream_duration(hcm, route(None, Some(ms(400)), None), &mut h), hcm);
        assert_eq!(h[&GRPC_TIMEOUT], "1000m");
        // Not gRPC: nothing rewritten, the header still read.
        let mut h = HeaderMap::new();
        h.insert(GRPC_TIMEOUT.clone(), HeaderValue::from_static("100m"));
        assert_eq!(max_stream_duration(None, route(None, Some(ms(400)), None), &mut h), Some(ms(100)));
        assert_eq!(h[&GRPC_TIMEOUT], "100m");
    }

    #[test]
    fn idle_timeout_override() {
        let hcm = Some(Duration::from_secs(300));
        assert_eq!(idle_timeout(hcm, None), hcm);
        assert_eq!(idle_timeout(hcm, Some(ms(300))), Some(ms(300)));
        assert_eq!(idle_timeout(hcm, Some(Duration::ZERO)), None);
        assert_eq!(idle_timeout(None, Some(ms(5))), Some(ms(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn request_timeout_is_moot_once_the_request_is_complete() {
        let stats = stats();
        let progress = RequestProgress::new(Instant::now(), false);
        let stream = StreamDeadlines::new(Instant::now(), Some(ms(100)), Some(ms(500)), progress.clone(), stats.clone());
        let limits = StreamLimits::new(stream, Some(ms(300)), None, Instant::now());
        let mut timer = limits.timer(&TimerSlot::default()).unwrap();
        progress.complete.store(true, Ordering::Relaxed);
        let start = Instant::now();
        assert_eq!(limits.expiry(&mut timer).await, Expiry::Route);
        assert_eq!(start.elapsed(), ms(300));
        assert_eq!(stats.downstream_rq_timeout.value(), 0);
        assert_eq!(limits.stream.progress().timeout_status(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn incomplete_request_times_out_first() {
        let stats = stats();
        let progress = RequestProgress::new(Instant::now(), false);
        let stream = StreamDeadlines::new(Instant::now(), Some(ms(100)), Some(ms(50)), progress.clone(), stats.clone());
        let limits = StreamLimits::new(stream, Some(ms(300)), Some(ms(20)), Instant::now());
        let mut timer = limits.timer(&TimerSlot::default()).unwrap();
        // Request data every 10 ms keeps the idle timeout away; the duration limit ends it.
        let feed = async {
            loop {
                tokio::time::sleep(ms(10)).await;
                progress.record_data();
            }
        };
        let expiry = tokio::select! { e = limits.expiry(&mut timer) => e, () = feed => unreachable!() };
        assert_eq!(expiry, Expiry::MaxDuration);
        assert_eq!(stats.downstream_rq_max_duration_reached.value(), 1);
        assert_eq!(progress.timeout_status(), StatusCode::REQUEST_TIMEOUT);
        // The expired limit stays due: the response body would be cut off at once.
        assert_eq!(limits.stream.due(), limits.stream.max_duration);
    }

    #[tokio::test(start_paused = true)]
    async fn a_spare_timer_set_early_does_not_end_the_wait_early() {
        let start = Instant::now();
        let (timers, _) = TimerSlot::with_filed_spare(start + ms(50), start).await;
        let stream = StreamDeadlines::new(start, None, None, RequestProgress::new(start, true), stats());
        let limits = StreamLimits::new(stream, Some(ms(300)), None, start);
        let mut timer = limits.timer(&timers).unwrap();
        assert_eq!(timer.deadline(), start + ms(50), "the spare, as it was set");
        assert_eq!(limits.expiry(&mut timer).await, Expiry::Route);
        assert_eq!(start.elapsed(), ms(300));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_without_request_data() {
        let progress = RequestProgress::new(Instant::now(), false);
        let stream = StreamDeadlines::new(Instant::now(), Some(ms(100)), None, progress, stats());
        let limits = StreamLimits::new(stream, None, Some(ms(20)), Instant::now());
        let mut timer = limits.timer(&TimerSlot::default()).unwrap();
        assert_eq!(limits.expiry(&mut timer).await, Expiry::Idle);
    }
}
