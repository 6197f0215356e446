//! Per-worker upstream HTTP/1.1 connection pools with keep-alive, modelled on Envoy's
//! `ConnPoolImplBase`: a request takes an idle connection to its host (most recently used
//! first) or waits for a new one (`upstream_rq_pending_*`); a connection returns to the pool
//! once its response body has been read, unless the upstream asked to close it, it reached
//! `max_requests_per_connection` or its host left the cluster; idle connections close after
//! the cluster's `idle_timeout`. Connection and request stats are kept on the cluster and host
//! with Envoy's semantics (connect time, length, requests per connection, local/remote destroy,
//! protocol errors).
//!
//! A request that could not be written because the reused connection was already closed by the
//! upstream is transparently sent on another connection.
//!
//! Connections count under the cluster's `max_connections` from the moment they are being
//! opened. At the limit a request does not open one (`upstream_cx_overflow`): it waits, pending,
//! for a connection to its host to come free or to close; as in Envoy, a worker with no
//! connection to the host opens one regardless, so that its requests are never stranded.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::body::{UpstreamBody, WatchedRequestBody};
use crate::connect::{connect_tcp, Codec, CountedStream, UpstreamStream};
use crate::breakers::ConnectionSlot;
use crate::cluster::Cluster;
use crate::error::SharedError;
use crate::headers::header_tokens;
use crate::host::Host;
use crate::timer::WokenSleep;
use crate::UpstreamError;

/// Boxed error of request bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Body type of requests sent upstream.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// Pool key: cluster index, host address and the TLS name taken from the request for
/// `auto_sni` / `auto_san_validation` (Envoy shares no connection across those names, and
/// each name's connections to a host are a pool of their own, waiters included).
pub(crate) type Key = (usize, SocketAddr, Option<Arc<str>>);
type ConnMap = Mutex<foldhash::HashMap<Key, HostConns>>;

/// A worker's upstream HTTP/1.1 connections to every cluster.
#[derive(Default)]
pub struct Http1Pool {
    conns: Arc<ConnMap>,
}

/// A worker's connections to one host of one cluster.
#[derive(Default)]
struct HostConns {
    /// Idle connections, most recently used last.
    idle: Vec<PooledConn>,
    /// Connections open or being opened (idle, busy or connecting).
    live: usize,
    /// Requests waiting for a connection because the cluster is at `max_connections`, oldest
    /// first.
    waiters: VecDeque<oneshot::Sender<Handoff>>,
}

/// What a waiting request is told.
enum Handoff {
    /// A connection came free: use it.
    Conn(PooledConn),
    /// A connection closed: look again (it may open one now).
    Retry,
    /// A connection to the host could not be opened: as Envoy purges its pending requests, the
    /// waiting requests fail with the same error.
    Failed(SharedError),
}

/// What a request does next to get a connection.
enum Step {
    /// Use this idle connection.
    Ready(PooledConn),
    /// Open a connection (counted in `live` and under `max_connections` already).
    Connect(PoolSlot),
    /// Wait for a connection of the host to come free or close.
    Wait(oneshot::Receiver<Handoff>),
}

/// A connection's place in its host's `live` count and under the cluster's `max_connections`;
/// dropping it (the connection closed) lets a waiting request retry, or fails them all when
/// the connection could not be opened ([`PoolSlot::connect_failed`]).
struct PoolSlot {
    connection: Option<ConnectionSlot>,
    conns: Weak<ConnMap>,
    key: Key,
    failure: Option<SharedError>,
}

impl PoolSlot {
    /// Releases the slot of a connection that could not be opened.
    fn connect_failed(mut self, e: &UpstreamError) {
        self.failure = Some(SharedError::new(e));
    }
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        drop(self.connection.take());
        let Some(conns) = self.conns.upgrade() else { return };
        let mut conns = conns.lock().unwrap_or_else(|e| e.into_inner());
        let Some(host) = conns.get_mut(&self.key) else { return };
        host.live = host.live.saturating_sub(1);
        if let Some(failure) = &self.failure {
            for waiter in host.waiters.drain(..) {
                let _ = waiter.send(Handoff::Failed(failure.clone()));
            }
            return;
        }
        while let Some(waiter) = host.waiters.pop_front() {
            if waiter.send(Handoff::Retry).is_ok() {
                break;
            }
        }
    }
}

