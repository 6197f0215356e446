//! What the streams of one downstream connection share with the connection's task: whether it
//! closes because the server drains; its active streams (from request headers until the
//! response body has been sent or dropped), which the HCM `idle_timeout` waits on; and who
//! ended it and with how many streams active (noted when the close happens: the client's end
//! of stream or an I/O error, or Legate shutting its side), which give Envoy's
//! `downstream_cx_destroy_local`, `_remote` and their `_active_rq` counts.
//!
//! The idle timer is lazy: streams only count themselves in and out (and note when the last
//! one ended); the timer is not moved per stream, but set again when it fires early.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use legate_upstream::timer::WokenSleep;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::stats::HcmStats;
use crate::timer_slot::TimerSlot;

/// The shared state of one downstream connection.
#[derive(Debug)]
pub struct ConnectionState {
    draining: AtomicBool,
    drain_started: tokio::sync::Notify,
    active_streams: AtomicU32,
    /// Whether any stream has started on the connection.
    used: AtomicBool,
    /// When the connection last had no stream left, in µs since `origin`.
    idle_since_us: AtomicU64,
    origin: Instant,
    /// The close was noted (the fields below are set).
    closed: AtomicBool,
    client_closed: AtomicBool,
    active_at_close: AtomicU32,
    /// The spare timers of the connection's streams.
    timers: TimerSlot,
}

// === impl ConnectionState ===

impl Default for ConnectionState {
    /// A connection that opened now, without streams.
    fn default() -> Self {
        Self {
            draining: AtomicBool::new(false),
            drain_started: tokio::sync::Notify::new(),
            active_streams: AtomicU32::new(0),
            used: AtomicBool::new(false),
            idle_since_us: AtomicU64::new(0),
            origin: Instant::now(),
            closed: AtomicBool::new(false),
            client_closed: AtomicBool::new(false),
            active_at_close: AtomicU32::new(0),
            timers: TimerSlot::default(),
        }
    }
}

