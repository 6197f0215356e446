//! Envoy access logs of the HTTP connection manager: a per-stream [`LogRecord`] is filled as
//! the stream goes (only when the HCM has loggers) and written when the stream's guard drops.

mod filter;
mod formatter;
mod time;
mod writer;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body::{Body, Frame, SizeHint};
use legate_config::access_log::{AccessLog, AccessLogFilter, Command, FormatToken, JsonField, LogFormat};
use legate_stats::Store;

use crate::local_reply::ResponseFlags;
pub use writer::{LogWriter, WriterError};

/// The access loggers of one HTTP connection manager.
pub struct AccessLogs {
    loggers: Vec<Logger>,
    request_headers: Vec<String>,
    response_headers: Vec<String>,
    trailers: Vec<String>,
    hostname: String,
}

struct Logger {
    filter: Option<AccessLogFilter>,
    format: LogFormat,
    writer: Arc<LogWriter>,
}

impl AccessLogs {
    /// Opens the sinks of `configs` (shared by path across the process); `None` when there is
    /// no logger, so streams pay nothing.
    pub fn new(
        configs: &[AccessLog],
        hostname: &str,
        store: &Store,
        flush_interval: Duration,
    ) -> Result<Option<Arc<Self>>, WriterError> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut logs = Self {
            loggers: Vec::with_capacity(configs.len()),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            trailers: Vec::new(),
            hostname: hostname.to_string(),
        };
        for c in configs {
            logs.collect_headers(&c.format);
            let writer = writer::open(&c.sink, store, flush_interval)?;
            logs.loggers.push(Logger { filter: c.filter.clone(), format: c.format.clone(), writer });
        }
        Ok(Some(Arc::new(logs)))
    }

    fn collect_headers(&mut self, format: &LogFormat) {
        fn tokens<'a>(fields: &'a [(String, JsonField)], out: &mut Vec<&'a [FormatToken]>) {
            for (_, f) in fields {
                match f {
                    JsonField::Format(t) => out.push(t),
                    JsonField::Object(inner) => tokens(inner, out),
                    JsonField::Literal(_) => {}
                }
            }
        }
        let mut all = Vec::new();
        match format {
            LogFormat::Text { tokens: t, .. } => all.push(&t[..]),
            LogFormat::Json { fields, .. } => tokens(fields, &mut all),
        }
        for token in all.into_iter().flatten() {
            let FormatToken::Command { op, .. } = token else { continue };
            let (list, lookup) = match op {
                Command::Req(l) => (&mut self.request_headers, l),
                Command::Resp(l) => (&mut self.response_headers, l),
                Command::Trailer(l) => (&mut self.trailers, l),
                _ => continue,
            };
            for name in std::iter::once(&lookup.main).chain(lookup.alt.as_ref()) {
                if !list.contains(name) {
                    list.push(name.clone());
                }
            }
        }
    }

    /// Starts the record of a new HTTP stream.
    pub fn record(self: &Arc<Self>, start: Instant, version: http::Version, remote: SocketAddr, local: SocketAddr) -> Box<LogRecord> {
        self.new_record(start, Some(crate::router::protocol_name(version)), remote, local)
    }

    /// Starts the record of a new TCP proxy session (no protocol, no headers, no status).
    pub fn tcp_record(self: &Arc<Self>, start: Instant, remote: SocketAddr, local: SocketAddr) -> Box<LogRecord> {
        self.new_record(start, None, remote, local)
    }

    fn new_record(self: &Arc<Self>, start: Instant, protocol: Option<&'static str>, remote: SocketAddr, local: SocketAddr) -> Box<LogRecord> {
        Box::new(LogRecord {
            start_time: SystemTime::now(),
            start,
            protocol,
            tcp_received: 0,
            downstream_remote: remote,
            downstream_local: local,
            request_headers: vec![None; self.request_headers.len()],
            response_headers: vec![None; self.response_headers.len()],
            trailers: vec![None; self.trailers.len()],
            response_code: 0,
            flags: ResponseFlags::default(),
            details: None,
            request_body: None,
            request_done: None,
            response_started: None,
            bytes_sent: 0,
            upstream_host: None,
            upstream_cluster: None,
            transport_failure: None,
            route_name: None,
            logs: self.clone(),
        })
    }
}

/// What one stream did, as far as the configured formats need it.
pub struct LogRecord {
    logs: Arc<AccessLogs>,
    start_time: SystemTime,
    start: Instant,
    protocol: Option<&'static str>,
    tcp_received: u64,
    downstream_remote: SocketAddr,
    downstream_local: SocketAddr,
    request_headers: Vec<Option<HeaderValue>>,
    response_headers: Vec<Option<HeaderValue>>,
    trailers: Vec<Option<HeaderValue>>,
    response_code: u16,
    flags: ResponseFlags,
    details: Option<String>,
    request_body: Option<Arc<RequestProgress>>,
    request_done: Option<Duration>,
    response_started: Option<Duration>,
    bytes_sent: u64,
    upstream_host: Option<SocketAddr>,
    upstream_cluster: Option<String>,
    transport_failure: Option<String>,
    route_name: Option<String>,
}