/// A connection's sender and shared state, while idle or reserved for one request.
struct PooledConn {
    sender: SendRequest<WatchedRequestBody>,
    shared: Arc<ConnShared>,
}

/// Connection lifecycle states.
const IDLE: u8 = 0;
const AWAITING_HEADERS: u8 = 1;
const READING_BODY: u8 = 2;
const CLOSED: u8 = 3;
/// The response body ended; the connection is on its way back to the pool, or to its close.
const BODY_DONE: u8 = 4;
/// The response body failed (the upstream cut it short).
const BODY_FAILED: u8 = 5;
/// The response body was dropped before its end (the client went away).
const BODY_ABORTED: u8 = 6;
/// The connection ended while its response body was still being read: how the body ends
/// decides how the close is counted, and the body's end does the accounting.
const CLOSED_IN_BODY: u8 = 7;

/// State shared by a connection's driver task, the pool and the request using it.
pub(crate) struct ConnShared {
    cluster: Arc<Cluster>,
    host: Arc<Host>,
    state: AtomicU8,
    /// Legate decided to close it (idle timeout, max requests, `connection: close`, removal).
    local_close: AtomicBool,
    /// A request was abandoned mid-flight (its future dropped), which closes the connection.
    aborted: AtomicBool,
    /// Wakes the connection's task to close it once a request on it is abandoned (hyper would
    /// otherwise keep a connection whose request is half written).
    abandoned: AtomicWaker,
    requests: AtomicU64,
    opened: Instant,
    /// When the connection last became idle, in ms since `opened`.
    idle_since_ms: AtomicU64,
    idle_generation: AtomicU64,
    /// Released by [`finish`] when the connection is closed. The driver task holds the
    /// connection's state until then, so a `PooledConn` dropped under the pool's lock never
    /// drops the slot (whose release takes that lock).
    slot: Mutex<Option<PoolSlot>>,
}