impl ConnectionState {
    /// Whether the connection already closes because the server drains.
    pub fn closing(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the connection as closing; `true` the first time (and then wakes
    /// [`ConnectionState::wait`]).
    pub fn close(&self) -> bool {
        let first = !self.draining.swap(true, Ordering::Relaxed);
        if first {
            self.drain_started.notify_one();
        }
        first
    }

    /// Waits until the connection is marked as closing.
    pub async fn wait(&self) {
        self.drain_started.notified().await;
    }

    /// The spare timers of the connection's streams.
    pub fn timers(&self) -> &TimerSlot {
        &self.timers
    }

    /// Counts a stream that started on the connection.
    pub fn stream_started(&self) {
        self.active_streams.fetch_add(1, Ordering::Relaxed);
        self.used.store(true, Ordering::Relaxed);
    }

    /// Counts a stream that ended (answered or reset).
    pub fn stream_ended(&self) {
        // Noted before the count falls, so that a zero count is never read with an older time.
        self.idle_since_us.store(micros(self.origin.elapsed()), Ordering::Relaxed);
        let previous = self.active_streams.fetch_sub(1, Ordering::Release);
        debug_assert!(previous > 0, "a stream ended that never started");
    }

    /// Whether any stream has started on the connection.
    pub fn used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    /// Resolves once the connection has had no active stream for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        // Polled on every wake of the connection's task: a `WokenSleep` looks at its timer
        // only once the timer has fired.
        let mut timer = WokenSleep::until(self.origin + idle);
        loop {
            (&mut timer).await;
            let now = Instant::now();
            if self.active_streams.load(Ordering::Acquire) != 0 {
                timer.reset(now + idle);
                continue;
            }
            let due = self.origin + Duration::from_micros(self.idle_since_us.load(Ordering::Relaxed)) + idle;
            if due <= now {
                return;
            }
            timer.reset(due);
        }
    }

    /// Notes the close as it happens, once: by the client or by Legate.
    fn note_close(&self, by_client: bool) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            self.client_closed.store(by_client, Ordering::Relaxed);
            self.active_at_close.store(self.active_streams.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Accounts for the connection's close: by the client or by Legate (when no close was
    /// noted, the connection ends now, Legate's doing), with streams still active or not.
    pub fn count_close(&self, stats: &HcmStats) {
        self.note_close(false);
        let with_active = self.active_at_close.load(Ordering::Relaxed) > 0;
        if self.client_closed.load(Ordering::Relaxed) {
            stats.downstream_cx_destroy_remote.inc();
            if with_active {
                stats.downstream_cx_destroy_remote_active_rq.inc();
            }
        } else {
            stats.downstream_cx_destroy_local.inc();
            if with_active {
                stats.downstream_cx_destroy_local_active_rq.inc();
            }
        }
        if with_active {
            stats.downstream_cx_destroy_active_rq.inc();
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

pin_project_lite::pin_project! {
    /// A downstream byte stream that notes in its [`ConnectionState`] when the client ends it:
    /// an end of stream read, or an I/O error either way.
    ///
    /// The client's end as read (end of stream or a read error) reaches the codec one scheduler
    /// round late: the streams that frames read just before it ended (an HTTP/2 RST_STREAM) are
    /// woken already, and end first. Envoy ends such a stream as it reads the frame, so it is
    /// not active when the connection closes, and is not counted in `_active_rq`.
    pub struct ClientCloseWatch<I> {
        #[pin]
        inner: I,
        state: Arc<ConnectionState>,
        end: ReadEnd,
    }
}

/// Where a [`ClientCloseWatch`] is with the client's end of its stream.
#[derive(Debug)]
enum ReadEnd {
    /// Not read yet.
    Open,
    /// Read, and held back for one scheduler round: `Some` is a read error, `None` the end of
    /// stream.
    Held(Option<io::Error>),
    /// Handed to the codec.
    Delivered,
}

impl<I> ClientCloseWatch<I> {
    /// Watches `inner` for the connection whose state is `state`.
    pub fn new(inner: I, state: Arc<ConnectionState>) -> Self {
        Self { inner, state, end: ReadEnd::Open }
    }
}

// === impl ClientCloseWatch ===

impl<I> ClientCloseWatch<I> {
    fn note<T>(state: &ConnectionState, r: &Poll<io::Result<T>>) {
        if let Poll::Ready(Err(_)) = r {
            state.note_close(true);
        }
    }
}

impl<I: AsyncRead> AsyncRead for ClientCloseWatch<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        if let ReadEnd::Held(error) = this.end {
            let error = error.take();
            *this.end = ReadEnd::Delivered;
            this.state.note_close(true);
            return Poll::Ready(error.map_or(Ok(()), Err));
        }
        let before = buf.filled().len();
        let r = this.inner.poll_read(cx, buf);
        let ended = match &r {
            Poll::Ready(Ok(())) => buf.filled().len() == before && buf.remaining() > 0,
            Poll::Ready(Err(_)) => true,
            Poll::Pending => false,
        };
        if ended && matches!(this.end, ReadEnd::Open) {
            *this.end = ReadEnd::Held(match r {
                Poll::Ready(Err(e)) => Some(e),
                _ => None,
            });
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if ended {
            this.state.note_close(true);
        }
        r
    }
}

impl<I: AsyncWrite> AsyncWrite for ClientCloseWatch<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        let r = this.inner.poll_write(cx, buf);
        Self::note(this.state, &r);
        r
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.project();
        let r = this.inner.poll_write_vectored(cx, bufs);
        Self::note(this.state, &r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let r = this.inner.poll_flush(cx);
        Self::note(this.state, &r);
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        this.state.note_close(false);
        this.inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use legate_stats::Store;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn idle_only_without_streams_for_the_whole_period() {
        let state = Arc::new(ConnectionState::default());
        let start = Instant::now();
        state.stream_started();
        let s = state.clone();
        let waiter = tokio::spawn(async move { s.idle_for(Duration::from_millis(100)).await });
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!waiter.is_finished(), "a stream is active");
        state.stream_ended();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A new stream within the period restarts it.
        state.stream_started();
        tokio::time::sleep(Duration::from_millis(10)).await;
        state.stream_ended();
        waiter.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(410));
    }

    #[tokio::test]
    async fn a_client_end_of_stream_makes_the_close_remote() {
        let (client, server) = tokio::io::duplex(64);
        let state = Arc::new(ConnectionState::default());
        let mut io = ClientCloseWatch::new(server, state.clone());
        state.stream_started();
        drop(client);
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        let stats = HcmStats::new(&Store::default(), "h", "listener.x.");
        state.count_close(&stats);
        assert_eq!(stats.downstream_cx_destroy_remote.value(), 1);
        assert_eq!(stats.downstream_cx_destroy_remote_active_rq.value(), 1);
        assert_eq!(stats.downstream_cx_destroy_active_rq.value(), 1);
        assert_eq!(stats.downstream_cx_destroy_local.value(), 0);
    }

    #[tokio::test]
    async fn a_stream_that_ends_just_before_the_clients_end_is_not_active_at_the_close() {
        let (client, server) = tokio::io::duplex(64);
        let state = Arc::new(ConnectionState::default());
        let mut io = ClientCloseWatch::new(server, state.clone());
        state.stream_started();
        // The stream's own task, woken by what the codec read just before the end (an HTTP/2
        // RST_STREAM), has not run yet when the end is read.
        let (woken, wait) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        let stream = tokio::spawn(async move {
            let _ = wait.await;
            s.stream_ended();
        });
        tokio::task::yield_now().await;
        drop(client);
        woken.send(()).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        assert!(stream.is_finished());
        let stats = HcmStats::new(&Store::default(), "h", "listener.x.");
        state.count_close(&stats);
        assert_eq!(stats.downstream_cx_destroy_remote.value(), 1);
        assert_eq!(stats.downstream_cx_destroy_active_rq.value(), 0);
    }

    /// A byte stream whose every read fails as a reset connection does.
    struct ResetRead;

    impl AsyncRead for ResetRead {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }
    }

    #[tokio::test]
    async fn a_read_error_reaches_the_codec_and_makes_the_close_remote() {
        let state = Arc::new(ConnectionState::default());
        let mut io = ClientCloseWatch::new(ResetRead, state.clone());
        state.stream_started();
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        let stats = HcmStats::new(&Store::default(), "h", "listener.x.");
        state.count_close(&stats);
        assert_eq!(stats.downstream_cx_destroy_remote.value(), 1);
        assert_eq!(stats.downstream_cx_destroy_remote_active_rq.value(), 1);
    }

    #[tokio::test]
    async fn a_close_without_the_clients_end_is_local() {
        let (mut client, server) = tokio::io::duplex(64);
        let state = Arc::new(ConnectionState::default());
        let mut io = ClientCloseWatch::new(server, state.clone());
        client.write_all(b"GET").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 3);
        io.write_all(b"bye").await.unwrap();
        state.stream_started();
        state.stream_ended();
        io.shutdown().await.unwrap();
        // The client's end of stream after Legate's shutdown does not change who closed.
        drop(client);
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        let stats = HcmStats::new(&Store::default(), "h", "listener.x.");
        state.count_close(&stats);
        assert_eq!(stats.downstream_cx_destroy_local.value(), 1);
        assert_eq!(stats.downstream_cx_destroy_remote.value(), 0);
        assert_eq!(stats.downstream_cx_destroy_active_rq.value(), 0);
    }
}