/// Bytes and completion time of a forwarded request body.
#[derive(Default)]
pub struct RequestProgress {
    bytes: AtomicU64,
    /// Microseconds after the stream start at which the body ended, plus one (0 = not yet).
    done_us: AtomicU64,
}

impl LogRecord {
    /// Records the request as it is now (method, path, the header values the formats read);
    /// `body_done` says the request has no body left to receive.
    pub fn capture_request(&mut self, method: &Method, path: &str, headers: &HeaderMap, body_done: bool) {
        for (slot, name) in self.request_headers.iter_mut().zip(&self.logs.request_headers) {
            *slot = match name.as_str() {
                ":method" => HeaderValue::from_str(method.as_str()).ok(),
                ":path" => HeaderValue::from_str(path).ok(),
                ":authority" => headers.get(http::header::HOST).cloned(),
                n if n.starts_with(':') => None,
                n => headers.get(n).cloned(),
            };
        }
        if body_done && self.request_done.is_none() {
            self.request_done = Some(self.start.elapsed());
        }
    }

    /// Records the response headers sent downstream.
    pub fn capture_response(&mut self, status: u16, headers: &HeaderMap) {
        self.response_code = status;
        for (slot, name) in self.response_headers.iter_mut().zip(&self.logs.response_headers) {
            *slot = headers.get(name.as_str()).cloned();
        }
    }

    /// Records response trailers.
    pub fn capture_trailers(&mut self, trailers: &HeaderMap) {
        for (slot, name) in self.trailers.iter_mut().zip(&self.logs.trailers) {
            *slot = trailers.get(name.as_str()).cloned();
        }
    }

    /// Sets a response flag (Envoy short name) and, when given, the response code details.
    pub fn fail(&mut self, flag: Option<&str>, details: impl Into<String>) {
        if let Some(f) = flag {
            self.flags.set(f);
        }
        self.details = Some(details.into());
    }

    /// Sets a response flag only.
    pub fn flag(&mut self, flag: &str) {
        self.flags.set(flag);
    }

    /// Whether response code details are set.
    pub fn has_details(&self) -> bool {
        self.details.is_some()
    }

    /// Sets the response code details.
    pub fn details(&mut self, details: &str) {
        self.details = Some(details.to_string());
    }

    /// Records the matched route's name (empty names are not recorded).
    pub fn route(&mut self, name: &str) {
        if !name.is_empty() {
            self.route_name = Some(name.to_string());
        }
    }

    /// Records the selected cluster.
    pub fn cluster(&mut self, name: &str) {
        self.upstream_cluster = Some(name.to_string());
    }

    /// Records the selected upstream host.
    pub fn host(&mut self, address: SocketAddr) {
        self.upstream_host = Some(address);
    }

    /// Records an upstream transport failure reason (spaces become `_`, as in Envoy).
    pub fn transport_failure(&mut self, reason: Option<String>) {
        self.transport_failure = reason.map(|r| r.replace(' ', "_"));
    }

    /// Marks the arrival of the upstream response headers.
    pub fn response_started(&mut self) {
        self.response_started = Some(self.start.elapsed());
    }

    /// Counts body bytes sent downstream.
    pub fn sent(&mut self, bytes: usize) {
        self.bytes_sent += bytes as u64;
    }

    /// Wraps a request body so its bytes and end are recorded.
    pub fn track_request_body<B>(&mut self, body: B) -> CountingBody<B> {
        let progress = Arc::new(RequestProgress::default());
        self.request_body = Some(progress.clone());
        CountingBody { inner: body, progress, start: self.start }
    }

    /// Counts bytes received from downstream outside a request body (TCP proxy sessions).
    pub fn add_received(&mut self, bytes: u64) {
        self.tcp_received += bytes;
    }

    fn bytes_received(&self) -> u64 {
        self.tcp_received + self.request_body.as_ref().map_or(0, |p| p.bytes.load(Ordering::Relaxed))
    }

    fn request_duration(&self) -> Option<Duration> {
        self.request_done.or_else(|| {
            let us = self.request_body.as_ref()?.done_us.load(Ordering::Relaxed);
            (us > 0).then(|| Duration::from_micros(us - 1))
        })
    }

    /// Runs every logger whose filter passes; called once, when the stream completes.
    pub fn finish(&self) {
        let duration = self.start.elapsed();
        let now = formatter::Eval { rec: self, duration };
        for logger in &self.logs.loggers {
            if logger.filter.as_ref().is_none_or(|f| filter::passes(f, self, duration)) {
                logger.writer.write(formatter::render(&logger.format, &now));
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A request body that records its byte count and end for the access log.
    pub struct CountingBody<B> {
        #[pin]
        inner: B,
        progress: Arc<RequestProgress>,
        start: Instant,
    }
}

impl<B: Body<Data = Bytes>> Body for CountingBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let r = this.inner.poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.progress.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) => {
                let us = u64::try_from(this.start.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
                let _ = this.progress.done_us.compare_exchange(0, us + 1, Ordering::Relaxed, Ordering::Relaxed);
            }
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