impl Http1Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `req` to `host` of `cluster` on an idle or new connection and returns the
    /// response once its headers arrived. The URI is sent in origin form (`/path?query`); the
    /// `Host` header is the caller's. Counts `upstream_rq_total` (and the host's `rq_total`)
    /// when the request is written to a connection, as Envoy does; `upstream_rq_active` is the
    /// caller's, since it lasts until the response body ends. `tls_name` is the request's host
    /// when the cluster derives TLS options from it.
    ///
    /// An `async move` block rather than an `async fn`: its state holds one copy of the
    /// request, not two.
    pub fn send<'a>(
        &'a self,
        cluster: &'a Arc<Cluster>,
        host: &'a Arc<Host>,
        mut req: http::Request<RequestBody>,
        tls_name: Option<Arc<str>>,
    ) -> impl std::future::Future<Output = Result<http::Response<UpstreamBody>, UpstreamError>> + 'a {
        async move {
            origin_form(&mut req);
            let key = (cluster.index, host.address, tls_name);
            // The request counts once, when a connection is assigned to it (a connect failure
            // counts neither `upstream_rq_total` nor the host's `rq_total`, as in Envoy).
            let mut counted = false;
            let mut count = || {
                if !std::mem::replace(&mut counted, true) {
                    cluster.stats.upstream_rq_total.inc();
                    host.stats.rq_total.fetch_add(1, Ordering::Relaxed);
                }
            };
            let mut pending = None;
            loop {
                let (conn, fresh) = match self.step(cluster, &key, &mut pending)? {
                    Step::Ready(conn) => (conn, false),
                    Step::Connect(slot) => match self.connect(cluster, host, key.clone(), slot).await {
                        Ok(conn) => (conn, true),
                        Err(e) => return Err(pending_failed(&mut pending, e)),
                    },
                    Step::Wait(rx) => match rx.await {
                        Ok(Handoff::Conn(conn)) => (conn, false),
                        Ok(Handoff::Failed(e)) => return Err(pending_failed(&mut pending, e.to_error())),
                        // A connection closed: look again.
                        Ok(Handoff::Retry) | Err(_) => continue,
                    },
                };
                if let Some(p) = pending.take() {
                    p.settle(true);
                }
                count();
                match dispatch(&self.conns, key.clone(), conn, req).await {
                    Ok(result) => return result,
                    Err(_) if fresh => {
                        return Err(UpstreamError::Reset { detail: "new connection closed before the request was sent".into() })
                    }
                    // The idle connection was closed before the request could be written.
                    Err(unsent) => req = unsent,
                }
            }
        }
    }

    /// Adds `stream`, connected for an `auto_config` cluster whose upstream did not select `h2`
    /// and counted under `max_connections` by `connection`: it goes to a waiting request or
    /// joins the pool idle.
    pub(crate) async fn adopt(
        &self,
        cluster: &Arc<Cluster>,
        host: &Arc<Host>,
        key: Key,
        stream: UpstreamStream,
        connection: ConnectionSlot,
    ) -> Result<(), UpstreamError> {
        cluster.stats.upstream_cx_http1_total.inc();
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().live += 1;
        let slot = PoolSlot { connection: Some(connection), conns: Arc::downgrade(&self.conns), key: key.clone(), failure: None };
        let mut conn = start(cluster.clone(), host.clone(), slot, stream).await?;
        // An idle connection is taken only once its driver runs.
        conn.sender.ready().await.map_err(classify)?;
        park(&Arc::downgrade(&self.conns), key, conn);
        Ok(())
    }

    /// Decides how the request gets a connection: the most recently used live idle one, else
    /// (pending from now on, under `max_pending_requests`) a new one if `max_connections`
    /// allows it or the worker has none to the host, else a wait for one.
    fn step(&self, cluster: &Arc<Cluster>, key: &Key, pending: &mut Option<PendingGuard>) -> Result<Step, UpstreamError> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let host = conns.entry(key.clone()).or_default();
        while let Some(conn) = host.idle.pop() {
            if conn.sender.is_closed() || !conn.sender.is_ready() {
                continue;
            }
            if conn.shared.state.compare_exchange(IDLE, AWAITING_HEADERS, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Ok(Step::Ready(conn));
            }
        }
        if pending.is_none() {
            *pending = Some(PendingGuard::admit(cluster)?);
        }
        if cluster.connection_allowed() || host.live == 0 {
            host.live += 1;
            let connection = Some(ConnectionSlot::new(cluster));
            return Ok(Step::Connect(PoolSlot { connection, conns: Arc::downgrade(&self.conns), key: key.clone(), failure: None }));
        }
        // Requests that gave up waiting leave no trace: the queue is bounded by the pending ones.
        host.waiters.retain(|w| !w.is_closed());
        let (tx, rx) = oneshot::channel();
        host.waiters.push_back(tx);
        Ok(Step::Wait(rx))
    }

    /// Opens a connection for a pending request. The connect runs in its own task: if the
    /// request goes away meanwhile, the connection still completes and joins the pool, as in
    /// Envoy.
    async fn connect(&self, cluster: &Arc<Cluster>, host: &Arc<Host>, key: Key, slot: PoolSlot) -> Result<PooledConn, UpstreamError> {
        let (tx, rx) = oneshot::channel();
        let conns = Arc::downgrade(&self.conns);
        let (c, h) = (cluster.clone(), host.clone());
        tokio::spawn(async move {
            if let Err(Ok(conn)) = tx.send(open(c, h, slot).await) {
                park(&conns, key, conn);
            }
        });
        rx.await.unwrap_or_else(|_| Err(UpstreamError::Reset { detail: "connect task ended".into() }))
    }
}

/// Ends a pending request whose connection could not be opened
/// (`upstream_rq_pending_failure_eject`); returns its error.
fn pending_failed(pending: &mut Option<PendingGuard>, e: UpstreamError) -> UpstreamError {
    if let Some(p) = pending.take() {
        p.settle(false);
    }
    e
}

impl Drop for Http1Pool {
    fn drop(&mut self) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for conn in conns.values().flat_map(|h| &h.idle) {
            conn.shared.local_close.store(true, Ordering::Release);
        }
    }
}

/// Ends a pending request's accounting; a request dropped while pending is `cancelled`.
pub(crate) struct PendingGuard {
    cluster: Arc<Cluster>,
    /// Whether the request left the queue with an outcome (otherwise it was cancelled).
    resolved: bool,
}

impl PendingGuard {
    /// Admits a request that must wait for a connection, under `max_pending_requests`
    /// (`Overflow` when the breaker is open); dropped unresolved, it counts as cancelled.
    pub(crate) fn admit(cluster: &Arc<Cluster>) -> Result<Self, UpstreamError> {
        if !cluster.admit_pending() {
            return Err(UpstreamError::Overflow);
        }
        Ok(Self { cluster: cluster.clone(), resolved: false })
    }

    /// The wait ended with the connection `opened`, or failing
    /// (`upstream_rq_pending_failure_eject`).
    pub(crate) fn settle(mut self, opened: bool) {
        self.resolved = true;
        if !opened {
            self.cluster.stats.upstream_rq_pending_failure_eject.inc();
        }
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.cluster.release_pending();
        if !self.resolved {
            self.cluster.stats.upstream_rq_cancelled.inc();
        }
    }
}

/// Marks the connection aborted if the request future is dropped mid-flight.
struct AbortGuard<'a> {
    shared: &'a ConnShared,
    armed: bool,
}

impl Drop for AbortGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.mark_aborted();
        }
    }
}

impl ConnShared {
    /// Legate gives up the request on this connection (its future or body went away, or its
    /// body failed): the connection closes as Legate's close with an active request.
    pub(crate) fn mark_aborted(&self) {
        self.aborted.store(true, Ordering::Release);
        self.abandoned.wake();
    }
}

/// Sends `req` on `conn`. `Err(req)` gives the request back when the connection was closed
/// before it could be written.
async fn dispatch(
    conns: &Arc<ConnMap>,
    key: Key,
    conn: PooledConn,
    req: http::Request<RequestBody>,
) -> Result<Result<http::Response<UpstreamBody>, UpstreamError>, http::Request<RequestBody>> {
    let PooledConn { mut sender, shared } = conn;
    let mut guard = AbortGuard { shared: &shared, armed: true };
    let req = req.map(|body| WatchedRequestBody::new(body, &shared));
    let result = sender.try_send_request(req).await;
    guard.armed = false;
    drop(guard);
    let cluster = &shared.cluster;
    let count_request = || shared.requests.fetch_add(1, Ordering::Relaxed) + 1;
    match result {
        Err(mut e) => match e.take_message() {
            Some(req) => Err(req.map(WatchedRequestBody::into_inner)),
            None => {
                count_request();
                Ok(Err(classify(e.into_error())))
            }
        },
        Ok(resp) => {
            let n = count_request();
            shared.state.store(READING_BODY, Ordering::Release);
            let max = cluster.config.http.max_requests_per_connection.filter(|m| *m > 0);
            let mut reusable = true;
            if max.is_some_and(|m| n >= u64::from(m)) {
                cluster.stats.upstream_cx_max_requests.inc();
                reusable = false;
            }
            if upstream_closes(&resp) {
                cluster.stats.upstream_cx_close_notify.inc();
                reusable = false;
            }
            if !reusable {
                shared.local_close.store(true, Ordering::Release);
            }
            let release = Release { sender, shared: shared.clone(), conns: Arc::downgrade(conns), key, reusable };
            Ok(Ok(resp.map(|body| UpstreamBody::pooled(body, release))))
        }
    }
}

/// Returns a connection to the pool once the response body on it has been read (see
/// [`UpstreamBody`]).
pub(crate) struct Release {
    sender: SendRequest<WatchedRequestBody>,
    shared: Arc<ConnShared>,
    conns: Weak<ConnMap>,
    key: Key,
    /// Whether the connection may carry another request.
    reusable: bool,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release").field("key", &self.key).field("reusable", &self.reusable).finish_non_exhaustive()
    }
}

impl Release {
    /// The response body ended or was dropped: a reusable connection whose codec is ready
    /// for the next request goes back to the pool now; otherwise a task waits until the codec
    /// is ready (the body is still being drained) or the connection closes.
    pub(crate) fn finish(self) {
        self.body_ended(BODY_DONE);
        let Release { sender, shared, conns, key, reusable } = self;
        if reusable && sender.is_ready() {
            return reuse(sender, shared, &conns, key);
        }
        // Outside a runtime (it is shutting down) the connection just closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(when_ready(sender, shared, conns, key, reusable));
        }
    }

    /// The response body was dropped before its end (the client went away): the connection
    /// closes, counted as Legate's close with a request still active, as in Envoy.
    pub(crate) fn abort(self) {
        self.shared.mark_aborted();
        self.body_ended(BODY_ABORTED);
    }

    /// The response body failed: the upstream cut it short, which closes the connection
    /// (counted as the upstream's close with an active request and a protocol error).
    pub(crate) fn fail(self) {
        self.body_ended(BODY_FAILED);
    }

    /// Records how the response body ended (`outcome`); when the connection already ended
    /// meanwhile, accounts for its close now.
    fn body_ended(&self, outcome: u8) {
        let state = &self.shared.state;
        if let Err(CLOSED_IN_BODY) = state.compare_exchange(READING_BODY, outcome, Ordering::AcqRel, Ordering::Acquire) {
            if state.compare_exchange(CLOSED_IN_BODY, CLOSED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                let local_close = self.shared.local_close.load(Ordering::Acquire);
                account_close(&self.shared, close_kind(&Ok(()), outcome, local_close, outcome == BODY_ABORTED));
            }
        }
    }
}

/// Returns the connection to the pool once the response body has been read.
async fn when_ready(mut sender: SendRequest<WatchedRequestBody>, shared: Arc<ConnShared>, conns: Weak<ConnMap>, key: Key, reusable: bool) {
    if sender.ready().await.is_err() || !reusable {
        // Closed, or to be closed: dropping the sender closes an idle HTTP/1 connection.
        return;
    }
    reuse(sender, shared, &conns, key);
}

/// Parks a connection ready for its next request, unless its host left the cluster.
fn reuse(sender: SendRequest<WatchedRequestBody>, shared: Arc<ConnShared>, conns: &Weak<ConnMap>, key: Key) {
    if !shared.host.is_member() {
        shared.local_close.store(true, Ordering::Release);
        return;
    }
    park(conns, key, PooledConn { sender, shared });
}

/// Hands a connection that came free to the oldest waiting request, or puts it into the pool.
fn park(conns: &Weak<ConnMap>, key: Key, mut conn: PooledConn) {
    let Some(conns) = conns.upgrade() else {
        conn.shared.local_close.store(true, Ordering::Release);
        return;
    };
    let mut conns = conns.lock().unwrap_or_else(|e| e.into_inner());
    let host = conns.entry(key).or_default();
    while let Some(waiter) = host.waiters.pop_front() {
        conn.shared.state.store(AWAITING_HEADERS, Ordering::Release);
        let Err(Handoff::Conn(back)) = waiter.send(Handoff::Conn(conn)) else { return };
        conn = back;
    }
    let shared = &conn.shared;
    shared.idle_since_ms.store(shared.opened.elapsed().as_millis() as u64, Ordering::Release);
    shared.idle_generation.fetch_add(1, Ordering::AcqRel);
    shared.state.store(IDLE, Ordering::Release);
    host.idle.retain(|c| !c.sender.is_closed());
    host.idle.push(conn);
}

/// Whether the upstream announced it closes the connection after this response: `connection:
/// close`, or HTTP/1.0 without `keep-alive` (one pass over the `connection` tokens).
fn upstream_closes<B>(resp: &http::Response<B>) -> bool {
    let (mut close, mut keep_alive) = (false, false);
    for token in header_tokens(resp.headers(), &http::header::CONNECTION) {
        close |= token.eq_ignore_ascii_case("close");
        keep_alive |= token.eq_ignore_ascii_case("keep-alive");
    }
    close || (resp.version() == http::Version::HTTP_10 && !keep_alive)
}

/// Rewrites the request target to origin form (`/path?query`).
pub(crate) fn origin_form(req: &mut http::Request<RequestBody>) {
    let uri = req.uri();
    if uri.scheme().is_none() && uri.authority().is_none() && !uri.path().is_empty() {
        return;
    }
    let pq = uri.path_and_query().cloned().filter(|pq| !pq.path().is_empty());
    let pq = pq.unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = http::Uri::from(pq);
}

/// Maps an HTTP client error to Envoy's failure classes.
pub(crate) fn classify(err: hyper::Error) -> UpstreamError {
    if err.is_parse() || err.is_parse_status() || err.is_user() {
        return UpstreamError::Protocol { detail: err.to_string() };
    }
    let mut detail = err.to_string();
    if let Some(source) = std::error::Error::source(&err) {
        detail = format!("{detail}: {source}");
    }
    UpstreamError::Reset { detail }
}

/// Connects to `host` and starts the HTTP/1 codec.
async fn open(cluster: Arc<Cluster>, host: Arc<Host>, slot: PoolSlot) -> Result<PooledConn, UpstreamError> {
    let tls_name = slot.key.2.clone();
    let stream = match connect_tcp(&cluster, &host, Codec::Http1, tls_name.as_deref()).await {
        Ok(stream) => stream,
        Err(e) => {
            slot.connect_failed(&e);
            return Err(e);
        }
    };
    start(cluster, host, slot, stream).await
}

/// Starts the HTTP/1 codec on a connected stream.
async fn start(cluster: Arc<Cluster>, host: Arc<Host>, slot: PoolSlot, stream: UpstreamStream) -> Result<PooledConn, UpstreamError> {
    cluster.stats.http1_codec_created();
    let shared = Arc::new(ConnShared {
        cluster: cluster.clone(),
        host: host.clone(),
        state: AtomicU8::new(AWAITING_HEADERS),
        local_close: AtomicBool::new(false),
        aborted: AtomicBool::new(false),
        abandoned: AtomicWaker::new(),
        requests: AtomicU64::new(0),
        opened: Instant::now(),
        idle_since_ms: AtomicU64::new(0),
        idle_generation: AtomicU64::new(0),
        slot: Mutex::new(Some(slot)),
    });
    let io = TokioIo::new(CountedStream { stream, cluster: cluster.clone() });
    let mut builder = hyper::client::conn::http1::Builder::new();
    builder.max_buf_size((cluster.config.per_connection_buffer_limit_bytes as usize).max(8192));
    match builder.handshake(io).await {
        Ok((sender, conn)) => {
            tokio::spawn(drive(conn, shared.clone()));
            Ok(PooledConn { sender, shared })
        }
        Err(e) => {
            // The HTTP/1 handshake does no I/O; this is not expected to happen.
            finish(&shared, &Err(e), true);
            Err(UpstreamError::Protocol { detail: "HTTP/1 handshake failed".into() })
        }
    }
}

/// Runs a connection until it closes, then accounts for it.
async fn drive(conn: Connection<TokioIo<CountedStream>, WatchedRequestBody>, shared: Arc<ConnShared>) {
    // A 101 response hands the connection over to the upgraded stream (WebSocket).
    let conn = conn.with_upgrades();
    let idle = async {
        match shared.cluster.config.http.idle_timeout {
            Some(timeout) => idle_expiry(&shared, timeout).await,
            None => std::future::pending().await,
        }
    };
    // Resolves once a request on the connection is abandoned (cheaper per wake than a Notify).
    let abandoned = std::future::poll_fn(|cx| {
        if !shared.aborted.load(Ordering::Acquire) {
            shared.abandoned.register(cx.waker());
            if !shared.aborted.load(Ordering::Acquire) {
                return std::task::Poll::Pending;
            }
        }
        std::task::Poll::Ready(())
    });
    // Dropping the codec closes the connection.
    let result = tokio::select! {
        biased;
        r = conn => r,
        () = idle => {
            shared.cluster.stats.upstream_cx_idle_timeout.inc();
            shared.local_close.store(true, Ordering::Release);
            Ok(())
        }
        () = abandoned => Ok(()),
    };
    // Let the request task see the response (and note `connection: close`) first.
    tokio::task::yield_now().await;
    finish(&shared, &result, false);
}

/// Resolves when the connection has been idle for `timeout` (and claims it from the pool).
///
/// The timer is lazy: it is not moved each time the connection comes free; when it fires, it
/// is set again for `timeout` after the connection last came free (or from now, while busy).
async fn idle_expiry(shared: &ConnShared, timeout: Duration) {
    // Polled on every wake of the connection's task: a `WokenSleep` looks at its timer only
    // once the timer has fired.
    let mut timer = WokenSleep::until(Instant::now() + timeout);
    loop {
        (&mut timer).await;
        let now = Instant::now();
        if shared.state.load(Ordering::Acquire) != IDLE {
            timer.reset(now + timeout);
            continue;
        }
        let generation = shared.idle_generation.load(Ordering::Acquire);
        let due = shared.opened + Duration::from_millis(shared.idle_since_ms.load(Ordering::Acquire)) + timeout;
        if due > now {
            timer.reset(due);
            continue;
        }
        if shared.idle_generation.load(Ordering::Acquire) == generation
            && shared.state.compare_exchange(IDLE, CLOSED, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            return;
        }
        timer.reset(now + timeout);
    }
}

/// How a connection ended, in Envoy's terms.
#[derive(Debug, PartialEq, Eq)]
struct CloseKind {
    local: bool,
    with_active_rq: bool,
    protocol_error: bool,
}

fn close_kind(result: &Result<(), hyper::Error>, state: u8, local_close: bool, aborted: bool) -> CloseKind {
    let busy = state == AWAITING_HEADERS || state == READING_BODY;
    let kind = |local, with_active_rq, protocol_error| CloseKind { local, with_active_rq, protocol_error };
    match result {
        Err(e) if e.is_parse() || e.is_parse_status() => kind(true, true, true),
        // The upstream cut the response body short.
        _ if state == BODY_FAILED && !aborted => kind(false, true, true),
        // The upstream closed in the middle of a response body.
        Err(e) if e.is_incomplete_message() && state == READING_BODY && !aborted => kind(false, true, true),
        Err(_) if aborted => kind(true, true, false),
        Err(_) => kind(false, busy, false),
        Ok(()) if aborted => kind(true, true, false),
        // The upstream closed while a request waited for its response headers (hyper fails the
        // request and ends the connection cleanly).
        Ok(()) if state == AWAITING_HEADERS && !local_close => kind(false, true, false),
        Ok(()) => kind(local_close, false, false),
    }
}

/// Final accounting of a connection that was established. A connection that ended cleanly
/// while its response body is still being read leaves the accounting to the body's end.
fn finish(shared: &ConnShared, result: &Result<(), hyper::Error>, force_local: bool) {
    if result.is_ok()
        && !force_local
        && shared.state.compare_exchange(READING_BODY, CLOSED_IN_BODY, Ordering::AcqRel, Ordering::Acquire).is_ok()
    {
        return;
    }
    let state = shared.state.swap(CLOSED, Ordering::AcqRel);
    let mut kind = close_kind(
        result,
        state,
        shared.local_close.load(Ordering::Acquire),
        shared.aborted.load(Ordering::Acquire),
    );
    kind.local |= force_local;
    account_close(shared, kind);
}

/// Counts a connection's close as `kind` and releases what it held.
fn account_close(shared: &ConnShared, kind: CloseKind) {
    let s = &shared.cluster.stats;
    s.upstream_cx_destroy.inc();
    if kind.local { &s.upstream_cx_destroy_local } else { &s.upstream_cx_destroy_remote }.inc();
    if kind.with_active_rq {
        s.upstream_cx_destroy_with_active_rq.inc();
        if kind.local { &s.upstream_cx_destroy_local_with_active_rq } else { &s.upstream_cx_destroy_remote_with_active_rq }
            .inc();
    }
    if kind.protocol_error {
        s.upstream_cx_protocol_error.inc();
    }
    s.upstream_cx_length_ms.record(shared.opened.elapsed().as_millis() as u64);
    s.upstream_rq_per_cx.record(shared.requests.load(Ordering::Acquire));
    s.upstream_cx_active.dec();
    shared.host.stats.cx_active.fetch_sub(1, Ordering::Relaxed);
    drop(shared.slot.lock().unwrap_or_else(|e| e.into_inner()).take());
}

#[cfg(test)]
mod tests;
